//! `fathom metrics …`: the metric store's series of a CI and their points,
//! as a table (with a sparkline), JSON (the API's answer unchanged) or CSV.

use clap::Subcommand;
use fathom_shared::ids::CiId;

use super::client::Client;
use super::{print_json, render};
use crate::api::{PointsView, SeriesView};
use crate::capacity::series::Unit;
use crate::cmdb::availability_report::AvailabilityReport;
use crate::cmdb::capacity_alert::CapacityAlert;
use crate::cmdb::outage::Outage;

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// List a CI's series, with each one's latest value.
    List {
        ci: CiId,
        #[arg(long)]
        json: bool,
    },
    /// A series' points over a period, at the finest tier that still holds
    /// it (or the one asked for).
    Show {
        ci: CiId,
        /// The series, as `fathom metrics list` names it (fs.used_pct:/var).
        series: String,
        /// Start: now, -7d, or a timestamp like 2026-11-23T22:00:00Z.
        #[arg(long, default_value = "-24h", allow_hyphen_values = true)]
        since: String,
        /// End (same forms).
        #[arg(long, default_value = "now", allow_hyphen_values = true)]
        until: String,
        /// raw, 5m, 1h, 1d, or auto.
        #[arg(long, default_value = "auto")]
        tier: String,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// One line per point: time, count, min, mean, max, p95.
        #[arg(long)]
        csv: bool,
    },
    /// Open capacity alerts: series over a policy threshold, or forecast
    /// to cross critical, each with its incident.
    Alerts {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AvailabilityCommand {
    /// Availability of a CI or a service over a period: agreed hours,
    /// downtime (unplanned; planned beside it), outages, MTRS, MTBF, the
    /// target, and each member's own figure.
    Report {
        ci: CiId,
        /// Start: -30d, or a timestamp like 2026-11-01T00:00:00Z.
        #[arg(long, default_value = "-30d", allow_hyphen_values = true)]
        since: String,
        /// End (same forms).
        #[arg(long, default_value = "now", allow_hyphen_values = true)]
        until: String,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// One line per stretch of downtime: start, end, seconds.
        #[arg(long)]
        csv: bool,
    },
    /// Outages found from missed heartbeats: when, how long, planned (by
    /// which RFC) or not (which incident).
    Outages {
        /// Only this CI's.
        #[arg(long)]
        ci: Option<CiId>,
        /// Only outages still going on.
        #[arg(long)]
        open: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn availability(client: &Client, command: AvailabilityCommand) -> anyhow::Result<()> {
    match command {
        AvailabilityCommand::Report {
            ci,
            since,
            until,
            json,
            csv,
        } => {
            let (from_ms, to_ms) = period(&since, &until)?;
            let answer: serde_json::Value = client
                .get(&format!(
                    "v1/availability?ci={ci}&from_ms={from_ms}&to_ms={to_ms}"
                ))
                .await?;
            if json {
                return print_json(&answer);
            }
            let report: AvailabilityReport = serde_json::from_value(answer)?;
            if csv {
                let mut out = csv::Writer::from_writer(std::io::stdout());
                out.write_record(["start", "end", "seconds"])?;
                for d in &report.downtime {
                    out.write_record([
                        render::rfc3339(d.start_ms),
                        render::rfc3339(d.end_ms),
                        ((d.end_ms - d.start_ms) / 1000).to_string(),
                    ])?;
                }
                out.flush()?;
                return Ok(());
            }
            print!("{}", describe_availability(&report));
        }
        AvailabilityCommand::Outages { ci, open, json } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(ci) = ci {
                query.append_pair("ci", &ci.to_string());
            }
            if open {
                query.append_pair("open", "true");
            }
            let outages: Vec<Outage> = client
                .get(&format!("v1/outages?{}", query.finish()))
                .await?;
            print_listing(
                json,
                &outages,
                "No outages.",
                &["CI", "START", "END", "DURATION", "KIND", "INCIDENT"],
                |o| {
                    vec![
                        o.ci.to_string(),
                        render::time(o.start_ms),
                        o.end_ms.map_or_else(|| "(ongoing)".into(), render::time),
                        o.end_ms.map_or_else(
                            || "-".into(),
                            |e| format!("{} s", (e - o.start_ms) / 1000),
                        ),
                        match (o.planned, o.rfc) {
                            (true, Some(rfc)) => format!("planned ({rfc})"),
                            (true, None) => "planned".into(),
                            (false, _) => "unplanned".into(),
                        },
                        o.incident.map_or_else(|| "-".into(), |i| i.to_string()),
                    ]
                },
            )?;
        }
    }
    Ok(())
}

pub async fn metrics(client: &Client, command: MetricsCommand) -> anyhow::Result<()> {
    match command {
        MetricsCommand::Alerts { json } => {
            let alerts: Vec<CapacityAlert> = client.get("v1/capacity-alerts").await?;
            print_listing(
                json,
                &alerts,
                "No capacity alerts.",
                &["CI", "SERIES", "SEVERITY", "SINCE", "INCIDENT"],
                |a| {
                    vec![
                        a.ci.to_string(),
                        a.series.clone(),
                        format!("{:?}", a.severity).to_lowercase(),
                        render::time(a.since_ms),
                        a.incident.to_string(),
                    ]
                },
            )?;
        }
        MetricsCommand::List { ci, json } => {
            let answer: serde_json::Value = client.get(&format!("v1/metrics?ci={ci}")).await?;
            if json {
                return print_json(&answer);
            }
            let series: Vec<SeriesView> = serde_json::from_value(answer["series"].clone())?;
            if series.is_empty() {
                println!("CI {ci} has no metrics yet.");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = series
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.last_value
                            .map_or_else(|| "-".into(), |v| format_value(s.unit, v)),
                        s.last_ms.map_or_else(|| "-".into(), render::time),
                        render::time(s.first_ms),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(&["SERIES", "LATEST", "AT", "SINCE"], &rows)
            );
        }
        MetricsCommand::Show {
            ci,
            series,
            since,
            until,
            tier,
            json,
            csv,
        } => {
            let (from_ms, to_ms) = period(&since, &until)?;
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("ci", &ci.to_string())
                .append_pair("series", &series)
                .append_pair("from_ms", &from_ms.to_string())
                .append_pair("to_ms", &to_ms.to_string())
                .append_pair("tier", &tier)
                .finish();
            let answer: serde_json::Value =
                client.get(&format!("v1/metrics/points?{query}")).await?;
            if json {
                return print_json(&answer);
            }
            let view: PointsView = serde_json::from_value(answer)?;
            if csv {
                let mut out = csv::Writer::from_writer(std::io::stdout());
                out.write_record(["time", "count", "min", "mean", "max", "p95"])?;
                for p in &view.points {
                    out.write_record([
                        render::rfc3339(p.at_ms),
                        p.count.to_string(),
                        p.min.to_string(),
                        p.mean.to_string(),
                        p.max.to_string(),
                        p.p95.to_string(),
                    ])?;
                }
                out.flush()?;
                return Ok(());
            }
            print!("{}", describe_points(&view));
        }
    }
    Ok(())
}

/// `--since` and `--until` as Unix ms.
fn period(since: &str, until: &str) -> anyhow::Result<(i64, i64)> {
    let now = fathom_agent::now_ms();
    let from_ms = render::parse_time(since, now).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let to_ms = render::parse_time(until, now).map_err(|e| anyhow::anyhow!("--until: {e}"))?;
    Ok((from_ms, to_ms))
}

/// A listing: the API's JSON as it is, a line when there is nothing, or a
/// table.
fn print_listing<T: serde::Serialize>(
    json: bool,
    items: &[T],
    none: &str,
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if json {
        return print_json(&items);
    }
    if items.is_empty() {
        println!("{none}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    print!("{}", render::table(headers, &rows));
    Ok(())
}

fn hours(ms: i64) -> String {
    format!("{:.2} h", ms as f64 / 3_600_000.0)
}

fn describe_availability(r: &AvailabilityReport) -> String {
    let pct = |p: Option<f64>| p.map_or_else(|| "-".into(), |p| format!("{p:.3}%"));
    let mut out = format!(
        "{} ({}, {}) from {} to {}\n",
        r.name,
        r.ci,
        r.class,
        render::time(r.from_ms),
        render::time(r.to_ms)
    );
    out.push_str(&format!(
        "agreed hours   {} ({})\n",
        hours(r.agreed_ms),
        r.timezone
    ));
    out.push_str(&format!("availability   {}", pct(r.availability_pct)));
    match (r.target_pct, r.target_met) {
        (Some(t), Some(true)) => out.push_str(&format!("  target {t}%: met\n")),
        (Some(t), Some(false)) => out.push_str(&format!("  target {t}%: NOT MET\n")),
        _ => out.push('\n'),
    }
    out.push_str(&format!(
        "downtime       {} unplanned in {} outage(s); {} planned (not counted)\n",
        hours(r.down_ms),
        r.outages,
        hours(r.planned_ms)
    ));
    if let (Some(mtrs), Some(mtbf)) = (r.mtrs_ms, r.mtbf_ms) {
        out.push_str(&format!("MTRS {}   MTBF {}\n", hours(mtrs), hours(mtbf)));
    }
    if !r.members.is_empty() {
        out.push_str("\nmembers\n");
        let rows: Vec<Vec<String>> = r
            .members
            .iter()
            .map(|m| {
                vec![
                    m.ci.to_string(),
                    m.name.clone(),
                    m.role.clone(),
                    pct(m.availability_pct),
                ]
            })
            .collect();
        out.push_str(&render::table(
            &["CI", "NAME", "ROLE", "AVAILABILITY"],
            &rows,
        ));
    }
    if !r.downtime.is_empty() {
        out.push_str("\ndowntime within agreed hours\n");
        let rows: Vec<Vec<String>> = r
            .downtime
            .iter()
            .map(|d| {
                vec![
                    render::time(d.start_ms),
                    render::time(d.end_ms),
                    hours(d.end_ms - d.start_ms),
                ]
            })
            .collect();
        out.push_str(&render::table(&["START", "END", "LENGTH"], &rows));
    }
    out
}

/// A value with its unit, scaled for reading (GiB, Mbit/s).
pub fn format_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Percent => format!("{v:.1}%"),
        Unit::Load => format!("{v:.2}"),
        Unit::PerSecond => format!("{v:.2}/s"),
        Unit::Bytes => scaled(v, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"]),
        Unit::BitsPerSecond => scaled(
            v,
            1000.0,
            &["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"],
        ),
    }
}

fn scaled(mut v: f64, step: f64, names: &[&str]) -> String {
    let mut i = 0;
    while v.abs() >= step && i + 1 < names.len() {
        v /= step;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", names[0])
    } else {
        format!("{v:.1} {}", names[i])
    }
}

/// Eight levels of block characters, one per value, scaled between the
/// smallest and largest.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|v| {
            if hi > lo {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            } else {
                BARS[0]
            }
        })
        .collect()
}

fn describe_points(view: &PointsView) -> String {
    let mut out = format!(
        "{} on CI {}, {} to {}, {} points at {}\n",
        view.series,
        view.ci,
        render::time(view.from_ms),
        render::time(view.to_ms),
        view.points.len(),
        view.tier.name(),
    );
    if view.points.is_empty() {
        out.push_str("no data in this period\n");
        return out;
    }
    let means: Vec<f64> = view.points.iter().map(|p| p.mean).collect();
    // At most 120 characters: means of consecutive points.
    let per = means.len().div_ceil(120);
    let line: Vec<f64> = means
        .chunks(per)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    let f = |v: f64| format_value(view.unit, v);
    let min = view
        .points
        .iter()
        .map(|p| p.min)
        .fold(f64::INFINITY, f64::min);
    let max = view
        .points
        .iter()
        .map(|p| p.max)
        .fold(f64::NEG_INFINITY, f64::max);
    out.push_str(&format!(
        "{}  min {} max {}\n\n",
        sparkline(&line),
        f(min),
        f(max)
    ));
    let rows: Vec<Vec<String>> = view
        .points
        .iter()
        .map(|p| {
            vec![
                render::time(p.at_ms),
                p.count.to_string(),
                f(p.min),
                f(p.mean),
                f(p.max),
                f(p.p95),
            ]
        })
        .collect();
    out.push_str(&render::table(
        &["TIME", "SAMPLES", "MIN", "MEAN", "MAX", "P95"],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(
            format_value(Unit::Bytes, 3.0 * 1024.0 * 1024.0 * 1024.0),
            "3.0 GiB"
        );
        assert_eq!(format_value(Unit::Bytes, 512.0), "512 B");
        assert_eq!(
            format_value(Unit::BitsPerSecond, 125_000_000.0),
            "125.0 Mbit/s"
        );
        assert_eq!(format_value(Unit::Percent, 87.25), "87.2%");
        assert_eq!(sparkline(&[0.0, 50.0, 100.0]), "▁▅█");
        assert_eq!(sparkline(&[3.0, 3.0]), "▁▁");
    }
}
