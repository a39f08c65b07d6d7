//! The benchmark driver of `bench/run.sh` (run it through that script, which
//! builds the release binary and installs nginx and oha):
//!
//! ```text
//! cargo bench --bench facade -- --oha PATH [--nginx PATH] [--smoke]
//!     [--facade-bin PATH] [--work-dir DIR] [--only PARTS] [--rate N] [--out FILE]
//! ```
//!
//! It hosts the upstreams in-process (the mock Glance and Keystone, and a
//! static upstream), starts the facade's release binary and nginx as
//! separate processes (so their RSS can be read from `/proc`), drives
//! `oha`, and prints one Markdown table. Parts: `show` (1), `list` (2),
//! `keystone` (3), `memory` (4), `copy_from` (5), `scoping` (6).
//! Missed targets are reported in the table, not by the exit status: it is
//! non-zero only when a part could not run.

mod bare;
mod common;
mod copy_from;
mod keystone;
mod list;
mod memory;
mod procs;
mod report;
mod show;
mod upstream;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Ctx, Plan};
use procs::Oha;
use report::Report;

const PARTS: [&str; 6] = ["show", "list", "keystone", "memory", "copy_from", "scoping"];

struct Args {
    smoke: bool,
    oha: PathBuf,
    nginx: Option<PathBuf>,
    facade_bin: PathBuf,
    work_dir: Option<PathBuf>,
    only: Vec<String>,
    rate: Option<u32>,
    out: Option<PathBuf>,
    mock_speed: bool,
    serve_upstream: bool,
    /// `--serve-bare-proxy PORT UPSTREAM` (started by part 1).
    bare_proxy: Option<(u16, std::net::SocketAddr)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        smoke: false,
        oha: PathBuf::new(),
        nginx: None,
        facade_bin: PathBuf::from(env!("CARGO_BIN_EXE_alliance-glance")),
        work_dir: None,
        only: PARTS.iter().map(|part| (*part).to_owned()).collect(),
        rate: None,
        out: None,
        mock_speed: true,
        serve_upstream: false,
        bare_proxy: None,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        let mut value = || raw.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            "--smoke" => args.smoke = true,
            "--oha" => args.oha = PathBuf::from(value()?),
            "--nginx" => args.nginx = Some(PathBuf::from(value()?)),
            "--facade-bin" => args.facade_bin = PathBuf::from(value()?),
            "--work-dir" => args.work_dir = Some(PathBuf::from(value()?)),
            "--only" => {
                args.only = value()?.split(',').map(str::to_owned).collect();
                if let Some(unknown) = args.only.iter().find(|part| !PARTS.contains(&part.as_str())) {
                    return Err(format!("unknown part {unknown}; parts: {}", PARTS.join(",")));
                }
            }
            "--rate" => args.rate = Some(value()?.parse().map_err(|_| "--rate needs a number")?),
            "--out" => args.out = Some(PathBuf::from(value()?)),
            "--no-mock-speed" => args.mock_speed = false,
            "--serve-upstream" => args.serve_upstream = true,
            "--serve-bare-proxy" => {
                let port = value()?.parse().map_err(|_| "--serve-bare-proxy needs a port")?;
                let upstream = value()?
                    .parse()
                    .map_err(|_| "--serve-bare-proxy needs an upstream address")?;
                args.bare_proxy = Some((port, upstream));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.oha.as_os_str().is_empty() && !args.serve_upstream && args.bare_proxy.is_none() {
        return Err("--oha PATH is required (bench/run.sh installs oha)".into());
    }
    Ok(args)
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some((port, upstream)) = args.bare_proxy {
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
        oha: Oha { bin: args.oha.clone() },
        dir: dir.clone(),
        report: Report::default(),
        client,
    };
    if ctx.nginx_bin.is_none() {
        ctx.report
            .note("nginx was not given (--nginx): the nginx comparison did not run.");
    }
    let started = Instant::now();
    let mut failed = 0;
    for part in PARTS {
        if !args.only.iter().any(|only| only == part) {
            continue;
        }
        let part_started = Instant::now();
        eprintln!("bench: part {part} ...");
        let outcome = match part {
            "show" => {
                let outcome = show::run(&mut ctx).await;
                if outcome.is_ok() && args.mock_speed && !ctx.plan.smoke {
                    if let Err(error) = show::mock_speed(&mut ctx).await {
                        eprintln!("bench: mock speed: {error}");
                    }
                }
                outcome
            }
            "list" => list::run(&mut ctx).await,
            "keystone" => keystone::run(&mut ctx).await,
            "memory" => memory::run(&mut ctx).await,
            "copy_from" => copy_from::run(&mut ctx).await,
            "scoping" => keystone::run_scoping(&mut ctx).await,
            _ => unreachable!("parts are checked on parsing"),
        };
        if let Err(error) = outcome {
            eprintln!("bench: part {part} failed: {error}");
            ctx.report.failed(part, &error);
            failed += 1;
        }
        eprintln!("bench: part {part} took {:.1} s", part_started.elapsed().as_secs_f64());
    }
    ctx.report.note(format!(
        "Mode: {}; measured in {:.0} s. Load tool: oha (open loop at the fixed rate, with latency correction). \
         Ratios compare figures of this same run.",
        if ctx.plan.smoke {
            "smoke (tiny durations; figures mean nothing)"
        } else {
            "full"
        },
        started.elapsed().as_secs_f64()
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
        oha: Oha { bin: PathBuf::new() },
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
