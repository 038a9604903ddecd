//! Time-series charts as self-contained SVG, for the HTML reports: labelled
//! time and value axes, a range fitted to the data and what is forecast,
//! so an hour of data fills the chart as a year does.
//!
//! The caller gives series, levels, markers and how to write a value; this
//! module only draws.

use std::fmt::Write;

use crate::output::html_escape as escape;
use fathom_support::time::{DAY_MS, HOUR_MS};

/// A line to draw: its points (Unix ms, value), CSS class and colour.
#[derive(Debug)]
pub struct Line<'a> {
    pub points: &'a [(i64, f64)],
    pub class: &'a str,
    pub colour: &'a str,
    pub dashed: bool,
}

/// A horizontal level (warning, critical) with its label.
#[derive(Debug)]
pub struct Level<'a> {
    pub value: f64,
    pub label: &'a str,
    pub colour: &'a str,
}

/// A vertical marker (now, a crossing) with its label.
#[derive(Debug)]
pub struct Marker<'a> {
    pub at_ms: i64,
    pub label: &'a str,
    pub colour: &'a str,
}

pub struct Chart<'a> {
    pub lines: Vec<Line<'a>>,
    pub levels: Vec<Level<'a>>,
    pub markers: Vec<Marker<'a>>,
    /// The time span shown; the caller fits it to the data and forecast.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Writes a value for the y axis.
    pub value: &'a dyn Fn(f64) -> String,
    /// The most the value axis needs to show (100 for a percentage).
    pub ceiling: Option<f64>,
}

impl std::fmt::Debug for Chart<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chart")
            .field("lines", &self.lines)
            .field("from_ms", &self.from_ms)
            .field("to_ms", &self.to_ms)
            .finish_non_exhaustive()
    }
}

pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 220.0;
/// The plot area inside the axes' labels.
pub const LEFT: f64 = 70.0;
pub const RIGHT: f64 = 12.0;
pub const TOP: f64 = 10.0;
pub const BOTTOM: f64 = 34.0;

impl Chart<'_> {
    pub fn svg(&self) -> String {
        let (from, to) = (self.from_ms, self.to_ms.max(self.from_ms + 60_000));
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let values = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .chain(self.levels.iter().map(|l| l.value));
        let high = values.fold(0.0_f64, f64::max);
        let (top, step) = match self.ceiling {
            Some(c) if high <= c => nice_axis(c),
            _ => nice_axis(high * 1.08),
        };
        let x = |t: i64| LEFT + (t - from) as f64 / (to - from) as f64 * plot_w;
        let y = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {HEIGHT}' width='{WIDTH}' height='{HEIGHT}' role='img' font-family='sans-serif' font-size='11'>\
             <rect class='plot' x='{LEFT}' y='{TOP}' width='{plot_w}' height='{plot_h}' fill='#fafafa' stroke='#bbb'/>"
        );
        // Value axis: gridlines and labels.
        let mut v = 0.0;
        while v <= top + step / 2.0 {
            let _ = write!(
                svg,
                "<line x1='{LEFT}' x2='{0:.1}' y1='{1:.1}' y2='{1:.1}' stroke='#e4e4e4'/>\
                 <text class='y-label' x='{2:.1}' y='{3:.1}' text-anchor='end'>{4}</text>",
                WIDTH - RIGHT,
                y(v),
                LEFT - 6.0,
                y(v) + 4.0,
                escape(&(self.value)(v))
            );
            v += step;
        }
        // Time axis: ticks at round times, labelled.
        // A label too near the right edge would be cut off.
        let last_x = WIDTH - RIGHT - 30.0;
        for (at, label) in time_ticks(from, to)
            .into_iter()
            .filter(|(at, _)| x(*at) <= last_x)
        {
            let _ = write!(
                svg,
                "<line x1='{0:.1}' x2='{0:.1}' y1='{TOP}' y2='{1:.1}' stroke='#e4e4e4'/>\
                 <text class='x-label' x='{0:.1}' y='{2:.1}' text-anchor='middle'>{3}</text>",
                x(at),
                TOP + plot_h,
                HEIGHT - BOTTOM + 15.0,
                escape(&label)
            );
        }
        for l in &self.levels {
            let _ = write!(
                svg,
                "<line class='level' x1='{LEFT}' x2='{0:.1}' y1='{1:.1}' y2='{1:.1}' stroke='{2}' stroke-dasharray='4 3'/>\
                 <text x='{3:.1}' y='{4:.1}' fill='{2}'>{5}</text>",
                WIDTH - RIGHT,
                y(l.value),
                l.colour,
                LEFT + 4.0,
                y(l.value) - 3.0,
                escape(l.label)
            );
        }
        for line in &self.lines {
            let points: Vec<String> = line
                .points
                .iter()
                .filter(|p| p.0 >= from && p.0 <= to)
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let dash = if line.dashed {
                " stroke-dasharray='3 3'"
            } else {
                ""
            };
            let _ = write!(
                svg,
                "<polyline class='{}' data-count='{}' fill='none' stroke='{}' stroke-width='1.4'{dash} points='{}'/>",
                line.class,
                points.len(),
                line.colour,
                points.join(" ")
            );
            // A lone point is no line: mark it.
            if let [only] = points.as_slice() {
                let (px, py) = only.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    svg,
                    "<circle cx='{px}' cy='{py}' r='2.5' fill='{}'/>",
                    line.colour
                );
            }
        }
        for m in &self.markers {
            if m.at_ms < from || m.at_ms > to {
                continue;
            }
            let _ = write!(
                svg,
                "<line class='marker' x1='{0:.1}' x2='{0:.1}' y1='{TOP}' y2='{1:.1}' stroke='{2}'/>\
                 <text x='{3:.1}' y='{4:.1}' fill='{2}'>{5}</text>",
                x(m.at_ms),
                TOP + plot_h,
                m.colour,
                x(m.at_ms) + 3.0,
                TOP + 11.0,
                escape(m.label)
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

/// A round top for the value axis and its step: 0–87 becomes 0–100 by 20.
pub fn nice_axis(high: f64) -> (f64, f64) {
    if !(high.is_finite() && high > 0.0) {
        return (1.0, 0.25);
    }
    let rough = high / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    ((high / step).ceil() * step, step)
}

/// Tick times and labels for a span: minutes for an hour, hours for a
/// day, days for weeks, months for a year; about four to ten ticks.
pub fn time_ticks(from_ms: i64, to_ms: i64) -> Vec<(i64, String)> {
    let span = to_ms - from_ms;
    let steps = [
        (10 * 60_000, "%H:%M"),
        (15 * 60_000, "%H:%M"),
        (30 * 60_000, "%H:%M"),
        (HOUR_MS, "%H:%M"),
        (3 * HOUR_MS, "%H:%M"),
        (6 * HOUR_MS, "%m-%d %H:%M"),
        (12 * HOUR_MS, "%m-%d %H:%M"),
        (DAY_MS, "%m-%d"),
        (2 * DAY_MS, "%m-%d"),
        (7 * DAY_MS, "%m-%d"),
        (14 * DAY_MS, "%m-%d"),
        (30 * DAY_MS, "%Y-%m-%d"),
        (61 * DAY_MS, "%Y-%m-%d"),
        (91 * DAY_MS, "%Y-%m-%d"),
        (182 * DAY_MS, "%Y-%m-%d"),
        (365 * DAY_MS, "%Y-%m-%d"),
    ];
    let (step, format) = steps
        .iter()
        .copied()
        .find(|(s, _)| span / s <= 9)
        .unwrap_or((span / 6 + 1, "%Y-%m-%d"));
    let mut at = (from_ms.div_euclid(step) + 1) * step;
    let mut ticks = Vec::new();
    while at < to_ms {
        let label = jiff::Timestamp::from_millisecond(at)
            .map(|t| t.strftime(format).to_string())
            .unwrap_or_default();
        ticks.push((at, label));
        at += step;
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_axes_are_round() {
        assert_eq!(nice_axis(87.0), (100.0, 20.0));
        assert_eq!(nice_axis(9.5), (10.0, 2.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
        let (top, step) = nice_axis(3.3e9);
        assert!(
            top >= 3.3e9 && step > 0.0 && top / step <= 6.0,
            "{top} {step}"
        );
    }

    #[test]
    fn time_ticks_suit_the_span() {
        let noon = 1_795_435_200_000; // 2026-11-23 12:00 UTC
        let hour = time_ticks(noon, noon + HOUR_MS);
        assert!((4..=9).contains(&hour.len()), "{hour:?}");
        assert_eq!(hour[0].1, "12:10");
        let year = time_ticks(noon - 365 * DAY_MS, noon + 30 * DAY_MS);
        assert!((4..=9).contains(&year.len()), "{year:?}");
        assert!(year[0].1.starts_with("2025-"), "{year:?}");
    }
}
