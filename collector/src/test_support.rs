//! The CMDB's test fixture, for the unit tests of the records and of every
//! module built on them: a CMDB on a fresh store (`cmdb`, `enroll`,
//! `inventory_report`), and a [`Fixture`] with one enrolled agent and
//! helpers to report and decide.

use std::path::Path;

use fathom_shared::ids::{AgentId, CiId};
use fathom_shared::wire::{AckOutcome, Dmi, Enrollment, Host, Interface, Inventory, Package};

use crate::cmdb::ci::NewCi;
use crate::cmdb::history::Actor;
use crate::cmdb::incident::Incident;
use crate::cmdb::rfc::{NewRfc, RfcImpact, RfcLevel, Target, Window};
use crate::cmdb::{Cmdb, Role};
use crate::control::policy::{Level, Policy};
use crate::reconcile::{Applied, CmdbError, Report};
use crate::store::sled_store::SledStore;
use fathom_api::ids::RfcId;

pub fn cmdb() -> (tempfile::TempDir, Cmdb<SledStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    (dir, Cmdb::new(store, Policy::builtin()))
}

pub fn enroll(cmdb: &Cmdb<SledStore>, n: u8, token: &str) -> Result<Applied, CmdbError> {
    let key = [n; 32];
    let body = Enrollment {
        token: token.into(),
        hostname: "h".into(),
        agent_version: "t".into(),
    };
    cmdb.apply(
        AgentId::from_public_key(&key),
        0,
        "d",
        &Report::Enrollment {
            public_key: key,
            body,
        },
        1000,
    )
}

/// An inventory report of a host known by its machine-id and, if given,
/// its DMI UUID.
pub fn inventory_report(machine_id: &str, uuid: Option<&str>) -> Report {
    Report::Inventory(Box::new(Inventory {
        host: Host {
            hostname: format!("host-{machine_id}"),
            machine_id: Some(machine_id.into()),
            arch: "x86_64".into(),
            ..Host::default()
        },
        dmi: uuid.map(|u| Dmi {
            product_uuid: Some(u.into()),
            ..Dmi::default()
        }),
        interfaces: Some(vec![Interface {
            name: "eth0".into(),
            mac: Some("52:54:00:12:34:56".into()),
            addresses: vec![],
            ..Interface::default()
        }]),
        ..Inventory::default()
    }))
}

pub const HOUR: i64 = 3_600_000;
// Monday 2026-11-23 12:00 UTC: outside the test policy's standard window.
pub const NOON: i64 = 1_795_392_000_000 + 12 * HOUR;

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub cmdb: Cmdb<SledStore>,
    pub agent: AgentId,
    pub seq: u64,
}

pub fn policy() -> Policy {
    Policy::from_toml(
        r#"
        [drift]
        flap_window = "1h"
        [[standard_changes]]
        name = "security"
        attribute = "packages.*"
        value = "*+deb*u*"
        kinds = ["modified"]
        window = { days = ["mon"], start = "02:00", end = "04:00" }
        "#,
        Path::new("policy.toml"),
    )
    .unwrap()
}

/// A CI to create by hand: its class, name and attributes.
pub fn new_ci(class: &str, name: &str, attributes: &[(&str, &str)]) -> NewCi {
    NewCi {
        class: class.into(),
        name: name.into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

pub fn operator() -> Actor {
    Actor::Operator {
        name: "carol".into(),
        role: Role::ChangeManager,
    }
}

/// The fixture host (web-1, machine-id m1) with these packages.
pub fn inventory(packages: &[(&str, &str)], at: i64) -> Inventory {
    Inventory {
        observed_at_ms: at,
        host: Host {
            hostname: "web-1".into(),
            arch: "x86_64".into(),
            machine_id: Some("m1".into()),
            ..Host::default()
        },
        packages: Some(
            packages
                .iter()
                .map(|(n, v)| Package {
                    name: n.to_string(),
                    version: v.to_string(),
                    arch: Some("amd64".into()),
                    manager: "dpkg".into(),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Inventory::default()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        Self::with_policy(policy())
    }

    pub fn with_policy(policy: Policy) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cmdb = Cmdb::new(SledStore::open(dir.path()).unwrap(), policy);
        let (token, _) = cmdb.create_enrollment_token(HOUR, 1, 0).unwrap();
        let key = [9; 32];
        let agent = AgentId::from_public_key(&key);
        let enrollment = Report::Enrollment {
            public_key: key,
            body: Enrollment {
                token,
                hostname: "web-1".into(),
                agent_version: "t".into(),
            },
        };
        cmdb.apply(agent, 0, "e", &enrollment, 0).unwrap();
        Fixture {
            _dir: dir,
            cmdb,
            agent,
            seq: 0,
        }
    }

    /// Reports an inventory with these packages, observed at `at`.
    pub fn report(&mut self, packages: &[(&str, &str)], at: i64) -> CiId {
        self.send(inventory(packages, at))
    }

    /// Reports a hand-made inventory.
    pub fn send(&mut self, inventory: Inventory) -> CiId {
        let at = inventory.observed_at_ms;
        self.apply(Report::Inventory(Box::new(inventory)), at)
    }

    /// Applies the agent's next report, received at `at`, which must
    /// be stored; returns its CI.
    pub fn apply(&mut self, report: Report, at: i64) -> CiId {
        self.seq += 1;
        let digest = format!("d{}", self.seq);
        let applied = self
            .cmdb
            .apply(self.agent, self.seq, &digest, &report, at)
            .unwrap();
        assert_eq!(applied.outcome, AckOutcome::Stored);
        applied.ci_id.unwrap()
    }

    pub fn incidents(&self) -> Vec<Incident> {
        self.cmdb.list_incidents().unwrap()
    }

    pub fn authorized(&self, ci: CiId, attr: &str) -> Option<String> {
        self.cmdb
            .ci(ci)
            .unwrap()
            .unwrap()
            .attributes
            .get(attr)
            .cloned()
    }

    pub fn rfc(&self, ci: CiId, spec: &str, window: Window) -> RfcId {
        let new = NewRfc {
            title: "upgrade nginx".into(),
            description: String::new(),
            reason: String::new(),
            change_type: "upgrade".into(),
            level: RfcLevel::Normal,
            impact: RfcImpact::Minor,
            risk: Level::Low,
            targets: vec![Target::Ci(ci)],
            specs: vec![spec.parse().unwrap()],
            implementation_plan: String::new(),
            backout_plan: String::new(),
            window: Some(window),
        };
        let rfc = self.cmdb.raise_rfc(&operator(), &new, NOON).unwrap();
        self.cmdb
            .decide_rfc(&operator(), rfc.id, true, "ok", None, NOON)
            .unwrap();
        rfc.id
    }
}
