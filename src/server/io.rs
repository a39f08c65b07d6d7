//! A client connection's byte stream as hyper sees it, with what hyper does
//! not do itself:
//! - a send timeout (nginx's `send_timeout`): a write that makes no
//!   progress for that long fails, which ends the connection and its answer;
//! - a lingering close (nginx's `lingering_close`): when an answer went out
//!   before its request was read, the write side is shut and what the
//!   client still sends is read and discarded for a bounded time and number
//!   of bytes, so that the client reads the answer instead of a reset;
//! - the facade's own answer to a request head hyper cannot parse: hyper
//!   writes a bare `400`, `414` or `431` (no body, no request id) and closes;
//!   that head is recognised on its way out (the facade's own answers always
//!   carry `content-type` and a request id, hyper's never do) and replaced
//!   by the JSON error with a request id, and a log line.
//!
//! Generic over the stream, so that a TLS stream can sit below it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::app;
use crate::config::ClientLimits;
use crate::connection::{ClientConnection, Cut};
use crate::error::AllianceError;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use crate::request_id;

/// The limits the stream applies, from `[client]`.
#[derive(Debug, Clone, Copy)]
pub struct IoLimits {
    pub send_timeout: Duration,
    pub lingering_time: Duration,
    pub lingering_timeout: Duration,
    pub lingering_max_bytes: u64,
    /// For the message of a 431.
    pub max_header_bytes: usize,
}

impl IoLimits {
    pub fn new(client: &ClientLimits) -> Self {
        IoLimits {
            send_timeout: Duration::from_secs(client.send_timeout_secs),
            lingering_time: Duration::from_secs(client.lingering_time_secs),
            lingering_timeout: Duration::from_secs(client.lingering_timeout_secs),
            lingering_max_bytes: client.lingering_max_bytes,
            max_header_bytes: client.max_header_bytes,
        }
    }
}

pub struct ClientIo<S> {
    stream: S,
    connection: Arc<ClientConnection>,
    /// For the requests answered here (a head hyper refused).
    metrics: Metrics,
    limits: IoLimits,
    /// The send timeout while a write waits; the lingering deadline while
    /// closing. Made on first use: most connections never need it.
    timer: Option<Pin<Box<Sleep>>>,
    /// A write is waiting and `timer` runs for it.
    send_waiting: bool,
    /// The facade's answer in place of hyper's bare one, and how much of it
    /// went out.
    own_answer: Option<(Vec<u8>, usize)>,
    closing: Closing,
}

enum Closing {
    Open,
    /// The write side is shut; discarding what the client still sends.
    Lingering {
        until: Instant,
        discarded: u64,
    },
    Closed,
}

impl<S> ClientIo<S> {
    pub fn new(stream: S, connection: Arc<ClientConnection>, limits: IoLimits, metrics: Metrics) -> Self {
        ClientIo {
            stream,
            connection,
            metrics,
            limits,
            timer: None,
            send_waiting: false,
            own_answer: None,
            closing: Closing::Open,
        }
    }

    /// Sets the timer to `deadline` and polls it; `true` once it is due.
    fn timer_due(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let timer = match (&mut self.timer, deadline) {
            (Some(timer), Some(deadline)) => {
                timer.as_mut().reset(deadline);
                timer
            }
            (Some(timer), None) => timer,
            (None, deadline) => self.timer.insert(Box::pin(tokio::time::sleep_until(
                deadline.unwrap_or_else(Instant::now),
            ))),
        };
        timer.as_mut().poll(cx).is_ready()
    }
}

impl<S: AsyncWrite + Unpin> ClientIo<S> {
    /// A write's (or flush's) outcome, with the send timeout applied to
    /// one that waits. Only a write that went through counts as progress: a
    /// flush that is ready while writes wait does not.
    fn sending<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>, write: bool) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            if write {
                self.send_waiting = false;
            }
            return polled;
        }
        let deadline = (!self.send_waiting).then(|| Instant::now() + self.limits.send_timeout);
        self.send_waiting = true;
        if self.timer_due(deadline, cx) {
            self.connection.cut(Cut::SendTimeout);
            tracing::warn!(
                reason = Cut::SendTimeout.reason(),
                send_timeout_secs = self.limits.send_timeout.as_secs(),
                "the client read nothing of its answer for the send timeout; connection closed"
            );
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")));
        }
        Poll::Pending
    }

    /// Replaces hyper's bare answer in `head`, if it is one.
    fn take_over(&mut self, head: &[u8]) {
        let Some(bare) = BareAnswer::parse(head) else {
            return;
        };
        let request_id = request_id::generate();
        let refusal = match bare.status {
            StatusCode::URI_TOO_LONG => Refusal::UriTooLong { limit: None },
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Refusal::HeadersTooLarge {
                limit: self.limits.max_header_bytes,
            },
            _ => Refusal::MalformedRequest,
        };
        let message = refusal.message();
        app::log_unparsed_request(
            &self.metrics,
            &self.connection,
            &request_id,
            bare.status.as_u16(),
            refusal,
        );
        // hyper closes the connection after its answer, with the rest of
        // what the client sent unread.
        self.connection.note_input_left_unread();
        self.own_answer = Some((own_answer(&bare, &request_id, message), 0));
    }

    /// Writes the facade's answer; ready when all of it went out.
    fn poll_own_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &self.own_answer {
            if *written == bytes.len() {
                return Poll::Ready(Ok(()));
            }
            let polled = Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]);
            match ready!(self.sending(cx, polled, true)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(count) => {
                    if let Some((_, written)) = &mut self.own_answer {
                        *written += count;
                    }
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> ClientIo<S> {
    /// Reads and discards until the client closes, or a lingering limit.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut scratch = [0u8; 8192];
        loop {
            let Closing::Lingering { until, discarded } = &mut self.closing else {
                return Poll::Ready(());
            };
            let until = *until;
            let mut buffer = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buffer) {
                Poll::Ready(Ok(())) if !buffer.filled().is_empty() => {
                    *discarded += buffer.filled().len() as u64;
                    if *discarded > self.limits.lingering_max_bytes {
                        tracing::debug!(discarded = *discarded, "lingering close: byte limit reached");
                        break;
                    }
                    let next = until.min(Instant::now() + self.limits.lingering_timeout);
                    if self.timer_due(Some(next), cx) {
                        break;
                    }
                }
                // The client closed its side (or the connection failed).
                Poll::Ready(_) => break,
                Poll::Pending => {
                    if self.timer_due(None, cx) {
                        tracing::debug!("lingering close: time limit reached");
                        break;
                    }
                    return Poll::Pending;
                }
            }
        }
        self.closing = Closing::Closed;
        Poll::Ready(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClientIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClientIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.own_answer.is_none() {
            this.take_over(buf);
        }
        if this.own_answer.is_some() {
            // hyper's bytes count as written once the facade's are.
            return this.poll_own_answer(cx).map_ok(|()| buf.len());
        }
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.sending(cx, polled, true)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper's bare answer is a head alone: one slice.
        if let [only] = bufs {
            return self.poll_write(cx, only);
        }
        let this = &mut *self;
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.sending(cx, polled, true)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_own_answer(cx))?;
        let polled = Pin::new(&mut this.stream).poll_flush(cx);
        this.sending(cx, polled, false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.closing {
                Closing::Open => {
                    ready!(this.poll_own_answer(cx))?;
                    let polled = Pin::new(&mut this.stream).poll_shutdown(cx);
                    ready!(this.sending(cx, polled, false))?;
                    this.closing = if this.connection.input_left_unread() {
                        let until = Instant::now() + this.limits.lingering_time;
                        this.timer_due(Some(until.min(Instant::now() + this.limits.lingering_timeout)), cx);
                        Closing::Lingering { until, discarded: 0 }
                    } else {
                        Closing::Closed
                    };
                }
                Closing::Lingering { .. } => ready!(this.poll_linger(cx)),
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// hyper's own answer to a head it could not parse:
/// `HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: ...\r\n\r\n`
/// and nothing else - no other header, no body.
#[derive(Debug, PartialEq, Eq)]
struct BareAnswer<'a> {
    status: StatusCode,
    date: Option<&'a [u8]>,
}

impl<'a> BareAnswer<'a> {
    fn parse(head: &'a [u8]) -> Option<Self> {
        let rest = head.strip_prefix(b"HTTP/1.1 ")?;
        let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
        if !(status.is_client_error() || status.is_server_error()) {
            return None;
        }
        let mut date = None;
        // The status line, then `name: value` lines (CRLF-separated).
        for line in rest.strip_suffix(b"\r\n\r\n")?.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let at = line.iter().position(|&b| b == b':')?;
            let (name, value) = (&line[..at], line[at + 1..].trim_ascii());
            match name {
                b"connection" if value == b"close" => {}
                b"content-length" if value == b"0" => {}
                b"date" => date = Some(value),
                _ => return None,
            }
        }
        Some(BareAnswer { status, date })
    }
}

/// The facade's answer in place of a bare one: the JSON error, its request
/// id, and `connection: close` (hyper closes after it).
fn own_answer(bare: &BareAnswer<'_>, request_id: &str, message: String) -> Vec<u8> {
    let body = AllianceError::new(bare.status, message).to_json(request_id).to_string();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nx-openstack-request-id: {request_id}\r\nconnection: close\r\ncontent-length: {}\r\n",
        bare.status.as_str(),
        bare.status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    if let Some(date) = bare.date {
        answer.extend_from_slice(b"date: ");
        answer.extend_from_slice(date);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(body.as_bytes());
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Tue, 01 Dec 2026 15:30:40 GMT";

    #[test]
    fn recognises_hypers_bare_answers_only() {
        for (head, status) in [
            (&b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 15:30:40 GMT\r\n\r\n"[..], 400),
            (b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 15:30:40 GMT\r\n\r\n", 414),
            (b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 15:30:40 GMT\r\n\r\n", 431),
        ] {
            let bare = BareAnswer::parse(head).unwrap();
            assert_eq!(bare.status.as_u16(), status);
            assert_eq!(bare.date, Some(DATE));
        }
        assert_eq!(
            BareAnswer::parse(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").map(|bare| bare.date),
            Some(None)
        );
        for not_bare in [
            // The facade's own answers.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-openstack-request-id: req-1\r\ncontent-length: 2\r\ndate: x\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            // A bare head with a body, or one cut short.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nx",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n",
            b"{\"error\": 1}",
            b"",
        ] {
            assert_eq!(BareAnswer::parse(not_bare), None, "{}", String::from_utf8_lossy(not_bare));
        }
    }

    #[test]
    fn the_own_answer_is_the_json_error_with_its_request_id() {
        let bare = BareAnswer {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            date: Some(DATE),
        };
        let answer = String::from_utf8(own_answer(&bare, "req-1", "too large".into())).unwrap();
        let body = r#"{"error":{"code":431,"title":"Request Header Fields Too Large","message":"too large","request_id":"req-1"}}"#;
        assert_eq!(
            answer,
            format!(
                "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n\
                 x-openstack-request-id: req-1\r\nconnection: close\r\ncontent-length: {}\r\n\
                 date: Tue, 01 Dec 2026 15:30:40 GMT\r\n\r\n{body}",
                body.len()
            )
        );
    }
}
