//! `alliance-glance`: serve the facade, or run the demo.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use alliance_glance::app::App;
use alliance_glance::config::Config;
use alliance_glance::logging::{self, LogFormat};
use alliance_glance::server;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(version, about = "Alliance Glance API v1 facade over OpenStack Glance v2")]
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
    /// Check a configuration file - secrets, clouds.yaml and guard lists
    /// included - and exit.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let outcome = match cli.command {
        Command::Serve { config } => serve(config),
        #[cfg(feature = "demo")]
        Command::Demo { listen } => {
            runtime().and_then(|runtime| runtime.block_on(alliance_glance::demo::run(listen, shutdown_signal())))
        }
        #[cfg(feature = "demo")]
        Command::MockGlance { listen, prefix } => {
            runtime().and_then(|runtime| runtime.block_on(mock_glance(listen, prefix)))
        }
        Command::CheckConfig { config } => check_config(&config),
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

/// The facade: one single-threaded runtime per core (see [`server::serve_on_workers`]).
fn serve(path: PathBuf) -> Result<(), String> {
    let config = Config::load(&path).map_err(|error| error.to_string())?;
    // jemalloc gives freed memory back to the system only when its arena is
    // used again, unless background threads purge it: without them, 500
    // slow clients' bodies stayed resident (118 MiB) after they were gone.
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(%error, "cannot start jemalloc's background purging");
    }
    let app = Arc::new(App::new(&config).map_err(|error| error.to_string())?);
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
    tracing::info!(
        listen = %config.listen,
        namespaces = config.namespaces.len(),
        workers,
        max_connections,
        open_files,
        "serving the Alliance API"
    );
    server::serve_on_workers(
        sockets,
        app,
        server::ConnectionSlots::new(max_connections),
        shutdown_signal(),
        Duration::from_secs(config.shutdown_grace_secs),
    )
    .map_err(|error| format!("cannot serve: {error}"))
}

/// Everything `serve` would do before listening.
fn check_config(path: &std::path::Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|error| error.to_string())?;
    App::new(&config).map_err(|error| error.to_string())?;
    println!("{}: ok ({} namespaces)", path.display(), config.namespaces.len());
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

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
