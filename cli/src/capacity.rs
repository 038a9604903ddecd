//! `fathom metrics …`: the metric store's series of a CI and their points,
//! as a table (with a sparkline), JSON (the API's answer unchanged) or CSV.

use clap::Subcommand;
use fathom_collector::api::{PointsView, QueryView, SeriesView};
use fathom_collector::availability::outage::Outage;
use fathom_collector::availability::report::AvailabilityReport;
use fathom_collector::capacity::alert::CapacityAlert;
use fathom_collector::capacity::plan::CapacityPlan;

use super::ci::CiRef;
use super::client::Client;
use super::print_json;
use crate::output;
use crate::output::capacity::{
    availability_csv, availability_html, describe_availability, describe_points, describe_query,
    format_value, plan_html, plan_text, point_fields, write_plan_csv, POINT_FIELDS,
};

/// A period, and the tier to read it at.
#[derive(Debug, clap::Args)]
pub struct Span {
    /// Start: now, -7d, or a timestamp like 2026-11-23T22:00:00Z.
    #[arg(long, default_value = "-24h", allow_hyphen_values = true)]
    since: String,
    /// End (same forms).
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    until: String,
    /// raw, 5m, 1h, 1d, or auto.
    #[arg(long, default_value = "auto")]
    tier: String,
}

impl Span {
    /// `from_ms`, `to_ms` and `tier`, added to a query string.
    fn add_to(&self, query: &mut form_urlencoded::Serializer<'_, String>) -> anyhow::Result<()> {
        let (from_ms, to_ms) = period(&self.since, &self.until)?;
        query
            .append_pair("from_ms", &from_ms.to_string())
            .append_pair("to_ms", &to_ms.to_string())
            .append_pair("tier", &self.tier);
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// List a CI's series, with each one's latest value.
    List {
        /// The CI: its id, or its name where no other CI has it.
        ci: CiRef,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A series' points over a period, at the finest tier that still holds
    /// it (or the one asked for).
    Show {
        /// The CI: its id, or its name where no other CI has it.
        ci: CiRef,
        /// The series, as `fathom metrics list` names it (fs.used_pct:/var).
        series: String,
        #[command(flatten)]
        span: Span,
        /// Print the API's JSON instead of a table.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// One line per point: time, count, min, mean, max, p95.
        #[arg(long)]
        csv: bool,
    },
    /// One series, or a family (`fs.used_pct:*`), across a class's CIs or
    /// a service and what it depends on, over a period: per CI and series,
    /// the lowest, mean, p95 and highest of the points, and the latest.
    /// Highest p95 first.
    Query {
        /// A series name, or a prefix ending in `*` (fs.used_pct:*, if.*).
        series: String,
        /// The CIs of this class.
        #[arg(long, conflicts_with = "service", required_unless_present = "service")]
        class: Option<String>,
        /// A service and the CIs it depends on (its id or unique name).
        #[arg(long)]
        service: Option<CiRef>,
        #[command(flatten)]
        span: Span,
        /// Print the API's JSON instead of a table.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// One line per CI, series and point: ci, name, series, time, count,
        /// min, mean, max, p95.
        #[arg(long)]
        csv: bool,
    },
    /// Open capacity alerts: series over a policy threshold, or forecast
    /// to cross critical, each with its incident.
    Alerts {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CapacityCommand {
    /// The capacity plan: per CI and series with a threshold, current use,
    /// peaks, trend, when it reaches critical, seasonality and headroom;
    /// for a service, its tightest member. Tightest first.
    Plan {
        /// Only CIs of this class.
        #[arg(long, conflicts_with = "service")]
        class: Option<String>,
        /// A service and everything it depends on (its id or unique name).
        #[arg(long)]
        service: Option<CiRef>,
        /// The period the peaks and trend are taken over.
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Print the API's JSON instead of a table.
        #[arg(long, conflicts_with_all = ["csv", "html"])]
        json: bool,
        /// Print CSV instead of a table.
        #[arg(long, conflicts_with = "html")]
        csv: bool,
        /// Write a self-contained HTML page with a chart per series
        /// (utilization, thresholds, trend to the horizon) to this file.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
    },
}

pub async fn capacity(client: &Client, command: CapacityCommand) -> anyhow::Result<()> {
    let CapacityCommand::Plan {
        class,
        service,
        days,
        json,
        csv,
        html,
    } = command;
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(c) = &class {
        query.append_pair("class", c);
    }
    if let Some(s) = service {
        query.append_pair("service", &s.resolve(client).await?.to_string());
    }
    query.append_pair("days", &days.to_string());
    let answer: serde_json::Value = client
        .get(&format!("v1/capacity-plan?{}", query.finish()))
        .await?;
    if json {
        return print_json(&answer);
    }
    let plan: CapacityPlan = serde_json::from_value(answer)?;
    if let Some(path) = html {
        std::fs::write(&path, plan_html(&plan))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        println!("{} ({} series)", path.display(), plan.lines.len());
        return Ok(());
    }
    if csv {
        return write_plan_csv(&plan, std::io::stdout());
    }
    print!("{}", plan_text(&plan));
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum AvailabilityCommand {
    /// Availability of a CI or a service over a period: agreed hours,
    /// downtime (unplanned; planned beside it), outages, MTRS, MTBF, the
    /// target, and each member's own figure.
    Report {
        /// The CI or service: its id, or its name where no other CI has it.
        ci: CiRef,
        /// Start: -30d, or a timestamp like 2026-11-01T00:00:00Z.
        #[arg(long, default_value = "-30d", allow_hyphen_values = true)]
        since: String,
        /// End (same forms).
        #[arg(long, default_value = "now", allow_hyphen_values = true)]
        until: String,
        /// Print the API's JSON instead of a table.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// One line per stretch of downtime: start, end, seconds.
        #[arg(long, conflicts_with = "html")]
        csv: bool,
        /// Write a self-contained HTML page with the timeline (agreed
        /// hours, the service's and each member's downtime) to this file.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
    },
    /// Outages found from missed heartbeats: when, how long, planned (by
    /// which RFC) or not (which incident).
    Outages {
        /// Only this CI's (its id or unique name).
        #[arg(long)]
        ci: Option<CiRef>,
        /// Only outages still going on.
        #[arg(long)]
        open: bool,
        /// Print the API's JSON instead of a table.
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
            html,
        } => {
            let ci = ci.resolve(client).await?;
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
            if let Some(path) = html {
                std::fs::write(&path, availability_html(&report))
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                println!("{}", path.display());
                return Ok(());
            }
            if csv {
                print!("{}", availability_csv(&report)?);
                return Ok(());
            }
            print!("{}", describe_availability(&report));
        }
        AvailabilityCommand::Outages { ci, open, json } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(ci) = ci {
                query.append_pair("ci", &ci.resolve(client).await?.to_string());
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
                &[
                    "CI",
                    "START",
                    "END",
                    "DURATION",
                    "KIND",
                    "INCIDENT",
                    "PLANNED BY",
                ],
                |o| {
                    vec![
                        o.ci.to_string(),
                        output::time(o.start_ms),
                        o.end_ms.map_or_else(|| "(ongoing)".into(), output::time),
                        o.end_ms.map_or_else(
                            || "-".into(),
                            |e| format!("{} s", (e - o.start_ms) / 1000),
                        ),
                        if o.planned { "planned" } else { "unplanned" }.into(),
                        o.incident.map_or_else(|| "-".into(), |i| i.to_string()),
                        o.planned_by.clone().unwrap_or_else(|| "-".into()),
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
                        output::time(a.since_ms),
                        a.incident.to_string(),
                    ]
                },
            )?;
        }
        MetricsCommand::Query {
            series,
            class,
            service,
            span,
            json,
            csv,
        } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(class) = &class {
                query.append_pair("class", class);
            }
            if let Some(service) = service {
                query.append_pair("service", &service.resolve(client).await?.to_string());
            }
            query.append_pair("series", &series);
            span.add_to(&mut query)?;
            let query = query.finish();
            let answer: serde_json::Value =
                client.get(&format!("v1/metrics/query?{query}")).await?;
            if json {
                return print_json(&answer);
            }
            let view: QueryView = serde_json::from_value(answer)?;
            if csv {
                let mut out = csv::Writer::from_writer(std::io::stdout());
                out.write_record(["ci", "name", "series"].iter().chain(&POINT_FIELDS))?;
                for s in &view.series {
                    for p in &s.points {
                        let named = [s.ci.to_string(), s.ci_name.clone(), s.series.clone()];
                        out.write_record(named.into_iter().chain(point_fields(p)))?;
                    }
                }
                out.flush()?;
                return Ok(());
            }
            print!("{}", describe_query(&view));
        }
        MetricsCommand::List { ci, json } => {
            let ci = ci.resolve(client).await?;
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
                        s.last_ms.map_or_else(|| "-".into(), output::time),
                        output::time(s.first_ms),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["SERIES", "LATEST", "AT", "SINCE"], &rows)
            );
        }
        MetricsCommand::Show {
            ci,
            series,
            span,
            json,
            csv,
        } => {
            let ci = ci.resolve(client).await?;
            let mut query = form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("ci", &ci.to_string())
                .append_pair("series", &series);
            span.add_to(&mut query)?;
            let query = query.finish();
            let answer: serde_json::Value =
                client.get(&format!("v1/metrics/points?{query}")).await?;
            if json {
                return print_json(&answer);
            }
            let view: PointsView = serde_json::from_value(answer)?;
            if csv {
                let mut out = csv::Writer::from_writer(std::io::stdout());
                out.write_record(POINT_FIELDS)?;
                for p in &view.points {
                    out.write_record(point_fields(p))?;
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
    let now = fathom_support::now_ms();
    let from_ms = output::parse_time(since, now).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let to_ms = output::parse_time(until, now).map_err(|e| anyhow::anyhow!("--until: {e}"))?;
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
    print!("{}", output::table(headers, &rows));
    Ok(())
}
