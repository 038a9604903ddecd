//! A typed client of the operator API over any HTTP transport: one method
//! per route, taking the route's parameters and answering its view. The
//! paths are written here once.

use std::future::Future;

use fathom_shared::ids::AgentId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::agents::{
    AgentView, CreatedEnrollmentToken, CreatedOperatorToken, EnrollmentTokenView,
    NewEnrollmentToken, NewOperatorToken, OperatorTokenView,
};

/// What the client needs of HTTP: a GET and a POST with a JSON body,
/// each answering the decoded JSON of a 2xx (and an error otherwise). The
/// CLI's transport is rustls with its trust options and its token.
pub trait Transport {
    type Error;

    fn get<T: DeserializeOwned>(&self, path: &str) -> impl Future<Output = Result<T, Self::Error>>;

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> impl Future<Output = Result<T, Self::Error>>;
}

/// The operator API.
#[derive(Debug)]
pub struct Client<'t, T> {
    transport: &'t T,
}

/// The body of a POST that takes none.
const NO_BODY: &serde_json::Value = &serde_json::Value::Null;

impl<'t, T: Transport> Client<'t, T> {
    pub fn new(transport: &'t T) -> Self {
        Client { transport }
    }

    /// `GET /v1/agents`
    pub async fn agents(&self) -> Result<Vec<AgentView>, T::Error> {
        self.transport.get("v1/agents").await
    }

    /// `POST /v1/agents/{id}/revoke` (admin)
    pub async fn revoke_agent(&self, id: AgentId) -> Result<AgentView, T::Error> {
        let path = format!("v1/agents/{id}/revoke");
        self.transport.post(&path, NO_BODY).await
    }

    /// `GET /v1/enrollment-tokens`
    pub async fn enrollment_tokens(&self) -> Result<Vec<EnrollmentTokenView>, T::Error> {
        self.transport.get("v1/enrollment-tokens").await
    }

    /// `POST /v1/enrollment-tokens` (admin)
    pub async fn create_enrollment_token(
        &self,
        new: &NewEnrollmentToken,
    ) -> Result<CreatedEnrollmentToken, T::Error> {
        self.transport.post("v1/enrollment-tokens", new).await
    }

    /// `POST /v1/enrollment-tokens/{id}/revoke` (admin)
    pub async fn revoke_enrollment_token(&self, id: &str) -> Result<EnrollmentTokenView, T::Error> {
        let path = format!("v1/enrollment-tokens/{id}/revoke");
        self.transport.post(&path, NO_BODY).await
    }

    /// `GET /v1/operator-tokens` (admin)
    pub async fn operator_tokens(&self) -> Result<Vec<OperatorTokenView>, T::Error> {
        self.transport.get("v1/operator-tokens").await
    }

    /// `POST /v1/operator-tokens` (admin)
    pub async fn create_operator_token(
        &self,
        new: &NewOperatorToken,
    ) -> Result<CreatedOperatorToken, T::Error> {
        self.transport.post("v1/operator-tokens", new).await
    }

    /// `POST /v1/operator-tokens/{id}/revoke` (admin)
    pub async fn revoke_operator_token(&self, id: &str) -> Result<OperatorTokenView, T::Error> {
        let path = format!("v1/operator-tokens/{id}/revoke");
        self.transport.post(&path, NO_BODY).await
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Records each request and answers `null`-tolerant empty values.
    #[derive(Default)]
    struct Recorder {
        requests: RefCell<Vec<String>>,
    }

    impl Transport for Recorder {
        type Error = serde_json::Error;

        async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Self::Error> {
            self.requests.borrow_mut().push(format!("GET {path}"));
            serde_json::from_str("[]")
        }

        async fn post<B: Serialize, T: DeserializeOwned>(
            &self,
            path: &str,
            body: &B,
        ) -> Result<T, Self::Error> {
            let body = serde_json::to_string(body)?;
            self.requests
                .borrow_mut()
                .push(format!("POST {path} {body}"));
            serde_json::from_str("[]")
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        // The recorder never waits: one poll finishes each call.
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("the recorder never waits"),
        }
    }

    #[test]
    fn each_method_asks_its_route() {
        let recorder = Recorder::default();
        let api = Client::new(&recorder);
        assert!(block_on(api.agents()).unwrap().is_empty());
        assert!(block_on(api.enrollment_tokens()).unwrap().is_empty());
        assert!(block_on(api.operator_tokens()).unwrap().is_empty());
        // Answers that are not the route's view are errors, not defaults.
        assert!(block_on(api.revoke_enrollment_token("t1")).is_err());
        let new = NewEnrollmentToken {
            ttl_secs: 60,
            uses: 2,
        };
        assert!(block_on(api.create_enrollment_token(&new)).is_err());
        assert_eq!(
            *recorder.requests.borrow(),
            [
                "GET v1/agents",
                "GET v1/enrollment-tokens",
                "GET v1/operator-tokens",
                "POST v1/enrollment-tokens/t1/revoke null",
                r#"POST v1/enrollment-tokens {"ttl_secs":60,"uses":2}"#,
            ]
        );
    }
}
