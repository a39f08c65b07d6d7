//! The transport for `https` upstreams, and for streamed uploads to any
//! upstream: reqwest with rustls. It keeps only what the rules of
//! [`super`] leave to it: TLS, its own keep-alive pool, the connect
//! timeout. Redirects are never followed and no proxy is taken from the
//! environment.

use http::Uri;
use http::uri::Scheme;

use super::{AnswerBudget, HttpOptions, Outgoing, Reply, Transport, TransportError, failed, read_answer};

#[derive(Clone)]
pub struct HttpsClient {
    client: reqwest::Client,
    budget: AnswerBudget,
}

impl Transport for HttpsClient {
    /// reqwest has no "fresh connection" switch; a resend after a stale
    /// pooled connection gets another one from its pool, or a new one.
    async fn exchange(&self, mut request: Outgoing, _fresh: bool) -> Result<Reply, TransportError> {
        let body = reqwest::Body::from(std::mem::take(&mut request.body));
        self.send(request, Scheme::HTTPS, body).await
    }
}

impl HttpsClient {
    pub fn new(options: &HttpOptions) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(options.pool_idle_timeout)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(HttpsClient {
            client,
            budget: options.budget.clone(),
        })
    }

    /// Sends `request` with `body` streamed as its payload (image data).
    pub async fn stream(&self, request: Outgoing, scheme: &str, body: reqwest::Body) -> Result<Reply, TransportError> {
        let scheme =
            Scheme::try_from(scheme).map_err(|_| TransportError::Broken(format!("unsupported scheme {scheme}")))?;
        self.send(request, scheme, body).await
    }

    async fn send(&self, request: Outgoing, scheme: Scheme, body: reqwest::Body) -> Result<Reply, TransportError> {
        let uri = Uri::builder()
            .scheme(scheme)
            .authority(request.authority)
            .path_and_query(request.path_and_query)
            .build()
            .map_err(|error| TransportError::Broken(error.to_string()))?;
        let url = reqwest::Url::parse(&uri.to_string()).map_err(|error| TransportError::Broken(error.to_string()))?;
        let response = self
            .client
            .request(request.method, url)
            .headers(request.headers)
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        read_answer(http::Response::from(response), &self.budget).await
    }
}

fn classify(error: reqwest::Error) -> TransportError {
    if error.is_timeout() {
        TransportError::Timeout
    } else if error.is_connect() {
        TransportError::Unreachable(super::error_chain(&error))
    } else {
        failed(&error)
    }
}
