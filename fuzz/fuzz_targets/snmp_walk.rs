//! The SNMP walker against a hostile device: whatever it asks, the device
//! answers with objects the fuzzer chose (any OID under the MIBs a poll
//! walks, in any order, repeated or going backwards, of any type), until
//! the input runs out; then it says end of MIB. The poll must end, within
//! its row and time budgets, with a result or an error.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use fathom_agent::snmp::client::{Security, Session, Settings};
use libfuzzer_sys::fuzz_target;
use rasn::types::{ObjectIdentifier, OctetString};
use rasn_smi::v2::{ApplicationSyntax, SimpleSyntax};
use rasn_snmp::v2::{ObjectSyntax, Pdu, Pdus, Response, VarBind, VarBindValue};
use rasn_snmp::v2c::Message;

/// Subtrees a poll walks: system, interfaces, ifXTable, ipAddrTable,
/// hrStorage, entPhysicalTable, LLDP, CDP.
const PREFIXES: [&[u32]; 8] = [
    &[1, 3, 6, 1, 2, 1, 1],
    &[1, 3, 6, 1, 2, 1, 2, 2, 1],
    &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1],
    &[1, 3, 6, 1, 2, 1, 4, 20, 1],
    &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1],
    &[1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1],
    &[1, 0, 8802, 1, 1, 2, 1, 4, 1, 1],
    &[1, 3, 6, 1, 4, 1, 9, 9, 23, 1, 2, 1, 1],
];

/// Reads the fuzzer's bytes as a device's answers.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }

    /// One varbind, or `None` when the script is over.
    fn varbind(&mut self) -> Option<VarBind> {
        let prefix = PREFIXES[usize::from(self.byte()?) % PREFIXES.len()];
        let mut arcs = prefix.to_vec();
        for _ in 0..(self.byte()? % 4) + 1 {
            arcs.push(u32::from(self.byte()?));
        }
        let kind = self.byte()?;
        let n = u64::from(self.byte()?);
        let simple = |s| VarBindValue::Value(ObjectSyntax::Simple(s));
        let app = |a| VarBindValue::Value(ObjectSyntax::ApplicationWide(a));
        let value = match kind % 10 {
            0 => simple(SimpleSyntax::Integer((n as i64 - 128).into())),
            1 => {
                let len = usize::from(self.byte()? % 64);
                simple(SimpleSyntax::String(OctetString::from(self.bytes(len))))
            }
            2 => simple(SimpleSyntax::ObjectId(
                ObjectIdentifier::new(vec![1, 3, 6, 1, 4, 1, n as u32]).unwrap(),
            )),
            3 => app(ApplicationSyntax::Counter(rasn_smi::v1::Counter(n as u32))),
            4 => app(ApplicationSyntax::Unsigned(rasn_smi::v1::Gauge(n as u32))),
            5 => app(ApplicationSyntax::Ticks(rasn_smi::v1::TimeTicks(n as u32))),
            6 => app(ApplicationSyntax::BigCounter(rasn_smi::v2::Counter64(
                n.wrapping_mul(0x0101_0101_0101),
            ))),
            7 => VarBindValue::NoSuchInstance,
            8 => VarBindValue::NoSuchObject,
            _ => VarBindValue::EndOfMibView,
        };
        Some(VarBind {
            name: ObjectIdentifier::new(arcs).unwrap(),
            value,
        })
    }
}

fn answer(community: &OctetString, id: i32, bindings: Vec<VarBind>) -> Vec<u8> {
    rasn::ber::encode(&Message {
        version: 1.into(),
        community: community.clone(),
        data: Pdus::Response(Response(Pdu {
            request_id: id,
            error_status: 0,
            error_index: 0,
            variable_bindings: bindings,
        })),
    })
    .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let script = data.to_vec();
    runtime.block_on(async move {
        let device = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target: SocketAddr = device.local_addr().unwrap();
        tokio::spawn(async move {
            let mut script = Script(&script);
            let mut buffer = vec![0u8; 65_536];
            while let Ok((len, from)) = device.recv_from(&mut buffer).await {
                let Ok(request) = rasn::ber::decode::<Message<Pdus>>(&buffer[..len]) else {
                    continue;
                };
                let (id, asked) = match &request.data {
                    Pdus::GetRequest(g) => (g.0.request_id, g.0.variable_bindings.len()),
                    Pdus::GetNextRequest(g) => (g.0.request_id, g.0.variable_bindings.len()),
                    Pdus::GetBulkRequest(b) => (
                        b.0.request_id,
                        b.0.variable_bindings.len() * b.0.max_repetitions.max(1) as usize,
                    ),
                    _ => continue,
                };
                let mut bindings = Vec::new();
                for _ in 0..asked.min(64) {
                    match script.varbind() {
                        Some(vb) => bindings.push(vb),
                        None => break,
                    }
                }
                if bindings.is_empty() {
                    // The script is over: the end of the MIB, for every ask.
                    let ends = match &request.data {
                        Pdus::GetRequest(g) => &g.0.variable_bindings,
                        Pdus::GetNextRequest(g) => &g.0.variable_bindings,
                        Pdus::GetBulkRequest(b) => &b.0.variable_bindings,
                        _ => continue,
                    };
                    bindings = ends
                        .iter()
                        .map(|vb| VarBind {
                            name: vb.name.clone(),
                            value: VarBindValue::EndOfMibView,
                        })
                        .collect();
                }
                let _ = device
                    .send_to(&answer(&request.community, id, bindings), from)
                    .await;
            }
        });
        let settings = Settings {
            security: Security::Community("public".into()),
            timeout: Duration::from_millis(200),
            retries: 0,
            budget: Duration::from_secs(5),
            max_rows: 2_000,
            max_repetitions: 10,
        };
        let Ok(mut session) = Session::open(target, settings).await else {
            return;
        };
        let _ = fathom_agent::snmp::device::probe(&mut session).await;
    });
});
