//! Capacity end to end: a real agent's utilization reaches the metric
//! store, and the CLI reads it back.

use std::time::Duration;

use fathom_tests::{fixture_root, wait_for, Agent, Collector};
use serde_json::Value;

use super::terminate;

/// `/proc/meminfo`'s MemTotal in bytes: the oracle for memory figures.
fn mem_total_bytes() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    kib * 1024.0
}

/// A collector with `config`, and an agent daemon reporting every second
/// from a fixture host named `hostname`, enrolled and given its CI.
struct Running {
    collector: Collector,
    agent: Agent,
    daemon: std::process::Child,
    ci: String,
    _root: tempfile::TempDir,
}

fn running(config: &str, hostname: &str, machine_id: &str) -> Running {
    let collector = Collector::start_with(config);
    let root = fixture_root(hostname, machine_id);
    let agent = Agent::new(&collector, root.path(), "metrics_interval_secs = 1\n");
    let token = collector.create_token("1h", 1);
    let daemon = agent.daemon(Some(&token));
    let ci = wait_for("the host's CI", Duration::from_secs(30), || {
        collector
            .cis()
            .first()
            .map(|c| c["id"].as_str().unwrap().to_owned())
    });
    Running {
        collector,
        agent,
        daemon,
        ci,
        _root: root,
    }
}

#[test]
fn a_running_agents_utilisation_reaches_the_metric_store() {
    // Every field bound: what `..` leaves is dropped at once, and the
    // agent's and the host's directories must outlive the daemon.
    let Running {
        collector,
        agent: _agent,
        mut daemon,
        ci,
        _root,
    } = running(
        "[metrics]\nfold_interval_secs = 1\n",
        "metrics-host",
        "44444444444444444444444444444444",
    );
    let series = wait_for(
        "series in the metric store",
        Duration::from_secs(30),
        || {
            let listed = collector.cli_json(&["metrics", "list", &ci]);
            let series = listed["series"].as_array().unwrap().clone();
            let has = |name: &str| series.iter().any(|s| s["name"] == name);
            (has("cpu.utilisation_pct")
                && has("memory.used_pct")
                && has("if.in_bps:lo")
                && has("if.errors_per_s:lo"))
            .then_some(series)
        },
    );
    // A few reports more, for a series over time.
    wait_for("three samples", Duration::from_secs(30), || {
        let shown = collector.cli_json(&[
            "metrics",
            "show",
            &ci,
            "memory.used_pct",
            "--since",
            "-10m",
            "--tier",
            "raw",
        ]);
        (shown["points"].as_array().unwrap().len() >= 3).then_some(())
    });
    terminate(&mut daemon);
    let named = |name: &str| -> &Value { series.iter().find(|s| s["name"] == name).unwrap() };
    // Memory used, against the kernel's own total.
    let used_pct = named("memory.used_pct")["last_value"].as_f64().unwrap();
    let used_bytes = named("memory.used_bytes")["last_value"].as_f64().unwrap();
    assert!((0.0..100.0).contains(&used_pct), "{used_pct}");
    let total = mem_total_bytes();
    assert!(
        ((used_bytes / total * 100.0) - used_pct).abs() < 1.0,
        "{used_bytes} of {total} is not {used_pct}%"
    );
    assert_eq!(named("memory.used_pct")["unit"], "percent");
    assert_eq!(named("if.in_bps:lo")["unit"], "bits_per_second");
    // Loopback never counts an error; the kernel agrees.
    let errors = named("if.errors_per_s:lo");
    assert_eq!(errors["unit"], "per_second");
    let lo_errors = ["rx_errors", "tx_errors"]
        .map(|f| std::fs::read_to_string(format!("/sys/class/net/lo/statistics/{f}")).unwrap());
    if lo_errors.iter().all(|e| e.trim() == "0") {
        assert_eq!(errors["last_value"].as_f64(), Some(0.0), "{errors}");
    }
    assert!(
        series
            .iter()
            .any(|s| s["name"].as_str().unwrap().starts_with("fs.used_pct:")),
        "{series:?}"
    );

    // The raw points, as CSV, one per report.
    let out = collector.cli(&[
        "metrics",
        "show",
        &ci,
        "memory.used_pct",
        "--since",
        "-10m",
        "--tier",
        "raw",
        "--csv",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("time,count,min,mean,max,p95"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert!(rows.len() >= 2, "{text}");
    for r in &rows {
        assert_eq!(r[1], "1", "a raw point is one sample: {r:?}");
        let v: f64 = r[3].parse().unwrap();
        assert!((0.0..100.0).contains(&v), "{r:?}");
    }
    // The same period at the 5-minute tier, rolled up on the fly: the
    // samples are all counted.
    let five = collector.cli_json(&[
        "metrics",
        "show",
        &ci,
        "memory.used_pct",
        "--since",
        "-10m",
        "--tier",
        "5m",
    ]);
    let counted: i64 = five["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_i64().unwrap())
        .sum();
    assert!(counted >= rows.len() as i64, "{five}");
    // The table form has the sparkline and the unit.
    let human = collector.cli(&["metrics", "show", &ci, "memory.used_pct", "--since", "-10m"]);
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(
        human.contains("memory.used_pct on CI") && human.contains('%'),
        "{human}"
    );

    // Capacity alerts are checked every roll-up (5 minutes): none yet.
    let alerts = collector.cli_json(&["metrics", "alerts"]);
    assert_eq!(alerts, serde_json::json!([]));

    // The capacity plan has the host's memory against the shipped policy's
    // thresholds, and renders as a page with a chart per series.
    let plan = collector.cli_json(&["capacity", "plan", "--days", "1"]);
    let lines = plan["lines"].as_array().unwrap();
    let memory = lines
        .iter()
        .find(|l| l["series"] == "memory.used_pct")
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(memory["ci"], ci.as_str());
    assert_eq!(memory["critical"], 97.0);

    // Across the host's class: every filesystem series, as listed.
    let class = memory["class"].as_str().unwrap();
    let queried = collector.cli_json(&[
        "metrics",
        "query",
        "fs.used_pct:*",
        "--class",
        class,
        "--since",
        "-10m",
        "--tier",
        "raw",
    ]);
    let mut found: Vec<&str> = queried["series"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|s| assert_eq!(s["ci"], ci.as_str()))
        .map(|s| s["series"].as_str().unwrap())
        .collect();
    let mut listed: Vec<&str> = series
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .filter(|n| n.starts_with("fs.used_pct:"))
        .collect();
    found.sort_unstable();
    listed.sort_unstable();
    assert_eq!(found, listed);
    let out = collector.cli(&[
        "metrics",
        "query",
        "memory.used_pct",
        "--class",
        class,
        "--since",
        "-10m",
        "--tier",
        "raw",
        "--csv",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut csv_lines = text.lines();
    assert_eq!(
        csv_lines.next(),
        Some("ci,name,series,time,count,min,mean,max,p95")
    );
    let rows: Vec<&str> = csv_lines.collect();
    assert!(!rows.is_empty(), "{text}");
    assert!(
        rows.iter()
            .all(|r| r.starts_with(&format!("{ci},metrics-host,memory.used_pct,"))),
        "{text}"
    );
    // Bad input is answered with what was wrong.
    for (args, says) in [
        (
            vec![
                "metrics", "query", "memory.*", "--class", class, "--tier", "weekly",
            ],
            "tier",
        ),
        (
            vec![
                "metrics", "query", "memory.*", "--class", class, "--since", "-1d", "--until",
                "-2d",
            ],
            "from_ms must be before to_ms",
        ),
        (
            vec!["metrics", "show", ci.as_str(), "no.such_series"],
            "no.such_series",
        ),
    ] {
        let out = collector.cli(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
    let table = collector.cli(&["metrics", "query", "memory.*", "--class", class]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("memory.used_pct") && table.contains("P95"),
        "{table}"
    );
    assert!(
        (memory["current"].as_f64().unwrap() - used_pct).abs() < 5.0,
        "{memory}"
    );
    let page = collector.dir.path().join("plan.html");
    let out = collector.cli(&[
        "capacity",
        "plan",
        "--days",
        "1",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<svg").count(), lines.len());
    assert!(html.contains("memory.used_pct"));
    // Minutes of data make a readable chart: a line across the plot, with
    // times under it; Chromium renders the page (the screenshot is kept).
    assert!(html.contains("class='x-label'"), "labelled time axis");
    let shot = fathom_tests::output_dir().join("capacity-plan-minutes.png");
    assert_eq!(
        fathom_tests::screenshot(&page, &shot, 1280, 1600),
        (1280, 1600)
    );

    // Mistakes name what was wrong.
    let err = collector.cli_fails(&["metrics", "show", &ci, "fs.used_pct:/nowhere"]);
    assert!(
        err.contains("has no series \"fs.used_pct:/nowhere\""),
        "{err}"
    );
    let err = collector.cli_fails(&["metrics", "show", &ci, "load.1", "--tier", "2m"]);
    assert!(err.contains("tier") && err.contains("2m"), "{err}");
    let err = collector.cli_fails(&["metrics", "show", &ci, "load.1", "--since", "yesterday"]);
    assert!(err.contains("--since"), "{err}");
}

/// Availability end to end: stopping a real agent opens an outage and an
/// incident once it has missed its intervals; starting it again closes the
/// outage and resolves the incident.
#[test]
fn a_stopped_agent_is_an_unplanned_outage_until_it_reports_again() {
    let Running {
        collector,
        agent,
        mut daemon,
        ci,
        _root,
    } = running(
        "[availability]\nmissed_intervals = 3\ndefault_interval_secs = 2\ncheck_interval_secs = 1\n",
        "outage-host",
        "55555555555555555555555555555555",
    );
    // A few heartbeats, for the watch to learn the 1 s interval.
    std::thread::sleep(Duration::from_secs(5));
    let outages = || collector.cli_json(&["availability", "outages", "--ci", &ci]);
    assert_eq!(
        outages(),
        serde_json::json!([]),
        "no outage while it reports"
    );

    terminate(&mut daemon);
    let stopped = fathom_tests::now_ms();
    let outage = wait_for("an outage", Duration::from_secs(30), || {
        outages().as_array().unwrap().first().cloned()
    });
    // Down within a few intervals of stopping, and from about then.
    let start_ms = outage["start_ms"].as_i64().unwrap();
    assert!(
        (start_ms - stopped).abs() < 3_000,
        "{outage} vs stop at {stopped}"
    );
    assert_eq!(outage["end_ms"], Value::Null);
    assert_eq!(outage["planned"], false);
    assert_eq!(outage["cause"], "missed_heartbeats");
    let incident_id = outage["incident"].as_str().unwrap().to_owned();
    let incident = collector.cli_json(&["incident", "show", &incident_id]);
    assert_eq!(incident["category"], "unplanned_outage", "{incident}");
    assert_eq!(incident["status"], "new");
    assert_eq!(incident["cis"], serde_json::json!([ci]));
    assert!(
        incident["title"].as_str().unwrap().contains("outage-host"),
        "{incident}"
    );
    let open = collector.cli_json(&["availability", "outages", "--open"]);
    assert_eq!(open.as_array().unwrap().len(), 1);

    // Back: the outage closes at its first report, the incident resolves.
    let mut daemon = agent.daemon(None);
    let closed = wait_for("the outage to close", Duration::from_secs(30), || {
        let o = outages().as_array().unwrap().first().cloned().unwrap();
        o["end_ms"].as_i64().map(|_| o)
    });
    terminate(&mut daemon);
    assert!(closed["end_ms"].as_i64().unwrap() > start_ms);
    let incident = collector.cli_json(&["incident", "show", &incident_id]);
    assert_eq!(incident["status"], "resolved", "{incident}");
    assert!(
        incident["resolution"]
            .as_str()
            .unwrap()
            .contains("reported again"),
        "{incident}"
    );
    assert_eq!(outages().as_array().unwrap().len(), 1, "one outage, closed");
    let table = collector.cli(&["availability", "outages"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("unplanned") && table.contains(&incident_id),
        "{table}"
    );
}
