//! The one accept loop of the mock servers (Glance, Keystone, the file
//! server): HTTP/1.1 on a loopback listener until stopped, then a short grace
//! period for the requests in flight.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long stopping waits for open connections to finish their current request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (for instance when out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// A running accept loop. It stops on [`Server::stop`], or when the
/// `Server` is dropped.
pub(crate) struct Server {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves each request with `handler`. An `Err` from the handler drops
    /// the connection without an answer (hyper's behaviour), which is how a
    /// mock simulates a reset.
    pub(crate) fn spawn<H, F, E>(listener: TcpListener, handler: H) -> Self
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, handler, stopped));
        Server { stop, task: Some(task) }
    }

    /// Stops accepting and waits (briefly) for the requests in flight.
    pub(crate) async fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            // The loop only ends by itself; a failed join means it panicked.
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn accept_loop<H, F, E>(listener: TcpListener, handler: H, mut stop: watch::Receiver<bool>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handler = handler.clone();
                    let connection = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(handler));
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        // Connection errors (resets, dropped faults) only end that connection.
                        let _ = connection.await;
                    });
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Fires on stop, and when the `Server` is gone.
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}
