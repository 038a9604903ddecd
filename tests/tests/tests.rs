//! End-to-end tests: real collector and agent processes, real TLS on
//! loopback, real sled stores in temporary directories.

// The scenarios talk to the collector over HTTPS as agents and operators do.
#![allow(clippy::disallowed_types)]

use std::process::Stdio;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use fathom_shared::codec;
use fathom_shared::envelope::{seal, BodyKind};
use fathom_shared::ids::AgentId;
use fathom_shared::wire::{Enrollment, Inventory, InventoryDelta, Metrics};
use fathom_tests::{fixture_root, now_ms, wait_for, Agent, Collector};
use serde_json::Value;

mod audit;
mod capacity;
mod change_control;
mod docs;
mod faults;
mod layers;
mod snmp;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn agent_json(collector: &Collector, id: AgentId) -> Value {
    collector
        .agents()
        .into_iter()
        .find(|a| a["agent_id"] == id.to_string())
        .unwrap_or_else(|| panic!("agent {id} not listed"))
}

/// Posts raw bytes and checks the status and the answer's code (for a
/// refusal) or outcome (for an acknowledgement).
fn expect(collector: &Collector, bytes: &[u8], status: u16, code: &str) {
    let (got, answer) = collector.post_raw(bytes);
    let got_code = answer["code"].as_str().or(answer["outcome"].as_str());
    assert_eq!((got, got_code), (status, Some(code)), "{answer}");
}

fn metrics_body() -> Vec<u8> {
    codec::encode(&Metrics {
        observed_at_ms: now_ms(),
        memory_total_bytes: 1,
        ..Metrics::default()
    })
    .unwrap()
}

/// An enrolled agent whose key the test holds, for hand-made envelopes.
fn enrolled(collector: &Collector) -> (Agent, tempfile::TempDir, SigningKey) {
    let root = fixture_root("raw-host", "11111111111111111111111111111111");
    let agent = Agent::new(collector, root.path(), "");
    let token = collector.create_token("10m", 1);
    let out = agent.run_once(Some(&token));
    assert!(out.status.success(), "{}", stderr(&out));
    let key = agent.key();
    (agent, root, key)
}

#[test]
fn enrollment_and_first_inventory_create_a_ci() {
    let collector = Collector::start();
    let root = fixture_root("web-01", "0123456789abcdef0123456789abcdef");
    let agent = Agent::new(&collector, root.path(), "");
    let token = collector.create_token("1h", 1);
    let out = agent.run_once(Some(&token));
    assert!(out.status.success(), "agent failed: {}", stderr(&out));

    let agents = collector.agents();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0]["status"], "active");
    assert_eq!(
        agents[0]["reports_received"], 2,
        "one inventory and one metrics sample"
    );
    let cis = collector.cis();
    assert_eq!(cis.len(), 1);
    let ci = &cis[0];
    assert_eq!(ci["name"], "web-01");
    assert_eq!(ci["class"], "server");
    assert_eq!(ci["status"], "in_use");
    assert_eq!(ci["attributes"]["os.id"], "debian");
    let packages = ci["attributes"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("packages."))
        .count();
    assert_eq!(packages, 40);
    assert_eq!(ci["attributes"]["packages.base-files"], "12.4+deb12u11");
    assert_eq!(ci["registered"], true);
    assert_eq!(
        ci["identifiers"]["machine_id"],
        "0123456789abcdef0123456789abcdef"
    );

    // `ci show` gives the latest inventory, with the missing DMI recorded as
    // not read rather than empty.
    let shown = collector.cli_json(&["ci", "show", ci["id"].as_str().unwrap()]);
    let inventory = &shown["inventory"]["inventory"];
    assert_eq!(inventory["packages"].as_array().unwrap().len(), 40);
    assert!(inventory["dmi"].is_null());
    assert!(inventory["probe_errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["probe"] == "dmi"));
    // The human view explains the CI: how it was identified, what the
    // agent could not read.
    let shown = String::from_utf8(
        collector
            .cli(&["ci", "show", ci["id"].as_str().unwrap()])
            .stdout,
    )
    .unwrap();
    assert!(
        shown.contains("web-01") && shown.contains("packages: 40"),
        "{shown}"
    );
    assert!(shown.contains("not read: dmi:"), "{shown}");
    assert!(shown.contains("identified  agent"), "{shown}");
    // Forty packages are a count here, listed in full by --section.
    assert!(
        shown.contains("packages.*") && shown.contains("40 attributes"),
        "{shown}"
    );
    assert!(
        shown.lines().count() < 120,
        "{} lines",
        shown.lines().count()
    );
    let section = String::from_utf8(
        collector
            .cli(&[
                "ci",
                "show",
                ci["id"].as_str().unwrap(),
                "--section",
                "packages",
            ])
            .stdout,
    )
    .unwrap();
    assert_eq!(
        section
            .lines()
            .filter(|l| l.starts_with("packages."))
            .count(),
        40,
        "{section}"
    );
    // The human listing names the CI too.
    let table = String::from_utf8(collector.cli(&["ci", "list"]).stdout).unwrap();
    assert!(
        table.contains("web-01") && table.contains(ci["id"].as_str().unwrap()),
        "{table}"
    );

    // The key file is private and the token is spent.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(agent.state_dir().join("agent.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let tokens = collector.cli_json(&["token", "list"]);
    assert_eq!(tokens[0]["uses_left"], 0);
}

#[test]
fn bad_tokens_are_refused_with_a_reason() {
    let collector = Collector::start();
    let root = fixture_root("h", "22222222222222222222222222222222");

    let out = Agent::new(&collector, root.path(), "").run_once(Some("ftk_not_a_real_token"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("token_invalid"), "{}", stderr(&out));

    let once = collector.create_token("1h", 1);
    assert!(Agent::new(&collector, root.path(), "")
        .run_once(Some(&once))
        .status
        .success());
    let out = Agent::new(&collector, root.path(), "").run_once(Some(&once));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("token_used_up"), "{}", stderr(&out));

    let short = collector.create_token("1s", 5);
    std::thread::sleep(Duration::from_millis(1500));
    let out = Agent::new(&collector, root.path(), "").run_once(Some(&short));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("token_expired"), "{}", stderr(&out));

    let out = Agent::new(&collector, root.path(), "").run_once(None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not enrolled"), "{}", stderr(&out));

    // Only the one good enrollment happened.
    assert_eq!(collector.agents().len(), 1);
}

#[test]
fn a_single_use_token_admits_exactly_one_of_many_concurrent_enrollments() {
    let collector = Collector::start();
    let token = collector.create_token("1h", 1);
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|n| {
                let collector = &collector;
                let token = token.clone();
                s.spawn(move || {
                    let key = SigningKey::from_bytes(&[n + 1; 32]);
                    let body = codec::encode(&Enrollment {
                        token,
                        hostname: format!("racer-{n}"),
                        agent_version: "test".into(),
                    })
                    .unwrap();
                    collector
                        .post_raw(&seal(&key, BodyKind::Enrollment, 0, now_ms(), &body))
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|s| **s == 200).count(),
        1,
        "{results:?}"
    );
    assert!(
        results.iter().all(|s| *s == 200 || *s == 401),
        "{results:?}"
    );
    assert_eq!(collector.agents().len(), 1);
}

#[test]
fn forged_replayed_tampered_oversized_and_garbage_reports_are_refused() {
    // The smallest body limit the collector allows, so an oversized request
    // fits in the socket buffers and the client reads the answer.
    let mut collector = Collector::start_with("max_body_bytes = 65536\n");
    let (agent, _root, key) = enrolled(&collector);
    let id = AgentId::from_public_key(&key.verifying_key().to_bytes());
    let before = agent_json(&collector, id)["reports_received"]
        .as_u64()
        .unwrap();
    let next = agent.last_seq() + 1;

    // Signed by another key while claiming to be the enrolled agent.
    let intruder = SigningKey::from_bytes(&[0x42; 32]);
    let mut forged = seal(
        &intruder,
        BodyKind::Metrics,
        next,
        now_ms(),
        &metrics_body(),
    );
    forged[8..24].copy_from_slice(id.as_bytes());
    expect(&collector, &forged, 401, "key_mismatch");
    // A key nobody enrolled.
    expect(
        &collector,
        &seal(&intruder, BodyKind::Metrics, 1, now_ms(), &metrics_body()),
        401,
        "unknown_agent",
    );

    // A tampered body.
    let mut tampered = seal(&key, BodyKind::Metrics, next, now_ms(), &metrics_body());
    let body_byte = fathom_shared::envelope::HEADER_LEN + 3;
    tampered[body_byte] ^= 0x20;
    expect(&collector, &tampered, 401, "bad_signature");

    // A genuine report, then the same bytes again (an agent that missed the
    // acknowledgement), then another report reusing the number (a replay).
    let genuine = seal(&key, BodyKind::Metrics, next, now_ms(), &metrics_body());
    expect(&collector, &genuine, 200, "stored");
    expect(&collector, &genuine, 200, "duplicate");
    let reused = seal(
        &key,
        BodyKind::Metrics,
        next,
        now_ms(),
        &metrics_body_with(7),
    );
    expect(&collector, &reused, 409, "replay");
    let old = seal(&key, BodyKind::Metrics, 0, now_ms(), &metrics_body());
    expect(&collector, &old, 409, "replay");

    // A send time far from the collector's clock.
    let skewed = seal(
        &key,
        BodyKind::Metrics,
        next + 1,
        now_ms() - 3_600_000,
        &metrics_body(),
    );
    expect(&collector, &skewed, 400, "clock_skew");
    // The most negative send time there is: no overflow lets it through.
    let earliest = seal(&key, BodyKind::Metrics, next + 1, i64::MIN, &metrics_body());
    expect(&collector, &earliest, 400, "clock_skew");
    // Only the documented content type is taken.
    let typed = seal(&key, BodyKind::Metrics, next + 1, now_ms(), &metrics_body());
    for content_type in [None, Some("text/plain"), Some("application/json")] {
        let (status, answer) = collector.post_typed(&typed, content_type);
        assert_eq!(
            (status, answer["code"].as_str()),
            (415, Some("unsupported_media_type")),
            "{content_type:?}"
        );
    }

    // Oversized, by its Content-Length: refused before it is read.
    let huge = vec![0u8; 100 * 1024];
    expect(&collector, &huge, 413, "body_too_large");
    // A small request whose envelope claims a body over the limit.
    let mut claims_huge = seal(&key, BodyKind::Metrics, next + 1, now_ms(), &metrics_body());
    claims_huge[72..76].copy_from_slice(&(10u32 << 20).to_be_bytes());
    expect(&collector, &claims_huge, 413, "body_too_large");
    // A body that is valid msgpack of the wrong shape, properly signed.
    let wrong_shape = seal(
        &key,
        BodyKind::Metrics,
        next + 1,
        now_ms(),
        &codec::encode(&"hello").unwrap(),
    );
    expect(&collector, &wrong_shape, 400, "bad_body");
    // A delta naming a section no collector knows.
    let odd_delta = seal(
        &key,
        BodyKind::InventoryDelta,
        next + 1,
        now_ms(),
        &codec::encode(&InventoryDelta {
            packages_changed: None,
            base_seq: 1,
            sections: vec!["secrets".into()],
            inventory: Inventory::default(),
        })
        .unwrap(),
    );
    // More items in a section than any host has: refused before
    // reconciliation, naming the section.
    let flood = seal(
        &key,
        BodyKind::Inventory,
        next + 1,
        now_ms(),
        &codec::encode(&Inventory {
            kernel_modules: Some((0..10_001).map(|i| format!("m{i}")).collect()),
            ..Inventory::default()
        })
        .unwrap(),
    );
    let (status, answer) = collector.post_raw(&flood);
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("too_many_items")),
        "{answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("kernel_modules"),
        "{answer}"
    );
    let (status, answer) = collector.post_raw(&odd_delta);
    assert_eq!((status, answer["code"].as_str()), (422, Some("bad_delta")));
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains(r#"unknown section "secrets""#),
        "{answer}"
    );

    // Garbage of several shapes: a clear 4xx each time.
    let mut garbage = b"FTHM".to_vec();
    garbage.extend(std::iter::repeat_n(0xffu8, 300));
    for bytes in [&b""[..], b"GET / HTTP/1.1", &garbage, &[0u8; 140]] {
        let (status, answer) = collector.post_raw(bytes);
        assert!((400..500).contains(&status), "{status} {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }

    // Exactly one of all that was stored, and the collector still serves.
    collector.assert_running();
    let after = agent_json(&collector, id)["reports_received"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);
    let out = agent.run_once(None);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn metrics_body_with(memory: u64) -> Vec<u8> {
    codec::encode(&Metrics {
        observed_at_ms: now_ms(),
        memory_total_bytes: memory,
        ..Metrics::default()
    })
    .unwrap()
}

#[test]
fn reports_wait_in_the_spool_while_the_collector_is_down_and_arrive_exactly_once() {
    let mut collector = Collector::start();
    let root = fixture_root("spool-host", "33333333333333333333333333333333");
    let agent = Agent::new(
        &collector,
        root.path(),
        "metrics_interval_secs = 1\nmax_backoff_secs = 1\n",
    );
    let token = collector.create_token("1h", 1);
    let mut daemon = agent
        .command(&["run"])
        .env("FATHOM_ENROLLMENT_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(agent.dir.path().join("agent.log")).unwrap())
        .spawn()
        .unwrap();
    let id = wait_for("enrollment", Duration::from_secs(20), || {
        collector
            .agents()
            .first()
            .map(|a| a["agent_id"].as_str().unwrap().parse::<AgentId>().unwrap())
    });
    wait_for("a few reports", Duration::from_secs(20), || {
        (agent_json(&collector, id)["reports_received"]
            .as_u64()
            .unwrap()
            >= 3)
            .then_some(())
    });

    // The collector dies without a chance to clean up; the agent keeps
    // producing reports into its spool.
    collector.kill();
    let seq_at_kill = agent.last_seq();
    wait_for(
        "reports to pile up in the spool",
        Duration::from_secs(30),
        || (agent.spooled() >= 3 && agent.last_seq() >= seq_at_kill + 3).then_some(()),
    );

    // A second agent process on the same state directory is refused.
    let out = agent.run_once(None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));

    // Stop the daemon (SIGTERM): what it could not deliver stays spooled.
    terminate(&mut daemon);
    let spooled = agent.spooled();
    assert!(spooled >= 3);

    // A one-shot run while the collector is still down gives up with a clear
    // error and keeps every report, its own included.
    let out = agent.run_once(None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("stay in the spool"),
        "{}",
        stderr(&out)
    );
    assert_eq!(agent.spooled(), spooled + 2);

    // The collector comes back; the next run delivers everything, in order.
    collector.restart();
    let out = agent.run_once(None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(agent.spooled(), 0);
    let last = agent.last_seq();

    // Every numbered report from 1 to the last is in the CMDB exactly once.
    let record = agent_json(&collector, id);
    assert_eq!(record["last_seq"].as_u64().unwrap(), last, "{record}");
    assert_eq!(
        record["reports_received"].as_u64().unwrap(),
        last,
        "{record}"
    );
    assert_eq!(agent.spooled(), 0);
    assert!(collector.log().contains("Collector listening"));
}

/// Sends SIGTERM through the `kill` command (no unsafe code in this crate)
/// and waits for the process to exit.
fn terminate(child: &mut std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "agent ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_reinstalled_agent_on_the_same_host_lands_on_the_same_ci_flagged_for_review() {
    let collector = Collector::start();
    let root = fixture_root("db-07", "44444444444444444444444444444444");
    let token = collector.create_token("1h", 3);
    let first = Agent::new(&collector, root.path(), "");
    assert!(first.run_once(Some(&token)).status.success());
    // The same host, reinstalled: a new state directory, so a new key.
    let second = Agent::new(&collector, root.path(), "");
    let out = second.run_once(Some(&token));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(first.key().verifying_key(), second.key().verifying_key());

    let cis = collector.cis();
    assert_eq!(cis.len(), 1, "{cis:?}");
    let ci = &cis[0];
    assert_eq!(ci["agents"].as_array().unwrap().len(), 2);
    assert_eq!(ci["identified_by"]["rule"], "machine_id");
    assert_eq!(ci["reviews"].as_array().unwrap().len(), 1);
    let queue = collector.cli_json(&["ci", "review", "list", "--open"]);
    assert_eq!(queue.as_array().unwrap().len(), 1);
    assert_eq!(queue[0]["kind"], "new_agent_key");
    assert_eq!(queue[0]["ci"], ci["id"]);
    assert!(queue[0]["reason"]
        .as_str()
        .unwrap()
        .contains("new agent key"));

    // A different host (another machine-id) is another CI, even though both
    // fixture hosts share this machine's network interfaces.
    let other_root = fixture_root("db-08", "55555555555555555555555555555555");
    assert!(Agent::new(&collector, other_root.path(), "")
        .run_once(Some(&token))
        .status
        .success());
    assert_eq!(collector.cis().len(), 2);
    let table = String::from_utf8(collector.cli(&["ci", "list"]).stdout).unwrap();
    assert!(table.contains("needs review"), "{table}");
}

#[test]
fn a_revoked_agent_is_refused_and_its_reports_are_kept_aside() {
    let collector = Collector::start();
    let (agent, _root, key) = enrolled(&collector);
    let id = AgentId::from_public_key(&key.verifying_key().to_bytes());
    let out = collector.cli(&["agent", "revoke", &id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(agent_json(&collector, id)["status"], "revoked");
    let received = agent_json(&collector, id)["reports_received"]
        .as_u64()
        .unwrap();

    let out = agent.run_once(None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("agent_revoked"), "{}", stderr(&out));
    let rejected = std::fs::read_dir(agent.state_dir().join("spool/rejected"))
        .unwrap()
        .count();
    assert_eq!(rejected, 2);
    assert_eq!(
        agent_json(&collector, id)["reports_received"]
            .as_u64()
            .unwrap(),
        received
    );
    expect(
        &collector,
        &seal(&key, BodyKind::Metrics, 99, now_ms(), &metrics_body()),
        403,
        "agent_revoked",
    );
}

#[test]
fn operator_api_needs_a_valid_token_and_cli_errors_are_clear() {
    let collector = Collector::start();
    let fingerprint = collector.fingerprint.to_string();
    let out = collector.cli_as("fop_wrong", &fingerprint, &["ci", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));

    // A pinned fingerprint that does not match: refused before any request.
    let wrong = format!("sha256:{}", "00".repeat(32));
    let out = collector.cli_as(&collector.admin_token, &wrong, &["ci", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not match the pinned"),
        "{}",
        stderr(&out)
    );

    // A viewer reads but cannot admit agents or revoke them.
    let viewer = collector.cli_json(&[
        "operator-token",
        "create",
        "--name",
        "auditor",
        "--role",
        "viewer",
    ]);
    let viewer = viewer["token"].as_str().unwrap();
    let out = collector.cli_as(viewer, &fingerprint, &["ci", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = collector.cli_as(viewer, &fingerprint, &["token", "create"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("403") && stderr(&out).contains("admin"),
        "{}",
        stderr(&out)
    );
    let out = collector.cli_as(viewer, &fingerprint, &["agent", "revoke", &"ab".repeat(16)]);
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    let out = collector.cli_as(
        viewer,
        &fingerprint,
        &["operator-token", "create", "--name", "x", "--role", "admin"],
    );
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));

    let out = collector.cli(&["ci", "show", "not-an-id"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no CI is named \"not-an-id\""),
        "{}",
        stderr(&out)
    );
}

/// `fathom … | head -1`: when the reader goes away, the CLI ends as Unix
/// tools do (SIGPIPE), without a panic or an abort.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let collector = Collector::start();
    collector.create_token("1h", 1);
    let mut child = collector
        .admin_command(&["token", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the CLI has even connected, let alone printed.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_eq!(
        out.status.signal(),
        Some(13),
        "ended by SIGPIPE: {:?}",
        out.status
    );
}

#[test]
fn bad_config_files_exit_non_zero_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let agent = format!(
        "collector_url = \"https://x\"\ncollector_fingerprint = \"sha256:{}\"\nstate_dir = \"{d}/state\"\n",
        "0".repeat(64)
    );
    // What `run` would refuse at start, validate-config refuses too.
    let cases = [
        (
            "fathom-agent",
            "agent.toml",
            "collector_url = \"https://x\"\ncollector_fingerprint = \"sha256:00\"\n".to_owned(),
            "collector_fingerprint",
        ),
        (
            "fathom-agent",
            "agent.toml",
            format!("{agent}enrollment_token_file = \"{d}/no-such-token\"\n"),
            "enrollment_token_file",
        ),
        (
            "fathom-agent",
            "agent.toml",
            format!("{agent}host_root = \"{d}/no-such-root\"\n"),
            "host_root",
        ),
        (
            "fathom-collector",
            "collector.toml",
            "listen = \"nowhere\"\n".to_owned(),
            "listen",
        ),
        (
            "fathom-collector",
            "collector.toml",
            format!(
                "data_dir = \"{d}/data\"\ntls_cert = \"{d}/no-cert.pem\"\ntls_key = \"{d}/no-key.pem\"\n"
            ),
            "tls_cert",
        ),
    ];
    for (program, file, text, key) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(fathom_tests::bin(program))
            .args(["validate-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains(file) && err.contains(key), "{err}");
    }

    for shipped in ["agent.toml", "collector.toml"] {
        let bin = if shipped == "agent.toml" {
            "fathom-agent"
        } else {
            "fathom-collector"
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../configs")
            .join(shipped);
        let out = std::process::Command::new(fathom_tests::bin(bin))
            .args(["validate-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{shipped}: {}", stderr(&out));
    }
}

#[test]
fn quickstart_shows_this_host_as_a_ci_and_resumes_on_the_same_ci() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = || {
        std::process::Command::new(fathom_tests::bin("fathom"))
            .args([
                "quickstart",
                "--exit-after-first-inventory",
                "--timeout-secs",
                "60",
            ])
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .output()
            .unwrap()
    };
    let first = quickstart();
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(first.status.success(), "{stdout}\n{}", stderr(&first));
    let ci_id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("ci-"))
        .unwrap_or_else(|| panic!("no CI id in:\n{stdout}"))
        .to_owned();
    // The package count it prints is this machine's, as dpkg-query counts it.
    let dpkg = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Abbrev}\n"])
        .output()
        .unwrap();
    let installed = String::from_utf8_lossy(&dpkg.stdout)
        .lines()
        .filter(|l| l.as_bytes().get(1) == Some(&b'i'))
        .count();
    assert!(
        stdout.contains(&format!("packages   {installed}")),
        "{stdout}"
    );
    assert!(stdout.contains("fathom -- ci show"), "{stdout}");
    // It wrote the client config the printed commands rely on.
    let client = std::fs::read_to_string(dir.path().join("fathom-data/client.toml")).unwrap();
    assert!(client.contains("fingerprint = \"sha256:"), "{client}");

    // Again: same store, same agent, same CI, no new enrollment.
    let second = quickstart();
    let stdout = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(second.status.success(), "{stdout}\n{}", stderr(&second));
    assert!(stdout.contains(&ci_id), "{stdout}");
    assert!(!stdout.contains("enrollment token"), "{stdout}");
}

#[test]
fn agent_status_and_inventory_commands_describe_the_agent() {
    let collector = Collector::start();
    let root = fixture_root("status-host", "66666666666666666666666666666666");
    let agent = Agent::new(&collector, root.path(), "");
    let before: Value = serde_json::from_slice(
        &agent
            .command(&["status", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(before["enrolled"], false);
    let token = collector.create_token("1h", 1);
    assert!(agent.run_once(Some(&token)).status.success());
    let after: Value = serde_json::from_slice(
        &agent
            .command(&["status", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(after["enrolled"], true);
    assert_eq!(after["agent_id"], before["agent_id"]);
    assert_eq!(after["spooled_reports"], 0);

    // `inventory --json` prints what would be sent, read from the host root.
    let out = std::process::Command::new(fathom_tests::bin("fathom-agent"))
        .args(["inventory", "--json", "--host-root"])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let inventory: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inventory["host"]["hostname"], "status-host");
    assert_eq!(inventory["packages"].as_array().unwrap().len(), 40);
    // The same from the agent's own config, whose host_root is the fixture.
    let out = agent.command(&["inventory", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let from_config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_config["host"]["hostname"], "status-host");
}

/// A hostile agent's strings (its hostname here) reach an operator's
/// terminal escaped: no control character is sent; `--json` stays exact.
#[test]
fn agent_supplied_text_cannot_drive_the_operators_terminal() {
    let collector = Collector::start();
    let hostile = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let root = fixture_root(hostile, "77777777777777777777777777777777");
    let agent = Agent::new(&collector, root.path(), "");
    let token = collector.create_token("1h", 1);
    assert!(agent.run_once(Some(&token)).status.success());
    let listed = collector.cli_json(&["ci", "list"]);
    let ci = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["name"], hostile, "JSON is exact");
    for args in [
        vec!["ci", "list"],
        vec!["ci", "show", ci.as_str()],
        vec!["agent", "list"],
        vec!["ci", "history", ci.as_str()],
    ] {
        let out = collector.cli(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{args:?} sent a control character:\n{text:?}"
        );
        assert!(
            text.contains("evil\\u{1b}]0;pwned"),
            "{args:?} shows it escaped:\n{text}"
        );
    }
}

/// The collector's state is its user's alone: the data directory 0700, the
/// store's files, the TLS key and the admin token 0600.
#[test]
fn the_collectors_files_are_readable_by_its_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let collector = Collector::start();
    let data = collector.data_dir();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    let mut files = Vec::new();
    let mut dirs = vec![data.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("admin.token")));
    assert!(files.iter().any(|f| f.starts_with(data.join("cmdb"))));
    for f in &files {
        assert_eq!(mode(f) & 0o077, 0, "{} is {:o}", f.display(), mode(f));
    }
}

/// Tokens and agents are managed on the record: creating and revoking
/// either kind of token, and revoking an agent, are in the audit trail;
/// a revoked or expired operator token opens nothing; the last admin token
/// stays.
#[test]
fn token_and_agent_management_is_audited_and_enforced() {
    let collector = Collector::start();
    let fingerprint = collector.fingerprint.to_string();
    let trail = || {
        let entries = collector.cli_json(&["audit", "trail"]);
        entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let enrollment = collector.cli_json(&["token", "create", "--ttl", "1h", "--uses", "2"]);
    let created = collector.cli_json(&[
        "operator-token",
        "create",
        "--name",
        "script",
        "--role",
        "viewer",
        "--ttl",
        "1h",
    ]);
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        !secret.contains(&id),
        "the id gives nothing of the secret away"
    );
    let listed = collector.cli_json(&["operator-token", "list"]);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["name"], "script");
    assert!(row["expires_at_ms"].as_i64().is_some());
    assert!(!listed.to_string().contains(&secret), "no secrets listed");
    let out = collector.cli_as(&secret, &fingerprint, &["ci", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    collector.cli_json(&["operator-token", "revoke", &id]);
    let out = collector.cli_as(&secret, &fingerprint, &["ci", "list"]);
    assert!(
        stderr(&out).contains("401") && stderr(&out).contains("revoked"),
        "{}",
        stderr(&out)
    );

    // The last admin token cannot go.
    let admin = collector
        .cli_json(&["operator-token", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = collector.cli_fails(&["operator-token", "revoke", &admin]);
    assert!(err.contains("last valid admin token"), "{err}");

    // An agent revoked; an enrollment token revoked before its second use.
    let root = fixture_root("revoked-host", "88888888888888888888888888888888");
    let agent = Agent::new(&collector, root.path(), "");
    let token = enrollment["token"].as_str().unwrap();
    assert!(agent.run_once(Some(token)).status.success());
    collector.cli_json(&["agent", "revoke", &agent.agent_id().to_string()]);
    collector.cli_json(&["token", "revoke", enrollment["id"].as_str().unwrap()]);
    let other = fixture_root("late-host", "99999999999999999999999999999999");
    let late = Agent::new(&collector, other.path(), "");
    assert!(
        !late.run_once(Some(token)).status.success(),
        "a revoked token admits nobody"
    );

    let actions = trail();
    for action in [
        "token.create",
        "operator_token.create",
        "operator_token.revoke",
        "agent.revoke",
        "token.revoke",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }
}

/// An agent whose sequence counter went back (its state directory restored
/// from an old backup) resumes above what the collector holds: its reports
/// are renumbered, not lost as replays, and both sides log it.
#[test]
fn a_lost_sequence_counter_resumes_above_the_collectors() {
    let collector = Collector::start();
    let (agent, _root, key) = enrolled(&collector);
    let id = AgentId::from_public_key(&key.verifying_key().to_bytes());
    for _ in 0..2 {
        assert!(agent.run_once(None).status.success());
    }
    let before = agent_json(&collector, id);
    let last = before["last_seq"].as_u64().unwrap();
    assert!(last >= 4, "{before}");
    // The backup held an old counter.
    std::fs::write(agent.state_dir().join("seq"), "1").unwrap();
    let out = agent.run_once(None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("renumbered"), "{}", stderr(&out));
    assert!(agent.spooled() == 0, "everything delivered");
    let after = agent_json(&collector, id);
    assert_eq!(
        after["reports_received"].as_u64().unwrap(),
        before["reports_received"].as_u64().unwrap() + 2,
        "the inventory and the metrics of this run, stored: {after}"
    );
    assert!(after["last_seq"].as_u64().unwrap() > last);
    // The counter itself moved past them: the next run needs no renumbering.
    let seq: u64 = std::fs::read_to_string(agent.state_dir().join("seq"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(seq >= after["last_seq"].as_u64().unwrap(), "seq file {seq}");
    let out = agent.run_once(None);
    assert!(!stderr(&out).contains("renumbered"), "{}", stderr(&out));
    assert!(
        collector.log().contains("told the last sequence"),
        "the collector said so too"
    );
}

#[test]
fn benchmarks_answer_help_and_refuse_unknown_options_without_running() {
    let benches = [
        (env!("CARGO_BIN_EXE_fathom-bench"), "--steady-secs"),
        (env!("CARGO_BIN_EXE_fathom-capacity-bench"), "--plan-days"),
        (env!("CARGO_BIN_EXE_fathom-reconcile-bench"), "--sizes"),
        (env!("CARGO_BIN_EXE_fathom-snmp-bench"), "--fleet"),
    ];
    for (bench, option) in benches {
        let out = std::process::Command::new(bench)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{bench} --help: {}", stderr(&out));
        assert!(text.starts_with("Usage: "), "{bench}: {text}");
        assert!(
            text.contains(option),
            "{bench} --help names {option}: {text}"
        );
        // Help only: no report started (each prints a Markdown heading first).
        assert!(!text.contains("## "), "{bench} ran something: {text}");
        let out = std::process::Command::new(bench)
            .arg("--no-such-option")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bench}");
        assert!(stderr(&out).contains("unknown option --no-such-option"));
    }
}
