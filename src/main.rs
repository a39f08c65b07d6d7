//! `alliance-glance`: serve the facade, or run the demo.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::signal::unix::{Signal, SignalKind, signal};

use alliance_glance::admin::Admin;
use alliance_glance::app::App;
use alliance_glance::callers::bearer::SaltedHash;
use alliance_glance::config::Config;
use alliance_glance::listener_tls::Tls;
use alliance_glance::logging::{self, LogFormat};
use alliance_glance::reload::{CallerRules, Reloader, TlsFiles};
use alliance_glance::server;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `--version`: the version and the commit built from (see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ALLIANCE_GLANCE_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(version = VERSION, about = "Alliance Glance API v1 facade over OpenStack Glance v2")]
struct Cli {
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Alliance API as the configuration file says.
    Serve {
        #[arg(
            long,
            env = "ALLIANCE_GLANCE_CONFIG",
            default_value = "/etc/alliance-glance/alliance-glance.toml"
        )]
        config: PathBuf,
    },
    /// Start a mock Glance v2 and the facade in front of it, on loopback,
    /// and print example requests.
    #[cfg(feature = "demo")]
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Run only the mock Glance v2 (for docker-compose and benchmarks).
    #[cfg(feature = "demo")]
    MockGlance {
        #[arg(long, default_value = "127.0.0.1:9292")]
        listen: std::net::SocketAddr,
        /// URL path prefix, e.g. /image as in DevStack.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Check a configuration file - secrets, clouds.yaml, guard lists, TLS
    /// files and callers included - and exit.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Read a bearer secret on standard input (its first line) and print the
    /// `bearer_secret_sha256` value of a `[[callers]]` rule for it.
    HashSecret,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let outcome = match cli.command {
        Command::Serve { config } => serve(config),
        #[cfg(feature = "demo")]
        Command::Demo { listen } => runtime().and_then(|runtime| {
            runtime.block_on(async { alliance_glance::demo::run(listen, shutdown_signal()).await })
        }),
        #[cfg(feature = "demo")]
        Command::MockGlance { listen, prefix } => {
            runtime().and_then(|runtime| runtime.block_on(mock_glance(listen, prefix)))
        }
        Command::CheckConfig { config } => check_config(&config),
        Command::HashSecret => hash_secret(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("alliance-glance: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The demo and the mock: one work-stealing runtime.
#[cfg(feature = "demo")]
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))
}

/// The facade: one single-threaded runtime per core (see
/// [`server::serve_on_workers`]); the admin listener and the signals on
/// the main thread.
fn serve(path: PathBuf) -> Result<(), String> {
    // The main thread's runtime and the signal handlers come first: a
    // SIGHUP or SIGTERM that arrives while the configuration loads or the
    // workers start is kept for the control loop (a reload, a stop), never
    // left to the default action, which ends the process.
    let main = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    let signals = {
        let _in_runtime = main.enter();
        Signals::install()
    };
    let Prepared { config, app, tls } = prepare(&path)?;
    // jemalloc gives freed memory back to the system only when its arena is
    // used again, unless background threads purge it: without them, 500
    // slow clients' bodies stayed resident (118 MiB) after they were gone.
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(%error, "cannot start jemalloc's background purging");
    }
    let open_files =
        server::raise_open_files_limit().map_err(|error| format!("cannot read the open-file limit: {error}"))?;
    let max_connections = server::connection_cap(config.client.max_connections, open_files);
    if max_connections < config.client.max_connections {
        tracing::warn!(
            configured = config.client.max_connections,
            max_connections,
            open_files,
            "client.max_connections lowered to half the open-file limit"
        );
    }
    let workers = server::worker_count();
    let sockets = server::bind_workers(config.listen, workers)
        .map_err(|error| format!("cannot listen on {}: {error}", config.listen))?;
    let admin_listener = std::net::TcpListener::bind(config.admin.listen)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|error| format!("cannot listen on {} (admin.listen): {error}", config.admin.listen))?;
    let admin_address = admin_listener
        .local_addr()
        .map_err(|error| format!("admin listener: {error}"))?;
    if config.is_open_beyond_loopback() {
        // Config::load refused it without allow_open.
        tracing::warn!(
            listen = %config.listen,
            "allow_open: serving beyond loopback without TLS and callers - whoever reaches the port acts as any environment"
        );
    }
    tracing::info!(
        listen = %config.listen,
        tls = tls.is_some(),
        callers = config.callers.len(),
        admin = %admin_address,
        namespaces = config.namespaces.len(),
        workers,
        max_connections,
        open_files,
        "serving the Alliance API"
    );
    let admin = Arc::new(Admin::new(Arc::clone(&app), &config.admin));
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let drain = Drain {
        app: Arc::clone(&app),
        time: Duration::from_secs(config.drain_secs),
    };
    let mut reloader = Reloader::new(path, Arc::clone(&app), config);
    reloader.add(Box::new(CallerRules(Arc::clone(&app))));
    if let Some(tls) = &tls {
        reloader.add(Box::new(TlsFiles(Arc::clone(tls))));
    }
    let audit = Arc::clone(&app);
    let served = server::serve_on_workers(
        main,
        sockets,
        app,
        tls,
        server::ConnectionSlots::new(max_connections),
        move || control(admin, admin_listener, reloader, signals, drain),
        grace,
    )
    .map_err(|error| format!("cannot serve: {error}"));
    // The requests are done: their audit events are all queued.
    audit.close_audit(AUDIT_CLOSE_WAIT);
    served
}

/// How the facade leaves on SIGTERM.
struct Drain {
    app: Arc<App>,
    /// How long it goes on serving once not ready.
    time: Duration,
}

/// How long the audit writer may take, at exit, to write what is queued.
const AUDIT_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The main thread while the workers serve: the admin listener, and a
/// reload on each SIGHUP, until SIGTERM or Ctrl-C. Then readiness turns
/// false (the admin listener goes on answering 503 to the end). On SIGTERM
/// the workers go on serving for the drain's time, every answer closing
/// its connection, so that load balancers see the facade leave and their
/// connections end on their own (Envoy's drain); a second SIGTERM or
/// Ctrl-C cuts the drain short. Then the workers stop accepting, close
/// what is idle, and give in-flight requests the grace period.
fn control(
    admin: Arc<Admin>,
    listener: std::net::TcpListener,
    reloader: Reloader,
    signals: Signals,
    drain: Drain,
) -> impl std::future::Future<Output = ()> {
    match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => {
            tokio::spawn(Arc::clone(&admin).serve(listener));
        }
        Err(error) => tracing::error!(%error, "admin listener failed"),
    }
    let Signals {
        mut hangup,
        mut terminate,
        mut interrupt,
    } = signals;
    async move {
        let reloads = async {
            loop {
                received(hangup.as_mut()).await;
                // Logged and counted by the reloader, success or not.
                let _ = reloader.reload();
            }
        };
        let draining = tokio::select! {
            () = reloads => false,
            () = received(terminate.as_mut()) => true,
            () = received(interrupt.as_mut()) => false,
        };
        admin.stop_being_ready();
        if draining && !drain.time.is_zero() {
            drain.app.start_draining();
            tracing::info!(
                drain_secs = drain.time.as_secs(),
                "draining: not ready, every answer closes its connection; then the workers stop accepting"
            );
            tokio::select! {
                () = tokio::time::sleep(drain.time) => {}
                () = received(terminate.as_mut()) => {}
                () = received(interrupt.as_mut()) => {}
            }
        }
        tracing::info!("shutting down");
    }
}

/// Everything `serve` does before listening: the configuration, the
/// namespaces and callers, the TLS files.
struct Prepared {
    config: Config,
    app: Arc<App>,
    tls: Option<Arc<Tls>>,
}

fn prepare(path: &std::path::Path) -> Result<Prepared, String> {
    let config = Config::load(path).map_err(|error| error.to_string())?;
    let app = Arc::new(App::new(&config).map_err(|error| error.to_string())?);
    let tls = match &config.tls {
        Some(settings) => Some(Arc::new(Tls::from_config(settings).map_err(|error| error.to_string())?)),
        None => None,
    };
    Ok(Prepared { config, app, tls })
}

fn check_config(path: &std::path::Path) -> Result<(), String> {
    let Prepared { config, tls, .. } = prepare(path)?;
    println!(
        "{}: ok ({} namespaces, {} callers, {})",
        path.display(),
        config.namespaces.len(),
        config.callers.len(),
        if tls.is_some() { "TLS" } else { "plain HTTP" }
    );
    Ok(())
}

fn hash_secret() -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|error| format!("cannot read standard input: {error}"))?;
    let hash = SaltedHash::new(line.trim())?;
    println!("{hash}");
    Ok(())
}

/// The mock Glance alone (it records no requests: that log is for tests).
#[cfg(feature = "demo")]
async fn mock_glance(listen: std::net::SocketAddr, prefix: String) -> Result<(), String> {
    use openstack_mock::glance;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
    let glance = glance::spawn(
        listener,
        glance::Options {
            prefix,
            ..glance::Options::default()
        },
    )
    .await;
    tracing::info!(url = %glance.url(), "mock Glance v2 serving");
    shutdown_signal().await;
    glance.shutdown().await;
    Ok(())
}

/// The process's signal handlers, installed (in a runtime) when made:
/// SIGHUP for reloads, SIGTERM and SIGINT (Ctrl-C) for a stop.
struct Signals {
    hangup: Option<Signal>,
    terminate: Option<Signal>,
    interrupt: Option<Signal>,
}

impl Signals {
    fn install() -> Self {
        let install = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|error| tracing::error!(%error, "cannot handle {name}"))
                .ok()
        };
        Signals {
            hangup: install(SignalKind::hangup(), "SIGHUP; reload is off"),
            terminate: install(SignalKind::terminate(), "SIGTERM"),
            interrupt: install(SignalKind::interrupt(), "SIGINT"),
        }
    }
}

/// SIGTERM or Ctrl-C.
#[cfg(feature = "demo")]
async fn shutdown_requested(terminate: Option<&mut Signal>, interrupt: Option<&mut Signal>) {
    tokio::select! {
        () = received(terminate) => {}
        () = received(interrupt) => {}
    }
    tracing::info!("shutting down");
}

/// SIGTERM or Ctrl-C, for the demo and the mock (handlers installed now,
/// in the calling runtime).
#[cfg(feature = "demo")]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let mut signals = Signals::install();
    async move { shutdown_requested(signals.terminate.as_mut(), signals.interrupt.as_mut()).await }
}

/// The next delivery of `signal`; never, when its handler could not be installed.
async fn received(signal: Option<&mut Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
