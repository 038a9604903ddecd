//! Mass changes: beyond `MASS_CHANGE_THRESHOLD` new drift records in
//! one section, one report's drift is one record listing its members,
//! loaded and written once per report.

use std::collections::BTreeMap;

use super::inventory::load;
use super::records::{blank_drift, load_rfc};
use super::{Refusal, Sighting};
use crate::cmdb::ci::CiRecord;
use crate::cmdb::drift::{put_drift, DriftRecord, DriftStatus, Member};
use crate::cmdb::history::Actor;
use crate::cmdb::incident::all_settled;
use crate::cmdb::rfc::{Rfc, RfcStatus};
use crate::control::attributes::Difference;
use crate::control::decide::Decision;
use crate::store::{Table, Tx, TxAbort};
use fathom_api::ids::{DriftId, IncidentId, RfcId};

type TxResult<T> = Result<T, TxAbort<Refusal>>;

/// How a member leaves a mass change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MemberEnd {
    /// Seen back at its authorized value.
    Reverted,
    /// Authorized, or made informational, on its own.
    Settled,
}

/// An open mass change loaded for one report.
#[derive(Debug)]
pub(super) struct MassState {
    record: DriftRecord,
    /// Member index by attribute.
    index: BTreeMap<String, usize>,
    observed: bool,
    reverted: usize,
    settled: usize,
}

impl MassState {
    pub(super) fn observe_member(&mut self, d: &Difference) {
        if let Some(&i) = self.index.get(&d.attribute) {
            let member = &mut self.record.members[i];
            if member.discovered != d.discovered {
                member.discovered = d.discovered.clone();
                self.record.flips += 1;
            }
        }
        self.observed = true;
    }

    pub(super) fn close_member(&mut self, attribute: &str, end: MemberEnd) {
        if let Some(&i) = self.index.get(attribute) {
            let member = &mut self.record.members[i];
            if member.open {
                member.open = false;
                match end {
                    MemberEnd::Reverted => self.reverted += 1,
                    MemberEnd::Settled => self.settled += 1,
                }
            }
        }
    }
}

/// The mass changes one report touches: open ones already recorded
/// (loaded once, however many members the report mentions) and new ones,
/// each written once when the report is done.
#[derive(Debug, Default)]
pub(super) struct MassChanges {
    /// By id; `None` for a drift that is not an open mass change.
    existing: BTreeMap<DriftId, Option<MassState>>,
    /// New ones by (section, authorized).
    new: BTreeMap<(String, bool), DriftRecord>,
}

impl MassChanges {
    /// The open mass change `id`, if it is one.
    pub(super) fn existing(
        &mut self,
        tx: &dyn Tx,
        id: DriftId,
    ) -> TxResult<Option<&mut MassState>> {
        if let std::collections::btree_map::Entry::Vacant(entry) = self.existing.entry(id) {
            let state = load::<DriftRecord>(tx, Table::Drifts, &id.key())?
                .filter(|d| d.is_mass_change() && d.status == DriftStatus::Open)
                .map(|record| MassState {
                    index: record
                        .members
                        .iter()
                        .enumerate()
                        .map(|(i, m)| (m.attribute.clone(), i))
                        .collect(),
                    record,
                    observed: false,
                    reverted: 0,
                    settled: 0,
                });
            entry.insert(state);
        }
        Ok(self.existing.get_mut(&id).and_then(Option::as_mut))
    }

    /// The new mass change for `key`, made at its first member; `d` joins it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_for(
        &mut self,
        tx: &dyn Tx,
        key: (String, bool),
        ci: &CiRecord,
        d: &Difference,
        decision: &Decision,
        s: &Sighting<'_>,
        status: DriftStatus,
    ) -> TxResult<&mut DriftRecord> {
        if !self.new.contains_key(&key) {
            let attribute = format!("{}.*", key.0);
            let record = blank_drift(tx, ci, &attribute, d, decision.clone(), s, status)?;
            self.new.insert(key.clone(), record);
        }
        let record = self.new.get_mut(&key).expect("inserted above");
        record.members.push(Member {
            attribute: d.attribute.clone(),
            authorized: d.authorized.clone(),
            discovered: d.discovered.clone(),
            open: status == DriftStatus::Open,
        });
        Ok(record)
    }

    /// Writes what changed. Returns the new open mass changes (for the
    /// report's incident, which writes them) and the incidents of mass
    /// changes this report settled.
    pub(super) fn finish(
        self,
        tx: &dyn Tx,
        s: &Sighting<'_>,
        actor: &Actor,
        rfcs: &mut BTreeMap<RfcId, Rfc>,
    ) -> TxResult<(Vec<DriftRecord>, Vec<IncidentId>)> {
        let mut open = Vec::new();
        for (_, mut record) in self.new {
            let summary = Some(format!("{} changes", record.members.len()));
            record.discovered = summary.clone();
            record.observations = vec![s.observation(summary)];
            if record.status == DriftStatus::Open {
                open.push(record);
            } else {
                put_drift(tx, &record)?;
            }
        }
        let mut touched = Vec::new();
        for state in self.existing.into_values().flatten() {
            let MassState {
                mut record,
                observed,
                reverted,
                settled,
                ..
            } = state;
            let still_open = record.members.iter().filter(|m| m.open).count();
            if observed || reverted + settled > 0 {
                record.observe(s.observation(Some(format!("{still_open} open changes"))));
            }
            if still_open == 0 {
                let (status, how) = if settled == 0 {
                    (
                        DriftStatus::Reverted,
                        format!("discovery saw every change reverted ({})", s.source()),
                    )
                } else {
                    (
                        DriftStatus::Superseded,
                        format!(
                            "every change was reverted or decided on its own ({})",
                            s.source()
                        ),
                    )
                };
                record.settle(status, s.now_ms, actor.clone(), how);
                touched.extend(record.incident);
            }
            put_drift(tx, &record)?;
            if still_open == 0 {
                if let Some(rfc_id) = record.missing_rfc {
                    if let Some(rfc) = load_rfc(tx, rfcs, rfc_id)? {
                        if matches!(rfc.status, RfcStatus::New | RfcStatus::Assessed)
                            && all_settled(tx, &rfc.drifts, None)?
                        {
                            rfc.cancel(
                                s.now_ms,
                                actor,
                                "the changes were reverted; no RFC is needed",
                            )
                            .expect("new RFCs can be cancelled");
                        }
                    }
                }
            }
        }
        Ok((open, touched))
    }
}
