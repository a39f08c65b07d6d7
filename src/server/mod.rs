//! Serving: HTTP/1.1 with keep-alive on a listener, a bounded number of
//! client connections, each over TLS when the listener has it and with the
//! client limits of [`io`]; on shutdown,
//! stop accepting, close idle connections, let in-flight requests finish
//! within a grace period, return.
//!
//! The `serve` command runs one single-threaded runtime per core, each
//! accepting on its own `SO_REUSEPORT` socket ([`bind_workers`],
//! [`serve_on_workers`]): a connection and every task of its requests stay
//! on one thread, so a request wakes no other thread (as nginx's worker
//! processes do). A work-stealing runtime spent a fifth of the facade's CPU
//! time on cross-thread wake-ups under load.

mod io;
mod listen;
mod proxy;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::connection::{ClientConnection, Cut, Peer, is_trusted_proxy};
use crate::limits::Throttled;
use crate::listener_tls::Tls;
use crate::logging;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use io::{ClientIo, IoLimits};
pub use listen::{WorkerSockets, bind_workers, connection_cap, raise_open_files_limit};

/// Connections a worker's socket queues before it accepts them.
const LISTEN_BACKLOG: u32 = 1024;

/// Open client connections, shared by all the workers of a process: at the
/// limit, a worker accepts nothing (the kernel queues new connections)
/// until one of the open ones ends.
#[derive(Clone)]
pub struct ConnectionSlots {
    slots: Arc<Semaphore>,
    max: usize,
}

impl ConnectionSlots {
    pub fn new(max: usize) -> Self {
        ConnectionSlots {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A slot for the next connection; waits while all are taken (counted
    /// in `metrics` as a refusal: the connection waits in the kernel's queue).
    async fn take(&self, warnings: &Throttled, metrics: &Metrics) -> Option<OwnedSemaphorePermit> {
        if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
            return Some(slot);
        }
        metrics.refused(Refusal::ConnectionLimit);
        if let Some(events) = warnings.due() {
            tracing::warn!(
                reason = Refusal::ConnectionLimit.label(),
                max_connections = self.max,
                left_out = events - 1,
                "connection limit reached; new connections wait until open ones end"
            );
        }
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }
}

/// Where a worker's connections are in a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// Stop after the request in flight; close connections with none at once.
    Draining,
    /// The grace period is over: close everything.
    Closing,
}

/// Accepts connections until `shutdown` completes, then closes those with
/// no request in flight at once and waits up to `grace` for the others to
/// finish their current request.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<Arc<Tls>>,
    slots: ConnectionSlots,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let (phase, _) = watch::channel(Phase::Serving);
    // Repeated warnings (connection limit reached, accept failing) are
    // written once per interval, with how many were left out.
    let at_limit = Throttled::default();
    let accept_failing = Throttled::default();
    let mut shutdown = pin!(shutdown);
    let metrics = app.metrics().clone();
    loop {
        let slot = tokio::select! {
            slot = slots.take(&at_limit, &metrics) => slot,
            () = &mut shutdown => break,
        };
        let Some(slot) = slot else { break };
        let (stream, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    if let Some(events) = accept_failing.due() {
                        tracing::warn!(%error, left_out = events - 1, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = open_connection(
            stream,
            address.ip(),
            tls.clone(),
            Arc::clone(&app),
            slot,
            phase.subscribe(),
        );
        let metrics = metrics.clone();
        metrics.connection_opened();
        tokio::spawn(async move {
            connection.await;
            metrics.connection_closed();
        });
    }
    drop(listener);
    phase.send_replace(Phase::Draining);
    tokio::select! {
        () = phase.closed() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "grace period over; closing remaining connections");
            phase.send_replace(Phase::Closing);
            phase.closed().await;
        }
    }
}

/// A new client connection, through the TLS handshake when the listener
/// has TLS (within its timeout, the slot held), then served.
async fn open_connection(
    mut stream: TcpStream,
    peer: std::net::IpAddr,
    tls: Option<Arc<Tls>>,
    app: Arc<App>,
    slot: OwnedSemaphorePermit,
    phase: watch::Receiver<Phase>,
) {
    let _ = stream.set_nodelay(true);
    let limits = app.client_limits();
    let address = if limits.proxy_protocol && is_trusted_proxy(peer, &limits.trusted_proxies) {
        let header = proxy::read_header(&mut stream, peer);
        match tokio::time::timeout(Duration::from_secs(limits.header_timeout_secs), header).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                tracing::info!(reason = "proxy_header_invalid", %error, %peer, "connection closed");
                return;
            }
            Err(_) => {
                tracing::info!(reason = "proxy_header_timeout", %peer, "no PROXY header in time; connection closed");
                return;
            }
        }
    } else {
        peer
    };
    match tls {
        None => serve_connection(stream, Peer::from_address(address), app, slot, phase).await,
        Some(tls) => match tls.accept(stream, address).await {
            Ok((stream, peer)) => serve_connection(stream, peer, app, slot, phase).await,
            Err(error) => tracing::info!(
                reason = "tls_handshake_failed",
                %error,
                peer = %address,
                "TLS handshake failed"
            ),
        },
    }
}

/// One client connection, holding its slot until it ends.
async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    app: Arc<App>,
    _slot: OwnedSemaphorePermit,
    mut phase: watch::Receiver<Phase>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = app.client_limits();
    let connection = Arc::new(ClientConnection::new(peer));
    let io = ClientIo::new(
        stream,
        Arc::clone(&connection),
        IoLimits::new(limits),
        app.metrics().clone(),
    );
    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_secs))
        .max_header_size(limits.max_header_bytes);
    let service = {
        let app = Arc::clone(&app);
        let connection = Arc::clone(&connection);
        service_fn(move |request| {
            let app = Arc::clone(&app);
            let connection = Arc::clone(&connection);
            async move { Ok::<_, Infallible>(app.handle(request, &connection).await) }
        })
    };
    let mut serving = pin!(http.serve_connection(TokioIo::new(io), service));
    let draining = tokio::select! {
        biased;
        ended = serving.as_mut() => Err(ended),
        _ = phase.wait_for(|phase| *phase >= Phase::Draining) => Ok(()),
    };
    let ended = match draining {
        Err(ended) => ended,
        // hyper's graceful shutdown closes a connection idle between
        // requests, but waits on one whose first request head is still
        // coming (its keep-alive state starts "busy"): close that here.
        Ok(()) if connection.requests() == 0 => return,
        Ok(()) => {
            serving.as_mut().graceful_shutdown();
            tokio::select! {
                ended = serving.as_mut() => ended,
                _ = phase.wait_for(|phase| *phase == Phase::Closing) => {
                    connection.cut(Cut::Shutdown);
                    return;
                }
            }
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// How many worker threads [`serve_on_workers`] runs: one per core.
pub fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Serves one worker thread per socket from [`bind_workers`], each with its
/// own single-threaded runtime, until the future `control` makes completes
/// (`control` is called in `main`, the calling thread's own small runtime,
/// before the workers start; the runtime goes on running what it spawned -
/// the admin listener - until the workers are done);
/// then each worker lets its connections finish within `grace`. The address
/// lock is let go when the workers stop accepting.
pub fn serve_on_workers<F>(
    main: tokio::runtime::Runtime,
    sockets: WorkerSockets,
    app: Arc<App>,
    tls: Option<Arc<Tls>>,
    slots: ConnectionSlots,
    control: impl FnOnce() -> F,
    grace: Duration,
) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    let WorkerSockets { sockets, lock } = sockets;
    let shutdown = {
        let _in_runtime = main.enter();
        control()
    };
    let (stop, stopped) = watch::channel(false);
    let mut threads = Vec::with_capacity(sockets.len());
    for (index, socket) in sockets.into_iter().enumerate() {
        let app = Arc::clone(&app);
        let tls = tls.clone();
        let slots = slots.clone();
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
                    serve(listener, app, tls, slots, shutdown, grace).await;
                    flusher.abort();
                });
                // The thread's batch is written out as the thread ends.
            })?;
        threads.push(thread);
    }
    main.block_on(async move {
        shutdown.await;
        stop.send_replace(true);
        drop(lock);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    });
    Ok(())
}

/// A server running in the background (tests, demo).
pub struct RunningServer {
    pub addr: SocketAddr,
    scheme: &'static str,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningServer {
    pub fn spawn(
        listener: TcpListener,
        app: Arc<App>,
        tls: Option<Arc<Tls>>,
        grace: Duration,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (stop, stopped) = oneshot::channel::<()>();
        let slots = ConnectionSlots::new(app.client_limits().max_connections);
        let task = tokio::spawn(serve(
            listener,
            app,
            tls,
            slots,
            async move {
                let _ = stopped.await;
            },
            grace,
        ));
        Ok(RunningServer {
            addr,
            scheme,
            stop,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
