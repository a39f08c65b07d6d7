//! The benchmark driver of `bench/run.sh` (run it through that script, which
//! builds the binaries and installs nginx, and oha for a full run):
//!
//! ```text
//! cargo bench --bench facade -- (--oha PATH | --builtin-load) [--nginx PATH] [--smoke]
//!     [--facade-bin PATH] [--work-dir DIR] [--only PARTS] [--rate N] [--out FILE]
//! ```
//!
//! It hosts the upstreams in-process (the mock Glance and Keystone, and a
//! static upstream), starts the facade's binary and nginx as separate
//! processes (so their RSS and CPU time can be read from `/proc`), drives
//! the load tool, and prints one Markdown table. Parts: `show` (1), `list`
//! (2), `keystone` (3), `memory` (4), `copy_from` (5), `scoping` (6),
//! `real` (7: against real Glance 33, `--openstack-env`), `tls` (8),
//! `backpressure` (9: shared shows and rate limits against real Glance 33),
//! `replicas` (10: the shared cache's latency and a restart's cost to Keystone).
//! Missed targets are reported in the table, not by the exit status: it is
//! non-zero only when a part could not run.

mod backpressure;
mod bare;
mod common;
mod copy_from;
mod cpu;
mod keystone;
mod list;
mod load;
mod memory;
mod procs;
mod real;
mod replicas;
mod report;
mod show;
mod tls;
mod upstream;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;

use common::{Ctx, Plan};
use load::LoadTool;
use report::Report;

/// The parts, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Show,
    List,
    Keystone,
    Memory,
    #[value(name = "copy_from")]
    CopyFrom,
    Scoping,
    Real,
    Tls,
    Backpressure,
    Replicas,
}

impl Part {
    const ALL: [Part; 10] = [
        Part::Show,
        Part::List,
        Part::Keystone,
        Part::Memory,
        Part::CopyFrom,
        Part::Scoping,
        Part::Real,
        Part::Tls,
        Part::Backpressure,
        Part::Replicas,
    ];

    fn name(self) -> &'static str {
        match self {
            Part::Show => "show",
            Part::List => "list",
            Part::Keystone => "keystone",
            Part::Memory => "memory",
            Part::CopyFrom => "copy_from",
            Part::Scoping => "scoping",
            Part::Real => "real",
            Part::Tls => "tls",
            Part::Backpressure => "backpressure",
            Part::Replicas => "replicas",
        }
    }
}

#[derive(Parser)]
#[command(about = "The benchmark driver of bench/run.sh")]
struct Args {
    /// Every part with tiny durations and sizes (checks only that it runs).
    #[arg(long)]
    smoke: bool,
    /// The load tool: oha at this path.
    #[arg(long, required_unless_present_any = ["builtin_load", "serve_upstream", "serve_bare_proxy"])]
    oha: Option<PathBuf>,
    /// The load tool: the driver's own small generator (no oha to build).
    #[arg(long, conflicts_with = "oha")]
    builtin_load: bool,
    /// nginx, for the `proxy_pass` comparison (left out when not given).
    #[arg(long)]
    nginx: Option<PathBuf>,
    /// The facade binary to measure.
    #[arg(long, default_value = env!("CARGO_BIN_EXE_alliance-glance"))]
    facade_bin: PathBuf,
    /// Configs, logs and nginx's prefix (a temporary folder otherwise).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The parts to run, comma-separated (all by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// The env file of the real Glance and Keystone that
    /// scripts/openstack/up.sh started (parts 7 and 9).
    #[arg(long)]
    openstack_env: Option<PathBuf>,
    /// The fixed request rate of the latency runs.
    #[arg(long)]
    rate: Option<u32>,
    /// Also write the table here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the mock Glance's own throughput row of part 1.
    #[arg(long)]
    no_mock_speed: bool,
    /// Only serve part 1's static upstream, until killed (for profiling by hand).
    #[arg(long)]
    serve_upstream: bool,
    /// Serve the bare hyper proxy on PORT in front of UPSTREAM (started by part 1).
    #[arg(long, num_args = 2, value_names = ["PORT", "UPSTREAM"])]
    serve_bare_proxy: Option<Vec<String>>,
    /// Passed by `cargo bench` to every bench target.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(values) = &args.serve_bare_proxy {
        let (Some(Ok(port)), Some(Ok(upstream))) = (
            values.first().map(|port| port.parse()),
            values.get(1).map(|upstream| upstream.parse()),
        ) else {
            eprintln!("bench: --serve-bare-proxy needs a port and an upstream address");
            return std::process::ExitCode::from(2);
        };
        return bare::serve(port, upstream);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(args))
}

async fn run(args: Args) -> std::process::ExitCode {
    let mut plan = if args.smoke { Plan::smoke() } else { Plan::full() };
    if let Some(rate) = args.rate {
        plan.rate = rate;
    }
    let dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("alliance-bench-{}", std::process::id())),
    };
    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("bench: {}: {error}", dir.display());
        return std::process::ExitCode::from(2);
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(1))
        .build()
        .expect("HTTP client");
    if args.serve_upstream {
        return serve_upstream(client).await;
    }
    let mut ctx = Ctx {
        plan,
        facade_bin: args.facade_bin.clone(),
        nginx_bin: args.nginx.clone(),
        load_tool: match &args.oha {
            Some(oha) => LoadTool::Oha(oha.clone()),
            None => LoadTool::Builtin,
        },
        dir: dir.clone(),
        report: Report::default(),
        client,
    };
    if ctx.nginx_bin.is_none() {
        ctx.report
            .note("nginx was not given (--nginx): the nginx comparison did not run.");
    }
    let openstack_env = || {
        args.openstack_env
            .as_deref()
            .ok_or_else(|| "no --openstack-env: real Glance is not running (bench/run.sh starts it)".to_owned())
    };
    let started = Instant::now();
    let mut failed = 0;
    for part in Part::ALL {
        if !args.only.is_empty() && !args.only.contains(&part) {
            continue;
        }
        let name = part.name();
        let part_started = Instant::now();
        eprintln!("bench: part {name} ...");
        let outcome = match part {
            Part::Show => {
                let outcome = show::run(&mut ctx).await;
                if outcome.is_ok() && !args.no_mock_speed && !ctx.plan.smoke {
                    if let Err(error) = show::mock_speed(&mut ctx).await {
                        eprintln!("bench: mock speed: {error}");
                    }
                }
                outcome
            }
            Part::List => list::run(&mut ctx).await,
            Part::Keystone => keystone::run(&mut ctx).await,
            Part::Memory => memory::run(&mut ctx).await,
            Part::CopyFrom => copy_from::run(&mut ctx).await,
            Part::Scoping => keystone::run_scoping(&mut ctx).await,
            Part::Real => async { real::run(&mut ctx, openstack_env()?).await }.await,
            Part::Tls => tls::run(&mut ctx).await,
            Part::Backpressure => async { backpressure::run(&mut ctx, openstack_env()?).await }.await,
            Part::Replicas => replicas::run(&mut ctx).await,
        };
        if let Err(error) = outcome {
            eprintln!("bench: part {name} failed: {error}");
            ctx.report.failed(name, &error);
            failed += 1;
        }
        eprintln!("bench: part {name} took {:.1} s", part_started.elapsed().as_secs_f64());
    }
    ctx.report.note(format!(
        "Mode: {}; measured in {:.0} s. Load tool: {} (open loop at the fixed rate, with latency correction). \
         Ratios compare figures of this same run.",
        if ctx.plan.smoke {
            "smoke (tiny durations; figures mean nothing)"
        } else {
            "full"
        },
        started.elapsed().as_secs_f64(),
        ctx.load_tool.name()
    ));
    let table = ctx.report.markdown();
    println!("{table}");
    if let Some(out) = &args.out
        && let Err(error) = std::fs::write(out, &table)
    {
        eprintln!("bench: {}: {error}", out.display());
    }
    if args.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("bench: {} targets missed, {failed} parts failed", ctx.report.missed());
    if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// `--serve-upstream`: only part 1's static upstream, until killed, for
/// profiling the facade by hand (see bench/README.md).
async fn serve_upstream(client: reqwest::Client) -> std::process::ExitCode {
    let ctx = Ctx {
        plan: Plan::full(),
        facade_bin: PathBuf::new(),
        nginx_bin: None,
        load_tool: LoadTool::Builtin,
        dir: std::env::temp_dir(),
        report: Report::default(),
        client,
    };
    let (recorded, id) = match show::record_image(&ctx, false).await {
        Ok(recorded) => recorded,
        Err(error) => {
            eprintln!("bench: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let upstream = match upstream::StaticUpstream::start(recorded).await {
        Ok(upstream) => upstream,
        Err(error) => {
            eprintln!("bench: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("upstream {} image {id} environment {}", upstream.url(), common::ENV);
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
