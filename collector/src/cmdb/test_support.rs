//! A CMDB on a fresh store, enrolled agents and minimal inventories, for
//! unit tests here and in the modules built on the CMDB.

use fathom_shared::ids::AgentId;
use fathom_shared::wire::{Dmi, Enrollment, Host, Interface, Inventory};

use super::{Applied, Cmdb, CmdbError, Report};
use crate::control::policy::Policy;
use crate::store::sled_store::SledStore;

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

pub fn inventory(machine_id: &str, uuid: Option<&str>) -> Report {
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
