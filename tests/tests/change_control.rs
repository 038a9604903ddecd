//! Change control end to end: a real agent reports a fixture host whose
//! dpkg database and DMI files the test edits between reports, and the
//! operator drives RFCs and incidents through the real `fathom` CLI.

use fathom_tests::{fixture_root, set_dmi, set_package, Agent, Collector};
use serde_json::Value;

/// One fixture host with its agent, enrolled, and its CI id.
struct Host {
    root: tempfile::TempDir,
    agent: Agent,
    ci: String,
}

impl Host {
    fn new(collector: &Collector, name: &str, machine_id: &str) -> Host {
        Self::with(collector, name, machine_id, |_| {})
    }

    fn with(
        collector: &Collector,
        name: &str,
        machine_id: &str,
        prepare: impl FnOnce(&std::path::Path),
    ) -> Host {
        Self::configured(collector, name, machine_id, "", prepare)
    }

    /// With extra lines in the agent's config.
    fn configured(
        collector: &Collector,
        name: &str,
        machine_id: &str,
        agent_config: &str,
        prepare: impl FnOnce(&std::path::Path),
    ) -> Host {
        let root = fixture_root(name, machine_id);
        prepare(root.path());
        let agent = Agent::new(collector, root.path(), agent_config);
        let token = collector.create_token("1h", 1);
        let out = agent.run_once(Some(&token));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ci = collector
            .cis()
            .into_iter()
            .filter(|c| c["name"] == name)
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .next_back()
            .unwrap_or_else(|| panic!("no CI named {name}"));
        Host { root, agent, ci }
    }

    fn path(&self) -> &std::path::Path {
        self.root.path()
    }

    /// One more inventory (and metrics sample) from the agent.
    fn report(&self) {
        let out = self.agent.run_once(None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn incidents(c: &Collector) -> Vec<Value> {
    c.cli_json(&["incident", "list"])
        .as_array()
        .unwrap()
        .clone()
}

fn authorized(c: &Collector, ci: &str, attribute: &str) -> Value {
    c.cli_json(&["ci", "show", ci])["ci"]["attributes"][attribute].clone()
}

fn text(c: &Collector, args: &[&str]) -> String {
    let out = c.cli(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Raises and approves an RFC for `adduser` with a window; returns its id.
fn approved_rfc(c: &Collector, ci: &str, spec: &str, start: &str, end: &str) -> String {
    let rfc = c.cli_json(&[
        "rfc",
        "raise",
        "--title",
        "Upgrade adduser",
        "--target",
        ci,
        "--spec",
        spec,
        "--type",
        "upgrade",
        "--start",
        start,
        "--end",
        end,
    ]);
    let id = rfc["id"].as_str().unwrap().to_owned();
    assert_eq!(rfc["status"], "new");
    let approved = c.cli_json(&["rfc", "approve", &id, "--comment", "CAB ok"]);
    assert_eq!(approved["status"], "scheduled");
    id
}

#[test]
fn an_upgrade_with_no_rfc_is_an_incident_with_a_missing_rfc_explained() {
    let c = Collector::start();
    let web = Host::new(&c, "web-1", "10000000000000000000000000000001");
    assert_eq!(authorized(&c, &web.ci, "packages.adduser"), "3.134");
    assert!(incidents(&c).is_empty());

    set_package(web.path(), "adduser", Some("3.137"));
    web.report();
    let incidents = incidents(&c);
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let incident = &incidents[0];
    assert_eq!(incident["category"], "unauthorized_change");
    assert_eq!(incident["status"], "new");
    assert_eq!(
        incident["priority"], 3,
        "medium criticality, packages urgency medium"
    );
    assert_eq!(incident["cis"][0], web.ci.as_str());

    let drift_id = incident["drifts"][0].as_str().unwrap();
    let drift = c.cli_json(&["drift", "show", drift_id]);
    assert_eq!(drift["attribute"], "packages.adduser");
    assert_eq!(drift["authorized"], "3.134");
    assert_eq!(drift["discovered"], "3.137");
    assert_eq!(drift["status"], "open");
    assert_eq!(drift["decision"]["verdict"]["verdict"], "unauthorized");
    let explained = text(&c, &["drift", "show", drift_id]);
    assert!(
        explained.contains("policy rule  control.default"),
        "{explained}"
    );
    assert!(
        explained.contains("no approved RFC is scheduled for this CI"),
        "{explained}"
    );

    let missing = c.cli_json(&["rfc", "show", incident["rfcs"][0].as_str().unwrap()]);
    assert_eq!(missing["status"], "new");
    assert_eq!(missing["origin"]["kind"], "missing_rfc");
    assert_eq!(missing["specs"][0], "packages.adduser: 3.137");
    // The CMDB keeps the authorized version until someone decides.
    assert_eq!(authorized(&c, &web.ci, "packages.adduser"), "3.134");
    // Seen again: no second incident.
    web.report();
    assert_eq!(self::incidents(&c).len(), 1);
    // Explanations are in words, not Rust's debug output.
    assert!(
        !explained.contains('{') && !explained.contains("Modified"),
        "{explained}"
    );
    assert!(explained.contains("kind         modified"), "{explained}");

    // The incident ends with its drift: a plain resolve is refused, naming
    // the drift and the draft; --force with a reason does it, audited.
    let id = incident["id"].as_str().unwrap();
    let err = c.cli_fails(&["incident", "update", id, "--status", "resolved"]);
    assert!(err.contains(drift_id) && err.contains("--force"), "{err}");
    let forced = c.cli_json(&[
        "incident",
        "update",
        id,
        "--status",
        "resolved",
        "--force",
        "--note",
        "vendor hotfix",
    ]);
    assert_eq!(forced["status"], "resolved");
    let trail = c.cli_json(&["audit", "trail"]);
    let last = trail.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "incident.force_resolve", "{last}");
    assert!(
        last["detail"].as_str().unwrap().contains("vendor hotfix"),
        "{last}"
    );
    // Classes come from the model.
    let err = c.cli_fails(&[
        "ci", "create", "--class", "serverr", "--name", "x", "--reason", "typo",
    ]);
    assert!(err.contains("did you mean server?"), "{err}");
}

#[test]
fn an_edited_watched_file_is_unauthorized_drift_with_high_urgency() {
    let c = Collector::start();
    let host = Host::configured(
        &c,
        "bastion-1",
        "10000000000000000000000000000015",
        "watch_files = [\"/etc/ssh/sshd_config\", \"/etc/sudoers.d/*\"]\n",
        |root| {
            std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
            std::fs::create_dir_all(root.join("etc/sudoers.d")).unwrap();
            std::fs::write(root.join("etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();
        },
    );
    let hash = authorized(&c, &host.ci, "files./etc/ssh/sshd_config.sha256");
    assert_eq!(hash.as_str().unwrap().len(), 64);
    // The content itself never leaves the host.
    let shown = c.cli_json(&["ci", "show", &host.ci]);
    assert!(!shown.to_string().contains("PermitRootLogin"));

    std::fs::write(
        host.path().join("etc/ssh/sshd_config"),
        "PermitRootLogin yes\n",
    )
    .unwrap();
    std::fs::write(
        host.path().join("etc/sudoers.d/backdoor"),
        "eve ALL=(ALL) NOPASSWD: ALL\n",
    )
    .unwrap();
    host.report();
    let incidents = incidents(&c);
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(
        incidents[0]["priority"], 2,
        "medium criticality × files urgency high"
    );
    let drifted: Vec<String> = incidents[0]["drifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            c.cli_json(&["drift", "show", d.as_str().unwrap()])["attribute"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        drifted.contains(&"files./etc/ssh/sshd_config.sha256".to_string()),
        "{drifted:?}"
    );
    assert!(
        drifted.contains(&"files./etc/sudoers.d/backdoor.sha256".to_string()),
        "{drifted:?}"
    );
}

#[test]
fn a_bios_change_on_a_critical_server_is_priority_one() {
    let c = Collector::start();
    let db = Host::with(&c, "db-1", "10000000000000000000000000000002", |root| {
        set_dmi(
            root,
            &[("sys_vendor", "Dell Inc."), ("bios_version", "2.19.1")],
        )
    });
    c.cli_json(&[
        "ci",
        "edit",
        &db.ci,
        "--set",
        "criticality=high",
        "--set",
        "owner=dba-team",
        "--reason",
        "holds the billing database",
    ]);
    set_dmi(db.path(), &[("bios_version", "2.21.0")]);
    db.report();
    let incidents = incidents(&c);
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0]["priority"], 1,
        "high criticality × hardware urgency high"
    );
    assert!(incidents[0]["title"]
        .as_str()
        .unwrap()
        .contains("hardware.bios.version"));
    // The edit is in the CI's history and the audit trail, with who and why.
    let history = c.cli_json(&["ci", "history", &db.ci]);
    let edit = history
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["why"]["kind"] == "manual")
        .expect("the edit is in the history");
    assert_eq!(edit["why"]["reason"], "holds the billing database");
    assert_eq!(edit["actor"]["name"], "admin");
    assert!(edit["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|ch| ch["field"] == "criticality" && ch["old"] == "medium" && ch["new"] == "high"));
    let trail = c.cli_json(&["audit", "trail"]);
    assert!(trail
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["action"] == "ci.edit" && t["target"] == db.ci.as_str()));
}

#[test]
fn an_approved_rfc_in_its_window_updates_the_cmdb_and_is_implemented() {
    let c = Collector::start();
    let web = Host::new(&c, "web-2", "10000000000000000000000000000003");
    let rfc = approved_rfc(&c, &web.ci, "packages.adduser: 3.13*", "-1m", "+1h");
    let schedule = c.cli_json(&["rfc", "forward-schedule"]);
    assert_eq!(schedule[0]["id"], rfc.as_str());

    set_package(web.path(), "adduser", Some("3.137"));
    web.report();
    assert!(incidents(&c).is_empty());
    assert_eq!(authorized(&c, &web.ci, "packages.adduser"), "3.137");
    let shown = c.cli_json(&["rfc", "show", &rfc]);
    assert_eq!(shown["status"], "implemented");
    assert_eq!(shown["evidence"][0]["attribute"], "packages.adduser");
    assert_eq!(shown["evidence"][0]["old"], "3.134");
    assert_eq!(shown["evidence"][0]["new"], "3.137");
    // History says why, and the CMDB as of before the change says 3.134.
    let history = c.cli_json(&["ci", "history", &web.ci]);
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["why"]["kind"], "rfc");
    assert_eq!(last["why"]["rfc"], rfc.as_str());
    let registered_at = history[0]["at_ms"].as_i64().unwrap();
    let before = c.cli_json(&[
        "ci",
        "show",
        &web.ci,
        "--as-of",
        &fathom_tests::rfc3339(registered_at),
    ]);
    assert_eq!(before["packages.adduser"], "3.134");
    // Review and close.
    c.cli_json(&[
        "rfc",
        "review",
        &rfc,
        "--outcome",
        "successful",
        "--comment",
        "fine",
    ]);
    let closed = c.cli_json(&["rfc", "close", &rfc]);
    assert_eq!(closed["status"], "closed");
    let stats = c.cli_json(&["rfc", "stats"]);
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["by_status"]["closed"], 1);
    assert_eq!(stats["success_pct"], 100.0);
    assert_eq!(stats["unauthorized"], 0);
}

#[test]
fn an_upgrade_outside_the_window_is_unauthorized() {
    let c = Collector::start();
    let web = Host::new(&c, "web-3", "10000000000000000000000000000004");
    let rfc = approved_rfc(&c, &web.ci, "packages.adduser: 3.13*", "+1h", "+2h");
    set_package(web.path(), "adduser", Some("3.137"));
    web.report();
    let incidents = incidents(&c);
    assert_eq!(incidents.len(), 1);
    let drift = c.cli_json(&["drift", "show", incidents[0]["drifts"][0].as_str().unwrap()]);
    let why: Vec<String> = drift["decision"]["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert!(
        why.iter()
            .any(|l| l.contains(&rfc) && l.contains("window") && l.contains("does not contain")),
        "{why:#?}"
    );
    assert_eq!(c.cli_json(&["rfc", "show", &rfc])["status"], "scheduled");
    // A second RFC on the same CI in an overlapping window: assessment says so.
    let second = c.cli_json(&[
        "rfc",
        "raise",
        "--title",
        "Kernel update",
        "--target",
        &web.ci,
        "--start",
        "+90m",
        "--end",
        "+3h",
    ]);
    let assessed = c.cli_json(&["rfc", "assess", second["id"].as_str().unwrap()]);
    let conflicts = assessed["assessment"]["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:#?}");
    assert!(conflicts[0].as_str().unwrap().starts_with(&rfc));
}

#[test]
fn retroactive_approval_resolves_the_incident() {
    let c = Collector::start();
    let web = Host::new(&c, "web-4", "10000000000000000000000000000005");
    set_package(web.path(), "adduser", Some("3.137"));
    web.report();
    let incident = incidents(&c).remove(0);
    let missing = incident["rfcs"][0].as_str().unwrap();
    let approved = c.cli_json(&["rfc", "approve", missing, "--comment", "hotfix, accepted"]);
    assert_eq!(approved["status"], "implemented");
    let resolved = c.cli_json(&["incident", "show", incident["id"].as_str().unwrap()]);
    assert_eq!(resolved["status"], "resolved");
    assert!(resolved["resolution"]
        .as_str()
        .unwrap()
        .contains("retroactively approved"));
    assert_eq!(authorized(&c, &web.ci, "packages.adduser"), "3.137");
    web.report();
    assert_eq!(incidents(&c).len(), 1, "nothing new once the CMDB agrees");
}

#[test]
fn rejection_then_revert_resolves_the_incident_by_itself() {
    let c = Collector::start();
    let web = Host::new(&c, "web-5", "10000000000000000000000000000006");
    set_package(web.path(), "adduser", None);
    web.report();
    let incident = incidents(&c).remove(0);
    let id = incident["id"].as_str().unwrap().to_owned();
    let missing = c.cli_json(&["rfc", "show", incident["rfcs"][0].as_str().unwrap()]);
    assert_eq!(missing["specs"][0], "packages.adduser: absent");
    let rejected = c.cli_json(&[
        "rfc",
        "reject",
        missing["id"].as_str().unwrap(),
        "--comment",
        "reinstall it",
    ]);
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(c.cli_json(&["incident", "show", &id])["status"], "new");

    // Someone reinstalls the package.
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../agent/tests/fixtures/dpkg/status"),
        web.path().join("var/lib/dpkg/status"),
    )
    .unwrap();
    web.report();
    let resolved = c.cli_json(&["incident", "show", &id]);
    assert_eq!(resolved["status"], "resolved");
    assert!(
        resolved["resolution"]
            .as_str()
            .unwrap()
            .contains("reverted"),
        "{resolved}"
    );
    assert_eq!(
        c.cli_json(&["drift", "show", incident["drifts"][0].as_str().unwrap()])["status"],
        "reverted"
    );
}

#[test]
fn a_standard_change_rule_authorizes_without_an_rfc() {
    let c = Collector::start_with_policy(
        r#"
        [[standard_changes]]
        name = "debian-security-updates"
        class = "server"
        attribute = "packages.*"
        value = "*+deb*u*"
        kinds = ["modified"]
        window = { days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start = "00:00", end = "24:00" }
        "#,
    );
    let web = Host::new(&c, "web-6", "10000000000000000000000000000007");
    set_package(web.path(), "base-files", Some("12.4+deb12u12"));
    web.report();
    assert!(incidents(&c).is_empty());
    assert_eq!(
        authorized(&c, &web.ci, "packages.base-files"),
        "12.4+deb12u12"
    );
    let drift = c.cli_json(&["drift", "list"]);
    assert_eq!(drift.as_array().unwrap().len(), 1);
    assert_eq!(drift[0]["status"], "authorized");
    assert_eq!(
        drift[0]["decision"]["verdict"]["authority"]["name"],
        "debian-security-updates"
    );
    // Not a security update: the rule does not cover it.
    set_package(web.path(), "adduser", Some("3.137"));
    web.report();
    assert_eq!(incidents(&c).len(), 1);
}

#[test]
fn a_flapping_value_raises_one_incident() {
    let c = Collector::start();
    let web = Host::new(&c, "web-7", "10000000000000000000000000000008");
    for round in 0..4 {
        let version = if round % 2 == 0 { "3.137" } else { "3.134" };
        set_package(web.path(), "adduser", Some(version));
        web.report();
    }
    let incidents = incidents(&c);
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0]["reopened"], 1);
    let drift = c.cli_json(&["drift", "show", incidents[0]["drifts"][0].as_str().unwrap()]);
    assert_eq!(drift["flips"], 1);
    assert_eq!(drift["observation_count"], 4);
}

#[test]
fn cloned_dmi_uuids_go_to_the_review_queue_not_a_merge() {
    let c = Collector::start();
    let uuid = "4c4c4544-0042-3510-8051-b4c04f4e4b32";
    let clone = |root: &std::path::Path| set_dmi(root, &[("product_uuid", uuid)]);
    let a = Host::with(&c, "vm-a", "20000000000000000000000000000001", clone);
    let b = Host::with(&c, "vm-b", "20000000000000000000000000000002", clone);
    assert_ne!(a.ci, b.ci, "two CIs, not one");
    let reviews = c.cli_json(&["ci", "review", "list", "--open"]);
    let reviews = reviews.as_array().unwrap();
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    assert_eq!(reviews[0]["kind"], "possible_duplicate");
    assert_eq!(reviews[0]["ci"], b.ci.as_str());
    assert_eq!(reviews[0]["existing"], a.ci.as_str());
    let reason = reviews[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("same dmi_uuid") && reason.contains("machine_id"),
        "{reason}"
    );
    // They are clones, but distinct hosts: keep them apart.
    let id = reviews[0]["id"].as_str().unwrap();
    c.cli_json(&[
        "ci",
        "review",
        "dismiss",
        id,
        "--note",
        "cloned from one template",
    ]);
    assert!(c
        .cli_json(&["ci", "review", "list", "--open"])
        .as_array()
        .unwrap()
        .is_empty());
    // Both keep reporting to their own CI.
    b.report();
    assert_eq!(c.cis().len(), 2);
}

#[test]
fn a_rebuilt_host_can_be_merged_into_its_old_ci() {
    let c = Collector::start();
    let uuid = |root: &std::path::Path| {
        set_dmi(
            root,
            &[("product_uuid", "4c4c4544-0042-3510-8051-b4c04f4e4b33")],
        )
    };
    let old = Host::with(&c, "app-1", "30000000000000000000000000000001", uuid);
    // Reinstalled: new machine-id, new agent key.
    let new = Host::with(&c, "app-1", "30000000000000000000000000000002", uuid);
    assert_ne!(old.ci, new.ci);
    let merged = c.cli_json(&[
        "ci",
        "merge",
        &old.ci,
        &new.ci,
        "--reason",
        "app-1 rebuilt on the same hardware",
    ]);
    assert_eq!(merged["agents"].as_array().unwrap().len(), 2);
    let gone = c.cli_json(&["ci", "show", &new.ci]);
    assert_eq!(gone["ci"]["merged_into"], old.ci.as_str());
    // Retired, pointing at the survivor, and no longer listed as live.
    assert_eq!(gone["ci"]["status"], "retired");
    let live: Vec<Value> = c.cis();
    assert!(live.iter().all(|v| v["id"] != new.ci.as_str()), "{live:#?}");
    let all = c.cli_json(&["ci", "list", "--all"]);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["id"] == new.ci.as_str()));
    // The rebuilt host's reports now land on the old CI.
    new.report();
    let agents = c.agents();
    assert!(
        agents.iter().all(|a| a["ci_id"] == old.ci.as_str()),
        "{agents:#?}"
    );
    assert!(c
        .cli_json(&["ci", "review", "list", "--open"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn only_change_managers_decide_rfcs() {
    let c = Collector::start();
    let web = Host::new(&c, "web-8", "10000000000000000000000000000009");
    let token = |role: &str| {
        c.cli_json(&["operator-token", "create", "--name", role, "--role", role])["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (viewer, config_manager, change_manager) = (
        token("viewer"),
        token("configuration-manager"),
        token("change-manager"),
    );
    let fp = c.fingerprint.to_string();
    let raise = [
        "rfc",
        "raise",
        "--title",
        "t",
        "--target",
        &web.ci,
        "--spec",
        "packages.adduser: 3.137",
        "--json",
    ];
    let out = c.cli_as(&viewer, &fp, &raise);
    assert!(!out.status.success());
    // A configuration manager raises it; only a change manager approves it.
    let out = c.cli_as(&config_manager, &fp, &raise);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rfc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = rfc["id"].as_str().unwrap();
    for refused in [&viewer, &config_manager] {
        let out = c.cli_as(refused, &fp, &["rfc", "approve", id]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("403") && err.contains("change_manager or admin"),
            "{err}"
        );
    }
    assert_eq!(c.cli_json(&["rfc", "show", id])["status"], "new");
    let out = c.cli_as(
        &change_manager,
        &fp,
        &["rfc", "approve", id, "--comment", "ok"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = c.cli_json(&["rfc", "show", id]);
    assert_eq!(shown["status"], "approved");
    assert_eq!(shown["decision"]["by"]["name"], "change-manager");
    assert_eq!(shown["decision"]["by"]["role"], "change_manager");
    // A viewer cannot edit CIs either.
    let out = c.cli_as(
        &viewer,
        &fp,
        &["ci", "edit", &web.ci, "--set", "owner=x", "--reason", "r"],
    );
    assert!(!out.status.success());
}

/// A request as the receiver saw it: lower-cased headers, and the body.
type Seen = (Vec<(String, String)>, Vec<u8>);

/// A minimal HTTP receiver for webhooks: records each request's headers
/// and body, and answers 500 to the first `fail_first` requests.
struct Receiver {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            let mut failures_left = fail_first;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    let (k, v) = l.split_once(':').unwrap();
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let status = if failures_left > 0 {
                    failures_left -= 1;
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                record.lock().unwrap().push((headers, body));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, seen }
    }
}

/// The receiver `docs/webhooks.md` gives, run as written: it accepts what
/// a real collector sends and refuses a forgery and a replay.
#[test]
fn the_documented_webhook_receiver_verifies_real_events() {
    let doc = include_str!("../../docs/webhooks.md");
    let script = fathom_tests::fenced_blocks(doc, "python")
        .pop()
        .expect("docs/webhooks.md has a python receiver");
    let dir = tempfile::tempdir().unwrap();
    let (script_path, secret_path, out_path) = (
        dir.path().join("receiver.py"),
        dir.path().join("webhook.secret"),
        dir.path().join("events.jsonl"),
    );
    std::fs::write(&script_path, script).unwrap();
    let secret = "the-documented-secret-123";
    std::fs::write(&secret_path, format!("{secret}\n")).unwrap();
    let port = fathom_tests::free_port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _python = Kill(
        std::process::Command::new("python3")
            .arg(&script_path)
            .arg(&secret_path)
            .arg(port.to_string())
            .arg(&out_path)
            .spawn()
            .unwrap(),
    );
    fathom_tests::wait_for(
        "the receiver to listen",
        std::time::Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
    );
    let post = |signature: &str, body: &str| -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /hooks HTTP/1.0\r\nContent-Type: application/json\r\nX-Fathom-Delivery: 999\r\n\
             X-Fathom-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    };
    let body = r#"{"event":"incident.created","incident":{"id":"INC-999"}}"#;
    let now = fathom_tests::now_ms() / 1000;
    let signed = |t: i64, key: &str| {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        format!("t={t},sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    assert!(post(&signed(now, "not-the-secret"), body).contains("401"));
    assert!(
        post(&signed(now - 3_600, secret), body).contains("401"),
        "a replay"
    );

    let c = Collector::start_with(&format!(
        "[webhook]\nurl = \"http://127.0.0.1:{port}/hooks/fathom\"\nsecret_file = \"{}\"\n",
        secret_path.display()
    ));
    let web = Host::new(&c, "web-31", "10000000000000000000000000000031");
    set_package(web.path(), "adduser", Some("3.137"));
    web.report();
    let incident = incidents(&c).remove(0);
    let accepted = fathom_tests::wait_for(
        "the documented receiver to accept the event",
        std::time::Duration::from_secs(20),
        || {
            let text = std::fs::read_to_string(&out_path).ok()?;
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|e| e["incident"]["id"] == incident["id"])
        },
    );
    assert_eq!(accepted["event"], "incident.created");
    assert!(!std::fs::read_to_string(&out_path)
        .unwrap()
        .contains("INC-999"));
}

#[test]
fn incidents_reach_a_webhook_signed_and_nothing_is_lost_when_it_fails() {
    let receiver = Receiver::start(1);
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = "a-shared-secret-of-some-length";
    std::fs::write(
        secret_dir.path().join("webhook.secret"),
        format!("{secret}\n"),
    )
    .unwrap();
    let c = Collector::start_with(&format!(
        "[webhook]\nurl = \"http://127.0.0.1:{}/hooks/fathom\"\nsecret_file = \"{}\"\n",
        receiver.port,
        secret_dir.path().join("webhook.secret").display()
    ));
    let web = Host::new(&c, "web-9", "10000000000000000000000000000010");
    set_package(web.path(), "adduser", Some("3.137"));
    web.report();
    let incident = incidents(&c).remove(0);

    // The first attempt gets a 500; the deliverer retries the same event.
    let seen = fathom_tests::wait_for(
        "the webhook to be delivered",
        std::time::Duration::from_secs(20),
        || {
            let seen = receiver.seen.lock().unwrap().clone();
            (seen.len() >= 2).then_some(seen)
        },
    );
    let header = |req: &Seen, name: &str| {
        req.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        header(&seen[0], "x-fathom-delivery"),
        header(&seen[1], "x-fathom-delivery")
    );
    assert_eq!(seen[0].1, seen[1].1, "the same event, again");
    let (_, body) = &seen[1];
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["event"], "incident.created");
    assert_eq!(event["incident"]["id"], incident["id"]);
    assert_eq!(header(&seen[1], "x-fathom-event"), "incident.created");

    // The receiver can check the signature with the shared secret.
    use hmac::Mac;
    let signature = header(&seen[1], "x-fathom-signature");
    let (t, hex_mac) = signature
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",sha256="))
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(hex_mac).unwrap())
        .expect("the signature verifies");
    let age = fathom_tests::now_ms() / 1000 - t.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "t is the send time");

    // An update (retroactive approval resolves it) follows as incident.updated.
    c.cli_json(&["rfc", "approve", incident["rfcs"][0].as_str().unwrap()]);
    let updated = fathom_tests::wait_for(
        "the update event",
        std::time::Duration::from_secs(20),
        || {
            receiver.seen.lock().unwrap().iter().find_map(|(_, body)| {
                let e: Value = serde_json::from_slice(body).ok()?;
                (e["event"] == "incident.updated" && e["incident"]["status"] == "resolved")
                    .then_some(e)
            })
        },
    );
    assert_eq!(updated["incident"]["id"], incident["id"]);
}

#[test]
fn a_baseline_reports_what_changed_since_it_was_taken() {
    let c = Collector::start();
    let web = Host::new(&c, "web-10", "10000000000000000000000000000011");
    let taken = c.cli_json(&[
        "baseline",
        "take",
        "before-release-42",
        "--target",
        "class=server",
        "--description",
        "before release 42",
    ]);
    assert_eq!(taken["ci_count"], 1);
    let again = c.cli_fails(&["baseline", "take", "before-release-42"]);
    assert!(again.contains("never overwritten"), "{again}");

    approved_rfc(&c, &web.ci, "packages.adduser: 3.137", "-1m", "+1h");
    set_package(web.path(), "adduser", Some("3.137"));
    web.report();
    let diff = c.cli_json(&["baseline", "diff", "before-release-42"]);
    assert_eq!(diff["to"], "current CMDB");
    assert_eq!(diff["changed"].as_array().unwrap().len(), 1);
    let changes = diff["changed"][0]["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|ch| ch["field"] == "packages.adduser"
            && ch["old"] == "3.134"
            && ch["new"] == "3.137"),
        "{changes:#?}"
    );
    c.cli_json(&["baseline", "take", "after-release-42"]);
    let between = c.cli_json(&[
        "baseline",
        "diff",
        "before-release-42",
        "--against",
        "after-release-42",
    ]);
    assert_eq!(between["changed"][0]["id"], web.ci.as_str());
    let human = text(&c, &["baseline", "diff", "before-release-42"]);
    assert!(human.contains("packages.adduser: 3.134 → 3.137"), "{human}");
}

#[test]
fn the_audit_report_measures_accuracy_and_draws_the_sample() {
    let c = Collector::start();
    let good = Host::new(&c, "web-11", "10000000000000000000000000000012");
    let drifting = Host::new(&c, "web-12", "10000000000000000000000000000013");
    let manual = c.cli_json(&[
        "ci",
        "create",
        "--class",
        "server",
        "--name",
        "legacy-1",
        "--location",
        "DC1 rack 4",
        "--reason",
        "bought before agents existed",
    ]);
    set_package(drifting.path(), "adduser", Some("3.137"));
    drifting.report();

    let report = c.cli_json(&["audit", "report", "--seed", "7"]);
    assert_eq!(report["total_cis"], 3);
    assert_eq!(report["compared"], 2);
    assert_eq!(report["matching"], 1);
    assert_eq!(report["accuracy_pct"], 50.0);
    assert_eq!(report["mismatches_by_section"]["packages"], 1);
    assert_eq!(report["registered_never_discovered"][0], manual["id"]);
    assert_eq!(
        report["sample_sizes"]["server"],
        serde_json::json!([3, 2]),
        "50% of 3, rounded up"
    );
    let sampled: Vec<&Value> = report["cis"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["in_sample"] == true)
        .collect();
    assert_eq!(sampled.len(), 2);
    // The same seed draws the same sample.
    assert_eq!(
        c.cli_json(&["audit", "report", "--seed", "7"])["cis"],
        report["cis"]
    );
    let line = report["cis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == drifting.ci.as_str())
        .unwrap()
        .clone();
    assert_eq!(line["mismatches"][0], "packages.adduser");
    let _ = good;

    // Accuracy per attribute: one of the drifting host's attributes is off.
    let attributes = &report["attributes"];
    let (compared, matching) = (
        attributes["compared"].as_u64().unwrap(),
        attributes["matching"].as_u64().unwrap(),
    );
    assert!(compared > 20 && matching == compared - 1, "{attributes}");
    let packages = &report["attributes_by_section"]["packages"];
    assert_eq!(
        packages["compared"].as_u64().unwrap() - packages["matching"].as_u64().unwrap(),
        1
    );
    assert_eq!(
        line["attributes_compared"].as_u64().unwrap()
            - line["attributes_matching"].as_u64().unwrap(),
        1
    );
    // A rack kept by hand is not verifiable by discovery; a manual server is
    // (it should be discovered).
    let rack = c.cli_json(&[
        "ci", "create", "--class", "rack", "--name", "R1", "--reason", "cabled",
    ]);
    let report = c.cli_json(&["audit", "report", "--seed", "7"]);
    assert_eq!(
        report["not_verifiable_by_discovery"],
        serde_json::json!([rack["id"]])
    );

    let csv = text(&c, &["audit", "report", "--seed", "7", "--format", "csv"]);
    let (per_ci, summary) = csv.split_once("\n\n").expect("a summary after the CIs");
    let mut lines = per_ci.lines();
    assert_eq!(
        lines.next(),
        Some("ci,class,name,registered,discovered,verifiable,stale,consistent,attributes_compared,attributes_matching,accuracy_pct,mismatches,in_sample")
    );
    assert_eq!(lines.count(), 4);
    let mut summary = summary.lines();
    assert_eq!(
        summary.next(),
        Some("scope,name,compared,matching,accuracy_pct")
    );
    assert_eq!(summary.next(), Some("cis,all,2,1,50.00"));
    assert!(summary.any(|l| l.starts_with("section,packages,")));
    let table = text(&c, &["audit", "report", "--seed", "7"]);
    assert!(table.contains("accuracy      50.0%"), "{table}");
    assert!(table.contains("accuracy by attribute section"), "{table}");

    // What was verified of the sample, by whom and with what result; a
    // deficiency with an owner and a due date, then closed.
    let sampled_server = sampled.iter().find(|c| c["class"] == "server").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let recorded = c.cli_json(&[
        "audit",
        "record",
        "--seed",
        "7",
        "--note",
        "Q4 audit",
        "--deficiency",
        &format!(
            "{}|adduser upgraded without an RFC|raise the RFC or revert|carol|2026-12-31",
            drifting.ci
        ),
        "--verified",
        &format!("{sampled_server}|matches|serial on the chassis label|dave"),
    ]);
    assert_eq!(recorded["accuracy_pct"], 50.0);
    assert_eq!(recorded["deficiencies"][0]["ci"], drifting.ci.as_str());
    assert_eq!(recorded["deficiencies"][0]["owner"], "carol");
    assert!(recorded["deficiencies"][0]["due_ms"].as_i64().is_some());
    assert_eq!(recorded["verifications"][0]["ci"], sampled_server.as_str());
    assert_eq!(recorded["verifications"][0]["result"], "matches");
    assert_eq!(recorded["verifications"][0]["by"], "dave");
    assert_eq!(c.cli_json(&["audit", "list"]).as_array().unwrap().len(), 1);
    let audit = recorded["id"].as_str().unwrap();
    let open = c.cli_json(&["audit", "deficiencies", "--open"]);
    assert_eq!(open.as_array().unwrap().len(), 1);
    c.cli_json(&[
        "audit",
        "close-deficiency",
        audit,
        "1",
        "--note",
        "RFC-9 raised",
    ]);
    assert!(c
        .cli_json(&["audit", "deficiencies", "--open"])
        .as_array()
        .unwrap()
        .is_empty());
    let closed = c.cli_json(&["audit", "deficiencies"]);
    assert_eq!(closed[0]["closed"]["note"], "RFC-9 raised");
    // Only sampled CIs are verified.
    let not_sampled = report["cis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["in_sample"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = c.cli_fails(&[
        "audit",
        "record",
        "--seed",
        "7",
        "--verified",
        &format!("{not_sampled}|matches|label"),
    ]);
    assert!(err.contains("not in the sample"), "{err}");
    let bad = c.cli_fails(&[
        "audit",
        "record",
        "--seed",
        "7",
        "--deficiency",
        "no pipes here",
    ]);
    assert!(
        bad.contains("ci-12|what is wrong|corrective action"),
        "{bad}"
    );
}

#[test]
fn manual_cis_and_relationships_import_export_and_feed_rfc_assessment() {
    let c = Collector::start();
    let web = Host::new(&c, "web-13", "10000000000000000000000000000014");
    let dir = tempfile::tempdir().unwrap();
    let cis = dir.path().join("cis.csv");
    std::fs::write(
        &cis,
        "class,name,owner,criticality,attr:service.sla\n\
         service,shop,e-commerce,high,99.9%\n\
         rack,DC1-R4,facilities,low,\n",
    )
    .unwrap();
    let rels = dir.path().join("relationships.csv");
    std::fs::write(
        &rels,
        "from,kind,to\nshop,depends_on,web-13\nweb-13,part_of,DC1-R4\n",
    )
    .unwrap();
    let args = |dry: bool| {
        let mut a = vec![
            "ci".to_string(),
            "import".into(),
            cis.display().to_string(),
            "--relationships".into(),
            rels.display().to_string(),
            "--reason".into(),
            "initial load".into(),
        ];
        if dry {
            a.push("--dry-run".into());
        }
        a
    };
    let run = |dry: bool| {
        let a = args(dry);
        c.cli_json(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let dry = run(true);
    assert_eq!(dry["created"].as_array().unwrap().len(), 2);
    assert_eq!(c.cis().len(), 1, "a dry run writes nothing");
    let done = run(false);
    assert_eq!(done["created"].as_array().unwrap().len(), 2);
    assert_eq!(done["relationships_added"], 2);
    // Again: everything is already there.
    let again = run(false);
    assert_eq!(again["unchanged"], 2);
    assert_eq!(again["relationships_existing"], 2);

    let shop = c.cis().into_iter().find(|ci| ci["name"] == "shop").unwrap();
    assert_eq!(shop["class"], "service");
    assert_eq!(shop["criticality"], "high");
    assert_eq!(shop["attributes"]["service.sla"], "99.9%");

    // A JSON export imports back as no change at all.
    let export = c.cli(&["ci", "export"]);
    let path = dir.path().join("export.json");
    std::fs::write(&path, &export.stdout).unwrap();
    let round = c.cli_json(&[
        "ci",
        "import",
        path.to_str().unwrap(),
        "--reason",
        "restore test",
    ]);
    assert_eq!(round["unchanged"], 3, "{round}");
    assert_eq!(round["relationships_existing"], 2);
    let csv = text(&c, &["ci", "export", "--format", "csv"]);
    assert!(
        csv.starts_with("id,class,name,description,status,owner,location,criticality,attr:"),
        "{csv}"
    );

    // A file with only some columns changes only those: the rack keeps
    // its owner and the shop its SLA; an empty cell clears, and the dry
    // run lists each field it would change, old → new.
    let shop_id = shop["id"].as_str().unwrap();
    let rack = c
        .cis()
        .into_iter()
        .find(|ci| ci["name"] == "DC1-R4")
        .unwrap();
    let rack_id = rack["id"].as_str().unwrap();
    std::fs::write(
        &cis,
        format!("id,class,name\n{shop_id},service,shop\n{rack_id},rack,DC1-R4\n"),
    )
    .unwrap();
    let import = |extra: &[&str]| {
        let mut a = vec!["ci", "import", cis.to_str().unwrap(), "--reason", "partial"];
        a.extend_from_slice(extra);
        c.cli_json(&a)
    };
    let partial = import(&[]);
    assert_eq!(partial["unchanged"], 2, "{partial}");
    let rack = c
        .cis()
        .into_iter()
        .find(|ci| ci["name"] == "DC1-R4")
        .unwrap();
    assert_eq!(rack["owner"], "facilities");
    std::fs::write(
        &cis,
        format!("id,class,name,owner,location\n{rack_id},rack,DC1-R4,,Hall B\n"),
    )
    .unwrap();
    let dry = import(&["--dry-run"]);
    let changes = dry["changes"].as_array().unwrap();
    let change = |field: &str| changes.iter().find(|ch| ch["field"] == field).cloned();
    assert_eq!(changes.len(), 2, "{dry}");
    assert_eq!(change("owner").unwrap()["old"], "facilities");
    assert_eq!(change("owner").unwrap()["new"], Value::Null);
    assert_eq!(change("location").unwrap()["new"], "Hall B");
    let table = text(
        &c,
        &[
            "ci",
            "import",
            cis.to_str().unwrap(),
            "--reason",
            "partial",
            "--dry-run",
        ],
    );
    assert!(
        table.contains("owner") && table.contains("\"facilities\"") && table.contains("(empty)"),
        "{table}"
    );
    import(&[]);
    let rack = c
        .cis()
        .into_iter()
        .find(|ci| ci["name"] == "DC1-R4")
        .unwrap();
    assert_eq!(
        (rack["owner"].clone(), rack["location"].clone()),
        (Value::Null, "Hall B".into())
    );
    let shop = c.cis().into_iter().find(|ci| ci["name"] == "shop").unwrap();
    assert_eq!(shop["attributes"]["service.sla"], "99.9%");

    // Bad rows are refused whole, naming the row.
    std::fs::write(&cis, "class,name,criticality\nservice,crm,extreme\n").unwrap();
    let err = c.cli_fails(&["ci", "import", cis.to_str().unwrap(), "--reason", "x"]);
    assert!(err.contains("CI 1") && err.contains("criticality"), "{err}");
    std::fs::write(&cis, "class,name,colour\nservice,crm,red\n").unwrap();
    let err = c.cli_fails(&["ci", "import", cis.to_str().unwrap(), "--reason", "x"]);
    assert!(err.contains("unknown column \"colour\""), "{err}");

    // An RFC on the web server finds what depends on it.
    let rfc = c.cli_json(&[
        "rfc",
        "raise",
        "--title",
        "Reboot web-13",
        "--target",
        &web.ci,
        "--type",
        "patch",
        "--impact",
        "major",
    ]);
    let id = rfc["id"].as_str().unwrap();
    let err = c.cli_fails(&["rfc", "approve", id]);
    assert!(err.contains("must be assessed first"), "{err}");
    let assessed = c.cli_json(&["rfc", "assess", id, "--risk", "high"]);
    let dependents = assessed["assessment"]["dependents"].as_array().unwrap();
    assert_eq!(dependents.len(), 1, "{dependents:#?}");
    assert_eq!(dependents[0]["ci"], shop["id"]);
    assert_eq!(dependents[0]["name"], "shop");

    // Retiring the rack through an RFC: the implementer applies the status.
    let rack = c
        .cis()
        .into_iter()
        .find(|ci| ci["name"] == "DC1-R4")
        .unwrap();
    let rack_id = rack["id"].as_str().unwrap();
    let before_retire = fathom_tests::now_ms();
    let retire = c.cli_json(&[
        "rfc",
        "raise",
        "--title",
        "Retire rack R4",
        "--target",
        rack_id,
        "--spec",
        "status: retired",
        "--type",
        "decommission",
    ]);
    let retire_id = retire["id"].as_str().unwrap();
    c.cli_json(&[
        "rfc", "approve", retire_id, "--start", "now", "--end", "+1h",
    ]);
    let implemented = c.cli_json(&["rfc", "implement", retire_id, "--comment", "rack emptied"]);
    assert_eq!(implemented["status"], "implemented");
    assert_eq!(implemented["evidence"][0]["attribute"], "status");
    assert_eq!(implemented["evidence"][0]["new"], "retired");
    assert_eq!(
        c.cli_json(&["ci", "show", rack_id])["ci"]["status"],
        "retired"
    );
    // The whole CMDB as it was before: the rack still in use.
    let then = c.cli_json(&[
        "ci",
        "list",
        "--as-of",
        &fathom_tests::rfc3339(before_retire),
    ]);
    assert_eq!(then[rack_id]["status"], "in_use");
    assert_eq!(then.as_object().unwrap().len(), 3);

    // People's spellings: a CI by its unique name or its id in any case,
    // relationship kinds with - or _, each printed one way.
    let shop_id = shop["id"].as_str().unwrap();
    let upper = rack_id.to_uppercase();
    let related = c.cli_json(&["ci", "relate", "shop", "runs-on", &upper, "--reason", "a"]);
    assert_eq!(related["from"], shop_id, "{related}");
    assert_eq!(related["kind"], "runs_on");
    assert_eq!(related["to"], rack_id);
    let gone = c.cli_json(&[
        "ci", "unrelate", shop_id, "runs_on", "DC1-R4", "--reason", "b",
    ]);
    assert_eq!(gone["kind"], "runs_on", "{gone}");
    let help = text(&c, &["ci", "relate", "--help"]);
    assert!(
        help.contains("runs_on") && !help.contains("runs-on"),
        "{help}"
    );
    let err = c.cli_fails(&["ci", "show", "nothing-by-this-name"]);
    assert!(err.contains("no CI is named"), "{err}");
}

/// A running agent daemon, killed when dropped.
struct Daemon(std::process::Child);

impl Daemon {
    /// Starts `fathom-agent run` for `host`, logging to `agent.log` in its
    /// directory, and waits for its first reports (the start-up inventory
    /// and metrics, on top of the `run --once` that enrolled it).
    fn start(c: &Collector, host: &Host) -> (Daemon, std::path::PathBuf) {
        let log_path = host.agent.dir.path().join("agent.log");
        let daemon = Daemon(
            host.agent
                .command(&["run"])
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&log_path).unwrap())
                .spawn()
                .unwrap(),
        );
        let agent_id = host.agent.agent_id();
        fathom_tests::wait_for(
            "the daemon's first reports",
            std::time::Duration::from_secs(20),
            || {
                let received = c.agents().into_iter().find(|a| a["agent_id"] == agent_id)?
                    ["reports_received"]
                    .as_u64()?;
                (received >= 4).then_some(())
            },
        );
        (daemon, log_path)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_change_on_the_host_reaches_the_collector_within_seconds_without_waiting_for_the_schedule() {
    let c = Collector::start();
    // Enrolled and registered by one report; then a daemon whose schedule
    // would not inventory again for an hour.
    let host = Host::configured(
        &c,
        "web-14",
        "10000000000000000000000000000016",
        "watch_files = [\"/etc/ssh/sshd_config\"]\ninventory_interval_secs = 3600\nmetrics_interval_secs = 3600\nchange_debounce_ms = 300\n",
        |root| {
            std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
            std::fs::write(root.join("etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();
        },
    );
    let (_daemon, log_path) = Daemon::start(&c, &host);
    // The daemon's first inventory (at start) is the same host: no incident.
    assert!(incidents(&c).is_empty());

    // Someone installs a package with dpkg.
    fathom_tests::dpkg_install(host.path(), "fathom-probe", "1.0-1");
    pushed_incident(&c, "the pushed change", "packages.fathom-probe");
    // And edits a watched file.
    std::fs::write(
        host.path().join("etc/ssh/sshd_config"),
        "PermitRootLogin yes\n",
    )
    .unwrap();
    let second = fathom_tests::wait_for(
        "the second pushed change",
        std::time::Duration::from_secs(20),
        || incidents(&c).into_iter().nth(1),
    );
    assert!(
        second["title"].as_str().unwrap().contains("sshd_config"),
        "{second}"
    );
    // And removes the package again: before anyone decided on the first
    // incident, the revert cancels its missing-RFC draft.
    fathom_tests::dpkg_remove(host.path(), "fathom-probe");
    fathom_tests::wait_for(
        "the pushed removal",
        std::time::Duration::from_secs(20),
        || {
            let packages = c.cli_json(&["drift", "list"]);
            packages
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["attribute"] == "packages.fathom-probe" && d["status"] != "open")
                .then_some(())
        },
    );
    // Both went out as deltas of the one section each changed.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let deltas: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Change on the host; delta pushed"))
        .collect();
    // Packages go one by one: the install and the removal of one package.
    assert_eq!(deltas.len(), 3, "{log}");
    assert!(
        deltas[0].contains("sections=[] packages_upserted=1 packages_removed=0"),
        "{log}"
    );
    assert!(
        deltas[1].contains(r#"sections=["files"] packages_upserted=0"#),
        "{log}"
    );
    assert!(
        deltas[2].contains("sections=[] packages_upserted=0 packages_removed=1"),
        "{log}"
    );
}

/// Waits for the first incident a pushed change raises, and checks it is
/// about `attribute`.
fn pushed_incident(c: &Collector, what: &str, attribute: &str) {
    let incident = fathom_tests::wait_for(what, std::time::Duration::from_secs(20), || {
        incidents(c).into_iter().next()
    });
    assert!(
        incident["title"].as_str().unwrap().contains(attribute),
        "{incident}"
    );
}

/// Copies a stopped collector's data directory.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_missed_delta_makes_the_collector_ask_for_a_full_inventory() {
    let mut c = Collector::start();
    let host = Host::configured(
        &c,
        "web-15",
        "10000000000000000000000000000018",
        "watch_files = [\"/etc/ssh/sshd_config\"]\ninventory_interval_secs = 3600\nmetrics_interval_secs = 3600\nchange_debounce_ms = 300\nmax_backoff_secs = 1\n",
        |root| {
            std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
            std::fs::write(root.join("etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();
        },
    );
    let (_daemon, log_path) = Daemon::start(&c, &host);
    // Last night's backup: the CMDB as of the daemon's first inventory.
    let backup = tempfile::tempdir().unwrap();
    c.kill();
    copy_dir(&c.data_dir(), backup.path());
    c.restart();

    // A delta reaches the collector, which is then restored from the backup:
    // the delta is lost with everything after the backup.
    set_package(host.path(), "adduser", Some("3.137"));
    fathom_tests::wait_for(
        "the first delta",
        std::time::Duration::from_secs(20),
        || incidents(&c).into_iter().next(),
    );
    c.kill();
    std::fs::remove_dir_all(c.data_dir()).unwrap();
    copy_dir(backup.path(), &c.data_dir());
    c.restart();
    assert!(incidents(&c).is_empty());

    // The next delta builds on the lost one. The collector cannot apply it,
    // says so, and the full inventory that follows carries both changes.
    std::fs::write(
        host.path().join("etc/ssh/sshd_config"),
        "PermitRootLogin yes\n",
    )
    .unwrap();
    let drifted = fathom_tests::wait_for(
        "both changes, from a full inventory",
        std::time::Duration::from_secs(30),
        || {
            let mut drifted: Vec<String> = c
                .cli_json(&["drift", "list"])
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["attribute"].as_str().unwrap().to_owned())
                .collect();
            drifted.sort();
            (drifted.len() >= 2).then_some(drifted)
        },
    );
    assert_eq!(
        drifted,
        ["files./etc/ssh/sshd_config.sha256", "packages.adduser"],
        "{}",
        c.log()
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("The collector missed an earlier report; a full inventory follows"),
        "{log}"
    );
    assert!(
        log.contains("Full inventory taken at the collector's request"),
        "{log}"
    );
}

#[test]
fn a_user_added_to_sudo_is_unauthorized_drift() {
    let c = Collector::start();
    let host = Host::with(&c, "db-9", "10000000000000000000000000000017", |root| {
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nsudo:x:27:alice\n").unwrap();
        std::fs::write(
            root.join("etc/shadow"),
            "root:$6$secret-hash:19000:0:99999:7:::\n",
        )
        .unwrap();
    });
    assert_eq!(authorized(&c, &host.ci, "groups.sudo.members"), "alice");
    assert_eq!(authorized(&c, &host.ci, "users.alice.shell"), "/bin/bash");
    std::fs::write(
        host.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\neve:x:1001:1001::/home/eve:/bin/bash\n",
    )
    .unwrap();
    std::fs::write(
        host.path().join("etc/group"),
        "root:x:0:\nsudo:x:27:alice,eve\n",
    )
    .unwrap();
    host.report();
    let incidents = incidents(&c);
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["priority"], 2, "accounts are high urgency");
    let symptom = incidents[0]["symptom"].as_str().unwrap();
    assert!(
        symptom.contains("groups.sudo.members") && symptom.contains("alice,eve"),
        "{symptom}"
    );
    assert!(symptom.contains("users.eve.uid"), "{symptom}");
    // The shadow file is never read: no hash reaches the collector.
    let shown = c.cli_json(&["ci", "show", &host.ci]);
    assert!(!shown.to_string().contains("secret-hash"));
}

#[test]
fn a_package_installed_with_rpm_is_pushed_within_seconds() {
    if !fathom_tests::have_rpm() {
        eprintln!("rpm and rpmbuild are not installed; nothing to install with");
        return;
    }
    let c = Collector::start();
    // An RPM host: the fixture's rpm database (made by rpm itself), no dpkg.
    let host = Host::configured(
        &c,
        "rhel-1",
        "10000000000000000000000000000019",
        "inventory_interval_secs = 3600\nmetrics_interval_secs = 3600\nchange_debounce_ms = 300\n",
        |root| {
            std::fs::remove_file(root.join("var/lib/dpkg/status")).unwrap();
            std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
            let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../agent/tests/fixtures/rpm/var/lib/rpm/rpmdb.sqlite");
            std::fs::copy(fixture, root.join("var/lib/rpm/rpmdb.sqlite")).unwrap();
        },
    );
    assert_eq!(
        authorized(&c, &host.ci, "packages.fathom-hello"),
        "2:1.2.3-4.fc39"
    );
    let (_daemon, log_path) = Daemon::start(&c, &host);
    fathom_tests::rpm_install(host.path(), "fathom-probe", "2.0");
    pushed_incident(&c, "the pushed rpm change", "packages.fathom-probe");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("delta pushed") && l.contains("packages_upserted=1")),
        "{log}"
    );
}
