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
pub fn json_document(status: StatusCode, bytes: Vec<u8>) -> http::Response<ResponseBody> {
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
/// whether the body ended in an error.
pub trait OnBodyEnd: Send + Sync + Unpin + 'static {
    fn body_failed(&mut self);
}

/// Wraps a body; the guard is dropped with it (after the last byte went
/// out, or when the client went away), and hears about a failed stream.
pub struct GuardedBody<G: OnBodyEnd> {
    inner: ResponseBody,
    guard: G,
}

impl<G: OnBodyEnd> GuardedBody<G> {
    pub fn wrap(inner: ResponseBody, guard: G) -> ResponseBody {
        GuardedBody { inner, guard }.boxed()
    }
}

impl<G: OnBodyEnd> Body for GuardedBody<G> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            this.guard.body_failed();
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
