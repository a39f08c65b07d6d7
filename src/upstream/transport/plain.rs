//! The transport for `http` upstreams: hyper's connection API under a small
//! pool of idle keep-alive connections per upstream host.
//!
//! A call takes the most recently used idle connection that is still open
//! and younger than the idle timeout (or opens one), and puts it back once
//! its answer has been read to the end. hyper-util's pooled client does the
//! same through a generic checkout (a lazy connect raced against the pool,
//! URI rewriting, waiters): 10k more instructions per proxied call, a fifth
//! of a bare proxy's (see bench/README.md).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Uri;
use http::uri::Authority;
use http_body_util::Full;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;

use super::{AnswerBudget, Outgoing, Reply, Transport, TransportError, failed, read_answer};

/// The request side of one upstream connection.
type Sender = SendRequest<Full<Bytes>>;

/// Idle connections kept per upstream host (like nginx's `keepalive N`);
/// more are closed as they come back.
const MAX_IDLE_PER_HOST: usize = 256;

#[derive(Clone)]
pub struct PlainPool {
    idle: Arc<Mutex<Vec<HostIdle>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    budget: AnswerBudget,
}

struct HostIdle {
    authority: Authority,
    /// Oldest first; calls take from the end.
    connections: Vec<(Sender, Instant)>,
}

impl Transport for PlainPool {
    async fn exchange(&self, request: Outgoing, fresh: bool) -> Result<Reply, TransportError> {
        let Outgoing {
            method,
            authority,
            path_and_query,
            headers,
            body,
        } = request;
        let mut hyper_request = http::Request::new(Full::new(body));
        *hyper_request.method_mut() = method;
        // Origin form on the wire; the host is in `Host`.
        *hyper_request.uri_mut() = Uri::from(path_and_query);
        *hyper_request.headers_mut() = headers;
        let mut sender = self.checkout(&authority, fresh).await?;
        let response = sender
            .send_request(hyper_request)
            .await
            .map_err(|error| failed(&error))?;
        let reply = read_answer(response, &self.budget).await?;
        self.checkin(&authority, sender);
        Ok(reply)
    }
}

impl PlainPool {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration, budget: AnswerBudget) -> Self {
        PlainPool {
            idle: Arc::default(),
            connect_timeout,
            idle_timeout,
            budget,
        }
    }

    /// An open connection to `authority`: a pooled one unless `fresh`.
    async fn checkout(&self, authority: &Authority, fresh: bool) -> Result<Sender, TransportError> {
        if !fresh {
            while let Some(mut sender) = self.take_idle(authority) {
                // Ready at once unless the upstream closed it meanwhile.
                if sender.ready().await.is_ok() {
                    return Ok(sender);
                }
            }
        }
        self.connect(authority).await
    }

    /// Puts a connection whose last answer was read to the end back.
    fn checkin(&self, authority: &Authority, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let index = idle
            .iter()
            .position(|host| host.authority == *authority)
            .unwrap_or_else(|| {
                idle.push(HostIdle {
                    authority: authority.clone(),
                    connections: Vec::new(),
                });
                idle.len() - 1
            });
        let connections = &mut idle[index].connections;
        if connections.len() < MAX_IDLE_PER_HOST {
            connections.push((sender, Instant::now()));
        }
    }

    /// The newest idle connection to `authority` that is open and within the
    /// idle timeout; older ones past it are dropped (closed) on the way.
    fn take_idle(&self, authority: &Authority) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let host = idle.iter_mut().find(|host| host.authority == *authority)?;
        let expired = host
            .connections
            .iter()
            .take_while(|(_, since)| since.elapsed() >= self.idle_timeout)
            .count();
        host.connections.drain(..expired);
        while let Some((sender, _)) = host.connections.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self, authority: &Authority) -> Result<Sender, TransportError> {
        // `Authority::host` keeps an IPv6 address's brackets.
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let stream = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| TransportError::Timeout)?
            .map_err(|error| TransportError::Unreachable(format!("cannot connect to {authority}: {error}")))?;
        // Requests are written whole; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| TransportError::Unreachable(format!("connection to {authority}: {error}")))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}
