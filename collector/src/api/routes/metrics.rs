//! The metric store's series and their points, the capacity plan and
//! capacity alerts. Any valid operator token reads them.
//!
//! | method | path                                                     |
//! |--------|----------------------------------------------------------|
//! | GET    | /v1/metrics?ci=                                          |
//! | GET    | /v1/metrics/points?ci=&series=&from_ms=&to_ms=&tier=     |
//! | GET    | /v1/metrics/query?class=|service=&series=&from_ms=&to_ms=&tier= |
//! | GET    | /v1/capacity-alerts                                      |
//! | GET    | /v1/capacity-plan?class=|service=&days=30                |
//!
//! `tier` is `raw`, `5m`, `1h`, `1d` or `auto` (the default: the finest
//! tier still holding data from `from_ms`). Series names hold `:` and `/`
//! (`fs.used_pct:/var`): percent-encode them. A query across CIs takes a
//! series name or a prefix ending in `*` (`fs.used_pct:*`), and answers at
//! most 2,000 series (more is `400`, with the count: narrow it).

use std::sync::Arc;

use fathom_shared::ids::CiId;
use hyper::{Method, StatusCode};
use serde::Serialize;

use super::Request;
use crate::api::{bad_request, json, not_found, now_ms, refuse, Answer, Api, Refused};
use crate::capacity::plan::{Scope, SeriesPoints};
use crate::capacity::rollup::Tier;
use crate::capacity::series::Unit;
use crate::capacity::store::{MetricError, MetricStore, Point};
use crate::store::Store;

/// A series in a CI's listing.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct SeriesView {
    pub name: String,
    pub unit: Unit,
    pub first_ms: i64,
    /// The newest sample still kept raw (48 hours by default), if any.
    pub last_ms: Option<i64>,
    pub last_value: Option<f64>,
}

/// A series' points at one tier.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PointsView {
    pub ci: CiId,
    pub series: String,
    pub unit: Unit,
    pub tier: Tier,
    pub from_ms: i64,
    pub to_ms: i64,
    pub points: Vec<Point>,
}

/// A query's series across CIs.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct QueryView {
    pub tier: Tier,
    pub from_ms: i64,
    pub to_ms: i64,
    pub series: Vec<SeriesPoints>,
}

/// The most series one query across CIs answers.
const MAX_QUERY_SERIES: usize = 2_000;

/// `class=` or `service=` (neither: every CI).
fn scope(r: &Request<'_>) -> Result<Scope, Refused> {
    Ok(match (r.query("class"), r.query("service")) {
        (Some(_), Some(_)) => return Err(bad_request("give class or service, not both")),
        (Some(class), None) => Scope::Class(class.to_owned()),
        (None, Some(service)) => Scope::Service(
            service
                .parse()
                .map_err(|e| bad_request(format!("query parameter service: {e}")))?,
        ),
        (None, None) => Scope::All,
    })
}

fn metric_error(e: MetricError) -> Refused {
    tracing::error!(error = %crate::error_chain(&e), "Reading the metric store failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "store_error",
        crate::error_chain(&e),
    )
}

pub(super) fn route<S: Store>(
    api: &Arc<Api<S>>,
    r: &Request<'_>,
) -> Result<Option<Answer>, Refused> {
    let metrics = MetricStore::new(api.cmdb.store(), &api.metrics);
    let ci = || -> Result<CiId, Refused> {
        let text = r
            .query("ci")
            .ok_or_else(|| bad_request("query parameter ci is required"))?;
        text.parse()
            .map_err(|e| bad_request(format!("query parameter ci: {e}")))
    };
    let series = || {
        r.query("series")
            .ok_or_else(|| bad_request("query parameter series is required"))
    };
    // The period and the tier to read it at.
    let span = || -> Result<(Tier, i64, i64), Refused> {
        let now = now_ms();
        let to_ms = r.query_ms("to_ms")?.unwrap_or(now);
        let from_ms = r.query_ms("from_ms")?.unwrap_or(to_ms - 24 * 3_600_000);
        if from_ms >= to_ms {
            return Err(bad_request("from_ms must be before to_ms"));
        }
        let tier = match r.query("tier").unwrap_or("auto") {
            "auto" => api.metrics.finest_covering(from_ms, now),
            text => Tier::ALL
                .into_iter()
                .find(|t| t.name() == text)
                .ok_or_else(|| {
                    bad_request(format!(
                        "query parameter tier: {text:?} is not raw, 5m, 1h, 1d or auto"
                    ))
                })?,
        };
        Ok((tier, from_ms, to_ms))
    };
    let answer = match (r.method, r.segments) {
        (&Method::GET, ["v1", "metrics", "query"]) => {
            let scope = scope(r)?;
            let pattern = series()?;
            let (tier, from_ms, to_ms) = span()?;
            let found = api
                .cmdb
                .query_series(&scope, pattern, (tier, from_ms, to_ms), MAX_QUERY_SERIES, &api.metrics)
                .map_err(metric_error)?
                .map_err(|n| {
                    bad_request(format!(
                        "{n} series match; at most {MAX_QUERY_SERIES} are answered: narrow the class, service or series"
                    ))
                })?;
            json(
                StatusCode::OK,
                &QueryView {
                    tier,
                    from_ms,
                    to_ms,
                    series: found,
                },
            )
        }
        (&Method::GET, ["v1", "metrics"]) => {
            let ci = ci()?;
            let latest = metrics.latest(ci).map_err(metric_error)?;
            let series: Vec<SeriesView> = metrics
                .series_of(ci)
                .map_err(metric_error)?
                .into_iter()
                .map(|(name, m)| {
                    let last = latest.get(&name);
                    SeriesView {
                        unit: m.unit,
                        first_ms: m.first_ms,
                        last_ms: last.map(|l| l.0),
                        last_value: last.map(|l| l.1),
                        name,
                    }
                })
                .collect();
            json(
                StatusCode::OK,
                &serde_json::json!({"ci": ci, "series": series}),
            )
        }
        (&Method::GET, ["v1", "metrics", "points"]) => {
            let ci = ci()?;
            let series = series()?;
            let (tier, from_ms, to_ms) = span()?;
            let points = metrics
                .points(ci, series, tier, from_ms, to_ms)
                .map_err(metric_error)?
                .ok_or_else(|| not_found(format!("CI {ci} has no series {series:?}")))?;
            json(
                StatusCode::OK,
                &PointsView {
                    ci,
                    series: series.to_owned(),
                    unit: Unit::of(series).expect("stored series have units"),
                    tier,
                    from_ms,
                    to_ms,
                    points,
                },
            )
        }
        (&Method::GET, ["v1", "capacity-plan"]) => {
            let scope = scope(r)?;
            let days = match r.query("days") {
                None => 30,
                Some(d) => d
                    .parse::<i64>()
                    .ok()
                    .filter(|d| (1..=395).contains(d))
                    .ok_or_else(|| bad_request("query parameter days must be 1 to 395"))?,
            };
            let plan = api
                .cmdb
                .capacity_plan(&scope, days, now_ms(), &api.metrics)
                .map_err(metric_error)?;
            json(StatusCode::OK, &plan)
        }
        (&Method::GET, ["v1", "capacity-alerts"]) => json(
            StatusCode::OK,
            &api.cmdb
                .capacity_alerts()
                .map_err(|e| crate::api::store_error(&e))?,
        ),
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
