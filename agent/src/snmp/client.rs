//! One device, over UDP: requests matched to answers by request id, with a
//! timeout per attempt, retries, and a time budget for the whole device.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rasn::types::{ObjectIdentifier, OctetString};
use rasn_snmp::v2::{
    BulkPdu, GetBulkRequest, GetNextRequest, GetRequest, Pdu, VarBind, VarBindValue,
};
use rasn_snmp::v2c::Message;
use tokio::net::UdpSocket;

use super::{Oid, Value};

type Pdus = rasn_snmp::v2::Pdus;

/// How to talk to one device.
#[derive(Debug, Clone)]
pub struct Settings {
    pub community: String,
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// All the time one device may take, across every request.
    pub budget: Duration,
    /// Rows one walk may return before the device is taken to be looping.
    pub max_rows: usize,
    pub max_repetitions: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            community: "public".into(),
            timeout: Duration::from_secs(2),
            retries: 2,
            budget: Duration::from_secs(60),
            max_rows: 100_000,
            max_repetitions: 25,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    #[error("cannot reach {target}")]
    Io {
        target: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{target} did not answer within {timeout:?} ({attempts} attempts)")]
    Timeout {
        target: SocketAddr,
        timeout: Duration,
        attempts: u32,
    },
    #[error("{target} used up its time budget of {budget:?}")]
    Budget {
        target: SocketAddr,
        budget: Duration,
    },
    #[error("{target} answered with an undecodable message: {message}")]
    Malformed { target: SocketAddr, message: String },
    #[error("{target} answered with error status {status} at variable {index}")]
    ErrorStatus {
        target: SocketAddr,
        status: u32,
        index: u32,
    },
    #[error("{target} returned {next} after {previous} in a walk: OIDs must increase")]
    NotIncreasing {
        target: SocketAddr,
        previous: Oid,
        next: Oid,
    },
    #[error("{target} returned more than {max} rows under {root}")]
    TooManyRows {
        target: SocketAddr,
        root: Oid,
        max: usize,
    },
}

/// A session with one device.
#[derive(Debug)]
pub struct Session {
    socket: UdpSocket,
    target: SocketAddr,
    settings: Settings,
    next_id: i32,
    deadline: Instant,
    /// Requests sent, retries included (for the benchmark's packet counts).
    pub requests_sent: u64,
}

impl Session {
    pub async fn open(target: SocketAddr, settings: Settings) -> Result<Session, SnmpError> {
        let io = |source| SnmpError::Io { target, source };
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(io)?;
        socket.connect(target).await.map_err(io)?;
        let deadline = Instant::now() + settings.budget;
        Ok(Session {
            socket,
            target,
            next_id: rand_id(),
            deadline,
            settings,
            requests_sent: 0,
        })
    }

    pub async fn get(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let pdu = |id| Pdus::GetRequest(GetRequest(plain_pdu(id, oids)));
        self.request(pdu).await
    }

    pub async fn get_next(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let pdu = |id| Pdus::GetNextRequest(GetNextRequest(plain_pdu(id, oids)));
        self.request(pdu).await
    }

    pub async fn get_bulk(
        &mut self,
        oids: &[Oid],
        max_repetitions: u32,
    ) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let pdu = |id| {
            Pdus::GetBulkRequest(GetBulkRequest(BulkPdu {
                request_id: id,
                non_repeaters: 0,
                max_repetitions,
                variable_bindings: bindings(oids),
            }))
        };
        self.request(pdu).await
    }

    /// Every object under `root`, in order, with GETBULK.
    pub async fn walk(&mut self, root: &Oid) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let mut rows: Vec<(Oid, Value)> = Vec::new();
        let mut cursor = root.clone();
        loop {
            let answer = self
                .get_bulk(std::slice::from_ref(&cursor), self.settings.max_repetitions)
                .await?;
            if answer.is_empty() {
                return Ok(rows);
            }
            for (oid, value) in answer {
                if !oid.starts_with(root) || value == Value::EndOfMibView {
                    return Ok(rows);
                }
                if oid <= cursor {
                    return Err(SnmpError::NotIncreasing {
                        target: self.target,
                        previous: cursor,
                        next: oid,
                    });
                }
                if rows.len() >= self.settings.max_rows {
                    return Err(SnmpError::TooManyRows {
                        target: self.target,
                        root: root.clone(),
                        max: self.settings.max_rows,
                    });
                }
                cursor = oid.clone();
                rows.push((oid, value));
            }
        }
    }

    async fn request(&mut self, pdu: impl Fn(i32) -> Pdus) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1) & 0x7fff_ffff;
        let message = Message {
            version: Message::<Pdus>::VERSION.into(),
            community: OctetString::from(self.settings.community.clone().into_bytes()),
            data: pdu(id),
        };
        let bytes = rasn::ber::encode(&message).map_err(|e| SnmpError::Malformed {
            target: self.target,
            message: format!("cannot encode the request: {e}"),
        })?;
        let io = |source| SnmpError::Io {
            target: self.target,
            source,
        };
        let mut buffer = vec![0u8; 65_536];
        for _attempt in 0..=self.settings.retries {
            let now = Instant::now();
            if now >= self.deadline {
                return Err(SnmpError::Budget {
                    target: self.target,
                    budget: self.settings.budget,
                });
            }
            self.socket.send(&bytes).await.map_err(io)?;
            self.requests_sent += 1;
            let wait_until = (now + self.settings.timeout).min(self.deadline);
            // Answers to earlier, timed-out attempts may still arrive: skip
            // anything that is not the answer to this request.
            while let Ok(received) =
                tokio::time::timeout_at(wait_until.into(), self.socket.recv(&mut buffer)).await
            {
                let len = received.map_err(io)?;
                let Ok(answer) = rasn::ber::decode::<Message<Pdus>>(&buffer[..len]) else {
                    return Err(SnmpError::Malformed {
                        target: self.target,
                        message: format!("{len} bytes that are not an SNMPv2c message"),
                    });
                };
                let Pdus::Response(response) = answer.data else {
                    continue;
                };
                let response = response.0;
                if response.request_id != id {
                    continue;
                }
                if response.error_status != Pdu::ERROR_STATUS_NO_ERROR {
                    return Err(SnmpError::ErrorStatus {
                        target: self.target,
                        status: response.error_status,
                        index: response.error_index,
                    });
                }
                return Ok(response
                    .variable_bindings
                    .into_iter()
                    .map(|vb| (Oid(vb.name.to_vec()), Value::from_wire(vb.value)))
                    .collect());
            }
        }
        Err(SnmpError::Timeout {
            target: self.target,
            timeout: self.settings.timeout,
            attempts: self.settings.retries + 1,
        })
    }
}

fn bindings(oids: &[Oid]) -> Vec<VarBind> {
    oids.iter()
        .map(|oid| VarBind {
            name: ObjectIdentifier::new(oid.0.clone()).expect("OIDs have at least two arcs"),
            value: VarBindValue::Unspecified,
        })
        .collect()
}

fn plain_pdu(id: i32, oids: &[Oid]) -> Pdu {
    Pdu {
        request_id: id,
        error_status: 0,
        error_index: 0,
        variable_bindings: bindings(oids),
    }
}

/// A starting request id that differs between sessions.
fn rand_id() -> i32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    (u32::from_le_bytes(bytes) & 0x7fff_ffff) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rasn_snmp::v2::Response;

    /// How the fake device misbehaves.
    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Each answer names an OID before the one asked for.
        Backwards,
        /// An endless table: always the next index.
        Endless,
        /// Bytes that are not SNMP.
        Garbage,
        /// Answers, but to another request id.
        WrongId,
        /// Never answers.
        Silent,
    }

    /// A device on a loopback UDP port that misbehaves as told.
    async fn hostile(behaviour: Behaviour) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 65_536];
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buffer).await else {
                    return;
                };
                let request: Message<Pdus> = rasn::ber::decode(&buffer[..len]).unwrap();
                let (id, asked) = match &request.data {
                    Pdus::GetBulkRequest(b) => {
                        (b.0.request_id, b.0.variable_bindings[0].name.to_vec())
                    }
                    Pdus::GetRequest(g) => (g.0.request_id, g.0.variable_bindings[0].name.to_vec()),
                    _ => continue,
                };
                // Rows sit 11 arcs deep (a column under ifEntry, then the
                // index): asked for anything shallower, the first row is
                // `…5`; then each answer steps from the OID asked for.
                let mut answer_oid = asked.clone();
                if answer_oid.len() < 11 {
                    answer_oid.resize(11, 5);
                } else {
                    let last = answer_oid.last_mut().unwrap();
                    *last = match behaviour {
                        Behaviour::Backwards => last.saturating_sub(1),
                        _ => *last + 1,
                    };
                }
                let id = match behaviour {
                    Behaviour::WrongId => id.wrapping_add(7),
                    _ => id,
                };
                let bytes = match behaviour {
                    Behaviour::Silent => continue,
                    Behaviour::Garbage => vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02],
                    _ => rasn::ber::encode(&Message {
                        version: 1.into(),
                        community: request.community.clone(),
                        data: Pdus::Response(Response(Pdu {
                            request_id: id,
                            error_status: 0,
                            error_index: 0,
                            variable_bindings: vec![VarBind {
                                name: ObjectIdentifier::new(answer_oid).unwrap(),
                                value: VarBindValue::Value(rasn_snmp::v2::ObjectSyntax::Simple(
                                    rasn_smi::v2::SimpleSyntax::Integer(1.into()),
                                )),
                            }],
                        })),
                    })
                    .unwrap(),
                };
                let _ = socket.send_to(&bytes, from).await;
            }
        });
        address
    }

    fn quick() -> Settings {
        Settings {
            community: "c".into(),
            timeout: Duration::from_millis(150),
            retries: 1,
            budget: Duration::from_secs(5),
            max_rows: 500,
            max_repetitions: 10,
        }
    }

    fn root() -> Oid {
        Oid::parse("1.3.6.1.2.1.2.2.1.2.10").unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn oids_going_backwards_end_the_walk_with_an_error() {
        let target = hostile(Behaviour::Backwards).await;
        let mut session = Session::open(target, quick()).await.unwrap();
        let err = session
            .walk(&Oid::parse("1.3.6.1.2.1.2.2.1").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, SnmpError::NotIncreasing { .. }), "{err}");
        assert!(err.to_string().contains("OIDs must increase"), "{err}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_endless_table_is_cut_off() {
        let target = hostile(Behaviour::Endless).await;
        let mut session = Session::open(target, quick()).await.unwrap();
        let err = session
            .walk(&Oid::parse("1.3.6.1.2.1.2.2.1").unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SnmpError::TooManyRows { max: 500, .. }),
            "{err}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn garbage_is_malformed_and_silence_times_out() {
        let target = hostile(Behaviour::Garbage).await;
        let mut session = Session::open(target, quick()).await.unwrap();
        let err = session.get(&[root()]).await.unwrap_err();
        assert!(matches!(err, SnmpError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains(&target.to_string()), "{err}");

        for behaviour in [Behaviour::WrongId, Behaviour::Silent] {
            let target = hostile(behaviour).await;
            let mut session = Session::open(target, quick()).await.unwrap();
            let err = session.get(&[root()]).await.unwrap_err();
            assert!(
                matches!(err, SnmpError::Timeout { attempts: 2, .. }),
                "{err}"
            );
            assert_eq!(session.requests_sent, 2);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_device_cannot_take_more_than_its_budget() {
        let target = hostile(Behaviour::Silent).await;
        let settings = Settings {
            retries: 100,
            budget: Duration::from_millis(400),
            ..quick()
        };
        let mut session = Session::open(target, settings).await.unwrap();
        let started = Instant::now();
        let err = session.get(&[root()]).await.unwrap_err();
        assert!(matches!(err, SnmpError::Budget { .. }), "{err}");
        // Ended by the budget, not by 101 timeouts of 150 ms.
        assert!(session.requests_sent < 10, "{}", session.requests_sent);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    proptest::proptest! {
        /// The BER decoder on what a device may send: arbitrary bytes, and a
        /// real answer with bytes overwritten or cut short. An error or a
        /// message, never a panic.
        #[test]
        fn hostile_answers_never_panic_the_decoder(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            edits in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..64,
        ) {
            let _ = rasn::ber::decode::<Message<Pdus>>(&noise);
            let mut real = rasn::ber::encode(&Message {
                version: 1.into(),
                community: OctetString::from(b"public".to_vec()),
                data: Pdus::Response(rasn_snmp::v2::Response(plain_pdu(7, &[root()]))),
            })
            .unwrap();
            for (at, b) in edits {
                if let Some(byte) = real.get_mut(at) {
                    *byte = b;
                }
            }
            real.truncate(cut.max(1));
            let _ = rasn::ber::decode::<Message<Pdus>>(&real);
        }
    }
}
