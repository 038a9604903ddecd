//! The HTTPS API: hyper over rustls. The only module that uses hyper or
//! tokio-rustls.
//!
//! Routes (JSON answers; errors are `{"code", "message"}`):
//!
//! | method | path                        | who            |
//! |--------|-----------------------------|----------------|
//! | GET    | /v1/health                  | anyone         |
//! | POST   | /v1/reports                 | signed agents  |
//! | POST   | /v1/enrollment-tokens       | admin          |
//! | GET    | /v1/enrollment-tokens       | viewer         |
//! | POST   | /v1/operator-tokens         | admin          |
//! | GET    | /v1/agents                  | viewer         |
//! | POST   | /v1/agents/{id}/revoke      | admin          |
//!
//! The operator routes are in `routes`, one module per resource (tokens,
//! agents, CIs, reviews, RFCs, drift, incidents, baselines, audits,
//! exchange, metrics, availability), each listing its paths. Any valid
//! operator token reads; writes need the permission its role grants
//! (`cmdb::Permission`).
//!
//! Status codes agents act on: 2xx acknowledged (durably); 429 and 5xx retry
//! later; any other 4xx is final for that report.
//!
//! Tasks: the **acceptor** (one), and one task per connection, each
//! instrumented with the peer address. Shutdown stops accepting, then lets
//! open connections finish for a grace period.

// The home of hyper (clippy.toml), for this module and those below it.
#![allow(clippy::disallowed_types)]

pub mod intake;
mod routes;

pub use routes::cis::CiView;
pub use routes::metrics::{PointsView, QueryView, SeriesView};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fathom_shared::wire::ErrorBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::cmdb::history::Actor;
use crate::cmdb::Cmdb;
use crate::commit::GroupCommit;
use crate::ingest::{Ingest, IngestError};
use crate::reconcile::Refusal;
use crate::store::Store;

/// Operator requests are JSON from authenticated operators; imports of
/// manual CIs are the largest. This caps them.
const MAX_OPERATOR_BODY: usize = 8 * 1024 * 1024;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Reports larger than this (compressed: full inventories, not metrics or
/// small deltas) are ingested on the blocking pool.
const INLINE_INGEST_MAX: usize = 16 * 1024;
/// How far past the cap an announced body is still read (and dropped)
/// before refusing it, and for how long.
const DRAIN_LIMIT: usize = 1024 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared state of the API.
#[derive(Debug)]
pub struct Api<S> {
    pub cmdb: Arc<Cmdb<S>>,
    pub ingest: Ingest<S>,
    pub commit: Arc<GroupCommit>,
    pub max_body: usize,
    /// Slots, budget and rates for report bodies.
    pub intake: intake::Intake,
    pub fingerprint: fathom_shared::tls::Fingerprint,
    /// The webhook deliverer, poked after each durable write.
    pub webhook: Option<crate::webhook::Handle>,
    /// The metric store's tiers and retention, for queries.
    pub metrics: crate::capacity::store::MetricSettings,
}

pub(crate) type Answer = Response<Full<Bytes>>;

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    let body = serde_json::to_vec(value).expect("API answers always serialize");
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Answer {
    json(
        status,
        &ErrorBody {
            code: code.to_owned(),
            message: message.into(),
            last_seq: None,
        },
    )
}

/// A refusal on its way to becoming an answer; small enough to be the
/// error side of a `Result`, so handlers can use `?`.
#[derive(Debug)]
pub(crate) struct Refused {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refused {
    fn answer(self) -> Answer {
        error(self.status, self.code, self.message)
    }
}

pub(crate) fn refuse(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Refused {
    Refused {
        status,
        code,
        message: message.into(),
    }
}

pub(crate) use fathom_support::now_ms;

/// Serves until `shutdown` resolves, then drains open connections.
pub async fn serve<S: Store>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    api: Arc<Api<S>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "Accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        let watcher = graceful.watcher();
        tokio::spawn(
            async move {
                let tls =
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                let service = hyper::service::service_fn(move |req| {
                    let api = api.clone();
                    async move { Ok::<_, std::convert::Infallible>(route(&api, req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(tls), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(error = %e, "Connection ended with an error");
                }
            }
            .instrument(tracing::info_span!("connection", %peer)),
        );
    }
    tracing::info!("Stopped accepting connections; draining");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Some connections were still open after the grace period");
    }
}

async fn route<S: Store>(api: &Arc<Api<S>>, req: Request<Incoming>, peer: SocketAddr) -> Answer {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let answer = match (&method, segments.as_slice()) {
        (&Method::GET, ["v1", "health"]) => {
            // Ready when the store takes writes; otherwise 503 with why.
            let health = api.commit.health();
            let status = if health.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, &health)
        }
        (&Method::POST, ["v1", "reports"]) => report(api, req, peer).await,
        (_, ["v1", ..]) => operator(api, req, &method, &segments).await,
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {method} {path}"),
        ),
    };
    tracing::debug!(%method, %path, %peer, status = answer.status().as_u16(), "Request");
    answer
}

/// Reads an operator's body, refusing it before allocation if it claims to
/// be too large, and as soon as it grows too large if it does not say.
async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, Refused> {
    if let Some(n) = intake::content_length(&req)? {
        if n > max {
            return Err(too_large(req, n, max).await);
        }
    }
    // A client that trickles its body would otherwise hold a report slot
    // and a task forever.
    let collected = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        Limited::new(req.into_body(), max).collect(),
    );
    let Ok(collected) = collected.await else {
        return Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        ));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body exceeds {max} bytes"),
            ))
        }
        Err(e) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("reading the body failed: {e}"),
        )),
    }
}

/// Refuses a body whose `Content-Length` is over `max`. Answering without
/// reading leaves the client's body unread in our socket; closing it then
/// sends a reset that can destroy the answer before the client reads it. A
/// modest excess is read and dropped (never stored) so the client gets its
/// 413; a huge one is refused at once.
pub(crate) async fn too_large(req: Request<Incoming>, declared: usize, max: usize) -> Refused {
    if declared <= max.saturating_add(DRAIN_LIMIT) {
        let mut body = req.into_body();
        let drain = async {
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
    }
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request body exceeds {max} bytes"),
    )
}

/// The one content type agents send reports as.
pub const ENVELOPE_TYPE: &str = "application/vnd.fathom.envelope";

async fn report<S: Store>(api: &Arc<Api<S>>, req: Request<Incoming>, peer: SocketAddr) -> Answer {
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if content_type.as_deref() != Some(ENVELOPE_TYPE) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "reports are sent as {ENVELOPE_TYPE}, not {}",
                content_type.as_deref().unwrap_or("(no Content-Type)")
            ),
        );
    }
    let _admitted = match api.intake.admit(peer.ip()) {
        Ok(a) => a,
        Err(refused) => {
            tracing::debug!(code = refused.code, message = %refused.message, "Report refused before its body was read");
            return refused.answer();
        }
    };
    let body = api
        .intake
        .read(req, api.ingest.max_body(), |header| {
            // A failing store may not read either; the 503 below says why.
            if api.commit.check_writable().is_err() {
                return Ok(());
            }
            api.ingest
                .check_sender(&header.header)
                .map_err(|e| ingest_refusal(&e))
        })
        .await;
    let body = match body {
        Ok(b) => b,
        Err(refused) => {
            tracing::debug!(code = refused.code, message = %refused.message, "Report refused before its body was read");
            return refused.answer();
        }
    };
    let bytes = &body.bytes;
    // While the store cannot be written, say so without work or a log
    // line per report; `/v1/health` and the flusher's one line say why.
    if let Err(e) = api.commit.check_writable() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string());
    }
    let begun = api.commit.begin();
    // A usual report is ingested inline on the worker: a signature check and
    // an in-memory transaction (tens of microseconds, no disk wait; the flush
    // happens in the flusher task), and the hand-off to the blocking pool
    // cost more than the work itself under load. A large one (a whole
    // inventory of a big host) can take a good part of a second: on the
    // blocking pool, so the workers keep serving everyone else meanwhile.
    let ingested = if bytes.len() <= INLINE_INGEST_MAX {
        api.ingest.ingest(bytes, now_ms())
    } else {
        let (api, bytes) = (api.clone(), body.bytes.clone());
        match tokio::task::spawn_blocking(move || api.ingest.ingest(&bytes, now_ms())).await {
            Ok(ingested) => ingested,
            Err(e) => {
                tracing::error!(error = %e, "Ingesting a report panicked");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "ingesting the report failed; retry later",
                );
            }
        }
    };
    let ack = match ingested {
        Ok(ack) => ack,
        Err(e) => {
            if matches!(e, IngestError::Store(_)) {
                api.commit.suspect();
            }
            return ingest_error(&e);
        }
    };
    if let Err(refused) = durable(api, begun).await {
        return refused.answer();
    }
    tracing::debug!(agent_id = %ack.agent_id, seq = ack.seq, outcome = ?ack.outcome, "Report acknowledged");
    json(StatusCode::OK, &ack)
}

/// A refusal of the header's sender, before the body is read.
fn ingest_refusal(e: &IngestError) -> Refused {
    let (status, code) = ingest_status(e);
    if status.is_server_error() {
        tracing::error!(error = %crate::error_chain(e), "Checking a report's sender failed");
    }
    refuse(status, code, crate::error_chain(e))
}

fn ingest_status(e: &IngestError) -> (StatusCode, &'static str) {
    use fathom_shared::envelope::EnvelopeError;
    match e {
        IngestError::Envelope(EnvelopeError::BodyTooLarge { .. }) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        }
        IngestError::Envelope(EnvelopeError::UnsupportedVersion { .. }) => {
            (StatusCode::BAD_REQUEST, "unsupported_version")
        }
        IngestError::Envelope(_) => (StatusCode::BAD_REQUEST, "bad_envelope"),
        IngestError::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
        IngestError::UnknownAgent(_) => (StatusCode::UNAUTHORIZED, "unknown_agent"),
        IngestError::KeyMismatch(_) => (StatusCode::UNAUTHORIZED, "key_mismatch"),
        IngestError::Revoked(_) => (StatusCode::FORBIDDEN, "agent_revoked"),
        IngestError::ClockSkew { .. } => (StatusCode::BAD_REQUEST, "clock_skew"),
        IngestError::Body(_) => (StatusCode::BAD_REQUEST, "bad_body"),
        IngestError::BadDelta(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_delta"),
        IngestError::TooManyItems(_) => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_items"),
        IngestError::BadDevice(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_device_report"),
        IngestError::Refused(Refusal::Replay { .. }) => (StatusCode::CONFLICT, "replay"),
        IngestError::Refused(Refusal::TokenInvalid) => (StatusCode::UNAUTHORIZED, "token_invalid"),
        IngestError::Refused(Refusal::TokenExpired) => (StatusCode::UNAUTHORIZED, "token_expired"),
        IngestError::Refused(Refusal::TokenUsedUp) => (StatusCode::UNAUTHORIZED, "token_used_up"),
        IngestError::Refused(_) => (StatusCode::BAD_REQUEST, "refused"),
        IngestError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage"),
    }
}

fn ingest_error(e: &IngestError) -> Answer {
    let message = crate::error_chain(e);
    let (status, code) = ingest_status(e);
    if status.is_server_error() {
        tracing::error!(error = %message, "Report could not be stored");
    } else if let IngestError::Refused(Refusal::Replay { seq, last }) = e {
        // Either a replay, or an agent whose counter went back: it is
        // told where to resume.
        tracing::warn!(seq, last_seq = last, error = %message, "Report refused as a replay; the agent is told the last sequence held");
        return json(
            status,
            &ErrorBody {
                code: code.to_owned(),
                message,
                last_seq: Some(*last),
            },
        );
    } else {
        tracing::info!(code, error = %message, "Report refused");
    }
    error(status, code, message)
}

async fn operator<S: Store>(
    api: &Arc<Api<S>>,
    req: Request<Incoming>,
    method: &Method,
    segments: &[&str],
) -> Answer {
    operator_inner(api, req, method, segments)
        .await
        .unwrap_or_else(Refused::answer)
}

/// The operator routes. `Err` carries a finished refusal, so every check is
/// a `?`.
async fn operator_inner<S: Store>(
    api: &Arc<Api<S>>,
    req: Request<Incoming>,
    method: &Method,
    segments: &[&str],
) -> Result<Answer, Refused> {
    let unauthenticated =
        |message: &str| refuse(StatusCode::UNAUTHORIZED, "unauthenticated", message);
    let token = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| unauthenticated("send an operator token as `Authorization: Bearer …`"))?;
    let operator = api
        .cmdb
        .operator_token(&token)
        .map_err(|e| store_error(&e))?
        .ok_or_else(|| unauthenticated("unknown operator token"))?;
    match operator.state(now_ms()) {
        crate::cmdb::tokens::TokenState::Valid => {}
        crate::cmdb::tokens::TokenState::Expired => {
            return Err(unauthenticated("this operator token has expired"))
        }
        crate::cmdb::tokens::TokenState::Revoked => {
            return Err(unauthenticated("this operator token was revoked"))
        }
    }
    let role = operator.role;
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let body = read_body(req, MAX_OPERATOR_BODY).await?;
    if method != Method::GET {
        api.commit
            .check_writable()
            .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    }
    let begun = api.commit.begin();
    let actor = Actor::Operator {
        name: operator.name.clone(),
        role,
    };
    let request = routes::Request {
        method,
        segments,
        query: &query,
        body: &body,
        actor: &actor,
        role,
        begun,
    };
    routes::route(api, &request).await
}

pub(crate) fn bad_request(message: impl Into<String>) -> Refused {
    refuse(StatusCode::BAD_REQUEST, "bad_request", message)
}

pub(crate) fn not_found(message: impl Into<String>) -> Refused {
    refuse(StatusCode::NOT_FOUND, "not_found", message)
}

/// Parses an operator request body, naming what it was meant to be.
pub(crate) fn parse_request<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, Refused> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("bad {what}: {e}")))
}

/// Waits until every write so far is on disk; a failed flush is a 503, which
/// the caller may retry.
pub(crate) async fn durable<S: Store>(
    api: &Api<S>,
    begun: crate::commit::Begun,
) -> Result<(), Refused> {
    api.commit
        .durable(begun)
        .await
        .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string()))?;
    if let Some(w) = &api.webhook {
        w.poke();
    }
    Ok(())
}

pub(crate) fn store_error(e: &crate::store::StoreError) -> Refused {
    tracing::error!(error = %crate::error_chain(e), "Store failure");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage",
        crate::error_chain(e),
    )
}
