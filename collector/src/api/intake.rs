//! Admission of report bodies, before any of them is buffered: what keeps a
//! hostile client (authenticated or not) from pinning the collector's
//! memory or its report slots.
//!
//! In order, for each `POST /v1/reports`:
//!
//! 1. a slot for the client's address (`max_reports_per_address`), then one
//!    of the collector's (`max_concurrent_reports`): 429 when none is free;
//! 2. a `Content-Length` (411 without), within the body limit (413);
//! 3. the envelope's fixed header, read first and within
//!    [`HEADER_WAIT`]: its framing, its declared body length against the
//!    `Content-Length`, and its sender (an enrolled, unrevoked agent whose
//!    key it is), so unknown and revoked keys are refused before their
//!    body is read; an enrollment's body must be small;
//! 4. the body's bytes from a budget shared by every request
//!    (`report_body_budget_bytes`): 429 if the budget stays spent for
//!    [`BUDGET_WAIT`];
//! 5. the rest of the body at a minimum rate (`min_body_bytes_per_sec`,
//!    after [`INITIAL_BODY_ALLOWANCE`]), never idle for [`MAX_BODY_IDLE`]:
//!    a client that trickles or stalls is cut off.
//!
//! What holds a slot or budget is a guard; dropping it gives it back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fathom_shared::envelope::{BodyKind, ClaimedHeader, HEADER_LEN};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::{refuse, Refused};

/// How long the envelope's header may take to arrive after the request head.
pub const HEADER_WAIT: Duration = Duration::from_secs(10);
/// How long a request waits for body budget before a 429.
pub const BUDGET_WAIT: Duration = Duration::from_secs(1);
/// The time every body gets before the minimum rate applies.
pub const INITIAL_BODY_ALLOWANCE: Duration = Duration::from_secs(10);
/// A body that stops arriving for this long is cut off, whatever it
/// earned before: sending fast and then stalling does not pin a budget.
pub const MAX_BODY_IDLE: Duration = Duration::from_secs(10);
/// However fast it trickles, no body takes longer than this.
pub const MAX_BODY_TIME: Duration = Duration::from_secs(300);
/// An enrollment is a hostname, a token and a few identifiers.
pub const MAX_ENROLLMENT_BODY: usize = 64 * 1024;
/// The budget is counted in KiB (a semaphore's permits are `u32`).
const BUDGET_UNIT: usize = 1024;

/// The limits, from the collector's config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_concurrent_reports: usize,
    pub max_reports_per_address: usize,
    pub report_body_budget_bytes: usize,
    pub min_body_bytes_per_sec: u64,
}

#[derive(Debug)]
pub struct Intake {
    limits: Limits,
    slots: Semaphore,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    budget: Arc<Semaphore>,
}

/// What an admitted report holds while it is read and ingested.
#[derive(Debug)]
pub(crate) struct Admitted<'a> {
    _address: AddressSlot<'a>,
    _slot: SemaphorePermit<'a>,
}

/// A slot of one client address, given back when dropped.
#[derive(Debug)]
struct AddressSlot<'a> {
    intake: &'a Intake,
    address: IpAddr,
}

impl Drop for AddressSlot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .intake
            .per_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.address);
            }
        }
    }
}

/// A body read whole, with the budget it holds until dropped.
#[derive(Debug)]
pub(crate) struct Body {
    pub bytes: Bytes,
    _budget: OwnedSemaphorePermit,
}

impl Intake {
    pub fn new(limits: Limits) -> Intake {
        let units = limits.report_body_budget_bytes.div_ceil(BUDGET_UNIT);
        Intake {
            limits,
            slots: Semaphore::new(limits.max_concurrent_reports),
            per_address: Mutex::new(HashMap::new()),
            budget: Arc::new(Semaphore::new(units)),
        }
    }

    /// Step 1: a slot for `address`, then one of the collector's.
    pub(crate) fn admit(&self, address: IpAddr) -> Result<Admitted<'_>, Refused> {
        let address_slot = {
            let mut map = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(address).or_insert(0);
            if *n >= self.limits.max_reports_per_address {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "address_limit",
                    format!(
                        "{address} already has {} reports in progress (max_reports_per_address); retry later",
                        self.limits.max_reports_per_address
                    ),
                ));
            }
            *n += 1;
            AddressSlot {
                intake: self,
                address,
            }
        };
        let slot = self.slots.try_acquire().map_err(|_| {
            refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                "the collector is at its concurrent report limit; retry later",
            )
        })?;
        Ok(Admitted {
            _address: address_slot,
            _slot: slot,
        })
    }

    /// Steps 2–5: reads the body of an admitted report. `check_sender`
    /// refuses the header's sender before the body is read.
    pub(crate) async fn read(
        &self,
        req: Request<Incoming>,
        max_body: usize,
        check_sender: impl FnOnce(&ClaimedHeader) -> Result<(), Refused>,
    ) -> Result<Body, Refused> {
        let max = max_body + HEADER_LEN + fathom_shared::envelope::SIGNATURE_LEN;
        let declared = content_length(&req)?.ok_or_else(|| {
            refuse(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "reports are sent with a Content-Length",
            )
        })?;
        if declared > max {
            return Err(super::too_large(req, declared, max).await);
        }
        let mut body = req.into_body();
        let started = Instant::now();
        let mut bytes = Vec::with_capacity(HEADER_LEN.min(declared));
        // The header first: a few frames at most.
        let header_deadline = started + HEADER_WAIT;
        while bytes.len() < HEADER_LEN.min(declared) {
            next_frame(&mut body, &mut bytes, header_deadline, "envelope header").await?;
        }
        if declared < HEADER_LEN {
            return Err(bad_envelope(format!(
                "the request carries {declared} bytes, fewer than an envelope's {HEADER_LEN}-byte header"
            )));
        }
        let header = ClaimedHeader::parse(bytes[..HEADER_LEN].try_into().unwrap(), max_body)
            .map_err(|e| match e {
                fathom_shared::envelope::EnvelopeError::BodyTooLarge { .. } => refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    e.to_string(),
                ),
                fathom_shared::envelope::EnvelopeError::UnsupportedVersion { .. } => refuse(
                    StatusCode::BAD_REQUEST,
                    "unsupported_version",
                    e.to_string(),
                ),
                other => bad_envelope(format!("malformed envelope: {other}")),
            })?;
        if header.envelope_len() != declared {
            return Err(bad_envelope(format!(
                "the envelope's header declares {} bytes in all, the request {declared}",
                header.envelope_len()
            )));
        }
        if header.header.kind == BodyKind::Enrollment && header.body_len > MAX_ENROLLMENT_BODY {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "an enrollment body is at most {MAX_ENROLLMENT_BODY} bytes, not {}",
                    header.body_len
                ),
            ));
        }
        check_sender(&header)?;
        // Only a known sender's body is buffered, and only within budget.
        let units = u32::try_from(declared.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
        let budget = tokio::time::timeout(BUDGET_WAIT, self.budget.clone().acquire_many_owned(units))
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "overloaded",
                    "the collector is buffering as many report bytes as it allows (report_body_budget_bytes); retry later",
                )
            })?;
        bytes.reserve_exact(declared - bytes.len());
        // The rest at the minimum rate: every byte received buys time.
        let rate = self.limits.min_body_bytes_per_sec.max(1);
        let limit = started + MAX_BODY_TIME;
        let mut deadline = started + INITIAL_BODY_ALLOWANCE;
        while bytes.len() < declared {
            let before = bytes.len();
            let idle = Instant::now() + MAX_BODY_IDLE;
            next_frame(
                &mut body,
                &mut bytes,
                deadline.min(limit).min(idle),
                "report body",
            )
            .await?;
            let earned = Duration::from_secs_f64((bytes.len() - before) as f64 / rate as f64);
            deadline += earned;
        }
        Ok(Body {
            bytes: Bytes::from(bytes),
            _budget: budget,
        })
    }

    /// Bytes of body budget free now (for tests and health).
    pub fn budget_free_bytes(&self) -> usize {
        self.budget.available_permits() * BUDGET_UNIT
    }
}

fn bad_envelope(message: String) -> Refused {
    refuse(StatusCode::BAD_REQUEST, "bad_envelope", message)
}

/// The `Content-Length`, if the request has one.
pub(super) fn content_length(req: &Request<Incoming>) -> Result<Option<usize>, Refused> {
    match req.headers().get(hyper::header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
            .map(Some)
            .ok_or_else(|| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "Content-Length is not a number",
                )
            }),
    }
}

/// Appends the next data frame to `bytes`, or refuses: the client stopped,
/// sent too slowly, or the connection failed.
async fn next_frame(
    body: &mut Incoming,
    bytes: &mut Vec<u8>,
    deadline: Instant,
    what: &str,
) -> Result<(), Refused> {
    let frame = tokio::time::timeout_at(deadline, body.frame())
        .await
        .map_err(|_| {
            refuse(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("the {what} arrived too slowly"),
            )
        })?;
    match frame {
        Some(Ok(frame)) => {
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data);
            }
            Ok(())
        }
        Some(Err(e)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("reading the {what} failed: {e}"),
        )),
        None => Err(refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the {what} ended before its Content-Length"),
        )),
    }
}
