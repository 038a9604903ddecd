//! Capacity and availability as text, CSV, HTML and SVG: plans, metric
//! queries and points, availability reports.

use fathom_collector::api::{PointsView, QueryView};
use fathom_collector::availability::report::{AvailabilityReport, Downtime, MIN_COVERAGE_PCT};
use fathom_collector::capacity::alert::season_name;
use fathom_collector::capacity::plan::{CapacityPlan, PlanLine, ServiceHeadroom};
use fathom_collector::capacity::series::Unit;
use fathom_collector::capacity::store::Point;
use fathom_support::time::HOUR_MS;

use crate::output;
use crate::output::chart::{self, Chart};
use crate::output::html_escape as escape;

/// A line's current value, or its last one and when its samples stopped.
pub fn now_cell(l: &PlanLine) -> String {
    let value = format_value(l.unit, l.current);
    match l.stale_since_ms {
        Some(at) => format!("{value} (stale since {})", output::time(at)),
        None => value,
    }
}

/// One sentence per open RFC's effect on a series.
pub fn pending_changes(plan: &CapacityPlan) -> Vec<String> {
    let mut out = Vec::new();
    for l in &plan.lines {
        for e in &l.pending_changes {
            let f = |v: f64| format_value(l.unit, v);
            out.push(format!(
                "{} ({}{}): {} {} → {}: {} on {} {} → {}{}",
                e.rfc,
                e.status,
                e.window_start_ms
                    .map(|w| format!(", from {}", output::time(w)))
                    .unwrap_or_default(),
                e.attribute,
                e.from,
                e.to,
                l.series,
                l.ci_name,
                f(l.current),
                f(e.current_after),
                e.crossing_after
                    .map(|c| format!(", critical on {}", output::time(c)))
                    .unwrap_or_else(|| ", no crossing".into()),
            ));
        }
    }
    out
}

/// A service's chart: its tightest member's share of critical, hour by
/// hour, against 100 %.
pub fn service_svg(plan: &CapacityPlan, s: &ServiceHeadroom) -> String {
    let from_ms = s.utilisation.first().map_or(plan.from_ms, |p| p.0);
    let value = |v: f64| format!("{v:.0}%");
    Chart {
        lines: vec![chart::Line {
            points: &s.utilisation,
            class: "service",
            colour: "#2c6fbb",
            dashed: false,
        }],
        levels: vec![chart::Level {
            value: 100.0,
            label: "critical",
            colour: "#c0392b",
        }],
        markers: Vec::new(),
        from_ms,
        to_ms: plan.generated_ms.max(from_ms + 3_600_000),
        value: &value,
        ceiling: None,
    }
    .svg()
}

/// One series' chart: its means (5-minute ones for a short history,
/// hourly otherwise), warning and critical levels, the trend and the
/// seasonal forecast ahead, and where they reach critical. The time axis
/// runs from the first mean to as far ahead as there is history behind
/// (at least a quarter of an hour, at most the plan's horizon), and on to a crossing
/// within the horizon.
pub fn plan_svg(plan: &CapacityPlan, l: &PlanLine) -> String {
    let data = if l.recent.is_empty() {
        &l.hourly
    } else {
        &l.recent
    };
    let now = plan.generated_ms;
    let from_ms = data
        .first()
        .map_or(now - HOUR_MS, |p| p.0)
        .min(now - HOUR_MS / 4);
    let ahead = (now - from_ms).clamp(HOUR_MS / 4, plan.horizon_ms.max(HOUR_MS));
    let horizon_end = now + plan.horizon_ms;
    let crossings: Vec<i64> = [l.crossing.map(|c| c.0), l.seasonal_crossing]
        .into_iter()
        .flatten()
        .filter(|c| *c <= horizon_end)
        .collect();
    let to_ms = crossings
        .iter()
        .map(|c| c + (c - from_ms) / 20)
        .fold(now + ahead, i64::max)
        .min(horizon_end.max(now + HOUR_MS / 4));
    let trend: Vec<(i64, f64)> = l
        .trend_per_day
        .map(|slope| {
            let days = (to_ms - now) as f64 / 86_400_000.0;
            vec![(now, l.current), (to_ms, l.current + slope * days)]
        })
        .unwrap_or_default();
    let unit = l.unit;
    let value = move |v: f64| format_value(unit, v);
    let (warning, critical) = (
        format!("warning {}", format_value(unit, l.warning)),
        format!("critical {}", format_value(unit, l.critical)),
    );
    let mut markers = vec![chart::Marker {
        at_ms: now,
        label: "now",
        colour: "#777",
    }];
    if let Some(c) = l.crossing {
        markers.push(chart::Marker {
            at_ms: c.0,
            label: "trend reaches critical",
            colour: "#c0392b",
        });
    }
    if let Some(c) = l.seasonal_crossing {
        markers.push(chart::Marker {
            at_ms: c,
            label: "peaks reach critical",
            colour: "#8e44ad",
        });
    }
    Chart {
        lines: vec![
            chart::Line {
                points: data,
                class: "series",
                colour: "#2c6fbb",
                dashed: false,
            },
            chart::Line {
                points: &trend,
                class: "trend",
                colour: "#555",
                dashed: true,
            },
            chart::Line {
                points: &l.seasonal_forecast,
                class: "forecast",
                colour: "#8e44ad",
                dashed: true,
            },
        ],
        levels: vec![
            chart::Level {
                value: l.warning,
                label: &warning,
                colour: "#e69500",
            },
            chart::Level {
                value: l.critical,
                label: &critical,
                colour: "#c0392b",
            },
        ],
        markers,
        from_ms,
        to_ms,
        value: &value,
        ceiling: (unit == Unit::Percent).then_some(100.0),
    }
    .svg()
}

/// The availability report as one self-contained HTML page: the figures,
/// and a timeline with a row for agreed hours, the service and each member.
pub fn availability_html(r: &AvailabilityReport) -> String {
    const W: f64 = 900.0;
    const ROW: f64 = 22.0;
    const LABEL: f64 = 180.0;
    let span = (r.to_ms - r.from_ms).max(1) as f64;
    let x = |t: i64| LABEL + (t - r.from_ms) as f64 / span * (W - LABEL);
    let rows: Vec<(String, &[Downtime], &str)> =
        std::iter::once(("agreed hours".to_owned(), &r.agreed[..], "#cfe3cf"))
            .chain(std::iter::once((
                r.name.clone(),
                &r.downtime[..],
                "#c0392b",
            )))
            .chain(r.members.iter().map(|m| {
                (
                    format!("{} ({})", m.name, m.role),
                    &m.downtime[..],
                    "#e67e22",
                )
            }))
            .collect();
    let height = ROW * rows.len() as f64 + 20.0;
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {W} {height}' width='{W}' height='{height}' role='img'>"
    );
    for (i, (label, spans, colour)) in rows.iter().enumerate() {
        let y = i as f64 * ROW;
        svg.push_str(&format!(
            "<text x='0' y='{:.1}' font-size='12'>{}</text><rect x='{LABEL}' y='{:.1}' width='{:.1}' height='{:.1}' fill='#f4f4f4'/>",
            y + 15.0,
            escape(label),
            y + 3.0,
            W - LABEL,
            ROW - 6.0
        ));
        for d in spans.iter() {
            let (a, b) = (x(d.start_ms), x(d.end_ms));
            svg.push_str(&format!(
                "<rect x='{a:.2}' y='{:.1}' width='{:.2}' height='{:.1}' fill='{colour}'><title>{} – {}</title></rect>",
                y + 3.0,
                (b - a).max(0.5),
                ROW - 6.0,
                output::time(d.start_ms),
                output::time(d.end_ms)
            ));
        }
    }
    svg.push_str(&format!(
        "<text x='{LABEL}' y='{:.1}' font-size='11'>{}</text><text x='{W}' y='{:.1}' font-size='11' text-anchor='end'>{}</text></svg>",
        height - 4.0,
        output::time(r.from_ms),
        height - 4.0,
        output::time(r.to_ms)
    ));
    let pct = |p: Option<f64>| p.map_or_else(|| "-".into(), |p| format!("{p:.3}%"));
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Availability</title>\
         <style>body{font:14px sans-serif;margin:2em;color:#222}td,th{padding:2px 8px;text-align:left}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>Availability of {} ({})</h1><p>{} to {} ({})</p><table>\
         <tr><th>Agreed hours</th><td>{}</td></tr><tr><th>Monitored</th><td>{}</td></tr><tr><th>Availability</th><td>{}</td></tr>\
         <tr><th>Target</th><td>{}</td></tr><tr><th>Unplanned downtime</th><td>{} in {} outage(s)</td></tr>\
         <tr><th>Planned downtime (not counted)</th><td>{}</td></tr><tr><th>MTRS / MTBF</th><td>{} / {}</td></tr></table>",
        escape(&r.name),
        r.ci,
        output::time(r.from_ms),
        output::time(r.to_ms),
        escape(&r.timezone),
        hours(r.agreed_ms),
        escape(&coverage(r)),
        pct(r.availability_pct),
        match (r.target_pct, r.target_met) {
            (Some(t), Some(met)) => format!("{t}%: {}", if met { "met" } else { "not met" }),
            (Some(t), None) => format!("{t}%: not judged"),
            _ => "-".into(),
        },
        hours(r.down_ms),
        r.outages,
        hours(r.planned_ms),
        r.mtrs_ms.map_or_else(|| "-".into(), hours),
        r.mtbf_ms.map_or_else(|| "-".into(), hours),
    ));
    html.push_str("<h2>Timeline</h2><p>Green: agreed hours. Red: the service's downtime within them. Orange: each member's own.</p>");
    html.push_str(&svg);
    html.push_str("</body></html>\n");
    html
}

/// The plan as one self-contained HTML page (no scripts, no fetches).
pub fn plan_html(plan: &CapacityPlan) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Capacity plan</title>\
         <style>body{font:14px sans-serif;margin:2em;color:#222}table{border-collapse:collapse}\
         td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}h2{margin-top:2em;font-size:16px}\
         .legend{color:#666}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>Capacity plan</h1><p>Generated {} over the {} days before; forecasts to {} ahead.</p>",
        output::time(plan.generated_ms),
        (plan.generated_ms - plan.from_ms) / 86_400_000,
        format_args!("{} days", plan.horizon_ms / 86_400_000)
    ));
    if let Some(s) = &plan.service {
        html.push_str(&format!(
            "<p>Service <b>{}</b> ({}), {} CIs it depends on.</p>\
             <h2>The service's tightest member, hour by hour</h2>\
             <p class=\"legend\">The highest use among its members' series, as a share of each one's critical level (red: 100 %).</p>{}",
            escape(&s.name),
            s.service,
            s.members,
            service_svg(plan, s)
        ));
    }
    html.push_str("<p class=\"legend\">Blue: the means (5-minute ones while there are less than two days of data, hourly after). Dashed orange and red: warning and critical. Dotted grey: the trend from now to the horizon; dotted purple: the daily or weekly forecast, where it fits better than the trend. Grey: now; red: when a forecast reaches critical.</p>");
    html.push_str("<table><tr><th>CI</th><th>Series</th><th>Now</th><th>p95</th><th>Critical</th><th>Headroom</th><th>Reaches critical</th></tr>");
    for l in &plan.lines {
        let f = |v: f64| format_value(l.unit, v);
        html.push_str(&format!(
            "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            l.ci,
            escape(&l.ci_name),
            escape(&l.series),
            escape(&now_cell(l)),
            l.p95.map_or_else(|| "-".into(), f),
            f(l.critical),
            f(l.headroom),
            match (l.crossing, l.seasonal_crossing) {
                (Some(c), Some(p)) => format!("{} (peaks {})", output::time(c.0), output::time(p)),
                (Some(c), None) => output::time(c.0),
                (None, Some(p)) => format!("peaks {}", output::time(p)),
                (None, None) => "-".into(),
            },
        ));
    }
    html.push_str("</table>");
    let pending = pending_changes(plan);
    if !pending.is_empty() {
        html.push_str("<h2>Pending changes</h2><ul>");
        for line in pending {
            html.push_str(&format!("<li>{}</li>", escape(&line)));
        }
        html.push_str("</ul>");
    }
    for l in &plan.lines {
        html.push_str(&format!(
            "<h2>{} on {} ({})</h2>{}",
            escape(&l.series),
            escape(&l.ci_name),
            l.ci,
            plan_svg(plan, l)
        ));
    }
    html.push_str("</body></html>\n");
    html
}

/// A point's CSV columns.
pub const POINT_FIELDS: [&str; 6] = ["time", "count", "min", "mean", "max", "p95"];

pub fn point_fields(p: &Point) -> [String; 6] {
    [
        output::rfc3339(p.at_ms),
        p.count.to_string(),
        p.min.to_string(),
        p.mean.to_string(),
        p.max.to_string(),
        p.p95.to_string(),
    ]
}

/// A query across CIs as a table, highest p95 first.
pub fn describe_query(view: &QueryView) -> String {
    if view.series.is_empty() {
        return "No series match.\n".into();
    }
    struct Row<'a> {
        s: &'a fathom_collector::capacity::plan::SeriesPoints,
        min: f64,
        mean: f64,
        p95: f64,
        max: f64,
    }
    let mut rows: Vec<Row<'_>> = view
        .series
        .iter()
        .map(|s| {
            let n: i64 = s.points.iter().map(|p| p.count).sum();
            let mut means: Vec<f64> = s.points.iter().map(|p| p.mean).collect();
            means.sort_by(f64::total_cmp);
            Row {
                s,
                min: s.points.iter().map(|p| p.min).fold(f64::NAN, f64::min),
                mean: s
                    .points
                    .iter()
                    .map(|p| p.mean * p.count as f64)
                    .sum::<f64>()
                    / n.max(1) as f64,
                p95: if means.is_empty() {
                    f64::NAN
                } else {
                    fathom_collector::capacity::rollup::percentile_f64(&means, 95.0)
                },
                max: s.points.iter().map(|p| p.max).fold(f64::NAN, f64::max),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.p95.total_cmp(&a.p95));
    let value = |unit: Unit, v: f64| {
        if v.is_nan() {
            "-".into()
        } else {
            format_value(unit, v)
        }
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.s.ci.to_string(),
                r.s.ci_name.clone(),
                r.s.series.clone(),
                r.s.points.len().to_string(),
                value(r.s.unit, r.min),
                value(r.s.unit, r.mean),
                value(r.s.unit, r.p95),
                value(r.s.unit, r.max),
                r.s.points
                    .last()
                    .map_or_else(|| "-".into(), |p| value(r.s.unit, p.mean)),
            ]
        })
        .collect();
    format!(
        "{} series at tier {}, {} to {}\n{}",
        view.series.len(),
        view.tier.name(),
        output::time(view.from_ms),
        output::time(view.to_ms),
        output::table(
            &["CI", "NAME", "SERIES", "POINTS", "MIN", "MEAN", "P95", "MAX", "LAST"],
            &table
        )
    )
}

/// The plan as CSV: one line per CI and series.
pub fn write_plan_csv(plan: &CapacityPlan, to: impl std::io::Write) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_writer(to);
    out.write_record([
        "ci",
        "name",
        "series",
        "current",
        "p95",
        "peak",
        "warning",
        "critical",
        "headroom",
        "trend_per_day",
        "critical_at",
        "critical_earliest",
        "critical_latest",
        "peaks_critical_at",
        "season",
        "linear_rmse",
        "seasonal_rmse",
        "stale_since",
    ])?;
    let opt = |v: Option<f64>| v.map(number).unwrap_or_default();
    let time = |v: Option<i64>| v.map(output::rfc3339).unwrap_or_default();
    for l in &plan.lines {
        out.write_record([
            l.ci.to_string(),
            l.ci_name.clone(),
            l.series.clone(),
            number(l.current),
            opt(l.p95),
            opt(l.peak),
            number(l.warning),
            number(l.critical),
            number(l.headroom),
            opt(l.trend_per_day),
            time(l.crossing.map(|c| c.0)),
            time(l.crossing.map(|c| c.1)),
            time(l.crossing.and_then(|c| c.2)),
            time(l.seasonal_crossing),
            season(l).into(),
            opt(l.linear_rmse),
            opt(l.seasonal_rmse),
            time(l.stale_since_ms),
        ])?;
    }
    out.flush()?;
    Ok(())
}

/// A measured value for CSV: four decimals at most, no float noise
/// (`20.63`, not `20.629999999999995`).
pub fn number(v: f64) -> String {
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.to_owned()
    }
}

/// What explains a series' shape: `daily` or `weekly` where that
/// Holt-Winters' error is under half the line's, else `none`.
pub fn season(l: &PlanLine) -> &'static str {
    match (l.seasonal_rmse, l.linear_rmse) {
        (Some(s), Some(lin)) if s * 2.0 < lin => season_name(l.season_hours),
        (Some(_), Some(_)) => "none",
        _ => "-",
    }
}

pub fn hours(ms: i64) -> String {
    format!("{:.2} h", ms as f64 / 3_600_000.0)
}

/// How much of the agreed time was monitored, and whether the figure
/// means anything: "0.10 h of 720.00 h (0.0 %): too little to be meaningful".
pub fn coverage(r: &AvailabilityReport) -> String {
    let share = r
        .coverage_pct
        .map_or_else(String::new, |c| format!(" ({c:.1} %)"));
    let verdict = if r.meaningful {
        String::new()
    } else {
        format!(
            ": under {MIN_COVERAGE_PCT} %, the figure is not meaningful and the target not judged"
        )
    };
    format!(
        "{} of {}{share}{verdict}",
        hours(r.monitored_ms),
        hours(r.agreed_ms)
    )
}

pub fn describe_availability(r: &AvailabilityReport) -> String {
    let pct = |p: Option<f64>| p.map_or_else(|| "-".into(), |p| format!("{p:.3}%"));
    let mut out = format!(
        "{} ({}, {}) from {} to {}\n",
        r.name,
        r.ci,
        r.class,
        output::time(r.from_ms),
        output::time(r.to_ms)
    );
    out.push_str(&format!(
        "agreed hours   {} ({})\n",
        hours(r.agreed_ms),
        r.timezone
    ));
    out.push_str(&format!("monitored      {}\n", coverage(r)));
    out.push_str(&format!("availability   {}", pct(r.availability_pct)));
    match (r.target_pct, r.target_met) {
        (Some(t), Some(true)) => out.push_str(&format!("  target {t}%: met\n")),
        (Some(t), Some(false)) => out.push_str(&format!("  target {t}%: NOT MET\n")),
        (Some(t), None) => out.push_str(&format!("  target {t}%: not judged\n")),
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
                    m.coverage_pct
                        .map_or_else(|| "-".into(), |c| format!("{c:.1}%")),
                ]
            })
            .collect();
        out.push_str(&output::table(
            &["CI", "NAME", "ROLE", "AVAILABILITY", "MONITORED"],
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
                    output::time(d.start_ms),
                    output::time(d.end_ms),
                    hours(d.end_ms - d.start_ms),
                ]
            })
            .collect();
        out.push_str(&output::table(&["START", "END", "LENGTH"], &rows));
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

pub fn scaled(mut v: f64, step: f64, names: &[&str]) -> String {
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

pub fn describe_points(view: &PointsView) -> String {
    let mut out = format!(
        "{} on CI {}, {} to {}, {} points at {}\n",
        view.series,
        view.ci,
        output::time(view.from_ms),
        output::time(view.to_ms),
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
                output::time(p.at_ms),
                p.count.to_string(),
                f(p.min),
                f(p.mean),
                f(p.max),
                f(p.p95),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &["TIME", "SAMPLES", "MIN", "MEAN", "MAX", "P95"],
        &rows,
    ));
    out
}

/// `capacity plan` as text: the service's summary when the plan is for a
/// service, a line per series with a threshold, and the pending changes.
pub fn plan_text(plan: &CapacityPlan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let days_to = |at: i64| format!("{:.0} d", (at - plan.generated_ms) as f64 / 86_400_000.0);
    let cells = |l: &PlanLine| {
        let f = |v: f64| format_value(l.unit, v);
        vec![
            l.ci.to_string(),
            l.ci_name.clone(),
            l.series.clone(),
            now_cell(l),
            l.p95.map_or_else(|| "-".into(), f),
            l.peak.map_or_else(|| "-".into(), f),
            format!("{}/{}", f(l.warning), f(l.critical)),
            f(l.headroom),
            l.trend_per_day
                .map_or_else(|| "-".into(), |t| format!("{}/d", f(t))),
            {
                let trend = l.crossing.map_or_else(
                    || "-".into(),
                    |(at, earliest, latest)| match latest {
                        Some(latest) => format!(
                            "{} ({}–{})",
                            days_to(at),
                            days_to(earliest),
                            days_to(latest)
                        ),
                        None => format!("{} (≥ {})", days_to(at), days_to(earliest)),
                    },
                );
                match l.seasonal_crossing {
                    Some(peaks) => format!("{trend}; peaks {}", days_to(peaks)),
                    None => trend,
                }
            },
            season(l).into(),
        ]
    };
    if let Some(s) = &plan.service {
        let _ = writeln!(
            out,
            "Service {} ({}), {} CIs it depends on.",
            s.name, s.service, s.members
        );
        if let Some((ci, series, headroom)) = &s.tightest {
            let unit = plan
                .lines
                .iter()
                .find(|l| l.ci == *ci && l.series == *series)
                .map_or(Unit::Percent, |l| l.unit);
            let _ = writeln!(
                out,
                "Tightest: {series} on {ci}, {} to critical.",
                format_value(unit, *headroom)
            );
        }
        if let Some((ci, series, at)) = &s.soonest_crossing {
            let _ = writeln!(
                out,
                "Soonest forecast crossing: {series} on {ci} in {}.",
                days_to(*at)
            );
        }
        out.push('\n');
    }
    if plan.lines.is_empty() {
        out.push_str("No series with a threshold in this scope.\n");
    } else {
        let rows: Vec<Vec<String>> = plan.lines.iter().map(cells).collect();
        out.push_str(&output::table(
            &[
                "CI",
                "NAME",
                "SERIES",
                "NOW",
                "P95",
                "PEAK",
                "WARN/CRIT",
                "HEADROOM",
                "TREND",
                "CRITICAL IN",
                "SEASON",
            ],
            &rows,
        ));
    }
    let pending = pending_changes(plan);
    if !pending.is_empty() {
        out.push_str("\npending changes\n");
        for line in pending {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// `availability report --csv`: one line per stretch of downtime.
pub fn availability_csv(report: &AvailabilityReport) -> anyhow::Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["start", "end", "seconds"])?;
    for d in &report.downtime {
        out.write_record([
            output::rfc3339(d.start_ms),
            output::rfc3339(d.end_ms),
            ((d.end_ms - d.start_ms) / 1000).to_string(),
        ])?;
    }
    Ok(String::from_utf8(out.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fathom_collector::capacity::plan::{CapacityPlan, PlanLine};

    const DAY: i64 = 86_400_000;

    /// A plan of one line: /var filling 1 %/day, a pending RFC doubling it.
    pub(super) fn plan_of_one_line() -> CapacityPlan {
        let day = DAY;
        let line = PlanLine {
            ci: "ci-3".parse().unwrap(),
            ci_name: "web<1>".into(),
            class: "server".into(),
            series: "fs.used_pct:/var".into(),
            unit: Unit::Percent,
            current: 64.0,
            p95: Some(63.5),
            p99: Some(63.9),
            peak: Some(64.0),
            warning: 80.0,
            critical: 90.0,
            headroom: 26.0,
            severity: None,
            trend_per_day: Some(1.0),
            crossing: Some((40 * day, 38 * day, Some(42 * day))),
            linear_rmse: Some(0.3),
            season_hours: Some(168),
            seasonal_rmse: Some(0.1),
            seasonal_crossing: Some(35 * day),
            // Daily points of a weekly forecast, reaching 90 on day 35.
            seasonal_forecast: (17..=46)
                .map(|d| (d * day, 64.0 + (d - 16) as f64 * 1.4))
                .collect(),
            hourly: (0..48)
                .map(|h| (14 * day + h * 3_600_000, 62.0 + h as f64 / 24.0))
                .collect(),
            stale_since_ms: None,
            recent: Vec::new(),
            pending_changes: vec![fathom_collector::capacity::plan::RfcEffect {
                rfc: "RFC-4".parse().unwrap(),
                title: "grow /var".into(),
                status: "scheduled".into(),
                window_start_ms: Some(20 * day),
                attribute: "storage./var.size_bytes".into(),
                from: 1e11,
                to: 2e11,
                current_after: 32.0,
                headroom_after: 58.0,
                crossing_after: None,
            }],
        };
        CapacityPlan {
            generated_ms: 16 * day,
            from_ms: 2 * day,
            horizon_ms: 30 * day,
            lines: vec![line],
            service: None,
        }
    }

    /// The points of the polyline of class `class` in a page.
    fn polyline(html: &str, class: &str) -> Vec<(f64, f64)> {
        html.split(&format!("class='{class}'"))
            .nth(1)
            .and_then(|rest| rest.split("points='").nth(1))
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no {class} polyline"))
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn the_csv_plan_has_a_column_for_every_field_it_writes() {
        let mut plan = plan_of_one_line();
        plan.lines[0].headroom = 20.629999999999995;
        let mut bytes = Vec::new();
        write_plan_csv(&plan, &mut bytes).unwrap();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header = reader.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), header.len());
        let get = |name: &str| {
            let i = header.iter().position(|h| h == name).unwrap();
            rows[0][i].to_owned()
        };
        assert_eq!(get("series"), "fs.used_pct:/var");
        assert_eq!(get("critical_at"), output::rfc3339(40 * DAY));
        assert_eq!(get("peaks_critical_at"), output::rfc3339(35 * DAY));
        assert_eq!(get("season"), "weekly", "error a third of the line's");
        assert_eq!(get("seasonal_rmse"), "0.1");
        assert_eq!(get("headroom"), "20.63", "no float noise");
        assert_eq!(get("current"), "64");
    }

    #[test]
    fn the_html_plan_is_self_contained_with_a_chart_per_series() {
        let plan = plan_of_one_line();
        let html = plan_html(&plan);
        assert!(html.starts_with("<!doctype html>"));
        assert_eq!(html.matches("<svg").count(), 1);
        assert!(!html.contains("<script") && !html.contains("http-equiv"));
        assert!(html.contains("web&lt;1&gt;") && !html.contains("web<1>"));
        assert!(html.contains("Pending changes") && html.contains("RFC-4 (scheduled"));
        assert!(html.contains("64.0% → 32.0%"), "{html}");
        // 48 hourly points in the polyline, inside the plot area.
        let inside = |(x, y): &(f64, f64)| {
            (chart::LEFT..=chart::WIDTH - chart::RIGHT).contains(x)
                && (chart::TOP..=chart::HEIGHT - chart::BOTTOM).contains(y)
        };
        let xy = polyline(&html, "series");
        assert_eq!(xy.len(), 48);
        assert!(xy.iter().all(inside), "{xy:?}");
        // Later points are higher (smaller y), as the values grow.
        assert!(xy[47].1 < xy[0].1);
        // Labelled axes: times and values in the series' unit.
        assert!(html.contains("class='x-label'") && html.contains("class='y-label'"));
        assert!(
            html.contains(">100%</text>") || html.contains(">100.0%</text>"),
            "{html}"
        );
        assert!(html.contains("critical 90.0%") && html.contains("trend reaches critical"));
        // The forecast, dotted, from now on to just past where the trend
        // reaches critical (day 40), inside the plot.
        let forecast = polyline(&html, "forecast");
        assert_eq!(forecast.len(), 25, "days 17 to 41");
        assert!(forecast.iter().all(inside));
        assert!(forecast[24].1 < forecast[0].1, "rising");

        // A service's plan has its own chart: one point per hour.
        let mut plan = plan;
        plan.service = Some(ServiceHeadroom {
            service: "ci-9".parse().unwrap(),
            name: "shop".into(),
            members: 1,
            tightest: None,
            soonest_crossing: None,
            utilisation: (0..48)
                .map(|h| (14 * DAY + h * 3_600_000, 70.0 + h as f64 / 2.0))
                .collect(),
        });
        let html = plan_html(&plan);
        let service = polyline(&html, "service");
        assert_eq!(service.len(), 48);
        assert!(service.iter().all(inside));
        assert_eq!(html.matches("<svg").count(), 2);
    }

    /// The share of the plot's width a polyline covers.
    fn width_share(points: &[(f64, f64)]) -> f64 {
        let xs = points.iter().map(|p| p.0);
        let (lo, hi) = (
            xs.clone().fold(f64::MAX, f64::min),
            xs.fold(f64::MIN, f64::max),
        );
        (hi - lo) / (chart::WIDTH - chart::LEFT - chart::RIGHT)
    }

    #[test]
    fn charts_are_readable_with_an_hour_of_data_and_with_a_year() {
        const HOUR: i64 = 3_600_000;
        let now = 400 * DAY;
        let line = |hourly: Vec<(i64, f64)>, recent: Vec<(i64, f64)>| PlanLine {
            trend_per_day: None,
            crossing: None,
            seasonal_crossing: None,
            seasonal_forecast: Vec::new(),
            hourly,
            recent,
            pending_changes: Vec::new(),
            ..plan_of_one_line().lines.remove(0)
        };
        let plan = |line: PlanLine| CapacityPlan {
            generated_ms: now,
            from_ms: now - 30 * DAY,
            horizon_ms: 30 * DAY,
            lines: vec![line],
            service: None,
        };
        // An hour old: twelve 5-minute means, one hourly one.
        let fives: Vec<(i64, f64)> = (0..12)
            .map(|i| (now - HOUR + i * 300_000, 20.0 + i as f64))
            .collect();
        let html = plan_html(&plan(line(vec![(now - HOUR, 25.0)], fives)));
        let series = polyline(&html, "series");
        assert_eq!(series.len(), 12);
        assert!(width_share(&series) > 0.4, "{series:?}");
        let times: Vec<&str> = html
            .split("class='x-label'")
            .skip(1)
            .filter_map(|s| s.split('>').nth(1)?.split('<').next())
            .collect();
        assert!(
            times.len() >= 4 && times.iter().all(|t| t.contains(':')),
            "{times:?}"
        );

        // A year of hourly means.
        let year: Vec<(i64, f64)> = (0..365 * 24)
            .map(|h| (now - 365 * DAY + h * HOUR, 40.0 + (h % 24) as f64))
            .collect();
        let html = plan_html(&plan(line(year, Vec::new())));
        let series = polyline(&html, "series");
        assert_eq!(series.len(), 365 * 24);
        assert!(width_share(&series) > 0.8, "{}", width_share(&series));
        assert!(
            html.contains("2026-") || html.contains("1971-"),
            "dated ticks"
        );
    }

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
