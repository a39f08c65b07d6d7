//! Response bodies: whole JSON documents, the empty delete reply, streams fed
//! through a channel, and the wrapper that writes the request log line when
//! a body is done.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// The body type of every facade response. The error type lets a streamed
/// list abort the connection when an upstream page fails half-way.
pub type ResponseBody = BoxBody<Bytes, std::io::Error>;

pub const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> ResponseBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A JSON document with its status.
pub fn json_response(status: StatusCode, value: &impl serde::Serialize) -> http::Response<ResponseBody> {
    // Serializing plain data (strings, numbers, maps with string keys) cannot fail.
    json_document(status, serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
}

/// A JSON document already written, with its status.
pub fn json_document(status: StatusCode, bytes: impl Into<Bytes>) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, APPLICATION_JSON);
    response
}

/// A body whose chunks are produced by another task. An `Err` item aborts
/// the response (the client sees a truncated body, never a false success).
pub struct ChannelBody {
    receiver: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl ChannelBody {
    pub fn new(capacity: usize) -> (mpsc::Sender<Result<Bytes, std::io::Error>>, Self) {
        let (sender, receiver) = mpsc::channel(capacity);
        (sender, ChannelBody { receiver })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }
}

/// Something to run once a response body is finished or dropped, told
/// whether the body ended in an error or was dropped before its end.
pub trait OnBodyEnd: Send + Sync + Unpin + 'static {
    /// The body's own stream failed (an upstream page, say), with `error`.
    fn body_failed(&mut self, error: &std::io::Error);
    /// The body was dropped before its end: the client went away, or the
    /// connection was cut.
    fn body_abandoned(&mut self);
}

/// Wraps a body; the guard is dropped with it (after the last byte went
/// out, or when the client went away), and hears about a failed stream or
/// one that did not reach its end.
pub struct GuardedBody<G: OnBodyEnd> {
    inner: ResponseBody,
    guard: G,
    /// The inner body said it has nothing more.
    finished: bool,
}

impl<G: OnBodyEnd> GuardedBody<G> {
    pub fn wrap(inner: ResponseBody, guard: G) -> ResponseBody {
        GuardedBody {
            inner,
            guard,
            finished: false,
        }
        .boxed()
    }
}

impl<G: OnBodyEnd> Body for GuardedBody<G> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Err(error))) => this.guard.body_failed(error),
            Poll::Ready(None) => this.finished = true,
            _ => {}
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

impl<G: OnBodyEnd> Drop for GuardedBody<G> {
    /// hyper drops a body without polling it again once `is_end_stream`
    /// says it is done; anything else dropped it early.
    fn drop(&mut self) {
        if !self.finished && !self.inner.is_end_stream() {
            self.guard.body_abandoned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Ends {
        failed: bool,
        abandoned: bool,
        seen: std::sync::Arc<std::sync::Mutex<(bool, bool)>>,
    }

    impl OnBodyEnd for Ends {
        fn body_failed(&mut self, _: &std::io::Error) {
            self.failed = true;
        }
        fn body_abandoned(&mut self) {
            self.abandoned = true;
        }
    }

    impl Drop for Ends {
        fn drop(&mut self) {
            *self.seen.lock().unwrap() = (self.failed, self.abandoned);
        }
    }

    /// (failed, abandoned) as the guard saw them when it was dropped.
    async fn ends_of(body: ResponseBody, frames_read: usize) -> (bool, bool) {
        let guard = Ends::default();
        let seen = std::sync::Arc::clone(&guard.seen);
        let mut body = GuardedBody::wrap(body, guard);
        for _ in 0..frames_read {
            if body.is_end_stream() {
                break;
            }
            let _ = body.frame().await;
        }
        drop(body);
        *seen.lock().unwrap()
    }

    #[tokio::test]
    async fn tells_a_body_read_to_its_end_from_one_dropped_early() {
        assert_eq!(ends_of(full("{}"), 1).await, (false, false));
        assert_eq!(ends_of(empty(), 0).await, (false, false));
        assert_eq!(ends_of(full("{}"), 0).await, (false, true));
        let (sender, body) = ChannelBody::new(2);
        sender.send(Ok(Bytes::from_static(b"["))).await.unwrap();
        assert_eq!(
            ends_of(body.boxed(), 1).await,
            (false, true),
            "the client left mid-stream"
        );
        let (sender, body) = ChannelBody::new(2);
        sender.send(Ok(Bytes::from_static(b"[]"))).await.unwrap();
        drop(sender);
        assert_eq!(ends_of(body.boxed(), 2).await, (false, false));
        let (sender, body) = ChannelBody::new(2);
        sender.send(Err(std::io::Error::other("page failed"))).await.unwrap();
        assert_eq!(ends_of(body.boxed(), 1).await, (true, true));
    }
}
