//! The CMDB's records as text and CSV: CI descriptions, drift, RFC and
//! incident listings, audit reports, CI exports.

use fathom_collector::cmdb::audit::AuditReport;
use fathom_collector::cmdb::drift::DriftRecord;
use fathom_collector::cmdb::exchange::Exchange;
use fathom_collector::cmdb::incident::Incident;
use fathom_collector::cmdb::rfc::{Rfc, Window};
use fathom_collector::cmdb::CiRecord;
use fathom_shared::ids::CiId;

use crate::output;
use fathom_api::agents::AgentView;
use fathom_collector::api::CiView;
use fathom_collector::cmdb::device::{DeviceSample, StoredDeviceReport};
use fathom_collector::cmdb::{Relationship, StoredInventory};
use serde_json::Value;

pub fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

pub fn value(v: &Option<String>) -> String {
    v.as_deref()
        .map_or_else(|| "(absent)".into(), |v| output::clean(v).into_owned())
}

pub const DRIFT_HEADERS: &[&str] = &[
    "DRIFT",
    "CI",
    "ATTRIBUTE",
    "AUTHORIZED",
    "DISCOVERED",
    "STATUS",
    "VERDICT",
    "INCIDENT",
    "SEEN",
];

pub fn verdict(d: &DriftRecord) -> String {
    use fathom_collector::control::decide::{Authority, Verdict};
    match &d.decision.verdict {
        Verdict::Informational => "informational".into(),
        Verdict::Unauthorized => "unauthorized".into(),
        Verdict::Authorized {
            authority: Authority::Rfc { rfc },
        } => format!("authorized by {rfc}"),
        Verdict::Authorized {
            authority: Authority::StandardChange { name },
        } => format!("standard change {name}"),
    }
}

pub fn drift_row(d: &DriftRecord) -> Vec<String> {
    vec![
        d.id.to_string(),
        format!("{} {}", d.ci, d.ci_name),
        d.attribute.clone(),
        value(&d.authorized),
        value(&d.discovered),
        d.status.as_str().to_owned(),
        verdict(d),
        d.incident
            .map(|i| i.to_string())
            .unwrap_or_else(|| "-".into()),
        output::time(d.last_seen_ms),
    ]
}

pub fn window_text(w: &Option<Window>) -> String {
    w.map_or_else(
        || "-".into(),
        |w| format!("{} → {}", output::time(w.start_ms), output::time(w.end_ms)),
    )
}

pub fn rfc_rows(rfcs: &[Rfc]) -> Vec<Vec<String>> {
    rfcs.iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.status.as_str().to_owned(),
                format!("{:?}/{:?}", r.level, r.impact).to_lowercase(),
                r.title.clone(),
                r.cis
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                window_text(&r.window),
            ]
        })
        .collect()
}

pub const RFC_HEADERS: &[&str] = &["RFC", "STATUS", "LEVEL", "TITLE", "CIS", "WINDOW"];

pub fn describe_rfc(r: &Rfc) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<13}{v}\n"));
    line("RFC", format!("{}  {}", r.id, r.title));
    line("status", r.status.as_str().to_owned());
    line(
        "level",
        format!("{:?}, {:?}, risk {}", r.level, r.impact, r.risk.as_str()).to_lowercase(),
    );
    line("type", r.change_type.clone());
    line(
        "initiator",
        format!("{} at {}", r.initiator, output::time(r.raised_at_ms)),
    );
    line("targets", joined(&r.targets));
    line("CIs", joined(&r.cis));
    line("window", window_text(&r.window));
    for s in &r.specs {
        line("spec", s.to_string());
    }
    if !r.description.is_empty() {
        line(
            "description",
            r.description.replace('\n', "\n             "),
        );
    }
    if !r.reason.is_empty() {
        line("reason", r.reason.clone());
    }
    if !r.implementation_plan.is_empty() {
        line("plan", r.implementation_plan.clone());
    }
    if !r.backout_plan.is_empty() {
        line("back-out", r.backout_plan.clone());
    }
    if let Some(a) = &r.assessment {
        line(
            "assessed",
            format!(
                "by {} at {}: risk {}, {} dependent(s) {}",
                a.by,
                output::time(a.at_ms),
                a.risk.as_str(),
                a.dependents.len(),
                a.notes
            ),
        );
        for c in &a.conflicts {
            line("  conflict", c.clone());
        }
        for d in &a.dependents {
            line(
                "  depends",
                format!("{} {} ({})", d.ci, d.name, d.path.join(", ")),
            );
        }
    }
    if let Some(d) = &r.decision {
        line(
            if d.approved { "approved" } else { "rejected" },
            format!("by {} at {}: {}", d.by, output::time(d.at_ms), d.comment),
        );
    }
    for e in &r.evidence {
        line(
            "evidence",
            format!(
                "{} {} {}: {} → {} ({})",
                output::time(e.at_ms),
                e.ci,
                e.attribute,
                value(&e.old),
                value(&e.new),
                e.source
            ),
        );
    }
    if let Some(rv) = &r.review {
        line(
            "review",
            format!("{:?} by {}: {}", rv.outcome, rv.by, rv.comment).to_lowercase(),
        );
    }
    for d in &r.drifts {
        line("drift", d.to_string());
    }
    for i in &r.incidents {
        line("incident", i.to_string());
    }
    out.push_str("\nlog\n");
    for n in &r.log {
        out.push_str(&format!(
            "  {} {}: {}\n",
            output::time(n.at_ms),
            n.by,
            n.text
        ));
    }
    out
}

pub fn describe_incident(i: &Incident, now_ms: i64) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<11}{v}\n"));
    line("incident", format!("{}  {}", i.id, i.title));
    line("status", i.status.as_str().to_owned());
    line(
        "priority",
        format!(
            "{} (impact {}, urgency {}){}",
            i.priority,
            i.impact.as_str(),
            i.urgency.as_str(),
            if i.major { ", MAJOR" } else { "" }
        ),
    );
    line("category", i.category.clone());
    line("assignee", opt(&i.assignee));
    line(
        "detected",
        format!("{} by {}", output::time(i.detected_at_ms), i.reported_by),
    );
    line(
        "due",
        format!(
            "{}{}",
            output::time(i.due_at_ms),
            if i.overdue(now_ms) { " (overdue)" } else { "" }
        ),
    );
    line("CIs", joined(&i.cis));
    line("drift", joined(&i.drifts));
    line("RFCs", joined(&i.rfcs));
    if let Some(r) = &i.resolution {
        line("resolution", r.clone());
    }
    out.push_str(&format!("\n{}\n\nlog\n", i.symptom));
    for n in &i.log {
        out.push_str(&format!(
            "  {} {}: {}\n",
            output::time(n.at_ms),
            n.by,
            n.text
        ));
    }
    out
}

pub fn describe_audit(r: &AuditReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Configuration audit, {}\n\n",
        output::time(r.generated_at_ms)
    ));
    out.push_str(&format!(
        "accuracy      {} ({} of {} compared CIs match their latest discovery; {} CIs in all)\n",
        r.accuracy_pct.map_or("n/a".into(), |a| format!("{a:.1}%")),
        r.matching,
        r.compared,
        r.total_cis
    ));
    let ids = |v: &[CiId]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    out.push_str(&format!(
        "attributes    {} ({} of {} compared attributes match)\n",
        r.attributes
            .accuracy_pct
            .map_or("n/a".into(), |a| format!("{a:.1}%")),
        r.attributes.matching,
        r.attributes.compared
    ));
    out.push_str(&format!(
        "by hand only  {} CI(s) not verifiable by discovery (kept by hand; verify them in the sample)\n",
        r.not_verifiable_by_discovery.len()
    ));
    out.push_str(&format!(
        "unregistered  {}\n",
        ids(&r.discovered_not_registered)
    ));
    out.push_str(&format!(
        "never seen    {}\n",
        ids(&r.registered_never_discovered)
    ));
    out.push_str(&format!("stale         {}\n", ids(&r.no_longer_discovered)));
    out.push_str(&format!(
        "duplicates    {} pending review\n\n",
        r.duplicates_pending
    ));
    let rows: Vec<Vec<String>> = r
        .by_class
        .iter()
        .map(|(class, c)| {
            let (n, k) = r.sample_sizes.get(class).copied().unwrap_or_default();
            vec![
                class.clone(),
                c.cis.to_string(),
                c.compared.to_string(),
                c.matching.to_string(),
                if c.compared > 0 {
                    format!("{:.1}%", c.matching as f64 * 100.0 / c.compared as f64)
                } else {
                    "n/a".into()
                },
                format!("{k} of {n}"),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &["CLASS", "CIS", "COMPARED", "MATCHING", "ACCURACY", "SAMPLE"],
        &rows,
    ));
    if !r.attributes_by_section.is_empty() {
        out.push_str("\naccuracy by attribute section\n");
        let rows: Vec<Vec<String>> = r
            .attributes_by_section
            .iter()
            .map(|(section, c)| {
                vec![
                    section.clone(),
                    c.compared.to_string(),
                    (c.compared - c.matching).to_string(),
                    c.accuracy_pct.map_or("n/a".into(), |a| format!("{a:.1}%")),
                ]
            })
            .collect();
        out.push_str(&output::table(
            &["SECTION", "COMPARED", "MISMATCHED", "ACCURACY"],
            &rows,
        ));
    }
    out.push_str(&format!(
        "\nverification sample (seed {}): check these by hand\n",
        r.seed
    ));
    let rows: Vec<Vec<String>> = r
        .cis
        .iter()
        .filter(|c| c.in_sample)
        .map(|c| {
            vec![
                c.id.to_string(),
                c.class.clone(),
                c.name.clone(),
                c.mismatches.len().to_string(),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &["CI", "CLASS", "NAME", "MISMATCHES"],
        &rows,
    ));
    out
}

/// The audit as CSV: one line per CI, then, after a blank line, the
/// summary as `scope,name,compared,matching,accuracy_pct` lines (the
/// whole CMDB, each class, each attribute section).
pub fn audit_csv(r: &AuditReport) -> anyhow::Result<String> {
    let pct = |p: Option<f64>| p.map_or(String::new(), |p| format!("{p:.2}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "ci",
        "class",
        "name",
        "registered",
        "discovered",
        "verifiable",
        "stale",
        "consistent",
        "attributes_compared",
        "attributes_matching",
        "accuracy_pct",
        "mismatches",
        "in_sample",
    ])?;
    for c in &r.cis {
        let consistent = if c.registered && c.discovered {
            (c.mismatches.is_empty()).to_string()
        } else {
            String::new()
        };
        let accuracy = (c.attributes_compared > 0)
            .then(|| c.attributes_matching as f64 * 100.0 / c.attributes_compared as f64);
        w.write_record([
            c.id.to_string(),
            c.class.clone(),
            c.name.clone(),
            c.registered.to_string(),
            c.discovered.to_string(),
            c.verifiable.to_string(),
            c.stale.to_string(),
            consistent,
            c.attributes_compared.to_string(),
            c.attributes_matching.to_string(),
            pct(accuracy),
            c.mismatches.join(" "),
            c.in_sample.to_string(),
        ])?;
    }
    let mut text = String::from_utf8(w.into_inner()?)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["scope", "name", "compared", "matching", "accuracy_pct"])?;
    w.write_record([
        "cis".into(),
        "all".into(),
        r.compared.to_string(),
        r.matching.to_string(),
        pct(r.accuracy_pct),
    ])?;
    w.write_record([
        "attributes".into(),
        "all".into(),
        r.attributes.compared.to_string(),
        r.attributes.matching.to_string(),
        pct(r.attributes.accuracy_pct),
    ])?;
    for (class, c) in &r.by_class {
        let accuracy = (c.compared > 0).then(|| c.matching as f64 * 100.0 / c.compared as f64);
        w.write_record([
            "class".into(),
            class.clone(),
            c.compared.to_string(),
            c.matching.to_string(),
            pct(accuracy),
        ])?;
    }
    for (section, c) in &r.attributes_by_section {
        w.write_record([
            "section".into(),
            section.clone(),
            c.compared.to_string(),
            c.matching.to_string(),
            pct(c.accuracy_pct),
        ])?;
    }
    w.write_record([
        "not_verifiable_by_discovery".into(),
        "all".into(),
        r.not_verifiable_by_discovery.len().to_string(),
        String::new(),
        String::new(),
    ])?;
    text.push('\n');
    text.push_str(&String::from_utf8(w.into_inner()?)?);
    Ok(text)
}

pub const CI_COLUMNS: [&str; 8] = [
    "id",
    "class",
    "name",
    "description",
    "status",
    "owner",
    "location",
    "criticality",
];

/// CIs as CSV: fixed columns, then one `attr:<name>` column per attribute
/// any exported CI has.
pub fn cis_csv(doc: &Exchange) -> anyhow::Result<String> {
    let attrs: std::collections::BTreeSet<&String> =
        doc.cis.iter().flat_map(|c| c.attributes.keys()).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = CI_COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(attrs.iter().map(|a| format!("attr:{a}")));
    w.write_record(&header)?;
    for c in &doc.cis {
        let mut row = vec![
            c.id.map(|i| i.to_string()).unwrap_or_default(),
            c.class.clone(),
            c.name.clone(),
            c.description.clone().unwrap_or_default(),
            c.status.clone().unwrap_or_default(),
            c.owner.clone().unwrap_or_default(),
            c.location.clone().unwrap_or_default(),
            c.criticality.clone().unwrap_or_default(),
        ];
        row.extend(
            attrs
                .iter()
                .map(|a| c.attributes.get(*a).cloned().unwrap_or_default()),
        );
        w.write_record(&row)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Sections with more attributes than this are shown as a count.
pub const FOLD_SECTIONS_OVER: usize = 16;

/// One section of a CI's authorized attributes, in full.
pub fn describe_section(ci: &CiRecord, section: &str) -> String {
    let rows: Vec<Vec<String>> = ci
        .attributes
        .iter()
        .filter(|(k, _)| fathom_collector::control::attributes::section_of(k) == section)
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    if rows.is_empty() {
        let names: std::collections::BTreeSet<&str> = ci
            .attributes
            .keys()
            .map(|k| fathom_collector::control::attributes::section_of(k))
            .collect();
        return format!(
            "{} has no {section} attributes (its sections: {})\n",
            ci.id,
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    format!(
        "{} ({}), {section}: {} attribute(s)\n{}",
        ci.id,
        output::clean(&ci.name),
        rows.len(),
        output::table(&["ATTRIBUTE", "VALUE"], &rows)
    )
}

/// A CI's own fields and authorized attributes.
pub fn describe_header(ci: &CiRecord) -> String {
    let mut out = String::new();
    out.push_str(&format!("CI          {}\n", ci.id));
    out.push_str(&format!("name        {}\n", ci.name));
    out.push_str(&format!("class       {}\n", ci.class));
    out.push_str(&format!("status      {}\n", ci.status.as_str()));
    out.push_str(&format!("criticality {}\n", ci.criticality.as_str()));
    if let Some(o) = &ci.owner {
        out.push_str(&format!("owner       {o}\n"));
    }
    if let Some(l) = &ci.location {
        out.push_str(&format!("location    {l}\n"));
    }
    if !ci.description.is_empty() {
        out.push_str(&format!("description {}\n", ci.description));
    }
    out.push_str(&format!(
        "registered  {}\n",
        if ci.registered {
            "yes"
        } else {
            "no (`fathom ci register` takes its discovered state as authorized)"
        }
    ));
    let seen = |t: Option<i64>| t.map_or_else(|| "never".into(), output::time);
    out.push_str(&format!("first seen  {}\n", seen(ci.first_seen_ms)));
    out.push_str(&format!("last seen   {}\n", seen(ci.last_seen_ms)));
    if let Some(a) = ci.reported_by {
        out.push_str(&format!("reported by {a}\n"));
    }
    if let Some(m) = ci.merged_into {
        out.push_str(&format!("MERGED INTO {m}\n"));
    }
    out.push_str(&format!(
        "identified  {} ({})\n",
        ci.identified_by.rule.as_str(),
        ci.identified_by.detail
    ));
    for review in &ci.reviews {
        out.push_str(&format!(
            "REVIEW      {review} is open (`fathom ci review list`)\n"
        ));
    }
    out.push_str(&format!(
        "\nauthorized attributes (revision {})\n",
        ci.revision
    ));
    // Big sections (packages, sockets, units) are folded to a count; `ci
    // show --section NAME` lists one in full.
    let mut sections: std::collections::BTreeMap<&str, usize> = Default::default();
    for k in ci.attributes.keys() {
        *sections
            .entry(fathom_collector::control::attributes::section_of(k))
            .or_default() += 1;
    }
    let mut folded = std::collections::BTreeSet::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (k, v) in &ci.attributes {
        let section = fathom_collector::control::attributes::section_of(k);
        if sections[section] > FOLD_SECTIONS_OVER {
            if folded.insert(section) {
                rows.push(vec![
                    format!("  {section}.*"),
                    format!(
                        "{} attributes (`fathom ci show {} --section {section}` lists them)",
                        sections[section], ci.id
                    ),
                ]);
            }
            continue;
        }
        rows.push(vec![format!("  {k}"), v.clone()]);
    }
    out.push_str(
        &output::table(&["", ""], &rows)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    out.push('\n');
    out
}

pub fn describe_ci(
    ci: &CiRecord,
    latest: Option<&fathom_collector::cmdb::StoredInventory>,
) -> String {
    let mut out = describe_header(ci);
    let Some(latest) = latest else {
        out.push_str("\nno inventory received yet\n");
        return out;
    };
    let inv = &latest.inventory;
    out.push_str(&format!(
        "\nlatest inventory: report {} from agent {}, received {}\n",
        latest.seq,
        latest.agent_id,
        output::time(latest.received_at_ms)
    ));
    if let Some(interfaces) = &inv.interfaces {
        out.push_str("\ninterfaces\n");
        let rows: Vec<Vec<String>> = interfaces
            .iter()
            .map(|i| {
                vec![
                    format!("  {}", i.name),
                    i.mac.clone().unwrap_or_else(|| "-".into()),
                    i.addresses.join(" "),
                ]
            })
            .collect();
        out.push_str(&output::table(&["  NAME", "MAC", "ADDRESSES"], &rows));
    }
    if let Some(filesystems) = &inv.filesystems {
        out.push_str("\nfilesystems\n");
        let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
        let rows: Vec<Vec<String>> = filesystems
            .iter()
            .map(|f| {
                vec![
                    format!("  {}", f.mount_point),
                    f.device.clone(),
                    f.fs_type.clone(),
                    gib(f.total_bytes),
                ]
            })
            .collect();
        out.push_str(&output::table(
            &["  MOUNT", "DEVICE", "TYPE", "SIZE"],
            &rows,
        ));
    }
    match &inv.packages {
        Some(p) => out.push_str(&format!(
            "\npackages: {} (`fathom ci show {} --json` lists them)\n",
            p.len(),
            ci.id
        )),
        None => out.push_str("\npackages: not read\n"),
    }
    if let Some(listeners) = &inv.listeners {
        out.push_str("\nlistening\n");
        let rows: Vec<Vec<String>> = listeners
            .iter()
            .map(|l| {
                vec![
                    format!("  {}", l.protocol),
                    format!("{}:{}", l.address, l.port),
                    l.process.clone().unwrap_or_else(|| "?".into()),
                ]
            })
            .collect();
        out.push_str(&output::table(&["  PROTO", "ADDRESS", "PROCESS"], &rows));
    }
    if let Some(files) = &inv.files {
        out.push_str("\nwatched files\n");
        let rows: Vec<Vec<String>> = files
            .iter()
            .map(|f| {
                vec![
                    format!("  {}", f.path),
                    f.kind.clone(),
                    f.mode.clone().unwrap_or_default(),
                    f.owner.clone().unwrap_or_default(),
                    f.sha256
                        .as_deref()
                        .map(|h| h[..12.min(h.len())].to_owned())
                        .or_else(|| f.error.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&output::table(
            &["  PATH", "KIND", "MODE", "OWNER", "SHA-256"],
            &rows,
        ));
    }
    let count = |what: &str, n: Option<usize>| match n {
        Some(n) => format!("{what}: {n}\n"),
        None => format!("{what}: not read\n"),
    };
    out.push('\n');
    out.push_str(&count("systemd units", inv.units.as_ref().map(Vec::len)));
    out.push_str(&count("users", inv.users.as_ref().map(Vec::len)));
    out.push_str(&count(
        "kernel modules",
        inv.kernel_modules.as_ref().map(Vec::len),
    ));
    out.push_str(&count("disks", inv.block_devices.as_ref().map(Vec::len)));
    out.push_str(&count(
        "memory slots",
        inv.memory_modules.as_ref().map(Vec::len),
    ));
    out.push_str(&count("GPUs", inv.gpus.as_ref().map(Vec::len)));
    out.push_str(&count("containers", inv.containers.as_ref().map(Vec::len)));
    if let Some(packages) = &inv.packages {
        let mut by_manager: std::collections::BTreeMap<&str, usize> = Default::default();
        for p in packages {
            *by_manager.entry(p.manager.as_str()).or_default() += 1;
        }
        let managers: Vec<String> = by_manager.iter().map(|(m, n)| format!("{m} {n}")).collect();
        out.push_str(&format!("packages: {}\n", managers.join(", ")));
    }
    for e in &inv.probe_errors {
        out.push_str(&format!("not read: {}: {}\n", e.probe, e.message));
    }
    out
}

/// A network device CI: its fields, then what its latest poll found and
/// each interface's throughput over the latest poll interval.
pub fn describe_device(
    ci: &CiRecord,
    poll: &fathom_collector::cmdb::device::StoredDeviceReport,
    rates: Option<&fathom_collector::cmdb::device::DeviceSample>,
) -> String {
    let mut out = describe_header(ci);
    let report = &poll.report;
    let device = &report.device;
    out.push_str(&format!(
        "\nlatest poll: report {} from agent {} at {}, received {}\n",
        poll.seq,
        poll.agent_id,
        report.target,
        output::time(poll.received_at_ms)
    ));
    if let Some(uptime) = device.system.sys_uptime_s {
        out.push_str(&format!(
            "uptime: {}d {}h\n",
            uptime / 86_400,
            uptime % 86_400 / 3600
        ));
    }
    out.push_str(&format!(
        "chassis: {}, components: {}, IP addresses: {}, LLDP neighbours: {}, CDP neighbours: {}\n",
        device.chassis.len(),
        device.components.len(),
        device.ip_addresses.len(),
        device.lldp_neighbors.len(),
        device.cdp_neighbors.len()
    ));
    let rate_of = |index: u32| rates.and_then(|s| s.rates.iter().find(|r| r.index == index));
    let mbps = |bps: f64| format!("{:.2}", bps / 1e6);
    out.push_str("\ninterfaces");
    if let Some(s) = rates {
        out.push_str(&format!(
            " (throughput over the {:.0} s before {})",
            s.rates
                .first()
                .map_or(0.0, |r| r.interval_ms as f64 / 1000.0),
            output::time(s.observed_at_ms)
        ));
    }
    out.push('\n');
    let names = fathom_collector::control::attributes::device_interface_names(device);
    let rows: Vec<Vec<String>> = device
        .interfaces
        .iter()
        .map(|i| {
            let status = |up: Option<bool>| match up {
                Some(true) => "up",
                Some(false) => "down",
                None => "-",
            };
            let rate = rate_of(i.index);
            vec![
                format!("  {}", names[&i.index]),
                format!("{}/{}", status(i.admin_up), status(i.oper_up)),
                i.speed_bps
                    .map_or_else(|| "-".into(), |s| format!("{}", s / 1_000_000)),
                i.mac.clone().unwrap_or_else(|| "-".into()),
                rate.map_or_else(|| "-".into(), |r| mbps(r.in_bps)),
                rate.map_or_else(|| "-".into(), |r| mbps(r.out_bps)),
                rate.and_then(|r| r.utilization_pct)
                    .map_or_else(|| "-".into(), |u| format!("{u:.1}%")),
                rate.map_or_else(|| "-".into(), |r| format!("{:.2}", r.errors_per_s)),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &[
            "  NAME",
            "ADMIN/OPER",
            "MBIT/S",
            "MAC",
            "IN MBIT/S",
            "OUT MBIT/S",
            "UTIL",
            "ERR/S",
        ],
        &rows,
    ));
    out
}

/// `ci list`: one line per CI, with what needs attention.
pub fn ci_table(cis: &[CiView]) -> String {
    let rows: Vec<Vec<String>> = cis
        .iter()
        .map(|v| {
            let c = &v.ci;
            let mut notes = Vec::new();
            if !c.registered {
                notes.push("unregistered".to_string());
            }
            if !c.open_drifts.is_empty() {
                notes.push(format!("{} drift", c.open_drifts.len()));
            }
            if v.stale {
                notes.push("stale".into());
            }
            if !c.reviews.is_empty() {
                notes.push("needs review".into());
            }
            if let Some(m) = c.merged_into {
                notes.push(format!("merged into {m}"));
            }
            vec![
                c.id.to_string(),
                c.class.clone(),
                c.name.clone(),
                c.status.as_str().to_owned(),
                c.criticality.as_str().to_owned(),
                c.attributes
                    .get("os.pretty_name")
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
                c.last_seen_ms.map_or_else(|| "never".into(), output::time),
                notes.join(", "),
            ]
        })
        .collect();
    output::table(
        &[
            "CI",
            "CLASS",
            "NAME",
            "STATUS",
            "CRITICALITY",
            "OS",
            "LAST SEEN",
            "",
        ],
        &rows,
    )
}

/// `incident list`: one line per incident; overdue ones say so.
pub fn incident_table(incidents: &[Incident], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = incidents
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                format!("P{}{}", i.priority, if i.major { " major" } else { "" }),
                i.status.as_str().to_owned(),
                i.title.clone(),
                opt(&i.assignee),
                output::time(i.detected_at_ms),
                if i.overdue(now_ms) {
                    format!("{} OVERDUE", output::time(i.due_at_ms))
                } else {
                    output::time(i.due_at_ms)
                },
            ]
        })
        .collect();
    output::table(
        &[
            "INCIDENT", "PRIORITY", "STATUS", "TITLE", "ASSIGNEE", "DETECTED", "DUE",
        ],
        &rows,
    )
}

/// `agent list`: one line per enrolled agent.
pub fn agent_table(agents: &[AgentView]) -> String {
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.agent_id.to_string(),
                a.hostname.clone(),
                a.agent_version.clone(),
                format!("{:?}", a.status).to_lowercase(),
                a.ci_id.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                a.reports_received.to_string(),
                output::time(a.last_seen_ms),
                match a.probe_errors.as_slice() {
                    [] => "-".into(),
                    [one] => one.clone(),
                    [first, rest @ ..] => {
                        format!("{first} (+{} more)", rest.len())
                    }
                },
            ]
        })
        .collect();
    output::table(
        &[
            "AGENT",
            "HOSTNAME",
            "VERSION",
            "STATUS",
            "CI",
            "REPORTS",
            "LAST SEEN",
            "PROBE ERRORS",
        ],
        &rows,
    )
}

/// `ci show`: the CI (or device) described from `GET /v1/cis/{id}`: its
/// fields and attributes, staleness, relationships and open drift.
pub fn ci_shown(shown: &Value) -> anyhow::Result<String> {
    let ci: CiRecord = serde_json::from_value(shown["ci"].clone())?;
    let inventory: Option<StoredInventory> = serde_json::from_value(shown["inventory"].clone())?;
    let outgoing: Vec<Relationship> =
        serde_json::from_value(shown["relationships"]["outgoing"].clone())?;
    let incoming: Vec<Relationship> =
        serde_json::from_value(shown["relationships"]["incoming"].clone())?;
    let drift: Vec<DriftRecord> = serde_json::from_value(shown["open_drift"].clone())?;
    let device: Option<StoredDeviceReport> = serde_json::from_value(shown["device"].clone())?;
    let rates: Option<DeviceSample> = serde_json::from_value(shown["interface_rates"].clone())?;
    let mut out = match &device {
        Some(poll) => describe_device(&ci, poll, rates.as_ref()),
        None => describe_ci(&ci, inventory.as_ref()),
    };
    if shown["stale"].as_bool() == Some(true) {
        out.push_str("\nSTALE: discovery has not reported this CI for longer than the policy's stale_after\n");
    }
    if !outgoing.is_empty() || !incoming.is_empty() {
        out.push_str("\nrelationships\n");
        for r in outgoing.iter().chain(&incoming) {
            let via = r
                .via
                .as_deref()
                .map(|v| format!("  via {v}"))
                .unwrap_or_default();
            out.push_str(&format!("  {} {} {}{via}\n", r.from, r.kind, r.to));
        }
    }
    if !drift.is_empty() {
        out.push_str("\ndrift (discovered differs from authorized)\n");
        let rows: Vec<Vec<String>> = drift.iter().map(drift_row).collect();
        out.push_str(&output::table(DRIFT_HEADERS, &rows));
    }
    Ok(out)
}

/// Ids (or anything shown) as a comma-separated list.
fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
