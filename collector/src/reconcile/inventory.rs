//! Applying an inventory inside the report's transaction: identify the CI,
//! store what discovery saw, and reconcile it against the authorized state
//! (`apply`); and registering a CI held for review.

use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::Inventory;

use super::apply::reconcile;
use super::identify::{identify_in, load_or_create, raise_review, reindex, review_candidates};
use super::{Refusal, Sighting};
use crate::cmdb::action::{abort, trail_entry, ActionError};
use crate::cmdb::ci::{load_ci, put_ci, CiRecord};
use crate::cmdb::device::NETWORK_DEVICE;
use crate::cmdb::history::{record_history, Actor, Why};
use crate::cmdb::review::ReviewKind;
use crate::cmdb::{ci_key, encode, inventory_key, tx_get, AgentRecord, Cmdb, IdentifiedBy};
use crate::control::attributes::{self, Discovered};
use crate::control::identify::{self, Decision as Identified, Identifiers};
use crate::control::policy::{Control, Policy};
use crate::store::{Store, Table, Tx, TxAbort};

type TxResult<T> = Result<T, TxAbort<Refusal>>;

/// Every table an inventory's transaction may touch.
pub(crate) const TABLES: [Table; 13] = [
    Table::Agents,
    Table::Heartbeats,
    Table::Reports,
    Table::Cis,
    Table::CiIndex,
    Table::Inventories,
    Table::Meta,
    Table::History,
    Table::Rfcs,
    Table::Drifts,
    Table::Incidents,
    Table::Reviews,
    Table::Outbox,
];

pub(super) fn load<T: serde::de::DeserializeOwned>(
    tx: &dyn Tx,
    table: Table,
    key: &[u8],
) -> TxResult<Option<T>> {
    tx_get(tx, table, key)
}

/// What can be worked out from an inventory before its transaction (which
/// runs under the store's single writer lock, and may run more than once).
#[derive(Debug)]
pub(crate) struct Prepared {
    pub discovered: Discovered,
    /// The encoded [`StoredInventory`].
    pub stored: Vec<u8>,
}

impl Prepared {
    pub fn new(agent: AgentId, seq: u64, inventory: &Inventory, now_ms: i64) -> Prepared {
        /// The same fields as `StoredInventory`, borrowing the inventory.
        #[derive(serde::Serialize)]
        struct Borrowed<'a> {
            agent_id: AgentId,
            seq: u64,
            received_at_ms: i64,
            inventory: &'a Inventory,
        }
        Prepared {
            discovered: attributes::flatten(inventory),
            stored: encode(&Borrowed {
                agent_id: agent,
                seq,
                received_at_ms: now_ms,
                inventory,
            }),
        }
    }
}

/// Identifies the CI an inventory is about, records the discovered state,
/// and reconciles. Returns the CI.
pub(crate) fn apply_inventory(
    tx: &dyn Tx,
    agent: &mut AgentRecord,
    inventory: &Inventory,
    prepared: &Prepared,
    sighting: &Sighting<'_>,
) -> TxResult<CiId> {
    let now_ms = sighting.now_ms;
    let ids = Identifiers::from_inventory(inventory);
    let decision = identify_in(tx, &ids, agent.ci_id, |class| class != NETWORK_DEVICE)?;
    let (mut ci, is_new) = load_or_create(tx, &decision, agent.agent_id, &ids, now_ms)?;
    if let Identified::Matched { rule, agreeing, .. } = &decision {
        let agreeing: Vec<&str> = agreeing.iter().map(|r| r.as_str()).collect();
        ci.identified_by = IdentifiedBy {
            rule: *rule,
            detail: format!(
                "agent {} matched this CI by {} (agreeing: {})",
                agent.agent_id,
                rule.as_str(),
                agreeing.join(", ")
            ),
        };
        if !ci.agents.contains(&agent.agent_id) {
            let previous = ci
                .agents
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let reason = format!(
                "a new agent key ({}) reports this hardware, matched by {}; previously reported by {}. \
                 Confirm a reinstall, or revoke the key if the host is not what it claims",
                agent.agent_id,
                agreeing.join(", "),
                if previous.is_empty() { "none".into() } else { previous }
            );
            let kind = ReviewKind::NewAgentKey {
                ci: ci.id,
                agent_id: agent.agent_id,
                reason,
            };
            raise_review(tx, kind, now_ms, &mut [&mut ci])?;
            tracing::warn!(ci_id = %ci.id, agent_id = %agent.agent_id, rule = rule.as_str(), "A new agent key reports a known CI; queued for review");
        }
    }
    if let Identified::New { candidates } = &decision {
        review_candidates(tx, &mut ci, candidates, now_ms)?;
    }
    reindex(tx, &mut ci, &ids, is_new)?;
    if !ci.agents.contains(&agent.agent_id) {
        tx.insert(
            Table::CiIndex,
            &identify::agent_index_key(agent.agent_id),
            &ci_key(ci.id),
        )?;
        ci.agents.push(agent.agent_id);
    }
    ci.reported_by = Some(agent.agent_id);
    ci.first_seen_ms.get_or_insert(now_ms);
    ci.last_seen_ms = Some(now_ms);
    if ci.name.is_empty() && !inventory.host.hostname.is_empty() {
        ci.name = inventory.host.hostname.clone();
    }

    tx.insert(
        Table::Inventories,
        &inventory_key(ci.id, agent.agent_id),
        &prepared.stored,
    )?;
    reconcile(tx, sighting, &mut ci, &prepared.discovered)?;
    tx.insert(Table::Cis, &ci_key(ci.id), &encode(&ci))?;
    agent.ci_id = Some(ci.id);
    Ok(ci.id)
}

/// The discovered state without what the policy ignores; borrowed as is
/// when the policy ignores none of it.
pub(super) fn without_ignored<'a>(
    policy: &Policy,
    class: &str,
    discovered: &'a Discovered,
) -> std::borrow::Cow<'a, Discovered> {
    let ignored = |k: &str| policy.control_of(class, k).control == Control::Ignored;
    if !discovered.attributes.keys().any(|k| ignored(k)) {
        return std::borrow::Cow::Borrowed(discovered);
    }
    std::borrow::Cow::Owned(Discovered {
        attributes: discovered
            .attributes
            .iter()
            .filter(|(k, _)| !ignored(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        scopes: discovered.scopes.clone(),
    })
}

/// Establishes the authorized state of a CI from discovery.
pub(crate) fn register<E>(
    tx: &dyn Tx,
    ci: &mut CiRecord,
    discovered: &Discovered,
    s: &Sighting<'_>,
) -> Result<(), TxAbort<E>> {
    let before = ci.fields();
    ci.attributes = discovered.attributes.clone();
    ci.scopes = discovered.scopes.clone();
    ci.registered = true;
    let changes = crate::cmdb::history::changes_between(
        &if ci.revision == 0 {
            Default::default()
        } else {
            before
        },
        &ci.fields(),
    );
    let why = Why::Registration {
        agent_id: s.agent,
        seq: s.seq,
    };
    record_history(tx, ci, s.now_ms, &s.actor(), why, changes)
}

impl<S: Store> Cmdb<S> {
    /// Establishes the authorized state of a discovered CI from its latest
    /// inventory (for policy `new_cis = "review"`).
    pub fn register_ci(&self, by: &Actor, id: CiId, now_ms: i64) -> Result<CiRecord, ActionError> {
        let latest = self.latest_inventory(id)?.ok_or_else(|| {
            ActionError::Conflict(format!("{id} has no inventory to register from"))
        })?;
        self.act(|tx| {
            let mut ci = load_ci(tx, id)?;
            if ci.registered {
                return abort(ActionError::Conflict(format!("{id} is already registered")));
            }
            let sighting = Sighting {
                agent: latest.agent_id,
                seq: latest.seq,
                observed_at_ms: now_ms,
                now_ms,
                policy: self.policy(),
                webhooks: self.webhooks(),
            };
            let discovered = attributes::flatten(&latest.inventory);
            let discovered = attributes::Discovered {
                attributes: discovered
                    .attributes
                    .into_iter()
                    .filter(|(k, _)| {
                        self.policy().control_of(&ci.class, k).control
                            != crate::control::policy::Control::Ignored
                    })
                    .collect(),
                scopes: discovered.scopes,
            };
            register(tx, &mut ci, &discovered, &sighting)?;
            put_ci(tx, &ci)?;
            trail_entry(
                tx,
                now_ms,
                by,
                "ci.register",
                id.to_string(),
                format!("from report {} of agent {}", latest.seq, latest.agent_id),
            )?;
            Ok(ci)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::drift::{DriftStatus, MASS_CHANGE_THRESHOLD};
    use crate::cmdb::incident::IncidentStatus;
    use crate::cmdb::rfc::RfcStatus;
    use crate::cmdb::rfc::Window;
    use crate::control::attributes::ChangeKind;
    use crate::control::policy::Level;
    use crate::test_support::*;

    const BASE: &[(&str, &str)] = &[("nginx", "1.22.1-9"), ("curl", "7.88.1-10")];
    const UPGRADED: &[(&str, &str)] = &[("nginx", "1.24.0-1"), ("curl", "7.88.1-10")];

    #[test]
    fn an_upgrade_without_an_rfc_is_an_incident_with_a_missing_rfc() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        assert_eq!(
            f.authorized(ci, "packages.nginx").as_deref(),
            Some("1.22.1-9")
        );
        assert!(f.incidents().is_empty());
        f.report(UPGRADED, NOON + 1000);
        let incidents = f.incidents();
        assert_eq!(incidents.len(), 1);
        let inc = &incidents[0];
        assert_eq!(inc.category, "unauthorized_change");
        assert_eq!(
            inc.priority, 3,
            "medium criticality × medium urgency (packages)"
        );
        assert_eq!(inc.drifts.len(), 1);
        let drift = f.cmdb.drift(inc.drifts[0]).unwrap().unwrap();
        assert_eq!(drift.status, DriftStatus::Open);
        assert_eq!(drift.discovered.as_deref(), Some("1.24.0-1"));
        assert!(drift
            .decision
            .explanation
            .last()
            .unwrap()
            .contains("unauthorized"));
        let missing = f.cmdb.rfc(inc.rfcs[0]).unwrap().unwrap();
        assert_eq!(missing.status, RfcStatus::New);
        assert_eq!(missing.specs[0].to_string(), "packages.nginx: 1.24.0-1");
        // The CMDB still holds the authorized version.
        assert_eq!(
            f.authorized(ci, "packages.nginx").as_deref(),
            Some("1.22.1-9")
        );
        // The same drift seen again raises nothing new.
        f.report(UPGRADED, NOON + 2000);
        assert_eq!(f.incidents().len(), 1);
        assert_eq!(
            f.cmdb
                .drift(inc.drifts[0])
                .unwrap()
                .unwrap()
                .observation_count,
            2
        );
    }

    #[test]
    fn an_approved_rfc_in_its_window_authorizes_and_is_implemented() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        let rfc = f.rfc(
            ci,
            "packages.nginx: 1.24.*",
            Window {
                start_ms: NOON,
                end_ms: NOON + HOUR,
            },
        );
        assert_eq!(
            f.cmdb.rfc(rfc).unwrap().unwrap().status,
            RfcStatus::Scheduled
        );
        f.report(UPGRADED, NOON + 1000);
        assert!(f.incidents().is_empty());
        assert_eq!(
            f.authorized(ci, "packages.nginx").as_deref(),
            Some("1.24.0-1")
        );
        let rfc = f.cmdb.rfc(rfc).unwrap().unwrap();
        assert_eq!(rfc.status, RfcStatus::Implemented);
        assert_eq!(rfc.evidence.len(), 1);
        assert_eq!(rfc.evidence[0].new.as_deref(), Some("1.24.0-1"));
        let history = f.cmdb.ci_history(ci).unwrap();
        let last = history.last().unwrap();
        assert_eq!(last.why, Why::Rfc { rfc: rfc.id });
        assert_eq!(last.changes[0].old.as_deref(), Some("1.22.1-9"));
        // The CMDB as of before the change still says 1.22.
        let before = f.cmdb.ci_as_of(ci, NOON + 500).unwrap().unwrap();
        assert_eq!(
            before.get("packages.nginx").map(String::as_str),
            Some("1.22.1-9")
        );
        let after = f.cmdb.ci_as_of(ci, NOON + 1000).unwrap().unwrap();
        assert_eq!(
            after.get("packages.nginx").map(String::as_str),
            Some("1.24.0-1")
        );
    }

    #[test]
    fn outside_the_window_or_the_spec_is_unauthorized() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        // Window later today.
        f.rfc(
            ci,
            "packages.nginx: 1.24.*",
            Window {
                start_ms: NOON + HOUR,
                end_ms: NOON + 2 * HOUR,
            },
        );
        f.report(UPGRADED, NOON + 1000);
        let inc = &f.incidents()[0];
        let drift = f.cmdb.drift(inc.drifts[0]).unwrap().unwrap();
        assert!(
            drift
                .decision
                .explanation
                .iter()
                .any(|l| l.contains("does not contain the observation")),
            "{:?}",
            drift.decision.explanation
        );
        // In the window, but curl is not in the spec.
        let mut g = Fixture::new();
        let ci = g.report(BASE, NOON);
        g.rfc(
            ci,
            "packages.nginx: 1.24.*",
            Window {
                start_ms: NOON,
                end_ms: NOON + HOUR,
            },
        );
        g.report(&[("nginx", "1.24.0-1"), ("curl", "8.0.0-1")], NOON + 1000);
        let incidents = g.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0].drifts.len(), 1);
        let drift = g.cmdb.drift(incidents[0].drifts[0]).unwrap().unwrap();
        assert_eq!(drift.attribute, "packages.curl");
        assert_eq!(
            g.authorized(ci, "packages.nginx").as_deref(),
            Some("1.24.0-1")
        );
    }

    #[test]
    fn retroactive_approval_folds_the_change_and_resolves_the_incident() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        let inc = f.incidents().remove(0);
        f.cmdb
            .decide_rfc(
                &operator(),
                inc.rfcs[0],
                true,
                "emergency fix, fine",
                None,
                NOON + 5000,
            )
            .unwrap();
        assert_eq!(
            f.authorized(ci, "packages.nginx").as_deref(),
            Some("1.24.0-1")
        );
        let inc = f.cmdb.incident(inc.id).unwrap().unwrap();
        assert_eq!(inc.status, IncidentStatus::Resolved);
        assert!(inc
            .resolution
            .as_deref()
            .unwrap()
            .contains("retroactively approved"));
        let rfc = f.cmdb.rfc(inc.rfcs[0]).unwrap().unwrap();
        assert_eq!(rfc.status, RfcStatus::Implemented);
        assert_eq!(
            f.cmdb.drift(inc.drifts[0]).unwrap().unwrap().status,
            DriftStatus::Approved
        );
        // Discovery now agrees with the CMDB: nothing new.
        f.report(UPGRADED, NOON + 6000);
        assert_eq!(f.incidents().len(), 1);
    }

    #[test]
    fn rejection_then_revert_resolves_by_itself() {
        let mut f = Fixture::new();
        f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        let inc = f.incidents().remove(0);
        f.cmdb
            .decide_rfc(
                &operator(),
                inc.rfcs[0],
                false,
                "not allowed: roll back",
                None,
                NOON + 2000,
            )
            .unwrap();
        assert_eq!(
            f.cmdb.incident(inc.id).unwrap().unwrap().status,
            IncidentStatus::New
        );
        f.report(BASE, NOON + 3000);
        let inc = f.cmdb.incident(inc.id).unwrap().unwrap();
        assert_eq!(inc.status, IncidentStatus::Resolved);
        assert!(
            inc.resolution.as_deref().unwrap().contains("reverted"),
            "{:?}",
            inc.resolution
        );
        assert_eq!(
            f.cmdb.rfc(inc.rfcs[0]).unwrap().unwrap().status,
            RfcStatus::Rejected
        );
    }

    /// `n` packages at `version`, and one that never changes.
    fn fleet_of(n: usize, version: &str) -> Vec<(String, String)> {
        let mut packages: Vec<(String, String)> = (0..n)
            .map(|i| (format!("lib{i:04}"), version.to_owned()))
            .collect();
        packages.push(("nginx".into(), "1.22.1-9".into()));
        packages
    }

    fn report_owned(f: &mut Fixture, packages: &[(String, String)], at: i64) -> CiId {
        let borrowed: Vec<(&str, &str)> = packages
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        f.report(&borrowed, at)
    }

    #[test]
    fn a_mass_change_is_one_drift_one_incident_and_one_draft() {
        let mut f = Fixture::new();
        let n = MASS_CHANGE_THRESHOLD * 4;
        let ci = report_owned(&mut f, &fleet_of(n, "1.0"), NOON);
        report_owned(&mut f, &fleet_of(n, "2.0"), NOON + 1000);
        let drifts = f.cmdb.list_drifts().unwrap();
        assert_eq!(drifts.len(), 1, "one record for the section, not {n}");
        let mass = &drifts[0];
        assert!(mass.is_mass_change());
        assert_eq!(mass.attribute, "packages.*");
        assert_eq!(mass.members.len(), n);
        assert_eq!(
            mass.discovered.as_deref(),
            Some(format!("{n} changes").as_str())
        );
        let record = f.cmdb.ci(ci).unwrap().unwrap();
        assert_eq!(record.open_drifts.len(), n);
        assert!(record.open_drifts.values().all(|id| *id == mass.id));
        let incidents = f.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(
            incidents[0].title,
            format!("{n} unauthorized changes on web-1")
        );
        assert!(incidents[0].symptom.contains("reviewed as one mass change"));
        let draft = f.cmdb.rfc(incidents[0].rfcs[0]).unwrap().unwrap();
        assert_eq!(draft.specs.len(), n, "the draft lists every change");

        // Seen again: still one record, observed once more, nothing new.
        report_owned(&mut f, &fleet_of(n, "2.0"), NOON + 2000);
        assert_eq!(f.cmdb.list_drifts().unwrap().len(), 1);
        assert_eq!(f.incidents().len(), 1);
        let mass = f.cmdb.drift(mass.id).unwrap().unwrap();
        assert_eq!(mass.observation_count, 2);

        // Approving the draft accepts the whole upgrade, as one history entry.
        f.cmdb
            .decide_rfc(
                &operator(),
                draft.id,
                true,
                "the planned upgrade",
                None,
                NOON + 3000,
            )
            .unwrap();
        assert_eq!(f.authorized(ci, "packages.lib0007").as_deref(), Some("2.0"));
        assert_eq!(
            f.authorized(ci, "packages.nginx").as_deref(),
            Some("1.22.1-9")
        );
        let mass = f.cmdb.drift(mass.id).unwrap().unwrap();
        assert_eq!(mass.status, DriftStatus::Approved);
        assert!(mass.members.iter().all(|m| !m.open));
        assert!(f.cmdb.ci(ci).unwrap().unwrap().open_drifts.is_empty());
        let inc = f.cmdb.incident(incidents[0].id).unwrap().unwrap();
        assert_eq!(inc.status, IncidentStatus::Resolved);
        report_owned(&mut f, &fleet_of(n, "2.0"), NOON + 4000);
        assert_eq!(f.incidents().len(), 1);
    }

    #[test]
    fn a_mass_change_reverted_member_by_member_ends_reverted() {
        let mut f = Fixture::new();
        let n = MASS_CHANGE_THRESHOLD + 10;
        let ci = report_owned(&mut f, &fleet_of(n, "1.0"), NOON);
        report_owned(&mut f, &fleet_of(n, "2.0"), NOON + 1000);
        let mass = f.cmdb.list_drifts().unwrap().remove(0);
        // Half rolled back: still open, with the rest.
        let mut half = fleet_of(n, "2.0");
        for p in half.iter_mut().take(n / 2) {
            p.1 = "1.0".into();
        }
        report_owned(&mut f, &half, NOON + 2000);
        let open = f.cmdb.drift(mass.id).unwrap().unwrap();
        assert_eq!(open.status, DriftStatus::Open);
        assert_eq!(open.members.iter().filter(|m| m.open).count(), n - n / 2);
        assert_eq!(f.cmdb.ci(ci).unwrap().unwrap().open_drifts.len(), n - n / 2);
        // All of it rolled back: reverted, the draft cancelled, the
        // incident resolved.
        report_owned(&mut f, &fleet_of(n, "1.0"), NOON + 3000);
        let done = f.cmdb.drift(mass.id).unwrap().unwrap();
        assert_eq!(done.status, DriftStatus::Reverted);
        let inc = f.incidents().remove(0);
        assert_eq!(inc.status, IncidentStatus::Resolved);
        assert_eq!(
            f.cmdb.rfc(inc.rfcs[0]).unwrap().unwrap().status,
            RfcStatus::Cancelled
        );
        assert!(f.cmdb.ci(ci).unwrap().unwrap().open_drifts.is_empty());
        // A handful of changes is still one drift each.
        let mut few = fleet_of(n, "1.0");
        for p in few.iter_mut().take(3) {
            p.1 = "3.0".into();
        }
        report_owned(&mut f, &few, NOON + 4000);
        let new: Vec<_> = f
            .cmdb
            .list_drifts()
            .unwrap()
            .into_iter()
            .filter(|d| d.status == DriftStatus::Open)
            .collect();
        assert_eq!(new.len(), 3);
        assert!(new.iter().all(|d| !d.is_mass_change()));
    }

    #[test]
    fn a_scheduled_mass_upgrade_is_one_authorized_record() {
        let mut f = Fixture::new();
        let n = MASS_CHANGE_THRESHOLD * 2;
        let ci = report_owned(&mut f, &fleet_of(n, "1.0"), NOON);
        let rfc = f.rfc(
            ci,
            "packages.lib*: 2.0",
            Window {
                start_ms: NOON,
                end_ms: NOON + 3_600_000,
            },
        );
        report_owned(&mut f, &fleet_of(n, "2.0"), NOON + 1000);
        let drifts = f.cmdb.list_drifts().unwrap();
        assert_eq!(drifts.len(), 1);
        assert_eq!(drifts[0].status, DriftStatus::Authorized);
        assert_eq!(drifts[0].members.len(), n);
        assert!(f.incidents().is_empty());
        assert_eq!(f.authorized(ci, "packages.lib0001").as_deref(), Some("2.0"));
        let rfc = f.cmdb.rfc(rfc).unwrap().unwrap();
        assert_eq!(rfc.evidence.len(), n);
        assert!(rfc.evidence.iter().all(|e| e.drift == Some(drifts[0].id)));
    }

    #[test]
    fn a_reverted_change_with_no_decision_cancels_its_draft() {
        let mut f = Fixture::new();
        f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        f.report(BASE, NOON + 2000);
        let inc = f.incidents().remove(0);
        assert_eq!(inc.status, IncidentStatus::Resolved);
        assert_eq!(
            f.cmdb.rfc(inc.rfcs[0]).unwrap().unwrap().status,
            RfcStatus::Cancelled
        );
    }

    #[test]
    fn a_change_back_after_its_revert_has_a_draft_to_approve() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        f.report(BASE, NOON + 2000);
        let first = f.incidents().remove(0).rfcs[0];
        assert_eq!(
            f.cmdb.rfc(first).unwrap().unwrap().status,
            RfcStatus::Cancelled
        );
        // Back again within the flap window: the same drift and incident
        // reopen, with a new draft linked to both.
        f.report(UPGRADED, NOON + 3000);
        let inc = f.incidents().remove(0);
        assert!(inc.status.is_open());
        let drift = f.cmdb.drift(inc.drifts[0]).unwrap().unwrap();
        assert_eq!(drift.status, DriftStatus::Open);
        let draft = drift.missing_rfc.unwrap();
        assert_ne!(draft, first);
        assert_eq!(inc.rfcs, vec![first, draft]);
        let rfc = f.cmdb.rfc(draft).unwrap().unwrap();
        assert_eq!(rfc.status, RfcStatus::New);
        assert_eq!(rfc.drifts, vec![drift.id]);
        assert_eq!(rfc.specs[0].to_string(), "packages.nginx: 1.24.0-1");
        // Approving it accepts the change and resolves the incident.
        f.cmdb
            .decide_rfc(&operator(), draft, true, "accepted", None, NOON + 4000)
            .unwrap();
        assert_eq!(
            f.authorized(ci, "packages.nginx").as_deref(),
            Some("1.24.0-1")
        );
        assert_eq!(f.incidents()[0].status, IncidentStatus::Resolved);
    }

    #[test]
    fn an_rfc_approved_after_the_change_was_seen_settles_its_drift() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        let inc = f.incidents().remove(0);
        let draft = inc.rfcs[0];
        // An emergency change approved the next day, its window long past.
        let window = Window {
            start_ms: NOON - 2 * HOUR,
            end_ms: NOON - HOUR,
        };
        let rfc = f.rfc(ci, "packages.nginx: 1.24.*", window);
        let rfc = f.cmdb.rfc(rfc).unwrap().unwrap();
        assert_eq!(rfc.status, RfcStatus::Implemented);
        assert_eq!(rfc.evidence.len(), 1);
        assert_eq!(rfc.evidence[0].new.as_deref(), Some("1.24.0-1"));
        assert_eq!(rfc.evidence[0].at_ms, NOON + 1000, "when discovery saw it");
        assert_eq!(
            f.authorized(ci, "packages.nginx").as_deref(),
            Some("1.24.0-1")
        );
        let drift = f.cmdb.drift(inc.drifts[0]).unwrap().unwrap();
        assert_eq!(drift.status, DriftStatus::Approved);
        assert!(drift.resolution.unwrap().contains(&rfc.id.to_string()));
        assert_eq!(f.incidents()[0].status, IncidentStatus::Resolved);
        let draft = f.cmdb.rfc(draft).unwrap().unwrap();
        assert_eq!(draft.status, RfcStatus::Cancelled);
        // Nothing drifts at the next inventory.
        f.report(UPGRADED, NOON + 2000);
        assert_eq!(f.incidents().len(), 1);
        assert!(f.cmdb.ci(ci).unwrap().unwrap().open_drifts.is_empty());
    }

    #[test]
    fn an_incident_of_open_drift_is_not_resolved_by_hand_without_force() {
        use crate::cmdb::action::ActionError;
        use crate::cmdb::incident::IncidentUpdate;
        let mut f = Fixture::new();
        f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        let inc = f.incidents().remove(0);
        let resolve = |force: bool, note: Option<&str>| {
            let update = IncidentUpdate {
                status: Some(IncidentStatus::Resolved),
                note: note.map(Into::into),
                force,
                ..IncidentUpdate::default()
            };
            f.cmdb
                .update_incident(&operator(), inc.id, &update, NOON + 2000)
        };
        let refused = resolve(false, Some("done")).unwrap_err();
        assert!(matches!(refused, ActionError::Conflict(_)), "{refused}");
        let text = refused.to_string();
        assert!(text.contains(&inc.drifts[0].to_string()), "{text}");
        assert!(
            text.contains(&inc.rfcs[0].to_string()) && text.contains("--force"),
            "{text}"
        );
        let refused = resolve(true, None).unwrap_err();
        assert!(matches!(refused, ActionError::Invalid(_)), "{refused}");
        assert!(f.incidents()[0].status.is_open());
        let resolved = resolve(true, Some("the vendor pushed it; RFC follows")).unwrap();
        assert_eq!(resolved.status, IncidentStatus::Resolved);
        let trail = f.cmdb.trail_entries().unwrap();
        let entry = trail.last().unwrap();
        assert_eq!(entry.action, "incident.force_resolve");
        assert!(entry.detail.contains("the vendor pushed it"), "{entry:?}");
        assert!(
            entry.detail.contains(&inc.drifts[0].to_string()),
            "{entry:?}"
        );
    }

    #[test]
    fn an_incidents_priority_follows_its_cis_criticality() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        let before = f.incidents().remove(0);
        assert_eq!((before.impact, before.priority), (Level::Medium, 3));
        let set = vec![("criticality".to_owned(), Some("high".to_owned()))];
        f.cmdb
            .edit_ci(&operator(), ci, &set, "it runs the shop now", NOON + 2000)
            .unwrap();
        let after = f.incidents().remove(0);
        assert_eq!(after.impact, Level::High);
        assert_eq!(
            after.priority,
            crate::control::policy::priority(Level::High, before.urgency)
        );
        assert!(after.priority < before.priority, "more urgent: {after:?}");
        assert!(after.due_at_ms < before.due_at_ms);
        assert!(after.log.last().unwrap().text.contains("criticality"));
    }

    #[test]
    fn reverted_drift_is_not_current_drift() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        let drift = f.incidents()[0].drifts[0];
        assert_eq!(f.cmdb.ci(ci).unwrap().unwrap().open_drifts.len(), 1);
        f.report(BASE, NOON + 2000);
        let record = f.cmdb.ci(ci).unwrap().unwrap();
        assert!(record.open_drifts.is_empty(), "{:?}", record.open_drifts);
        // Still watched for a flap, apart from the open ones.
        assert_eq!(record.reverted_drifts.get("packages.nginx"), Some(&drift));
        // And forgotten after the flap window.
        f.report(BASE, NOON + 3 * HOUR);
        assert!(f.cmdb.ci(ci).unwrap().unwrap().reverted_drifts.is_empty());
    }

    #[test]
    fn each_observation_is_explained_as_it_was_decided() {
        let mut f = Fixture::new();
        f.report(BASE, NOON);
        f.report(UPGRADED, NOON + 1000);
        // nginx removed while its upgrade is still unauthorized.
        f.report(&[("curl", "7.88.1-10")], NOON + 2000);
        let drift = f.incidents()[0].drifts[0];
        let d = f.cmdb.drift(drift).unwrap().unwrap();
        assert_eq!(d.kind, ChangeKind::Removed);
        assert_eq!(d.discovered, None);
        let now = d.decision.explanation.join(" ");
        assert!(!now.contains("1.24.0-1"), "{now}");
        assert_eq!(d.earlier.len(), 1);
        assert_eq!(d.earlier[0].kind, ChangeKind::Modified);
        assert_eq!(d.earlier[0].value.as_deref(), Some("1.24.0-1"));
        // The same removal seen again keeps no copy of its own explanation.
        f.report(&[("curl", "7.88.1-10")], NOON + 3000);
        let d = f.cmdb.drift(drift).unwrap().unwrap();
        assert_eq!((d.earlier.len(), d.observation_count), (1, 3));
    }

    #[test]
    fn flapping_raises_one_incident() {
        let mut f = Fixture::new();
        f.report(BASE, NOON);
        for i in 1..=6 {
            let packages = if i % 2 == 1 { UPGRADED } else { BASE };
            f.report(packages, NOON + i * 60_000);
        }
        let incidents = f.incidents();
        assert_eq!(incidents.len(), 1, "{incidents:#?}");
        let drift = f.cmdb.drift(incidents[0].drifts[0]).unwrap().unwrap();
        assert_eq!(drift.flips, 2, "came back twice after reverts");
        assert_eq!(incidents[0].reopened, 2);
        assert_eq!(
            incidents[0].status,
            IncidentStatus::Resolved,
            "last seen reverted"
        );
        // After the flap window, the same change is a new incident.
        f.report(UPGRADED, NOON + 3 * HOUR);
        assert_eq!(f.incidents().len(), 2);
    }

    #[test]
    fn a_standard_change_authorizes_inside_its_window_only() {
        let mut f = Fixture::new();
        let monday_0300 = NOON - 9 * HOUR;
        let ci = f.report(&[("libc6", "2.36-9+deb12u3")], monday_0300);
        f.report(&[("libc6", "2.36-9+deb12u4")], monday_0300 + 1000);
        assert!(f.incidents().is_empty());
        assert_eq!(
            f.authorized(ci, "packages.libc6").as_deref(),
            Some("2.36-9+deb12u4")
        );
        let drifts = f.cmdb.list_drifts().unwrap();
        assert_eq!(drifts.len(), 1);
        assert_eq!(drifts[0].status, DriftStatus::Authorized);
        assert!(drifts[0]
            .resolution
            .as_deref()
            .unwrap()
            .contains("standard change"));
        // The same kind of update at noon is unauthorized.
        f.report(&[("libc6", "2.36-9+deb12u5")], NOON);
        assert_eq!(f.incidents().len(), 1);
    }

    #[test]
    fn under_review_registration_nothing_drifts_until_a_person_registers() {
        let review = Policy::from_toml(
            "[registration]\nnew_cis = \"review\"",
            std::path::Path::new("policy.toml"),
        )
        .unwrap();
        let mut f = Fixture::with_policy(review);
        let ci = f.report(BASE, NOON);
        let record = f.cmdb.ci(ci).unwrap().unwrap();
        assert!(!record.registered);
        assert!(record.attributes.is_empty());
        f.report(UPGRADED, NOON + 1000);
        assert!(f.incidents().is_empty(), "unregistered CIs raise no drift");
        let registered = f.cmdb.register_ci(&operator(), ci, NOON + 2000).unwrap();
        assert_eq!(
            registered
                .attributes
                .get("packages.nginx")
                .map(String::as_str),
            Some("1.24.0-1")
        );
        let history = f.cmdb.ci_history(ci).unwrap();
        assert!(matches!(
            history.last().unwrap().why,
            Why::Registration { .. }
        ));
        assert!(
            f.cmdb.register_ci(&operator(), ci, NOON + 2500).is_err(),
            "once only"
        );
        f.report(BASE, NOON + 3000);
        assert_eq!(f.incidents().len(), 1, "now the downgrade is drift");
    }

    #[test]
    fn fields_a_newer_agent_adds_are_found_not_drift() {
        let mut f = Fixture::new();
        f.report(BASE, NOON);
        // The same host, reported by an agent that also reads the time
        // zone and the listening sockets.
        let mut newer = inventory(BASE, NOON + 1000);
        newer.host.timezone = Some("Europe/Paris".into());
        newer.listeners = Some(vec![fathom_shared::wire::Listener {
            protocol: "tcp".into(),
            address: "0.0.0.0".into(),
            port: 22,
            process: Some("sshd".into()),
            ..Default::default()
        }]);
        let ci = f.send(newer);
        assert!(
            f.incidents().is_empty(),
            "{:#?}",
            f.cmdb.list_drifts().unwrap()
        );
        assert_eq!(
            f.authorized(ci, "os.timezone").as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(
            f.authorized(ci, "ports.tcp/0.0.0.0:22").as_deref(),
            Some("sshd")
        );
    }

    #[test]
    fn stale_cis_are_flagged_not_deleted() {
        let mut f = Fixture::new();
        let ci = f.report(BASE, NOON);
        let record = f.cmdb.ci(ci).unwrap().unwrap();
        let week = 7 * 24 * HOUR;
        assert!(!record.is_stale(NOON + week, week));
        assert!(record.is_stale(NOON + week + 1, week));
        let report = f.cmdb.audit_report(1, NOON + 2 * week).unwrap();
        assert_eq!(report.no_longer_discovered, vec![ci]);
        assert_eq!(f.cmdb.list_cis().unwrap().len(), 1);
    }

    #[test]
    fn a_failed_probe_raises_no_drift() {
        let mut f = Fixture::new();
        f.report(BASE, NOON);
        let mut unread = inventory(BASE, NOON + 1000);
        unread.packages = None;
        f.send(unread);
        assert!(f.incidents().is_empty());
        assert!(f.cmdb.list_drifts().unwrap().is_empty());
    }
}

#[cfg(test)]
mod model {
    //! Random report sequences against invariants that must hold after
    //! every report, whatever the order of changes and reverts.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use crate::cmdb::drift::DriftStatus;
    use crate::test_support::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn reconciliation_invariants(steps in prop::collection::vec((0usize..3, 0usize..3, 1i64..90), 1..14)) {
            let mut f = Fixture::new();
            let versions = ["1.0", "2.0", "3.0"];
            let names = ["alpha", "beta", "gamma"];
            let mut at = NOON;
            let base: Vec<(&str, &str)> = names.iter().map(|n| (*n, "1.0")).collect();
            let ci = f.report(&base, at);
            let mut state: BTreeMap<&str, &str> = base.iter().copied().collect();
            for (package, version, minutes) in steps {
                at += minutes * 60_000;
                state.insert(names[package], versions[version]);
                let packages: Vec<(&str, &str)> = state.iter().map(|(k, v)| (*k, *v)).collect();
                f.report(&packages, at);

                let record = f.cmdb.ci(ci).unwrap().unwrap();
                // No RFC and no standard change cover these: the authorized
                // state never moves from what was registered.
                for n in names {
                    prop_assert_eq!(record.attributes.get(&format!("packages.{n}")).map(String::as_str), Some("1.0"));
                }
                for (n, v) in &state {
                    let attr = format!("packages.{n}");
                    let open = record
                        .open_drifts
                        .get(&attr)
                        .and_then(|id| f.cmdb.drift(*id).unwrap())
                        .filter(|d| d.status == DriftStatus::Open);
                    // A differing value has exactly one open drift holding
                    // the value last seen; an authorized one has none.
                    if *v == "1.0" {
                        prop_assert!(open.is_none(), "{attr} is back at 1.0 but drift is open");
                    } else {
                        let open = open.expect("a differing value has an open drift");
                        prop_assert_eq!(open.discovered.as_deref(), Some(*v));
                    }
                }
                // An incident is open exactly when some drift of it is.
                for inc in f.cmdb.list_incidents().unwrap() {
                    let any_open = inc
                        .drifts
                        .iter()
                        .any(|d| f.cmdb.drift(*d).unwrap().unwrap().status == DriftStatus::Open);
                    prop_assert_eq!(inc.status.is_open(), any_open, "{:?}", inc);
                }
            }
        }
    }
}
