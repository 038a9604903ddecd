//! Up or down, per CI, from its heartbeats: the reports of the agent on it
//! (hosts) or the polls of it (network devices).
//!
//! A [`Watch`] learns how often a CI reports (the median of its last gaps
//! between heartbeats) and declares an outage once `missed` of those
//! intervals pass with nothing: the outage starts when the first missed
//! heartbeat was due, and ends at the next heartbeat. Pure: the caller
//! passes the times in (tests inject them), and stores the watch.
//!
//! The collector's own downtime is not the CI's: heartbeats count from no
//! earlier than when the watching began (`floor_ms`), so a collector coming
//! back after an hour does not find every CI an hour down.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Gaps remembered to learn a CI's interval.
const GAPS: usize = 8;

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

    /// The interval the CI reports at: the median of its recent gaps, or
    /// `default_ms` before two gaps are known.
    pub fn interval_ms(&self, default_ms: i64) -> i64 {
        if self.gaps.len() < 2 {
            return default_ms;
        }
        let mut gaps: Vec<i64> = self.gaps.iter().copied().collect();
        gaps.sort_unstable();
        gaps[gaps.len() / 2]
    }

    /// Takes the CI's latest heartbeat time `seen_ms` (unchanged if nothing
    /// new came) and the time now; says what changed.
    pub fn observe(
        &mut self,
        seen_ms: i64,
        now_ms: i64,
        floor_ms: i64,
        missed: u32,
        default_ms: i64,
    ) -> Option<Change> {
        if seen_ms > self.last_seen_ms {
            // A gap while down is the outage, not the interval.
            if self.down_since_ms.is_none() {
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
        let interval = self.interval_ms(default_ms);
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

    /// Feeds heartbeats every 10 s from 0 to `until`, looking every second.
    fn steady(w: &mut Watch, until: i64) {
        for t in (0..=until).step_by(S as usize) {
            let seen = t / (10 * S) * (10 * S);
            assert_eq!(w.observe(seen, t, 0, 3, 60 * S), None, "at {t}");
        }
    }

    #[test]
    fn an_outage_opens_after_the_missed_intervals_and_closes_on_return() {
        let mut w = Watch::new(0);
        steady(&mut w, 100 * S);
        assert_eq!(w.interval_ms(60 * S), 10 * S, "learned from the gaps");
        // The last heartbeat was at 100 s. Three intervals later exactly,
        // still up; a moment after, down since the first missed one.
        assert_eq!(w.observe(100 * S, 130 * S, 0, 3, 60 * S), None);
        assert_eq!(
            w.observe(100 * S, 130 * S + 1, 0, 3, 60 * S),
            Some(Change::Down { start_ms: 110 * S })
        );
        // Only once.
        assert_eq!(w.observe(100 * S, 200 * S, 0, 3, 60 * S), None);
        // Back at 300 s.
        assert_eq!(
            w.observe(300 * S, 301 * S, 0, 3, 60 * S),
            Some(Change::Up {
                start_ms: 110 * S,
                end_ms: 300 * S
            })
        );
        // The outage did not teach it a 200 s interval.
        assert_eq!(w.interval_ms(60 * S), 10 * S);
        assert_eq!(w.observe(310 * S, 311 * S, 0, 3, 60 * S), None);
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
        assert_eq!(w.observe(110 * S, 111 * S, 0, 3, 60 * S), None);
        assert_eq!(w.boot(104 * S, 60 * S), None, "the same boot again");
        // A reboot that took long enough to miss heartbeats is that
        // outage, not a second one.
        assert!(matches!(
            w.observe(110 * S, 200 * S, 0, 3, 60 * S),
            Some(Change::Down { .. })
        ));
        assert_eq!(w.boot(290 * S, 60 * S), None);
        assert!(matches!(
            w.observe(300 * S, 301 * S, 0, 3, 60 * S),
            Some(Change::Up { .. })
        ));
    }

    #[test]
    fn a_new_ci_waits_for_the_default_interval() {
        let mut w = Watch::new(0);
        assert_eq!(w.observe(0, 180 * S, 0, 3, 60 * S), None);
        assert_eq!(
            w.observe(0, 180 * S + 1, 0, 3, 60 * S),
            Some(Change::Down { start_ms: 60 * S })
        );
    }

    #[test]
    fn the_collectors_own_downtime_is_not_an_outage() {
        let mut w = Watch::new(0);
        steady(&mut w, 100 * S);
        // The collector was off from 105 s to 1000 s: the watch counts from
        // 1000 s, and the CI reports at 1005 s.
        assert_eq!(w.observe(100 * S, 1000 * S, 1000 * S, 3, 60 * S), None);
        assert_eq!(w.observe(1005 * S, 1006 * S, 1000 * S, 3, 60 * S), None);
        // But a CI silent since then goes down on the usual terms.
        assert_eq!(
            w.observe(1005 * S, 1036 * S, 1000 * S, 3, 60 * S),
            Some(Change::Down { start_ms: 1015 * S })
        );
    }
}
