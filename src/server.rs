//! Serving: HTTP/1.1 with keep-alive on a listener; on shutdown, stop
//! accepting, let in-flight requests finish within a grace period, return.
//!
//! The `serve` command runs one single-threaded runtime per core, each
//! accepting on its own `SO_REUSEPORT` socket ([`bind_workers`],
//! [`serve_on_workers`]): a connection and every task of its requests stay
//! on one thread, so a request wakes no other thread (as nginx's worker
//! processes do). A work-stealing runtime spent a fifth of the facade's CPU
//! time on cross-thread wake-ups under load.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::logging;

/// Connections a worker's socket queues before it accepts them.
const LISTEN_BACKLOG: u32 = 1024;

/// A client that has not sent its request headers after this is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown` completes, then waits up to `grace`
/// for open connections to finish their current request.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>, grace: Duration) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = service_fn(move |request| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(app.handle(request).await) }
                });
                let connection = http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!(?grace, "grace period over; closing remaining connections"),
    }
}

/// How many worker threads [`serve_on_workers`] runs: one per core.
pub fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// One listening socket per worker, all bound to `address` with
/// `SO_REUSEPORT`, so that the kernel spreads new connections evenly over
/// the workers (nginx's `reuseport`). With one shared socket, whichever
/// worker woke first accepted most of a burst of connections and the other
/// core idled: throughput varied by a third from one load run to the next.
/// Port 0 becomes the port the first socket got.
pub fn bind_workers(address: SocketAddr, workers: usize) -> std::io::Result<Vec<TcpSocket>> {
    let count = workers.max(1);
    let mut sockets: Vec<TcpSocket> = Vec::with_capacity(count);
    let mut address = address;
    for _ in 0..count {
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(address)?;
        address = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Serves one worker thread per socket from [`bind_workers`], each with its
/// own single-threaded runtime, until `shutdown` completes (it runs on the
/// calling thread's own small runtime); then each worker lets its
/// connections finish within `grace`.
pub fn serve_on_workers(
    sockets: Vec<TcpSocket>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let mut threads = Vec::with_capacity(sockets.len());
    for (index, socket) in sockets.into_iter().enumerate() {
        let app = Arc::clone(&app);
        let mut stopped = stopped.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // Listening here, in the worker's runtime, so that a failure stops
        // start-up instead of leaving a worker out.
        let listener = {
            let _in_runtime = runtime.enter();
            socket.listen(LISTEN_BACKLOG)?
        };
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                logging::batch_this_thread();
                runtime.block_on(async move {
                    let flusher = tokio::spawn(logging::flush_batch_regularly());
                    let shutdown = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    serve(listener, app, shutdown, grace).await;
                    flusher.abort();
                });
                // The thread's batch is written out as the thread ends.
            })?;
        threads.push(thread);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(shutdown);
    stop.send_replace(true);
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

/// A server running in the background (tests, demo).
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningServer {
    pub fn spawn(listener: TcpListener, app: Arc<App>, grace: Duration) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            app,
            async move {
                let _ = stopped.await;
            },
            grace,
        ));
        Ok(RunningServer { addr, stop, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
