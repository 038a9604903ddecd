//! One device, over UDP: requests matched to answers by request id, with a
//! timeout per attempt, retries, and a time budget for the whole device.
//! SNMPv2c with a community, or SNMPv3 with a user (authNoPriv or authPriv:
//! see [`super::usm`]); v3 discovers the device's engine on first use.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rasn::types::{ObjectIdentifier, OctetString};
use rasn_snmp::v2::{
    BulkPdu, GetBulkRequest, GetNextRequest, GetRequest, Pdu, VarBind, VarBindValue,
};
use rasn_snmp::v2c::Message;
use tokio::net::UdpSocket;

use super::usm::{self, Auth};
use super::{Oid, Value};

type Pdus = rasn_snmp::v2::Pdus;

/// Who the poller is to the device.
#[derive(Debug, Clone)]
pub enum Security {
    /// SNMPv2c.
    Community(String),
    /// SNMPv3 USM.
    User(User),
}

/// An SNMPv3 user. Authentication is required (noAuthNoPriv offers nothing
/// v2c does not); privacy is AES-128.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub auth: Auth,
    pub auth_password: String,
    /// `None`: authNoPriv.
    pub priv_password: Option<String>,
}

/// How to talk to one device.
#[derive(Debug, Clone)]
pub struct Settings {
    pub security: Security,
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
            security: Security::Community("public".into()),
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
    #[error("{target} refused the SNMPv3 request: {reason}")]
    Refused { target: SocketAddr, reason: String },
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
    /// The device's SNMPv3 engine, once discovered.
    engine: Option<Engine>,
    /// Requests sent, retries included (for the benchmark's packet counts).
    pub requests_sent: u64,
}

/// What SNMPv3 needs to know of the device's engine.
#[derive(Debug)]
struct Engine {
    id: Vec<u8>,
    boots: u32,
    /// Its clock, as of `seen`.
    time: u32,
    seen: Instant,
    auth_key: Vec<u8>,
    priv_key: Option<Vec<u8>>,
}

impl Engine {
    fn time_now(&self) -> u32 {
        let elapsed = self.seen.elapsed().as_secs().min(u64::from(u32::MAX)) as u32;
        self.time.saturating_add(elapsed)
    }
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
            engine: None,
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

    /// The given columns of a table, walked side by side: each GETBULK
    /// asks for every column still going, about `max_repetitions` objects
    /// in all, so a table takes (wanted columns × rows) / `max_repetitions`
    /// requests, and the columns nobody asked for are never fetched. (A
    /// walk of the whole table, as `snmpbulkwalk` does, fetches them all.)
    pub async fn walk_columns(
        &mut self,
        entry: &Oid,
        columns: &[u32],
    ) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let roots: Vec<Oid> = columns.iter().map(|c| entry.clone().child(*c)).collect();
        self.walk_subtrees(&roots, entry).await
    }

    /// Every object under `root`, in order, with GETBULK.
    pub async fn walk(&mut self, root: &Oid) -> Result<Vec<(Oid, Value)>, SnmpError> {
        self.walk_subtrees(std::slice::from_ref(root), root).await
    }

    /// Walks several subtrees side by side, each in order. Each must move
    /// forward and stays within its own subtree; a shortened answer (an
    /// agent filling a packet) is taken as far as it goes. `table` names
    /// the walk in a row-cap error.
    async fn walk_subtrees(
        &mut self,
        roots: &[Oid],
        table: &Oid,
    ) -> Result<Vec<(Oid, Value)>, SnmpError> {
        let mut cursors = roots.to_vec();
        let mut going: Vec<usize> = (0..roots.len()).collect();
        let mut found: Vec<(Oid, Value)> = Vec::new();
        while !going.is_empty() {
            let width = going.len();
            let repetitions = (self.settings.max_repetitions / width as u32).max(1);
            let asked: Vec<Oid> = going.iter().map(|&c| cursors[c].clone()).collect();
            let answer = self.get_bulk(&asked, repetitions).await?;
            if answer.is_empty() {
                break;
            }
            // Varbinds come repetition by repetition, one per subtree asked.
            let mut ended = vec![false; width];
            for (position, (oid, value)) in answer.into_iter().enumerate() {
                let slot = position % width;
                let subtree = going[slot];
                if ended[slot] {
                    continue;
                }
                if !oid.starts_with(&roots[subtree]) || value == Value::EndOfMibView {
                    ended[slot] = true;
                    continue;
                }
                if oid <= cursors[subtree] {
                    return Err(SnmpError::NotIncreasing {
                        target: self.target,
                        previous: cursors[subtree].clone(),
                        next: oid,
                    });
                }
                if found.len() >= self.settings.max_rows {
                    return Err(SnmpError::TooManyRows {
                        target: self.target,
                        root: table.clone(),
                        max: self.settings.max_rows,
                    });
                }
                cursors[subtree] = oid.clone();
                found.push((oid, value));
            }
            going = going
                .into_iter()
                .zip(ended)
                .filter_map(|(c, ended)| (!ended).then_some(c))
                .collect();
        }
        Ok(found)
    }

    async fn request(&mut self, pdu: impl Fn(i32) -> Pdus) -> Result<Vec<(Oid, Value)>, SnmpError> {
        if matches!(self.settings.security, Security::User(_)) && self.engine.is_none() {
            self.discover().await?;
        }
        // One resend after the device corrects our idea of its clock.
        for _ in 0..2 {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1) & 0x7fff_ffff;
            let bytes = self.encode(pdu(id), id)?;
            match self.exchange(&bytes, id).await? {
                Answer::Response(response) => {
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
                Answer::NotInTimeWindow => continue,
            }
        }
        Err(SnmpError::Refused {
            target: self.target,
            reason: "the device's clock would not settle (notInTimeWindow twice)".into(),
        })
    }

    /// Sends `bytes` until an answer to request `id` arrives, within the
    /// timeout, retries and budget.
    async fn exchange(&mut self, bytes: &[u8], id: i32) -> Result<Answer, SnmpError> {
        self.send_until(bytes, |session, answer| session.decode(answer, id))
            .await
    }

    /// Sends `bytes`, resending after each timeout, until `accept` takes a
    /// datagram (`Some`) or fails. Answers to earlier, timed-out attempts
    /// may still arrive: `accept` returns `None` for anything that is not
    /// the answer it waits for.
    async fn send_until<T>(
        &mut self,
        bytes: &[u8],
        mut accept: impl FnMut(&mut Session, &[u8]) -> Result<Option<T>, SnmpError>,
    ) -> Result<T, SnmpError> {
        let mut buffer = vec![0u8; 65_536];
        for _attempt in 0..=self.settings.retries {
            let now = Instant::now();
            if now >= self.deadline {
                return Err(SnmpError::Budget {
                    target: self.target,
                    budget: self.settings.budget,
                });
            }
            self.socket.send(bytes).await.map_err(|e| self.io(e))?;
            self.requests_sent += 1;
            let wait_until = (now + self.settings.timeout).min(self.deadline);
            while let Ok(received) =
                tokio::time::timeout_at(wait_until.into(), self.socket.recv(&mut buffer)).await
            {
                let len = received.map_err(|e| self.io(e))?;
                if let Some(answer) = accept(self, &buffer[..len])? {
                    return Ok(answer);
                }
            }
        }
        Err(SnmpError::Timeout {
            target: self.target,
            timeout: self.settings.timeout,
            attempts: self.settings.retries + 1,
        })
    }

    fn io(&self, source: std::io::Error) -> SnmpError {
        SnmpError::Io {
            target: self.target,
            source,
        }
    }

    fn malformed(&self, message: impl Into<String>) -> SnmpError {
        SnmpError::Malformed {
            target: self.target,
            message: message.into(),
        }
    }

    fn encode(&self, pdus: Pdus, id: i32) -> Result<Vec<u8>, SnmpError> {
        let encode_error =
            |e: rasn::error::EncodeError| self.malformed(format!("cannot encode the request: {e}"));
        match &self.settings.security {
            Security::Community(community) => rasn::ber::encode(&Message {
                version: Message::<Pdus>::VERSION.into(),
                community: OctetString::from(community.clone().into_bytes()),
                data: pdus,
            })
            .map_err(encode_error),
            Security::User(user) => {
                let engine = self.engine.as_ref().expect("discovered before any request");
                v3::encode(user, engine, pdus, id).map_err(encode_error)
            }
        }
    }

    /// The answer to request `id`, or `None` for a stray datagram.
    fn decode(&mut self, bytes: &[u8], id: i32) -> Result<Option<Answer>, SnmpError> {
        let target = self.target;
        match &self.settings.security {
            Security::Community(_) => {
                let Ok(answer) = rasn::ber::decode::<Message<Pdus>>(bytes) else {
                    return Err(self.malformed(format!(
                        "{} bytes that are not an SNMPv2c message",
                        bytes.len()
                    )));
                };
                Ok(match answer.data {
                    Pdus::Response(r) if r.0.request_id == id => Some(Answer::Response(r.0)),
                    _ => None,
                })
            }
            Security::User(user) => {
                let engine = self.engine.as_mut().expect("discovered before any request");
                v3::decode(user, engine, bytes, id).map_err(|e| match e {
                    v3::Error::Malformed(message) => SnmpError::Malformed { target, message },
                    v3::Error::Refused(reason) => SnmpError::Refused { target, reason },
                })
            }
        }
    }

    /// RFC 3414 discovery: an unauthenticated, empty request; the device
    /// reports its engine id, boots and time.
    async fn discover(&mut self) -> Result<(), SnmpError> {
        let Security::User(user) = self.settings.security.clone() else {
            return Ok(());
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1) & 0x7fff_ffff;
        let request = v3::discovery(id).map_err(|e| self.malformed(e.to_string()))?;
        let (engine_id, boots, time) = self
            .send_until(&request, |session, answer| {
                v3::discovered(answer, id).map_err(|e| session.malformed(e))
            })
            .await?;
        if engine_id.is_empty() {
            return Err(self.malformed("the discovery answer names no engine"));
        }
        let auth_key = user
            .auth
            .localized_key(user.auth_password.as_bytes(), &engine_id);
        let priv_key = user
            .priv_password
            .as_ref()
            .map(|p| user.auth.localized_key(p.as_bytes(), &engine_id));
        self.engine = Some(Engine {
            id: engine_id,
            boots,
            time,
            seen: Instant::now(),
            auth_key,
            priv_key,
        });
        Ok(())
    }
}

/// What a device answered to a request.
#[derive(Debug)]
enum Answer {
    Response(Pdu),
    /// Our idea of its clock was off; it has been corrected.
    NotInTimeWindow,
}

/// SNMPv3 messages with USM.
/// Runs every decoder of datagrams from devices on `bytes`: an SNMPv2c
/// message, an SNMPv3 discovery answer, and an SNMPv3 answer for an
/// authenticated, private user. For the fuzz targets; whatever the bytes,
/// it must return.
#[doc(hidden)]
pub fn decode_untrusted(bytes: &[u8]) {
    let _ = rasn::ber::decode::<Message<Pdus>>(bytes);
    let _ = v3::discovered(bytes, 1);
    let user = User {
        name: "fathom".into(),
        auth: Auth::Sha256,
        auth_password: "auth-passphrase".into(),
        priv_password: Some("priv-passphrase".into()),
    };
    let mut engine = Engine {
        id: b"\x80\x00\x1f\x88\x04fathom".to_vec(),
        boots: 1,
        time: 1,
        seen: Instant::now(),
        auth_key: vec![0x11; 32],
        priv_key: Some(vec![0x22; 16]),
    };
    let _ = v3::decode(&user, &mut engine, bytes, 1);
}

mod v3 {
    use rasn::types::OctetString;
    use rasn_snmp::v3::{
        HeaderData, Message, Pdus, ScopedPdu, ScopedPduData, USMSecurityParameters,
    };

    use super::{usm, Answer, Engine, User};

    const FLAG_AUTH: u8 = 0x01;
    const FLAG_PRIV: u8 = 0x02;
    const FLAG_REPORTABLE: u8 = 0x04;
    const USM: u32 = 3;
    const MAX_SIZE: u32 = 65_507;
    const NOT_IN_TIME_WINDOW: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0];
    /// usmStats…: why a device refused a request.
    const REPORTS: [(&[u32], &str); 6] = [
        (
            &[1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0],
            "unsupported security level",
        ),
        (NOT_IN_TIME_WINDOW, "not in time window"),
        (&[1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0], "unknown user name"),
        (&[1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0], "unknown engine id"),
        (
            &[1, 3, 6, 1, 6, 3, 15, 1, 1, 5, 0],
            "wrong digest (authentication password or protocol)",
        ),
        (
            &[1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0],
            "decryption error (privacy password)",
        ),
    ];

    #[derive(Debug)]
    pub enum Error {
        Malformed(String),
        Refused(String),
    }

    fn usm_params(
        engine: &[u8],
        boots: u32,
        time: u32,
        user: &str,
        auth: Vec<u8>,
        privacy: Vec<u8>,
    ) -> USMSecurityParameters {
        USMSecurityParameters {
            authoritative_engine_id: OctetString::from(engine.to_vec()),
            authoritative_engine_boots: boots.into(),
            authoritative_engine_time: time.into(),
            user_name: OctetString::from(user.as_bytes().to_vec()),
            authentication_parameters: OctetString::from(auth),
            privacy_parameters: OctetString::from(privacy),
        }
    }

    fn message(
        id: i32,
        flags: u8,
        params: &USMSecurityParameters,
        scoped: ScopedPduData,
    ) -> Result<Vec<u8>, rasn::error::EncodeError> {
        rasn::ber::encode(&Message {
            version: 3.into(),
            global_data: HeaderData {
                message_id: id.into(),
                max_size: MAX_SIZE.into(),
                flags: OctetString::from(vec![flags]),
                security_model: USM.into(),
            },
            security_parameters: OctetString::from(rasn::ber::encode(params)?),
            scoped_data: scoped,
        })
    }

    pub fn discovery(id: i32) -> Result<Vec<u8>, rasn::error::EncodeError> {
        let params = usm_params(&[], 0, 0, "", vec![], vec![]);
        let scoped = ScopedPduData::CleartextPdu(ScopedPdu {
            engine_id: OctetString::from(vec![]),
            name: OctetString::from(vec![]),
            data: Pdus::GetRequest(rasn_snmp::v2::GetRequest(super::plain_pdu(id, &[]))),
        });
        message(id, FLAG_REPORTABLE, &params, scoped)
    }

    /// The engine a discovery answer names: id, boots, time.
    pub fn discovered(bytes: &[u8], id: i32) -> Result<Option<(Vec<u8>, u32, u32)>, String> {
        let message: Message = rasn::ber::decode(bytes)
            .map_err(|_| format!("{} bytes that are not an SNMPv3 message", bytes.len()))?;
        if i64::try_from(&message.global_data.message_id).ok() != Some(i64::from(id)) {
            return Ok(None);
        }
        let params: USMSecurityParameters = rasn::ber::decode(&message.security_parameters)
            .map_err(|_| "undecodable USM security parameters".to_owned())?;
        Ok(Some((
            params.authoritative_engine_id.to_vec(),
            small(&params.authoritative_engine_boots),
            small(&params.authoritative_engine_time),
        )))
    }

    fn small(i: &rasn::types::Integer) -> u32 {
        u32::try_from(i).unwrap_or(0)
    }

    pub fn encode(
        user: &User,
        engine: &Engine,
        pdus: Pdus,
        id: i32,
    ) -> Result<Vec<u8>, rasn::error::EncodeError> {
        let mac_len = user.auth.mac_len();
        let time = engine.time_now();
        let scoped = ScopedPdu {
            engine_id: OctetString::from(engine.id.clone()),
            name: OctetString::from(vec![]),
            data: pdus,
        };
        let (flags, privacy, scoped) = match &engine.priv_key {
            Some(key) => {
                let mut salt = [0u8; 8];
                getrandom::fill(&mut salt).expect("the OS has randomness");
                let mut plain = rasn::ber::encode(&scoped)?;
                usm::aes_encrypt(key, &usm::aes_iv(engine.boots, time, &salt), &mut plain);
                (
                    FLAG_REPORTABLE | FLAG_AUTH | FLAG_PRIV,
                    salt.to_vec(),
                    ScopedPduData::EncryptedPdu(OctetString::from(plain)),
                )
            }
            None => (
                FLAG_REPORTABLE | FLAG_AUTH,
                vec![],
                ScopedPduData::CleartextPdu(scoped),
            ),
        };
        // A random placeholder marks where the MAC goes; the MAC is computed
        // with zeros there (RFC 3414, 6.3.1).
        let mut marker = vec![0u8; mac_len];
        getrandom::fill(&mut marker).expect("the OS has randomness");
        let params = usm_params(
            &engine.id,
            engine.boots,
            time,
            &user.name,
            marker.clone(),
            privacy,
        );
        let mut bytes = message(id, flags, &params, scoped)?;
        let at = find(&bytes, &marker).expect("the placeholder is in the message");
        bytes[at..at + mac_len].fill(0);
        let mac = user.auth.mac(&engine.auth_key, &bytes);
        bytes[at..at + mac_len].copy_from_slice(&mac);
        Ok(bytes)
    }

    pub fn decode(
        user: &User,
        engine: &mut Engine,
        bytes: &[u8],
        id: i32,
    ) -> Result<Option<Answer>, Error> {
        let malformed = |m: &str| Error::Malformed(format!("{m} ({} bytes)", bytes.len()));
        let message: Message =
            rasn::ber::decode(bytes).map_err(|_| malformed("not an SNMPv3 message"))?;
        if i64::try_from(&message.global_data.message_id).ok() != Some(i64::from(id)) {
            return Ok(None);
        }
        let params: USMSecurityParameters = rasn::ber::decode(&message.security_parameters)
            .map_err(|_| malformed("undecodable USM security parameters"))?;
        let flags = message.global_data.flags.first().copied().unwrap_or(0);
        if flags & FLAG_AUTH != 0 {
            let received = params.authentication_parameters.to_vec();
            if received.len() != user.auth.mac_len() {
                return Err(malformed("an authentication code of the wrong length"));
            }
            let at = find(bytes, &received)
                .ok_or_else(|| malformed("a misplaced authentication code"))?;
            let mut zeroed = bytes.to_vec();
            zeroed[at..at + received.len()].fill(0);
            if !usm::same_mac(&user.auth.mac(&engine.auth_key, &zeroed), &received) {
                return Err(Error::Refused(
                    "the answer's authentication code is wrong (authentication password?)".into(),
                ));
            }
        }
        let scoped =
            match message.scoped_data {
                ScopedPduData::CleartextPdu(s) => s,
                ScopedPduData::EncryptedPdu(encrypted) => {
                    let key = engine.priv_key.as_ref().ok_or_else(|| {
                        malformed("an encrypted answer to a request without privacy")
                    })?;
                    let salt: [u8; 8] =
                        params.privacy_parameters.to_vec().try_into().map_err(|_| {
                            malformed("privacy parameters that are not an 8-byte salt")
                        })?;
                    let iv = usm::aes_iv(
                        small(&params.authoritative_engine_boots),
                        small(&params.authoritative_engine_time),
                        &salt,
                    );
                    let mut plain = encrypted.to_vec();
                    usm::aes_decrypt(key, &iv, &mut plain);
                    rasn::ber::decode::<ScopedPdu>(&plain).map_err(|_| {
                        Error::Refused("the answer does not decrypt (privacy password?)".into())
                    })?
                }
            };
        match scoped.data {
            // Only an authenticated answer is data; an unauthenticated one
            // could come from anyone on the path.
            Pdus::Response(_) if flags & FLAG_AUTH == 0 => Err(Error::Refused(
                "the answer is not authenticated although the request was".into(),
            )),
            Pdus::Response(r) => Ok(Some(Answer::Response(r.0))),
            Pdus::Report(report) => {
                let oid = report
                    .0
                    .variable_bindings
                    .first()
                    .map(|vb| vb.name.to_vec())
                    .unwrap_or_default();
                if oid == NOT_IN_TIME_WINDOW && flags & FLAG_AUTH != 0 {
                    engine.boots = small(&params.authoritative_engine_boots);
                    engine.time = small(&params.authoritative_engine_time);
                    engine.seen = std::time::Instant::now();
                    return Ok(Some(Answer::NotInTimeWindow));
                }
                let reason = REPORTS
                    .iter()
                    .find(|(o, _)| *o == oid.as_slice())
                    .map_or_else(|| format!("report {oid:?}"), |(_, r)| (*r).to_owned());
                Err(Error::Refused(format!("{reason} (user {:?})", user.name)))
            }
            _ => Ok(None),
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
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
    use std::collections::BTreeMap;

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
                    _ => crate::snmp::fake::response(
                        &request.community,
                        id,
                        vec![VarBind {
                            name: ObjectIdentifier::new(answer_oid).unwrap(),
                            value: VarBindValue::Value(rasn_snmp::v2::ObjectSyntax::Simple(
                                rasn_smi::v2::SimpleSyntax::Integer(1.into()),
                            )),
                        }],
                    ),
                };
                let _ = socket.send_to(&bytes, from).await;
            }
        });
        address
    }

    fn quick() -> Settings {
        Settings {
            security: Security::Community("c".into()),
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

    fn o(text: &str) -> Oid {
        Oid::parse(text).unwrap()
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
    async fn columns_walk_side_by_side_in_fewer_requests() {
        // ifDescr and ifType for 30 interfaces, plus a column nobody asks
        // for, and an object after the table.
        let mut objects = BTreeMap::new();
        for i in 1..=30u32 {
            let name = format!("port{i}").into_bytes();
            objects.insert(
                o(&format!("1.3.6.1.2.1.2.2.1.2.{i}")),
                Value::OctetString(name),
            );
            objects.insert(o(&format!("1.3.6.1.2.1.2.2.1.3.{i}")), Value::Integer(6));
            objects.insert(o(&format!("1.3.6.1.2.1.2.2.1.4.{i}")), Value::Integer(1500));
        }
        // A sparse column: two rows only.
        objects.insert(o("1.3.6.1.2.1.2.2.1.6.3"), Value::OctetString(vec![1; 6]));
        objects.insert(o("1.3.6.1.2.1.2.2.1.6.9"), Value::OctetString(vec![2; 6]));
        objects.insert(o("1.3.6.1.2.1.4.1.0"), Value::Integer(1));
        let target = crate::snmp::fake::serve(objects.clone()).await;
        let entry = o("1.3.6.1.2.1.2.2.1");
        let mut session = Session::open(target, quick()).await.unwrap();
        let found = session.walk_columns(&entry, &[2, 3, 6]).await.unwrap();
        let sorted: BTreeMap<Oid, Value> = found.iter().cloned().collect();
        assert_eq!(sorted.len(), found.len(), "no object twice");
        let wanted: BTreeMap<Oid, Value> = objects
            .into_iter()
            .filter(|(oid, _)| {
                [2, 3, 6]
                    .iter()
                    .any(|c| oid.starts_with(&entry.clone().child(*c)))
            })
            .collect();
        assert_eq!(sorted, wanted);
        let columns_side_by_side = session.requests_sent;

        let mut session = Session::open(target, quick()).await.unwrap();
        let whole = session.walk(&entry).await.unwrap();
        assert_eq!(whole.len(), 92);
        assert!(
            columns_side_by_side < session.requests_sent,
            "{columns_side_by_side} requests for three columns, {} for the table",
            session.requests_sent
        );
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

    /// An SNMPv3 device that answers discovery properly and then answers
    /// requests without authenticating its answers, as a spoofer would.
    async fn unauthenticated_v3() -> SocketAddr {
        use rasn_snmp::v3::{
            HeaderData, Message as V3, ScopedPdu, ScopedPduData, USMSecurityParameters,
        };
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 65_536];
            while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
                let request: V3 = rasn::ber::decode(&buffer[..len]).unwrap();
                let ScopedPduData::CleartextPdu(scoped) = &request.scoped_data else {
                    continue;
                };
                let request_id = match &scoped.data {
                    Pdus::GetRequest(g) => g.0.request_id,
                    Pdus::GetBulkRequest(b) => b.0.request_id,
                    _ => continue,
                };
                let discovery = scoped.engine_id.is_empty();
                let params = USMSecurityParameters {
                    authoritative_engine_id: OctetString::from(
                        b"\x80\x00\x1f\x88\x04fathom".to_vec(),
                    ),
                    authoritative_engine_boots: 1.into(),
                    authoritative_engine_time: 100.into(),
                    user_name: OctetString::from(vec![]),
                    authentication_parameters: OctetString::from(vec![]),
                    privacy_parameters: OctetString::from(vec![]),
                };
                let pdu = Pdu {
                    request_id,
                    error_status: 0,
                    error_index: 0,
                    variable_bindings: vec![],
                };
                let data = if discovery {
                    Pdus::Report(rasn_snmp::v2::Report(pdu))
                } else {
                    Pdus::Response(Response(pdu))
                };
                let answer = V3 {
                    version: 3.into(),
                    global_data: HeaderData {
                        message_id: request.global_data.message_id.clone(),
                        max_size: 65_507.into(),
                        flags: OctetString::from(vec![0u8]),
                        security_model: 3.into(),
                    },
                    security_parameters: OctetString::from(rasn::ber::encode(&params).unwrap()),
                    scoped_data: ScopedPduData::CleartextPdu(ScopedPdu {
                        engine_id: OctetString::from(vec![]),
                        name: OctetString::from(vec![]),
                        data,
                    }),
                };
                let _ = socket
                    .send_to(&rasn::ber::encode(&answer).unwrap(), from)
                    .await;
            }
        });
        address
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_unauthenticated_v3_answer_is_refused() {
        let target = unauthenticated_v3().await;
        let settings = Settings {
            security: Security::User(User {
                name: "fathom".into(),
                auth: Auth::Sha256,
                auth_password: "auth-passphrase".into(),
                priv_password: None,
            }),
            ..quick()
        };
        let mut session = Session::open(target, settings).await.unwrap();
        let err = session.get(&[root()]).await.unwrap_err();
        assert!(matches!(err, SnmpError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("not authenticated"), "{err}");
    }

    /// A user and the engine state a discovery would have left, keys
    /// localized as the session localizes them.
    fn v3_peer(privacy: bool) -> (User, Engine) {
        let user = User {
            name: "fathom".into(),
            auth: Auth::Sha256,
            auth_password: "auth-passphrase".into(),
            priv_password: privacy.then(|| "priv-passphrase".into()),
        };
        let id = b"\x80\x00\x1f\x88\x04fathom".to_vec();
        // Localizing hashes a megabyte per key: once for every case.
        static KEYS: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
        let (auth_key, priv_key) = KEYS.get_or_init(|| {
            (
                Auth::Sha256.localized_key(b"auth-passphrase", &id),
                Auth::Sha256.localized_key(b"priv-passphrase", &id),
            )
        });
        let engine = Engine {
            auth_key: auth_key.clone(),
            priv_key: privacy.then(|| priv_key.clone()),
            id,
            boots: 3,
            time: 1000,
            seen: Instant::now(),
        };
        (user, engine)
    }

    /// An authenticated (and with `privacy`, encrypted) Response, as the
    /// device would send it: the same USM code both ways.
    fn v3_response(user: &User, engine: &Engine, id: i32) -> Vec<u8> {
        let pdu = Pdus::Response(Response(plain_pdu(id, &[root()])));
        v3::encode(user, engine, pdu, id).unwrap()
    }

    proptest::proptest! {
        /// The SNMPv3 path on what a device may send: an authenticated
        /// answer with any byte changed, or cut short, is never taken as an
        /// answer (the MAC covers every byte), and nothing panics; the
        /// untouched answer is taken.
        #[test]
        fn tampered_v3_answers_are_never_accepted(
            privacy in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec((0usize..400, 1u8..=255), 1..4),
            cut in proptest::option::of(1usize..400),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let (user, mut engine) = v3_peer(privacy);
            let genuine = v3_response(&user, &engine, 77);
            let taken = v3::decode(&user, &mut engine, &genuine, 77);
            proptest::prop_assert!(matches!(taken, Ok(Some(Answer::Response(_)))), "{taken:?}");

            let mut tampered = genuine.clone();
            for (at, flip) in &edits {
                let at = at % tampered.len();
                tampered[at] ^= flip;
            }
            if let Some(cut) = cut {
                tampered.truncate(cut.min(tampered.len() - 1));
            }
            let result = v3::decode(&user, &mut engine, &tampered, 77);
            proptest::prop_assert!(
                !matches!(result, Ok(Some(Answer::Response(_)))),
                "a tampered answer was accepted: {result:?}"
            );
            let _ = v3::decode(&user, &mut engine, &noise, 77);
        }
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
