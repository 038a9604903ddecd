//! The operator routes, one module per resource. Each answers the paths
//! of its resource, or says the path is not one of them; [`route`] asks
//! each in turn. Permission checks are each route's ([`Request::need`]);
//! writes answer only once durable, like reports.

use std::sync::Arc;

use hyper::{Method, StatusCode};

use crate::api::{bad_request, not_found, refuse, store_error, Answer, Api, Refused};
use crate::cmdb::action::ActionError;
use crate::cmdb::history::Actor;
use crate::cmdb::{Permission, Role};
use crate::store::Store;

/// A write: runs it, waits until it is durable, answers with its value.
macro_rules! written {
    ($api:expr, $r:expr, $status:expr, $value:expr) => {{
        let value = $value.map_err($crate::api::routes::action_error)?;
        $crate::api::durable($api, $r.begun).await?;
        $crate::api::json($status, &value)
    }};
}

mod agents;
mod audits;
mod availability;
mod baselines;
pub(super) mod cis;
mod drift;
mod exchange;
mod incidents;
pub(super) mod metrics;
mod reviews;
mod rfcs;
mod tokens;

/// One authenticated operator request.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub method: &'a Method,
    pub segments: &'a [&'a str],
    /// The query string's pairs, percent-decoded.
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    pub actor: &'a Actor,
    /// The operator token's role.
    pub role: Role,
    /// Taken before any write this request makes.
    pub begun: crate::commit::Begun,
}

impl Request<'_> {
    /// Refuses the request (403, naming the roles that may) unless the
    /// operator's role has `needed`.
    pub fn need(&self, needed: Permission) -> Result<(), Refused> {
        let role = self.role;
        if role.may(needed) {
            return Ok(());
        }
        Err(refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} {} token may not {}; that needs {} {} token",
                article(role.as_str()),
                role.as_str(),
                needed.describe(),
                article(&needed.roles()),
                needed.roles()
            ),
        ))
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_ms(&self, key: &str) -> Result<Option<i64>, Refused> {
        self.query(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    bad_request(format!("query parameter {key} must be Unix milliseconds"))
                })
            })
            .transpose()
    }
}

pub(crate) fn action_error(e: ActionError) -> Refused {
    match e {
        ActionError::NotFound(m) => not_found(m),
        ActionError::Invalid(m) => bad_request(m),
        ActionError::Conflict(m) => refuse(StatusCode::CONFLICT, "conflict", m),
        ActionError::Store(s) => store_error(&s),
    }
}

pub(super) fn id<T: std::str::FromStr>(text: &str) -> Result<T, Refused>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| bad_request(e.to_string()))
}

/// "a" or "an", as the word that follows sounds.
fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// Answers an authenticated operator request: the first resource whose
/// paths it matches, else 404.
pub(super) async fn route<S: Store>(api: &Arc<Api<S>>, r: &Request<'_>) -> Result<Answer, Refused> {
    macro_rules! try_each {
        ($($resource:ident),*) => {
            $(
                if let Some(answer) = $resource::route(api, r).await? {
                    return Ok(answer);
                }
            )*
        };
    }
    try_each!(
        tokens,
        agents,
        cis,
        reviews,
        rfcs,
        drift,
        incidents,
        baselines,
        audits,
        exchange,
        availability
    );
    if let Some(answer) = metrics::route(api, r)? {
        return Ok(answer);
    }
    Ok(not_found(format!(
        "no route for {} /{}",
        r.method,
        r.segments.join("/")
    ))
    .answer())
}
