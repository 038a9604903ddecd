//! The example commands of the README and the docs, run as written: every
//! `fathom …` line of their ```` ```sh ```` blocks, in order, by `sh`,
//! against a collector started here with the CIs the examples name. A
//! reader who copies an example gets what the text says, or this fails.
//!
//! What is not run, and why, is listed in [`skipped`]; a command of any
//! other kind fails the test, so a new example is either run or listed.

use std::path::{Path, PathBuf};

use fathom_tests::{fixture_root, Agent, Collector};

/// Lines that are not operator commands against a collector: building,
/// the test command itself, benchmarks (minutes to hours; their figures are
/// in docs/benchmarks.md), and the quick start (its own test runs it).
fn skipped(command: &str) -> Option<&'static str> {
    let c = command.trim_start();
    if c.starts_with("cargo test") || c.starts_with("FATHOM_BLESS=1 cargo test") {
        Some("the test command itself")
    } else if c.starts_with("cargo build") {
        Some("building")
    } else if c.contains("./target/release/fathom-") {
        Some("a benchmark")
    } else if c.contains("-- quickstart") || c.starts_with("fathom quickstart") {
        Some("the quick start has its own test")
    } else {
        None
    }
}

/// The logical commands of a shell block: continuation lines joined,
/// blank lines and whole-line comments dropped (`sh` drops the rest).
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// A collector with hosts `ci-1` to `ci-<hosts>` (each enrolled and
/// reported once: inventory and metrics), and a `fathom` on the PATH.
struct Stage {
    collector: Collector,
    _roots: Vec<tempfile::TempDir>,
    _agents: Vec<Agent>,
    bin: tempfile::TempDir,
    cwd: tempfile::TempDir,
}

impl Stage {
    fn with_hosts(hosts: usize) -> Stage {
        let collector = Collector::start();
        let mut roots = Vec::new();
        let mut agents = Vec::new();
        for i in 1..=hosts {
            let root = fixture_root(&format!("web-{i}"), &format!("{:032x}", 0xd0c5_0000 + i));
            let agent = Agent::new(&collector, root.path(), "");
            let token = collector.create_token("1h", 1);
            let out = agent.run_once(Some(&token));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            roots.push(root);
            agents.push(agent);
        }
        let cis = collector.cis();
        assert_eq!(cis.len(), hosts, "one CI per host");
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(fathom_tests::bin("fathom"), bin.path().join("fathom")).unwrap();
        Stage {
            collector,
            _roots: roots,
            _agents: agents,
            bin,
            cwd: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `command` as a reader would, with the placeholders a reader
    /// fills in (the collector's URL, its fingerprint, where the admin
    /// token is) filled in for this collector.
    fn run(&self, file: &str, command: &str) -> Result<(), String> {
        let c = &self.collector;
        let command = command
            .replace("cargo run --release --bin fathom --", "fathom")
            .replace("https://collector:8443/", &c.url())
            .replace(
                "/var/lib/fathom-collector/admin.token",
                &c.dir.path().join("admin-token-copy").display().to_string(),
            )
            .replace("sha256:…", &c.fingerprint.to_string());
        std::fs::write(c.dir.path().join("admin-token-copy"), &c.admin_token).unwrap();
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(self.cwd.path())
            .env("PATH", path)
            .env("HOME", self.cwd.path())
            .env("FATHOM_URL", c.url())
            .env("FATHOM_TOKEN", &c.admin_token)
            .env("FATHOM_FINGERPRINT", c.fingerprint.to_string())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{file}: `{command}` failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

fn doc(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

/// Runs every command of `name`'s shell blocks on `stage`, in order;
/// returns how many ran.
fn run_doc(stage: &Stage, name: &str) -> usize {
    let (_, text) = doc(name);
    let mut ran = 0;
    let mut failures = Vec::new();
    for block in fathom_tests::fenced_blocks(&text, "sh") {
        for command in commands(&block) {
            if skipped(&command).is_some() {
                continue;
            }
            let first = command
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            if first != "fathom" && !command.contains("--bin fathom --") {
                failures.push(format!(
                    "{name}: `{command}` is neither a fathom command nor listed as skipped"
                ));
                continue;
            }
            ran += 1;
            if let Err(e) = stage.run(name, &command) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    ran
}

#[test]
fn the_readme_examples_run_as_written() {
    // The quick start's host is ci-1; the change-control example's web
    // server is ci-3.
    let stage = Stage::with_hosts(3);
    let ran = run_doc(&stage, "README.md");
    assert!(ran >= 8, "ran {ran} commands");
    // What the example says happened, happened.
    let rfc = stage.collector.cli_json(&["rfc", "show", "RFC-1"]);
    assert_eq!(rfc["status"], "scheduled", "{rfc}");
    assert_eq!(rfc["cis"], serde_json::json!(["ci-3"]));
    let window = &rfc["window"];
    assert_eq!(
        window["end_ms"].as_i64().unwrap() - window["start_ms"].as_i64().unwrap(),
        7_200_000,
        "--end +2h: two hours after --start"
    );
}

#[test]
fn the_capacity_and_availability_examples_run_as_written() {
    // ci-3 is the database, ci-4 to ci-6 the web servers of the shop.
    let stage = Stage::with_hosts(6);
    // The metric store takes reports in every few seconds.
    fathom_tests::wait_for("ci-3's series", std::time::Duration::from_secs(60), || {
        let listed = stage.collector.cli_json(&["metrics", "list", "ci-3"]);
        let names: Vec<String> = listed["series"]
            .as_array()?
            .iter()
            .filter_map(|s| s["name"].as_str().map(str::to_owned))
            .collect();
        names.iter().any(|n| n == "fs.used_pct:/").then_some(())
    });
    let ran = run_doc(&stage, "docs/capacity.md");
    assert!(ran >= 15, "ran {ran} commands");
    let shop = stage.collector.cli_json(&["ci", "show", "shop"]);
    assert_eq!(
        shop["ci"]["attributes"]["maintenance.window"],
        "daily 01:00-01:30"
    );
    assert_eq!(shop["relationships"]["outgoing"][0]["to"], "ci-3");
    assert!(stage.cwd.path().join("plan.html").exists());
    assert!(stage.cwd.path().join("shop.html").exists());
}

#[test]
fn every_document_with_shell_examples_is_run() {
    // The documents above, and the ones whose blocks are all skipped.
    let run = ["README.md", "docs/capacity.md"];
    let only_skipped = ["docs/benchmarks.md"];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut docs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|n| n.ends_with(".md"))
        .collect();
    docs.push("README.md".into());
    for name in docs {
        let (_, text) = doc(&name);
        let commands: Vec<String> = fathom_tests::fenced_blocks(&text, "sh")
            .iter()
            .flat_map(|b| commands(b))
            .collect();
        if commands.is_empty() {
            continue;
        }
        if only_skipped.contains(&name.as_str()) {
            for c in &commands {
                assert!(skipped(c).is_some(), "{name}: `{c}` would not be run");
            }
            continue;
        }
        assert!(
            run.contains(&name.as_str()),
            "{name} has shell examples no test runs"
        );
    }
}
