//! Every write through the operator API leaves an entry in the audit trail:
//! the routes are read from the collector's source, each write route is
//! exercised through the CLI, and each must add a trail entry naming the
//! operator. A new write route fails this test until it is exercised here.

use std::collections::BTreeSet;

use fathom_tests::{fixture_root, Agent, Collector};
use serde_json::Value;

/// `POST /v1/cis/{}/edit`-style keys of every write route in the API's
/// match arms.
fn write_routes() -> BTreeSet<String> {
    let api = concat!(env!("CARGO_MANIFEST_DIR"), "/../collector/src/api");
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(api)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(file).unwrap();
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let arm = format!("(&Method::{method}, [");
            for (at, _) in source.match_indices(&arm) {
                let rest = &source[at + arm.len()..];
                let segments = &rest[..rest.find(']').unwrap()];
                let path: Vec<String> = segments
                    .split(',')
                    .map(str::trim)
                    .map(|s| match s.strip_prefix('"') {
                        Some(literal) => literal.trim_end_matches('"').to_owned(),
                        None => "{}".to_owned(),
                    })
                    .collect();
                routes.insert(format!("{method} /{}", path.join("/")));
            }
        }
    }
    routes
}

fn trail(collector: &Collector) -> Vec<Value> {
    collector
        .cli_json(&["audit", "trail"])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn every_write_route_leaves_an_audit_trail_entry() {
    let routes = write_routes();
    assert!(routes.len() >= 20, "the route reader found {routes:?}");
    let collector = Collector::start_with_policy("[registration]\nnew_cis = \"review\"\n");
    let mut exercised: BTreeSet<&str> = BTreeSet::new();
    let mut seen = trail(&collector).len();
    // Runs one CLI command as the admin; it must succeed and add at least
    // one trail entry, by the admin token's operator.
    let mut write = |route: &'static str, args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = collector.cli(&all);
        assert!(
            out.status.success(),
            "{route} via fathom {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entries = trail(&collector);
        assert!(
            entries.len() > seen,
            "{route} (fathom {args:?}) wrote nothing to the audit trail"
        );
        for e in &entries[seen..] {
            assert_eq!(
                (&e["actor"]["kind"], &e["actor"]["name"]),
                (&Value::from("operator"), &Value::from("admin")),
                "{route}: trail entry {e} does not name the operator"
            );
        }
        seen = entries.len();
        exercised.insert(route);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };

    // Tokens and agents.
    let created = write(
        "POST /v1/enrollment-tokens",
        &["token", "create", "--ttl", "1h", "--uses", "3"],
    );
    let token = created["token"].as_str().unwrap().to_owned();
    let spare = write(
        "POST /v1/enrollment-tokens",
        &["token", "create", "--ttl", "1h", "--uses", "1"],
    );
    write(
        "POST /v1/enrollment-tokens/{}/revoke",
        &["token", "revoke", spare["id"].as_str().unwrap()],
    );
    let operator = write(
        "POST /v1/operator-tokens",
        &[
            "operator-token",
            "create",
            "--name",
            "auditor",
            "--role",
            "viewer",
        ],
    );
    write(
        "POST /v1/operator-tokens/{}/revoke",
        &["operator-token", "revoke", operator["id"].as_str().unwrap()],
    );

    // A discovered host, reinstalled (a second key on the same CI: a
    // review item), under a policy that wants new CIs registered by hand.
    let root = fixture_root("audit-01", "66666666666666666666666666666666");
    let first = Agent::new(&collector, root.path(), "");
    assert!(first.run_once(Some(&token)).status.success());
    let second = Agent::new(&collector, root.path(), "");
    assert!(second.run_once(Some(&token)).status.success());
    let host = collector.cis()[0]["id"].as_str().unwrap().to_owned();
    write("POST /v1/cis/{}/register", &["ci", "register", &host]);
    let review = collector.cli_json(&["ci", "review", "list", "--open"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    write(
        "POST /v1/reviews/{}/dismiss",
        &[
            "ci",
            "review",
            "dismiss",
            &review,
            "--note",
            "the same host, reinstalled",
        ],
    );
    let split = write(
        "POST /v1/cis/{}/split",
        &[
            "ci",
            "split",
            &host,
            "--agent",
            &second.agent_id(),
            "--reason",
            "checking the trail",
        ],
    );
    let split_id = split["id"].as_str().unwrap().to_owned();
    write(
        "POST /v1/cis/{}/merge",
        &[
            "ci",
            "merge",
            &host,
            &split_id,
            "--reason",
            "it was the same host",
        ],
    );

    // CIs kept by hand.
    let rack = write(
        "POST /v1/cis",
        &[
            "ci",
            "create",
            "--class",
            "rack",
            "--name",
            "rack-a1",
            "--reason",
            "inventory",
        ],
    );
    let rack_id = rack["id"].as_str().unwrap().to_owned();
    write(
        "POST /v1/cis/{}/edit",
        &[
            "ci",
            "edit",
            &rack_id,
            "--set",
            "owner=facilities",
            "--reason",
            "owner named",
        ],
    );
    write(
        "POST /v1/relationships",
        &[
            "ci", "relate", &host, "part_of", &rack_id, "--reason", "racked",
        ],
    );
    let export = collector.dir.path().join("export.json");
    let out = collector.cli(&["ci", "export", "--class", "rack"]);
    assert!(out.status.success());
    let mut document: Value = serde_json::from_slice(&out.stdout).unwrap();
    document["cis"][0]["description"] = Value::from("imported description");
    std::fs::write(&export, document.to_string()).unwrap();
    write(
        "POST /v1/import",
        &[
            "ci",
            "import",
            export.to_str().unwrap(),
            "--reason",
            "bulk edit",
        ],
    );

    // Change, incidents, baselines and audits.
    let rfc = write(
        "POST /v1/rfcs",
        &[
            "rfc",
            "raise",
            "--title",
            "Patch",
            "--target",
            &host,
            "--spec",
            "package.nginx: 1.24.*",
        ],
    );
    let rfc_id = rfc["id"].as_str().unwrap().to_owned();
    write(
        "POST /v1/rfcs/{}/{}",
        &[
            "rfc",
            "approve",
            &rfc_id,
            "--comment",
            "fine",
            "--start",
            "now",
            "--end",
            "+2h",
        ],
    );
    let incident = write(
        "POST /v1/incidents",
        &[
            "incident",
            "raise",
            "--title",
            "Disk noise",
            "--impact",
            "low",
            "--urgency",
            "low",
        ],
    );
    write(
        "POST /v1/incidents/{}/update",
        &[
            "incident",
            "update",
            incident["id"].as_str().unwrap(),
            "--assignee",
            "ops",
        ],
    );
    write("POST /v1/baselines", &["baseline", "take", "before-audit"]);
    let audit = write(
        "POST /v1/audits",
        &[
            "audit",
            "record",
            "--seed",
            "1",
            "--deficiency",
            &format!("{rack_id}|no label|label it"),
        ],
    );
    write(
        "POST /v1/audits/{}/deficiencies/{}/close",
        &[
            "audit",
            "close-deficiency",
            audit["id"].as_str().unwrap(),
            "1",
            "--note",
            "labelled",
        ],
    );
    write(
        "POST /v1/agents/{}/revoke",
        &["agent", "revoke", &first.agent_id()],
    );

    // Reports are the agents' writes, signed by them and kept as report
    // records and CI history rather than in the operators' trail.
    let agent_written: BTreeSet<&str> = ["POST /v1/reports"].into();
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !exercised.contains(r.as_str()) && !agent_written.contains(r.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "write routes this test does not exercise (add them): {missing:?}"
    );
    let unknown: Vec<&&str> = exercised.iter().filter(|r| !routes.contains(**r)).collect();
    assert!(unknown.is_empty(), "not routes of the API: {unknown:?}");
}
