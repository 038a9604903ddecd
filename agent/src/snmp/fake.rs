//! A well-behaved device for tests: answers GET and GETBULK from a map of
//! objects over a loopback UDP port, as an agent implementing those MIBs
//! would. (Recordings of real devices, served by snmpsim, are in the
//! integration tests.)

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rasn::types::{ObjectIdentifier, OctetString};
use rasn_smi::v2::{ApplicationSyntax, SimpleSyntax};
use rasn_snmp::v2::{ObjectSyntax, Pdu, Pdus, Response, VarBind, VarBindValue};
use rasn_snmp::v2c::Message;
use tokio::net::UdpSocket;

use super::{Oid, Value};

fn wire(value: &Value) -> VarBindValue {
    let simple = |s| VarBindValue::Value(ObjectSyntax::Simple(s));
    match value {
        Value::Integer(i) => simple(SimpleSyntax::Integer((*i).into())),
        Value::OctetString(b) => simple(SimpleSyntax::String(OctetString::from(b.clone()))),
        Value::Oid(o) => simple(SimpleSyntax::ObjectId(
            ObjectIdentifier::new(o.0.clone()).unwrap(),
        )),
        Value::Gauge32(g) => VarBindValue::Value(ObjectSyntax::ApplicationWide(
            ApplicationSyntax::Unsigned(rasn_smi::v1::Gauge(*g)),
        )),
        Value::TimeTicks(t) => VarBindValue::Value(ObjectSyntax::ApplicationWide(
            ApplicationSyntax::Ticks(rasn_smi::v1::TimeTicks(*t)),
        )),
        Value::NoSuchObject => VarBindValue::NoSuchObject,
        Value::EndOfMibView => VarBindValue::EndOfMibView,
        other => unimplemented!("the fake does not serve {other:?}"),
    }
}

/// An SNMPv2c Response to request `id`, encoded.
pub fn response(community: &OctetString, id: i32, bindings: Vec<VarBind>) -> Vec<u8> {
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

/// Serves `objects` until the test's runtime ends.
pub async fn serve(objects: BTreeMap<Oid, Value>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 65_536];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            let request: Message<Pdus> = rasn::ber::decode(&buffer[..len]).unwrap();
            let (id, answers): (i32, Vec<(Oid, Value)>) = match &request.data {
                Pdus::GetRequest(g) => (
                    g.0.request_id,
                    g.0.variable_bindings
                        .iter()
                        .map(|vb| {
                            let oid = Oid(vb.name.to_vec());
                            let value = objects.get(&oid).cloned().unwrap_or(Value::NoSuchObject);
                            (oid, value)
                        })
                        .collect(),
                ),
                Pdus::GetBulkRequest(b) => {
                    // Repetition by repetition, the next object after each
                    // varbind's cursor (RFC 3416 4.2.3).
                    let mut cursors: Vec<Oid> =
                        b.0.variable_bindings
                            .iter()
                            .map(|vb| Oid(vb.name.to_vec()))
                            .collect();
                    let mut next = Vec::new();
                    for _ in 0..b.0.max_repetitions {
                        for cursor in &mut cursors {
                            let found = objects
                                .range((
                                    std::ops::Bound::Excluded(cursor.clone()),
                                    std::ops::Bound::Unbounded,
                                ))
                                .next();
                            match found {
                                Some((oid, value)) => {
                                    *cursor = oid.clone();
                                    next.push((oid.clone(), value.clone()));
                                }
                                None => next.push((cursor.clone(), Value::EndOfMibView)),
                            }
                        }
                    }
                    (b.0.request_id, next)
                }
                _ => continue,
            };
            let bindings = answers
                .iter()
                .map(|(oid, value)| VarBind {
                    name: ObjectIdentifier::new(oid.0.clone()).unwrap(),
                    value: wire(value),
                })
                .collect();
            let _ = socket
                .send_to(&response(&request.community, id, bindings), from)
                .await;
        }
    });
    address
}
