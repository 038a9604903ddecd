//! Agreed service hours: when a service is meant to be available, as a
//! weekly schedule in the service's time zone with dated exceptions
//! (holidays closed, a Saturday opened). Availability counts only the time
//! inside them.
//!
//! Written as text, one rule per entry: `mon-fri 08:00-18:00`,
//! `sat 09:00-12:30`, `daily 00:00-24:00`, `mon,wed,fri 07:00-19:00`;
//! exceptions as `2026-12-25 closed` or `2026-12-24 08:00-12:00`. Times are
//! wall-clock times in the zone, so `08:00-18:00` is ten hours on most
//! days and stays 08:00 to 18:00 local across daylight-saving changes; a
//! window over the change itself is as long as the clock says (01:00-04:00
//! is two hours on the spring-forward night in Paris, four in the autumn).

use std::collections::BTreeMap;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::timeline::Timeline;

/// A daily window, wall clock; `end` 24:00 is `None` (midnight after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Time,
    pub end: Option<Time>,
}

#[derive(Debug, Clone)]
pub struct ServiceHours {
    pub zone: TimeZone,
    /// Monday first.
    pub week: [Vec<Window>; 7],
    /// A date's own windows (empty: closed that day), instead of its
    /// weekday's.
    pub exceptions: BTreeMap<Date, Vec<Window>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HoursError {
    #[error("unknown time zone {0:?}")]
    Zone(String),
    #[error("{0:?} is not a rule like \"mon-fri 08:00-18:00\"")]
    Rule(String),
    #[error("{0:?} is not an exception like \"2026-12-25 closed\" or \"2026-12-24 08:00-12:00\"")]
    Exception(String),
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(name: &str) -> Option<usize> {
    DAYS.iter().position(|d| *d == name)
}

/// `mon-fri`, `sat`, `mon,wed`, `daily`.
fn days(text: &str) -> Option<Vec<usize>> {
    if text == "daily" {
        return Some((0..7).collect());
    }
    let mut out = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}

fn time(text: &str) -> Option<Option<Time>> {
    if text == "24:00" {
        return Some(None);
    }
    let (h, m) = text.split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    Time::new(h, m, 0, 0).ok().map(Some)
}

/// `08:00-18:00`; the end after the start (24:00 for midnight).
fn window(text: &str) -> Option<Window> {
    let (a, b) = text.split_once('-')?;
    let start = time(a)??;
    let end = time(b)?;
    if end.is_some_and(|e| e <= start) {
        return None;
    }
    Some(Window { start, end })
}

impl ServiceHours {
    pub fn parse(
        zone: &str,
        rules: &[&str],
        exceptions: &[&str],
    ) -> Result<ServiceHours, HoursError> {
        let zone_found = TimeZone::get(zone).map_err(|_| HoursError::Zone(zone.to_owned()))?;
        let mut week: [Vec<Window>; 7] = Default::default();
        for rule in rules {
            let bad = || HoursError::Rule((*rule).to_owned());
            let (d, w) = rule.trim().split_once(' ').ok_or_else(bad)?;
            let w = window(w.trim()).ok_or_else(bad)?;
            for d in days(&d.to_ascii_lowercase()).ok_or_else(bad)? {
                week[d].push(w);
            }
        }
        let mut dated = BTreeMap::new();
        for e in exceptions {
            let bad = || HoursError::Exception((*e).to_owned());
            let (d, rest) = e.trim().split_once(' ').ok_or_else(bad)?;
            let date: Date = d.parse().map_err(|_| bad())?;
            let windows = match rest.trim() {
                "closed" => Vec::new(),
                w => vec![window(w).ok_or_else(bad)?],
            };
            dated.entry(date).or_insert_with(Vec::new).extend(windows);
        }
        Ok(ServiceHours {
            zone: zone_found,
            week,
            exceptions: dated,
        })
    }

    /// The agreed hours within `[start_ms, end_ms)`.
    pub fn agreed(&self, start_ms: i64, end_ms: i64) -> Timeline {
        if start_ms >= end_ms {
            return Timeline::default();
        }
        let local_date = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .map(|t| t.to_zoned(self.zone.clone()).date())
                .ok()
        };
        let (Some(mut date), Some(last)) = (local_date(start_ms), local_date(end_ms)) else {
            return Timeline::default();
        };
        // The first day's windows may have started the evening before in
        // UTC terms; one day of margin each side, clipped below.
        date = date.yesterday().unwrap_or(date);
        let instant = |date: Date, t: Time| -> Option<i64> {
            Some(
                date.to_datetime(t)
                    .to_zoned(self.zone.clone())
                    .ok()?
                    .timestamp()
                    .as_millisecond(),
            )
        };
        let mut out = Vec::new();
        while date <= last {
            let windows = match self.exceptions.get(&date) {
                Some(w) => w,
                None => &self.week[date.weekday().to_monday_zero_offset() as usize],
            };
            for w in windows {
                let end = match w.end {
                    Some(t) => instant(date, t),
                    None => date
                        .tomorrow()
                        .ok()
                        .and_then(|d| instant(d, Time::midnight())),
                };
                if let (Some(s), Some(e)) = (instant(date, w.start), end) {
                    out.push((s, e));
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        Timeline::new(out).clip(start_ms, end_ms)
    }
}

/// A calendar as CMDB attributes write it: rules and exceptions each
/// separated by `;` (`mon-fri 08:00-18:00; sat 09:00-12:00`), in a zone.
/// Agreed service hours and maintenance windows are both calendars.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub hours: ServiceHours,
    pub zone: String,
    rules: String,
}

fn entries(text: &str) -> Vec<&str> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

impl Calendar {
    pub fn parse(zone: &str, rules: &str, exceptions: &str) -> Result<Calendar, HoursError> {
        let hours = ServiceHours::parse(zone, &entries(rules), &entries(exceptions))?;
        Ok(Calendar {
            hours,
            zone: zone.to_owned(),
            rules: entries(rules).join("; "),
        })
    }

    /// Whether the instant `ms` lies inside the calendar.
    pub fn covers(&self, ms: i64) -> bool {
        self.hours.agreed(ms, ms + 1).duration() > 0
    }
}

impl std::fmt::Display for Calendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.rules, self.zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn paris(rules: &[&str], exceptions: &[&str]) -> ServiceHours {
        ServiceHours::parse("Europe/Paris", rules, exceptions).unwrap()
    }

    #[test]
    fn office_hours_in_a_week() {
        let hours = paris(&["mon-fri 08:00-18:00"], &["2026-11-11 closed"]);
        // Mon 2026-11-09 to Mon 2026-11-16, Paris (UTC+1 in November).
        let week = hours.agreed(ms("2026-11-08T23:00:00Z"), ms("2026-11-15T23:00:00Z"));
        assert_eq!(week.duration(), 4 * 10 * H, "five days less Armistice Day");
        assert_eq!(
            week.intervals()[0],
            (ms("2026-11-09T07:00:00Z"), ms("2026-11-09T17:00:00Z"))
        );
    }

    #[test]
    fn across_daylight_saving_changes() {
        let night = paris(&["daily 01:00-04:00"], &[]);
        // Spring forward, Sunday 2026-03-29: 02:00 does not exist; the
        // window is 01:00 CET to 04:00 CEST, two hours.
        let spring = night.agreed(ms("2026-03-28T23:00:00Z"), ms("2026-03-29T22:00:00Z"));
        assert_eq!(spring.duration(), 2 * H);
        // Fall back, Sunday 2026-10-25: 02:00–03:00 happens twice; four
        // hours.
        let autumn = night.agreed(ms("2026-10-24T22:00:00Z"), ms("2026-10-25T23:00:00Z"));
        assert_eq!(autumn.duration(), 4 * H);

        // A whole day is 23 h, then 25 h; office hours stay 10 h.
        let all = paris(&["daily 00:00-24:00"], &[]);
        assert_eq!(
            all.agreed(ms("2026-03-28T23:00:00Z"), ms("2026-03-29T22:00:00Z"))
                .duration(),
            23 * H
        );
        assert_eq!(
            all.agreed(ms("2026-10-24T22:00:00Z"), ms("2026-10-25T23:00:00Z"))
                .duration(),
            25 * H
        );
        let office = paris(&["daily 08:00-18:00"], &[]);
        let monday_after = office.agreed(ms("2026-03-29T22:00:00Z"), ms("2026-03-30T22:00:00Z"));
        assert_eq!(
            monday_after.intervals(),
            [(ms("2026-03-30T06:00:00Z"), ms("2026-03-30T16:00:00Z"))]
        );
    }

    #[test]
    fn exceptions_open_and_close_days() {
        let hours = paris(
            &["mon-fri 08:00-18:00", "sat 09:00-12:30"],
            &[
                "2026-12-24 08:00-12:00",
                "2026-12-25 closed",
                "2026-12-27 10:00-11:00",
            ],
        );
        let christmas_week = hours.agreed(ms("2026-12-20T23:00:00Z"), ms("2026-12-27T23:00:00Z"));
        // Mon–Wed 30 h, Thu 4 h, Fri closed, Sat 3.5 h, Sun (exception) 1 h.
        assert_eq!(
            christmas_week.duration(),
            30 * H + 4 * H + 3 * H + H / 2 + H
        );
    }

    #[test]
    fn a_calendar_covers_its_windows_in_its_zone() {
        let sunday_night = Calendar::parse(
            "Europe/Paris",
            "sun 02:00-04:00; ",
            "2026-12-27 closed; 2026-12-26 23:00-24:00",
        )
        .unwrap();
        assert_eq!(sunday_night.to_string(), "sun 02:00-04:00 Europe/Paris");
        // Sunday 2026-11-29 02:00 Paris is 01:00 UTC.
        assert!(!sunday_night.covers(ms("2026-11-29T00:59:59Z")));
        assert!(sunday_night.covers(ms("2026-11-29T01:00:00Z")));
        assert!(sunday_night.covers(ms("2026-11-29T02:59:59Z")));
        assert!(!sunday_night.covers(ms("2026-11-29T03:00:00Z")));
        // Closed on the 27th, moved to the Saturday evening before.
        assert!(!sunday_night.covers(ms("2026-12-27T01:30:00Z")));
        assert!(sunday_night.covers(ms("2026-12-26T22:30:00Z")));
    }

    #[test]
    fn bad_rules_are_named() {
        let err = |rules: &[&str], exceptions: &[&str]| {
            ServiceHours::parse("Europe/Paris", rules, exceptions)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["mon-fry 08:00-18:00"], &[]).contains("mon-fry"));
        assert!(err(&["mon 18:00-08:00"], &[]).contains("mon 18:00-08:00"));
        assert!(err(&[], &["2026-13-01 closed"]).contains("2026-13-01"));
        assert_eq!(
            ServiceHours::parse("Mars/Olympus", &[], &[]).unwrap_err(),
            HoursError::Zone("Mars/Olympus".into())
        );
    }
}
