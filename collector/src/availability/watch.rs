//! Up or down, per CI, from its heartbeats: the reports of the agent on it
//! (hosts) or the polls of it (network devices).
//!
//! A [`Watch`] expects a CI's heartbeats at the interval its agent states
//! it is configured to send scheduled reports at (or polls a device at),
//! and declares an outage once `missed` of those intervals pass with
//! nothing: the outage starts when the first missed heartbeat was due, and
//! ends at the next heartbeat. Change pushes come on top of the schedule,
//! so a burst of them says nothing about the cadence. Only for agents that
//! state no cadence (older ones) is the interval learned, as the longest of
//! the recent gaps between heartbeats: a burst cannot shorten it while a
//! regular gap is among them. Pure: the caller passes the times in (tests
//! inject them), and stores the watch.
//!
//! The collector's own downtime is not the CI's: heartbeats count from no
//! earlier than when the watching began (`floor_ms`), so a collector coming
//! back after an hour does not find every CI an hour down.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::cmdb::heartbeat::{MAX_INTERVAL_MS, MIN_INTERVAL_MS};

/// Gaps remembered to learn the interval of a CI that states none.
const GAPS: usize = 16;

/// What a CI's heartbeats are expected at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The interval its agent states (the shortest, if several agents
    /// report for it), already within the bounds.
    pub stated_ms: Option<i64>,
    /// Assumed until a CI states or shows its own.
    pub default_ms: i64,
}

/// What a CI's heartbeats said last time we looked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    pub last_seen_ms: i64,
    gaps: VecDeque<i64>,
    /// When the open outage started, if the CI is down.
    pub down_since_ms: Option<i64>,
    /// When the CI last booted, as its heartbeats say (hosts' `btime`,
    /// devices' sysUpTime).
    #[serde(default)]
    pub boot_ms: Option<i64>,
}

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Down since `start_ms`.
    Down { start_ms: i64 },
    /// Back at `end_ms`, after being down since `start_ms`.
    Up { start_ms: i64, end_ms: i64 },
    /// Restarted between two heartbeats: down at most from the last
    /// heartbeat before (`start_ms`) to the boot (`end_ms`).
    Rebooted { start_ms: i64, end_ms: i64 },
}

impl Watch {
    pub fn new(seen_ms: i64) -> Watch {
        Watch {
            last_seen_ms: seen_ms,
            gaps: VecDeque::new(),
            down_since_ms: None,
            boot_ms: None,
        }
    }

    /// Takes the boot time the CI's latest heartbeat reports, before
    /// [`Watch::observe`] takes the heartbeat. A boot later than the one
    /// known (by more than `slack_ms`, the clock jitter of the reading)
    /// while the CI is up is a reboot nobody saw as missed heartbeats.
    pub fn boot(&mut self, boot_ms: i64, slack_ms: i64) -> Option<Change> {
        let previous = self.boot_ms.replace(boot_ms);
        match previous {
            Some(p) if boot_ms > p + slack_ms && self.down_since_ms.is_none() => {
                let start_ms = self.last_seen_ms.min(boot_ms);
                (start_ms < boot_ms).then_some(Change::Rebooted {
                    start_ms,
                    end_ms: boot_ms,
                })
            }
            // An earlier boot than known is jitter, or a clock set back.
            Some(p) if boot_ms < p => {
                self.boot_ms = Some(p);
                None
            }
            _ => None,
        }
    }

    /// The interval the CI reports at: the one its agent states; else the
    /// longest of its recent gaps, or `default_ms` before two are known.
    pub fn interval_ms(&self, expect: Expect) -> i64 {
        if let Some(stated) = expect.stated_ms {
            return stated.clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS);
        }
        if self.gaps.len() < 2 {
            return expect.default_ms;
        }
        self.gaps.iter().copied().max().unwrap_or(expect.default_ms)
    }

    /// Takes the CI's latest heartbeat time `seen_ms` (unchanged if nothing
    /// new came) and the time now; says what changed.
    pub fn observe(
        &mut self,
        seen_ms: i64,
        now_ms: i64,
        floor_ms: i64,
        missed: u32,
        expect: Expect,
    ) -> Option<Change> {
        if seen_ms > self.last_seen_ms {
            // A gap while down is the outage, not the interval; nor is one
            // across the collector's own downtime.
            if self.down_since_ms.is_none() && self.last_seen_ms >= floor_ms {
                self.gaps.push_back(seen_ms - self.last_seen_ms);
                if self.gaps.len() > GAPS {
                    self.gaps.pop_front();
                }
            }
            self.last_seen_ms = seen_ms;
            return self.down_since_ms.take().map(|start_ms| Change::Up {
                start_ms,
                end_ms: seen_ms,
            });
        }
        if self.down_since_ms.is_some() {
            return None;
        }
        let interval = self.interval_ms(expect);
        let since = self.last_seen_ms.max(floor_ms);
        if now_ms - since > i64::from(missed) * interval {
            let start_ms = since + interval;
            self.down_since_ms = Some(start_ms);
            return Some(Change::Down { start_ms });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    /// An agent that states no cadence: the interval is learned.
    const LEARN: Expect = Expect {
        stated_ms: None,
        default_ms: 60 * S,
    };

    fn stated(ms: i64) -> Expect {
        Expect {
            stated_ms: Some(ms),
            default_ms: 60 * S,
        }
    }

    /// Runs the watch from `from` to `to` looking every second, with
    /// heartbeats at the times in `beats` (sorted); asserts nothing changes.
    fn quiet(w: &mut Watch, beats: &[i64], from: i64, to: i64, expect: impl Fn(i64) -> Expect) {
        let mut seen = w.last_seen_ms;
        let mut next = 0;
        for t in (from..=to).step_by(S as usize) {
            while next < beats.len() && beats[next] <= t {
                seen = beats[next];
                next += 1;
            }
            assert_eq!(w.observe(seen, t, 0, 3, expect(t)), None, "at {t}");
        }
    }

    /// The scheduled reports every `every` in `[from, to]`.
    fn schedule(from: i64, to: i64, every: i64) -> Vec<i64> {
        (from..=to).step_by(every as usize).collect()
    }

    /// How long after its last heartbeat at `last` a silent CI is found
    /// down, looking every second up to `limit` later.
    fn found_down_after(w: &mut Watch, last: i64, limit: i64, expect: Expect) -> Option<i64> {
        (last..=last + limit)
            .step_by(S as usize)
            .find(|t| matches!(w.observe(last, *t, 0, 3, expect), Some(Change::Down { .. })))
            .map(|t| t - last)
    }

    #[test]
    fn a_burst_of_pushes_is_not_the_cadence() {
        // Metrics every 60 s; eight change pushes 3 s apart at 10 min.
        let mut w = Watch::new(0);
        let mut beats = schedule(0, 3_600 * S, 60 * S);
        beats.extend((0..8).map(|i| 600 * S + 3 * S + i * 3 * S));
        beats.sort_unstable();
        quiet(&mut w, &beats, 0, 3_600 * S, |_| stated(60 * S));
        // A real stop is still found within three intervals.
        let after = found_down_after(&mut w, 3_600 * S, 600 * S, stated(60 * S));
        assert_eq!(after, Some(181 * S));
    }

    #[test]
    fn a_burst_does_not_shorten_a_learned_interval_either() {
        // An older agent stating nothing: the longest recent gap is kept.
        let mut w = Watch::new(0);
        let mut beats = schedule(0, 1_200 * S, 60 * S);
        beats.extend((0..8).map(|i| 600 * S + 3 * S + i * 3 * S));
        beats.sort_unstable();
        quiet(&mut w, &beats, 0, 1_200 * S, |_| LEARN);
        assert_eq!(w.interval_ms(LEARN), 60 * S);
    }

    #[test]
    fn a_stated_interval_raised_or_lowered_takes_effect_at_once() {
        let mut w = Watch::new(0);
        // 60 s, then the agent restarts with 10 s at 600 s (its restart
        // costs a few seconds), then with 300 s at 1200 s.
        let mut beats = schedule(0, 600 * S, 60 * S);
        beats.extend(schedule(604 * S, 1_200 * S, 10 * S));
        beats.extend(schedule(1_203 * S, 3_600 * S, 300 * S));
        let expect = |t: i64| match t {
            t if t < 604 * S => stated(60 * S),
            t if t < 1_203 * S => stated(10 * S),
            _ => stated(300 * S),
        };
        quiet(&mut w, &beats, 0, 3_600 * S, expect);
        let last = *beats.last().unwrap();
        assert_eq!(
            found_down_after(&mut w.clone(), last, 2_000 * S, stated(300 * S)),
            Some(901 * S)
        );
        // Lowered again: a silence is found within three of the new ones.
        assert_eq!(
            found_down_after(&mut w, last, 2_000 * S, stated(10 * S)),
            Some(31 * S)
        );
    }

    #[test]
    fn a_stated_interval_is_kept_within_bounds() {
        let w = Watch::new(0);
        assert_eq!(w.interval_ms(stated(1)), MIN_INTERVAL_MS);
        assert_eq!(w.interval_ms(stated(i64::MAX)), MAX_INTERVAL_MS);
    }

    /// Feeds heartbeats every 10 s from 0 to `until`, looking every second.
    fn steady(w: &mut Watch, until: i64) {
        for t in (0..=until).step_by(S as usize) {
            let seen = t / (10 * S) * (10 * S);
            assert_eq!(w.observe(seen, t, 0, 3, LEARN), None, "at {t}");
        }
    }

    #[test]
    fn an_outage_opens_after_the_missed_intervals_and_closes_on_return() {
        let mut w = Watch::new(0);
        steady(&mut w, 100 * S);
        assert_eq!(w.interval_ms(LEARN), 10 * S, "learned from the gaps");
        // The last heartbeat was at 100 s. Three intervals later exactly,
        // still up; a moment after, down since the first missed one.
        assert_eq!(w.observe(100 * S, 130 * S, 0, 3, LEARN), None);
        assert_eq!(
            w.observe(100 * S, 130 * S + 1, 0, 3, LEARN),
            Some(Change::Down { start_ms: 110 * S })
        );
        // Only once.
        assert_eq!(w.observe(100 * S, 200 * S, 0, 3, LEARN), None);
        // Back at 300 s.
        assert_eq!(
            w.observe(300 * S, 301 * S, 0, 3, LEARN),
            Some(Change::Up {
                start_ms: 110 * S,
                end_ms: 300 * S
            })
        );
        // The outage did not teach it a 200 s interval.
        assert_eq!(w.interval_ms(LEARN), 10 * S);
        assert_eq!(w.observe(310 * S, 311 * S, 0, 3, LEARN), None);
    }

    #[test]
    fn a_reboot_between_heartbeats_is_an_outage_of_at_most_the_gap() {
        let mut w = Watch::new(0);
        assert_eq!(w.boot(-3_600 * S, 60 * S), None, "the first boot seen");
        steady(&mut w, 100 * S);
        // Jitter in the reading is not a reboot.
        assert_eq!(w.boot(-3_600 * S + 2 * S, 60 * S), None);
        // Booted at 104 s: down from the last heartbeat (100 s) to then.
        assert_eq!(
            w.boot(104 * S, 60 * S),
            Some(Change::Rebooted {
                start_ms: 100 * S,
                end_ms: 104 * S
            })
        );
        assert_eq!(w.observe(110 * S, 111 * S, 0, 3, LEARN), None);
        assert_eq!(w.boot(104 * S, 60 * S), None, "the same boot again");
        // A reboot that took long enough to miss heartbeats is that
        // outage, not a second one.
        assert!(matches!(
            w.observe(110 * S, 200 * S, 0, 3, LEARN),
            Some(Change::Down { .. })
        ));
        assert_eq!(w.boot(290 * S, 60 * S), None);
        assert!(matches!(
            w.observe(300 * S, 301 * S, 0, 3, LEARN),
            Some(Change::Up { .. })
        ));
    }

    #[test]
    fn a_new_ci_waits_for_the_default_interval() {
        let mut w = Watch::new(0);
        assert_eq!(w.observe(0, 180 * S, 0, 3, LEARN), None);
        assert_eq!(
            w.observe(0, 180 * S + 1, 0, 3, LEARN),
            Some(Change::Down { start_ms: 60 * S })
        );
    }

    #[test]
    fn the_collectors_own_downtime_is_not_an_outage() {
        let mut w = Watch::new(0);
        steady(&mut w, 100 * S);
        // The collector was off from 105 s to 1000 s: the watch counts from
        // 1000 s, and the CI reports at 1005 s.
        assert_eq!(w.observe(100 * S, 1000 * S, 1000 * S, 3, LEARN), None);
        assert_eq!(w.observe(1005 * S, 1006 * S, 1000 * S, 3, LEARN), None);
        // But a CI silent since then goes down on the usual terms.
        assert_eq!(
            w.observe(1005 * S, 1036 * S, 1000 * S, 3, LEARN),
            Some(Change::Down { start_ms: 1015 * S })
        );
    }
}
