//! The layers of each crate, checked from its source: every top-level
//! module of a crate sits in one layer, and imports (`crate::<module>`
//! paths, in `use` lines or inline) only modules of lower layers. So the
//! import graph between folders has no circles, and nothing low reaches up
//! (ids and time ← decisions ← records ← features ← API ← CLI).
//!
//! A new top-level module must be given a layer here; a test module
//! (`#[cfg(test)] mod …` at the end of a file) and a test-only module of
//! the crate (the CMDB's fixture) may import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The collector's layers, lowest first. A module may import the modules
/// of the layers before its own, never its own layer's or a later one's.
const COLLECTOR: &[&[&str]] = &[
    // Ids, time, the storage engine, the task handle: no domain.
    &["calendar", "store", "background", "tls"],
    // Pure change-control decisions.
    &["control"],
    // Records and their transactions.
    &["cmdb"],
    &["commit"],
    // Features above the records, and reconciliation (a report applied
    // to the records).
    &["availability", "capacity", "reconcile"],
    // The report pipeline: verify, decode, reconcile.
    &["ingest"],
    &["config"],
    &["webhook"],
    &["api"],
    &["server"],
    // The `fathom-collector` command line.
    &["cli"],
];

/// The operator CLI (`fathom`).
const CLI: &[&[&str]] = &[
    // What the commands print, and the HTTPS client.
    &["output", "client"],
    // Command families; a CI is named the same way in all of them.
    &["ci"],
    &["rfc", "drift", "incident", "audit", "baseline", "capacity"],
    &["quickstart"],
];

/// The operator API's contract.
const API: &[&[&str]] = &[&["ids", "auth"], &["agents"], &["client"]];

const AGENT: &[&[&str]] = &[
    &["probe", "snmp", "identity", "delta", "spool"],
    &["config", "watch"],
    &["transport"],
    &["runner"],
    &["cli"],
];

const SHARED: &[&[&str]] = &[
    &["ids", "device", "tls"],
    // Signed envelopes, then what is decoded from a verified one.
    &["envelope"],
    &["codec"],
    &["wire"],
];

const SUPPORT: &[&[&str]] = &[&["time", "fsio", "config", "process"], &["logging"]];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source that is not a test module, without comment lines.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| next.starts_with("mod "))
        {
            break;
        }
        if !line.trim_start().starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The crate's top-level modules a piece of source names: `crate::x…`
/// and the groups of `use crate::{x, y::z}`. In a top-level module's own
/// file (`src/x.rs`, `src/x/mod.rs`), `super::` is the crate root, so its
/// `super::` paths are read as `crate::` paths.
fn imports_of(code: &str, top_level_file: bool) -> BTreeSet<String> {
    if top_level_file {
        imports(&code.replace("super::", "crate::"))
    } else {
        imports(code)
    }
}

/// The crate's top-level modules a piece of source names as `crate::…`.
fn imports(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        // `fathom_shared::crate::` cannot occur; `$crate::` is a macro's.
        if code[..i].ends_with('$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find("};").unwrap_or(group.len())];
            // Top-level names of the group: after `{` or a `,` at depth 0.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 0 => {
                        out.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

/// The top-level modules `lib.rs` declares for tests only
/// (`#[cfg(test)]` before `mod x;`): fixtures, which may import anything.
fn test_only_modules(src: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let mut out = BTreeSet::new();
    let mut lines = lib.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            let next = lines.next().unwrap_or_default().trim();
            let name = next
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'));
            if let Some(name) = name {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

/// Each top-level module of the crate at `src`, with the modules it
/// imports and the file that imports each.
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let test_only = test_only_modules(src);
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if ["lib", "main", "bin"].contains(&module.as_str()) || test_only.contains(&module) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = graph.entry(module.clone()).or_default();
        let depth = rel.components().count();
        let top_level_file = depth == 1 || (depth == 2 && rel.ends_with("mod.rs"));
        for import in imports_of(&code(&text), top_level_file) {
            if import != module && import != "self" {
                entry.entry(import).or_insert_with(|| file.clone());
            }
        }
    }
    graph
}

/// Every violation of `layers` in the crate at `src`, as sentences.
fn violations(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let layer_of = |m: &str| layers.iter().position(|l| l.contains(&m));
    let graph = graph(src);
    let mut out = Vec::new();
    for (module, imports) in &graph {
        let Some(own) = layer_of(module) else {
            out.push(format!(
                "{}: module `{module}` has no layer; add it to tests/tests/layers.rs",
                src.display()
            ));
            continue;
        };
        for (import, file) in imports {
            // Names that are not modules are items of the crate root
            // (`crate::VERSION`, re-exports), below every module.
            if !graph.contains_key(import) {
                continue;
            }
            match layer_of(import) {
                Some(theirs) if theirs < own => {}
                theirs => out.push(format!(
                    "{}: `{module}` (layer {own}) imports `{import}` ({}), which is not below it",
                    file.display(),
                    theirs.map_or("no layer".into(), |l| format!("layer {l}"))
                )),
            }
        }
    }
    out
}

#[test]
fn each_crate_imports_only_downwards() {
    let root = workspace();
    let mut all = Vec::new();
    for (krate, layers) in [
        ("collector", COLLECTOR),
        ("cli", CLI),
        ("api", API),
        ("agent", AGENT),
        ("shared", SHARED),
        ("support", SUPPORT),
    ] {
        let src = root.join(krate).join("src");
        assert!(
            graph(&src).len() >= layers.len(),
            "{krate}: fewer modules than layers; is the path right?"
        );
        all.extend(violations(&src, layers));
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
}

#[test]
fn the_checker_sees_imports_in_every_form() {
    assert_eq!(
        imports_of("use super::{x, y::Z};", true),
        ["x", "y"].into_iter().map(String::from).collect()
    );
    assert!(imports_of("use super::x;", false).is_empty());
    let source = "use crate::a::B;\n\
                  use crate::{b::{C, D}, c, self};\n\
                  // use crate::commented;\n\
                  fn f() { crate::d::e(); $crate::macro_only(); }\n\
                  #[cfg(test)]\nmod tests { use crate::tested; }\n";
    let found = imports(&code(source));
    assert_eq!(
        found,
        ["a", "b", "c", "d", "self"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    // A layering that a real crate breaks is reported, naming the file.
    let root = workspace().join("collector").join("src");
    let upside_down: Vec<&[&str]> = COLLECTOR.iter().rev().copied().collect();
    let found = violations(&root, &upside_down);
    assert!(
        found
            .iter()
            .any(|v| v.contains("`cmdb` (layer") && v.contains("imports `control`")),
        "{found:?}"
    );
}
