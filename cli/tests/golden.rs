//! Golden files: what `fathom` prints for the API's answers, compared byte
//! for byte, so a change to a table, a CSV or an HTML page is reviewed in
//! the diff, never accidental.
//!
//! `golden/api/*.json` are the API's answers (`fathom … --json`),
//! captured from a collector with three fixture hosts (one with an
//! unauthorized package change), an RFC, a service with a redundancy group
//! and agreed hours, and a hand-raised incident. Each case renders one with
//! the function its command prints through and compares the result with
//! `golden/<case>.<txt|csv|html>`.
//!
//! After an intended change of output, regenerate and review:
//! `FATHOM_BLESS=1 cargo test -p fathom-cli --test golden`, then `git diff
//! cli/tests/golden`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fathom_cli::output::{self, capacity, cmdb};
use serde::de::DeserializeOwned;

/// When the incident listings are read (for "overdue"): later on the day
/// the answers were captured.
const NOW_MS: i64 = 1_796_700_000_000;

/// Every golden file a case checked, for the check that none is stale.
static CHECKED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Every answer a case read, for the check that none is left unrendered.
static READ: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn api<T: DeserializeOwned>(name: &str) -> T {
    READ.lock().unwrap().insert(name.to_owned());
    let path = dir().join("api").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `actual` with the golden file `name`, or writes it when
/// `FATHOM_BLESS` is set.
fn check(name: &str, actual: &str) {
    CHECKED.lock().unwrap().insert(name.to_owned());
    let path = dir().join(name);
    if std::env::var_os("FATHOM_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (FATHOM_BLESS=1 cargo test -p fathom-cli --test golden writes it)",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its golden file, first at line {}:\n  golden: {:?}\n  now:    {:?}\n\
             If the change is intended: FATHOM_BLESS=1 cargo test -p fathom-cli --test golden, and review the diff.",
            line + 1,
            expected.lines().nth(line).unwrap_or("(end)"),
            actual.lines().nth(line).unwrap_or("(end)"),
        );
    }
}

#[test]
fn ci_list_and_show() {
    check(
        "ci-list.txt",
        &cmdb::ci_table(&api::<Vec<_>>("ci-list.json")),
    );
    check(
        "ci-show.txt",
        &cmdb::ci_shown(&api("ci-show.json")).unwrap(),
    );
    check(
        "ci-export.csv",
        &cmdb::cis_csv(&api("ci-export.json")).unwrap(),
    );
}

#[test]
fn agents() {
    check(
        "agent-list.txt",
        &cmdb::agent_table(&api::<Vec<_>>("agent-list.json")),
    );
}

#[test]
fn rfcs_drift_and_incidents() {
    let rfcs: Vec<_> = api("rfc-list.json");
    check(
        "rfc-list.txt",
        &output::table(cmdb::RFC_HEADERS, &cmdb::rfc_rows(&rfcs)),
    );
    check("rfc-show.txt", &cmdb::describe_rfc(&api("rfc-show.json")));
    let drifts: Vec<_> = api("drift-list.json");
    let rows: Vec<Vec<String>> = drifts.iter().map(cmdb::drift_row).collect();
    check("drift-list.txt", &output::table(cmdb::DRIFT_HEADERS, &rows));
    check(
        "incident-list.txt",
        &cmdb::incident_table(&api::<Vec<_>>("incident-list.json"), NOW_MS),
    );
    check(
        "incident-show.txt",
        &cmdb::describe_incident(&api("incident-show.json"), NOW_MS),
    );
}

#[test]
fn audit_report() {
    let report = api("audit-report.json");
    check("audit-report.txt", &cmdb::describe_audit(&report));
    check("audit-report.csv", &cmdb::audit_csv(&report).unwrap());
}

#[test]
fn capacity_plan() {
    let plan = api("capacity-plan.json");
    check("capacity-plan.txt", &capacity::plan_text(&plan));
    let mut csv = Vec::new();
    capacity::write_plan_csv(&plan, &mut csv).unwrap();
    check("capacity-plan.csv", &String::from_utf8(csv).unwrap());
    check("capacity-plan.html", &capacity::plan_html(&plan));
}

#[test]
fn availability_report() {
    // A host with an outage in the period; a service with a redundancy
    // group and agreed hours in a time zone.
    for case in ["availability-ci", "availability-service"] {
        let report = api(&format!("{case}.json"));
        check(
            &format!("{case}.txt"),
            &capacity::describe_availability(&report),
        );
        check(
            &format!("{case}.csv"),
            &capacity::availability_csv(&report).unwrap(),
        );
        check(
            &format!("{case}.html"),
            &capacity::availability_html(&report),
        );
    }
}

/// Every golden file belongs to a case, and every answer is rendered by
/// one.
#[test]
fn no_golden_file_is_stale() {
    // The other cases may run in parallel with this one, or not at all
    // (a filtered run): run them here too (checking twice is harmless).
    ci_list_and_show();
    agents();
    rfcs_drift_and_incidents();
    audit_report();
    capacity_plan();
    availability_report();
    let checked = CHECKED.lock().unwrap().clone();
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !checked.contains(&name) {
                stale.push(name);
            }
        }
    }
    assert!(stale.is_empty(), "golden files no case checks: {stale:?}");
    let read = READ.lock().unwrap().clone();
    let unread: Vec<String> = std::fs::read_dir(dir().join("api"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !read.contains(name))
        .collect();
    assert!(unread.is_empty(), "answers no case renders: {unread:?}");
}
