//! Timelines: when something was unavailable, as a set of half-open
//! intervals `[start, end)` in Unix ms, kept sorted, disjoint and
//! non-adjacent, so equal sets have equal representations and durations are
//! exact sums.
//!
//! A service's downtime follows from its members' timelines, exactly:
//!
//! - **serial** dependencies (the service needs every one): the service is
//!   down whenever any member is, the union;
//! - a **redundancy group** of n members that works while at least k are up
//!   (1 of 2, 2 of 3): down while more than n − k members are down at
//!   once, found by a sweep over the members' boundaries.
//!
//! This differs from multiplying availability percentages, which assumes
//! outages independent: two members down at the same time count once
//! here, as they did for the users.

/// A set of half-open intervals, normalized.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timeline(Vec<(i64, i64)>);

impl Timeline {
    /// The set covered by `intervals` (in any order, overlapping or not);
    /// empty and reversed intervals are dropped.
    pub fn new(intervals: impl IntoIterator<Item = (i64, i64)>) -> Timeline {
        let mut all: Vec<(i64, i64)> = intervals.into_iter().filter(|(s, e)| s < e).collect();
        all.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(all.len());
        for (start, end) in all {
            match out.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => out.push((start, end)),
            }
        }
        Timeline(out)
    }

    pub fn intervals(&self) -> &[(i64, i64)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Total length, ms.
    pub fn duration(&self) -> i64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    pub fn union(&self, other: &Timeline) -> Timeline {
        Timeline::new(self.0.iter().chain(&other.0).copied())
    }

    pub fn intersection(&self, other: &Timeline) -> Timeline {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.0.len() && j < other.0.len() {
            let (a, b) = (self.0[i], other.0[j]);
            let (start, end) = (a.0.max(b.0), a.1.min(b.1));
            if start < end {
                out.push((start, end));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Timeline::new(out)
    }

    /// The part inside `[start, end)`.
    pub fn clip(&self, start: i64, end: i64) -> Timeline {
        self.intersection(&Timeline::new([(start, end)]))
    }

    /// What `[start, end)` holds outside this set.
    pub fn complement_within(&self, start: i64, end: i64) -> Timeline {
        let mut out = Vec::new();
        let mut cursor = start;
        for &(s, e) in &self.clip(start, end).0 {
            if cursor < s {
                out.push((cursor, s));
            }
            cursor = e;
        }
        if cursor < end {
            out.push((cursor, end));
        }
        Timeline(out)
    }
}

/// Downtime of something that needs every member: the union.
pub fn serial(members: &[Timeline]) -> Timeline {
    Timeline::new(members.iter().flat_map(|m| m.0.iter().copied()))
}

/// Downtime of a group that works while at least `k` of its members are
/// up: the times when more than `members.len() − k` are down at once. A
/// group needing more members than it has is always down; `k = 0` never is.
/// The answer lies within `[start, end)`.
pub fn k_of_n(members: &[Timeline], k: usize, start: i64, end: i64) -> Timeline {
    if k == 0 || start >= end {
        return Timeline::default();
    }
    if k > members.len() {
        return Timeline::new([(start, end)]);
    }
    let tolerated = members.len() - k;
    // +1 where a member goes down, −1 where it comes back; ends before
    // starts at the same instant (half-open intervals touch, not overlap).
    let mut edges: Vec<(i64, i32)> = members
        .iter()
        .flat_map(|m| m.clip(start, end).0)
        .flat_map(|(s, e)| [(s, 1), (e, -1)])
        .collect();
    edges.sort_unstable();
    let mut down = 0usize;
    let mut since = None;
    let mut out = Vec::new();
    for (at, delta) in edges {
        if delta > 0 {
            down += 1;
        } else {
            down -= 1;
        }
        match since {
            None if down > tolerated => since = Some(at),
            Some(s) if down <= tolerated => {
                out.push((s, at));
                since = None;
            }
            _ => {}
        }
    }
    Timeline::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 3_600_000;

    fn t(intervals: &[(i64, i64)]) -> Timeline {
        Timeline::new(intervals.iter().map(|(s, e)| (s * H, e * H)))
    }

    #[test]
    fn intervals_normalize() {
        let tl = Timeline::new([(5, 7), (1, 3), (3, 4), (6, 9), (10, 10), (12, 11)]);
        assert_eq!(tl.intervals(), [(1, 4), (5, 9)]);
        assert_eq!(tl.duration(), 7);
        assert_eq!(
            tl.complement_within(0, 12).intervals(),
            [(0, 1), (4, 5), (9, 12)]
        );
        assert_eq!(tl.clip(2, 6).intervals(), [(2, 4), (5, 6)]);
    }

    /// A web tier behind two databases: hand-computed over a 100 h period.
    #[test]
    fn serial_chains_and_redundancy_groups_by_hand() {
        let lb = t(&[(10, 12)]);
        let web = t(&[(11, 14), (50, 51)]);
        let db_a = t(&[(20, 30), (60, 62)]);
        let db_b = t(&[(25, 27), (61, 70)]);
        let db_c = t(&[(26, 28), (90, 91)]);

        // Serial: lb then web, 10–14 and 50–51: 5 h.
        let front = serial(&[lb, web]);
        assert_eq!(front.intervals(), [(10 * H, 14 * H), (50 * H, 51 * H)]);

        // 1 of 2 (a, b): down only while both are, 25–27 and 61–62.
        let pair = k_of_n(&[db_a.clone(), db_b.clone()], 1, 0, 100 * H);
        assert_eq!(pair.intervals(), [(25 * H, 27 * H), (61 * H, 62 * H)]);

        // 2 of 3 (a, b, c): down while two or more are: 25–28 and 61–62.
        let trio = k_of_n(&[db_a, db_b, db_c], 2, 0, 100 * H);
        assert_eq!(trio.intervals(), [(25 * H, 28 * H), (61 * H, 62 * H)]);

        // The service: front and the pair in series, 5 h + 3 h = 8 h down
        // in 100 h, 92% available; multiplying percentages (95% × 97%)
        // would say 92.15%.
        let service = serial(&[front, pair]);
        assert_eq!(service.duration(), 8 * H);
    }

    #[test]
    fn group_edge_cases() {
        let down = t(&[(1, 2)]);
        assert!(k_of_n(std::slice::from_ref(&down), 0, 0, 10 * H).is_empty());
        assert_eq!(
            k_of_n(std::slice::from_ref(&down), 2, 0, 10 * H).duration(),
            10 * H
        );
        // One member, needed: its own downtime, clipped to the period.
        assert_eq!(
            k_of_n(&[t(&[(8, 12)])], 1, 0, 10 * H).intervals(),
            [(8 * H, 10 * H)]
        );
        // Back-to-back outages of two members of a 1-of-2 group never
        // overlap: the group stays up.
        assert!(k_of_n(&[t(&[(1, 2)]), t(&[(2, 3)])], 1, 0, 10 * H).is_empty());
    }

    fn timeline() -> impl Strategy<Value = Timeline> {
        prop::collection::vec((0i64..60, 1i64..15), 0..6)
            .prop_map(|v| Timeline::new(v.into_iter().map(|(s, len)| (s, s + len))))
    }

    proptest! {
        /// The sweep against counting minute by minute.
        #[test]
        fn k_of_n_matches_counting_each_minute(
            members in prop::collection::vec(timeline(), 1..5),
            k in 0usize..6,
        ) {
            let group = k_of_n(&members, k, 0, 80);
            for minute in 0..80 {
                let down = members
                    .iter()
                    .filter(|m| m.intervals().iter().any(|(s, e)| *s <= minute && minute < *e))
                    .count();
                let expected = k > 0 && (k > members.len() || down > members.len() - k);
                let got = group.intervals().iter().any(|(s, e)| *s <= minute && minute < *e);
                prop_assert_eq!(got, expected, "minute {}", minute);
            }
        }

        #[test]
        fn union_and_intersection_are_set_operations(a in timeline(), b in timeline()) {
            let (u, i) = (a.union(&b), a.intersection(&b));
            prop_assert_eq!(u.duration() + i.duration(), a.duration() + b.duration());
            prop_assert_eq!(a.complement_within(0, 80).duration() + a.clip(0, 80).duration(), 80);
        }
    }
}
