//! One client connection as the server and its requests share it: who is
//! at the other end (the peer's address, a client certificate), how many
//! requests it carried, whether the client may still be sending (an answer
//! went out before its request was read: close it lingering), and why the
//! server cut it (for the log lines of the requests cut with it).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};

use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};
use ipnet::IpNet;

use crate::refusal::Refusal;

#[derive(Debug)]
pub struct ClientConnection {
    peer: Peer,
    /// The peer's address as the log lines write it, formatted once.
    address_text: std::sync::OnceLock<String>,
    requests: AtomicU64,
    input_left_unread: AtomicBool,
    cut: AtomicU8,
}

/// What a connection proves about its client, for `callers` to judge.
#[derive(Debug, Clone)]
pub struct Peer {
    pub address: IpAddr,
    pub certificate: Option<Arc<ClientCertificate>>,
}

impl Peer {
    /// A connection without a client certificate.
    pub fn from_address(address: IpAddr) -> Self {
        Peer {
            address,
            certificate: None,
        }
    }

    /// The client a request from a trusted proxy names in
    /// `X-Forwarded-For` (every such header, in order): walking the chain
    /// from its end, the first address that is not a trusted proxy (each
    /// proxy appends the address it was reached from); all of them
    /// trusted, the first. `None` when this peer is not a trusted proxy, or
    /// the chain names no address (an entry that is not an address ends
    /// the walk: what is left of it cannot be trusted).
    pub fn forwarded(&self, headers: &HeaderMap, trusted: &[IpNet]) -> Option<Peer> {
        if !is_trusted_proxy(self.address, trusted) {
            return None;
        }
        let entries = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.rsplit(','))
            .map(str::trim);
        let mut client = None;
        for entry in entries {
            let Some(address) = parse_forwarded_address(entry) else {
                break;
            };
            client = Some(address);
            if !is_trusted_proxy(address, trusted) {
                break;
            }
        }
        client.map(|address| Peer {
            address,
            certificate: self.certificate.clone(),
        })
    }
}

/// Whether `address` is in one of the `trusted` proxies' networks (an
/// IPv4-mapped IPv6 address as the IPv4 one).
pub fn is_trusted_proxy(address: IpAddr, trusted: &[IpNet]) -> bool {
    let address = address.to_canonical();
    trusted.iter().any(|network| network.contains(&address))
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port (`[v6]:port`).
fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|socket| socket.ip()))
}

/// The client certificate of a TLS connection (its key held by the client:
/// the handshake proved it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// SHA-256 of the certificate (DER).
    pub sha256: [u8; 32],
    /// Subject CN and SAN DNS names; only when the certificate chains to
    /// the configured client CA, otherwise empty.
    pub names: Vec<String>,
}

/// Why the server closed a connection that had not ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Cut {
    /// The client read nothing of an answer for the send timeout.
    SendTimeout = 1,
    /// The shutdown grace period ended.
    Shutdown = 2,
}

impl Cut {
    /// The `reason` of the log lines of the requests cut.
    pub fn reason(self) -> &'static str {
        match self.refusal() {
            Some(refusal) => refusal.label(),
            None => "shutdown",
        }
    }

    /// The limit that cut the connection, if one did.
    pub fn refusal(self) -> Option<Refusal> {
        match self {
            Cut::SendTimeout => Some(Refusal::SendTimeout),
            Cut::Shutdown => None,
        }
    }
}

impl ClientConnection {
    pub fn new(peer: Peer) -> Self {
        ClientConnection {
            peer,
            address_text: std::sync::OnceLock::new(),
            requests: AtomicU64::new(0),
            input_left_unread: AtomicBool::new(false),
            cut: AtomicU8::new(0),
        }
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The peer's address, as text (formatted once per connection, not
    /// once per request: a log line's cost).
    pub fn address_text(&self) -> &str {
        self.address_text.get_or_init(|| self.peer.address.to_string())
    }

    /// A request head was received.
    pub fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.input_left_unread.store(false, Ordering::Relaxed);
    }

    /// Requests whose head was received on this connection.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The latest request's body (or head) was not read to its end: the
    /// client may still be sending it.
    pub fn note_input_left_unread(&self) {
        self.input_left_unread.store(true, Ordering::Relaxed);
    }

    pub fn input_left_unread(&self) -> bool {
        self.input_left_unread.load(Ordering::Relaxed)
    }

    pub fn cut(&self, why: Cut) {
        self.cut.store(why as u8, Ordering::Relaxed);
    }

    /// Why the server cut the connection, if it did.
    pub fn cut_by(&self) -> Option<Cut> {
        match self.cut.load(Ordering::Relaxed) {
            1 => Some(Cut::SendTimeout),
            2 => Some(Cut::Shutdown),
            _ => None,
        }
    }
}

/// A request body that tells its connection when it is dropped before its
/// end.
pub struct WatchedBody<'a, B: Body> {
    inner: B,
    connection: &'a ClientConnection,
    finished: bool,
}

impl<'a, B: Body> WatchedBody<'a, B> {
    pub fn new(inner: B, connection: &'a ClientConnection) -> Self {
        WatchedBody {
            inner,
            connection,
            finished: false,
        }
    }
}

impl<B: Body + Unpin> Body for WatchedBody<'_, B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for WatchedBody<'_, B> {
    fn drop(&mut self) {
        if !self.finished && !self.inner.is_end_stream() {
            self.connection.note_input_left_unread();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap(), "fd00::/8".parse().unwrap()];
        let forwarded = |peer: &str, chain: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in chain {
                headers.append("x-forwarded-for", value.parse().unwrap());
            }
            Peer::from_address(peer.parse().unwrap())
                .forwarded(&headers, &trusted)
                .map(|peer| peer.address.to_string())
        };
        // The right-most untrusted address, over every header line.
        assert_eq!(
            forwarded("10.0.0.5", &["203.0.113.9, 198.51.100.2", "10.0.0.7"]).as_deref(),
            Some("198.51.100.2")
        );
        assert_eq!(
            forwarded("10.0.0.5", &["198.51.100.2:4711"]).as_deref(),
            Some("198.51.100.2")
        );
        assert_eq!(
            forwarded("10.0.0.5", &["[2001:db8::1]:4711"]).as_deref(),
            Some("2001:db8::1")
        );
        // All trusted: the first.
        assert_eq!(
            forwarded("10.0.0.5", &["10.0.0.8, 10.0.0.7"]).as_deref(),
            Some("10.0.0.8")
        );
        // Garbage ends the walk.
        assert_eq!(
            forwarded("10.0.0.5", &["198.51.100.2, unknown, 10.0.0.7"]).as_deref(),
            Some("10.0.0.7")
        );
        assert_eq!(forwarded("10.0.0.5", &["nonsense"]), None);
        assert_eq!(forwarded("10.0.0.5", &[]), None);
        // Forged by anyone else: nothing.
        assert_eq!(forwarded("192.0.2.1", &["198.51.100.2"]), None);
        // IPv4-mapped peers count as their IPv4 address.
        assert_eq!(
            forwarded("::ffff:10.0.0.5", &["198.51.100.2"]).as_deref(),
            Some("198.51.100.2")
        );
    }
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};

    fn local() -> ClientConnection {
        ClientConnection::new(Peer::from_address(IpAddr::from([127, 0, 0, 1])))
    }

    #[tokio::test]
    async fn a_body_dropped_unread_is_noted_until_the_next_request() {
        let connection = local();
        connection.request_started();
        drop(WatchedBody::new(Empty::<Bytes>::new(), &connection));
        assert!(!connection.input_left_unread(), "no body");
        let mut read = WatchedBody::new(Full::new(Bytes::from_static(b"{}")), &connection);
        while read.frame().await.is_some() {}
        drop(read);
        assert!(!connection.input_left_unread(), "read to its end");
        drop(WatchedBody::new(Full::new(Bytes::from_static(b"{}")), &connection));
        assert!(connection.input_left_unread());
        connection.request_started();
        assert!(!connection.input_left_unread());
        assert_eq!(connection.requests(), 2);
    }

    #[test]
    fn cuts_have_stable_reasons() {
        let connection = local();
        assert_eq!(connection.cut_by(), None);
        connection.cut(Cut::SendTimeout);
        assert_eq!(connection.cut_by().map(Cut::reason), Some("send_timeout"));
        connection.cut(Cut::Shutdown);
        assert_eq!(connection.cut_by().map(Cut::reason), Some("shutdown"));
    }
}
