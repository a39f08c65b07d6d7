//! Part 9: backpressure against real Glance 33 (the trusted flavor, one
//! gunicorn worker, as scripts/openstack/up.sh starts it):
//! - clients polling one image through the facade, closed loop, with shows
//!   shared (`coalesce_window_ms` at its default) and without (0): the
//!   calls Glance served (counted in its own access log), the clients'
//!   p50 and p99, and Glance's CPU time (its processes' utime and stime
//!   from `/proc`);
//! - a noisy environment sending ten times its rate limit while a quiet
//!   one polls at 5 requests a second, with the rate limit on and off
//!   (shows not shared in both runs, so that the rate limit is the only
//!   difference): the quiet one's p50 and p99.
//!
//! The images are created in projects of their own and deleted at the end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use crate::load::{Load, Mode};
use crate::procs::{Cpu, Result, children, cpu_time};
use crate::real::{delete_all, read_env, seed};
use crate::report::{ms, ratio, rps};

const PART: &str = "9 backpressure";

/// The quiet environment's rate, and how many times its rate limit the
/// noisy one sends.
const QUIET_RATE: u32 = 5;
const NOISE_FACTOR: u32 = 10;

/// The trusted Glance: where it is, its access log and its processes.
struct Glance {
    url: String,
    access_log: PathBuf,
    /// The gunicorn master; its workers are its children.
    master: u32,
}

impl Glance {
    fn from_env(env_file: &Path) -> Result<Self> {
        let env = read_env(env_file)?;
        let get = |key: &str| env.get(key).cloned().ok_or(format!("the env file names no {key}"));
        let pids = std::fs::read_to_string(get("OS_PIDS_FILE")?).map_err(|e| format!("pids file: {e}"))?;
        let master = pids
            .lines()
            .filter_map(|line| line.strip_prefix("glance-trusted "))
            .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .ok_or("the pids file names no glance-trusted process")?;
        Ok(Glance {
            url: get("OS_GLANCE_TRUSTED_URL")?,
            access_log: PathBuf::from(get("OS_RUN_DIR")?).join("glance-trusted/access.log"),
            master,
        })
    }

    /// Requests for `path` in Glance's access log so far.
    fn served(&self, path: &str) -> Result<usize> {
        let log =
            std::fs::read_to_string(&self.access_log).map_err(|e| format!("{}: {e}", self.access_log.display()))?;
        let request = format!("\"GET {path} HTTP/1.1\"");
        Ok(log.lines().filter(|line| line.contains(&request)).count())
    }

    /// Waits until Glance has answered everything sent to it (its access
    /// log stops growing), so that a run's backlog does not slow the next.
    async fn settle(&self) -> Result<()> {
        let size = || {
            std::fs::metadata(&self.access_log)
                .map(|meta| meta.len())
                .map_err(|e| e.to_string())
        };
        let mut last = size()?;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = size()?;
            if now == last {
                return Ok(());
            }
            last = now;
        }
        Err("Glance was still answering 30 s after a run".into())
    }

    /// CPU time of gunicorn's master and workers so far.
    fn cpu(&self) -> Result<Cpu> {
        std::iter::once(self.master)
            .chain(children(self.master))
            .map(cpu_time)
            .try_fold(Cpu::default(), |sum, cpu| Ok(sum + cpu?))
    }
}

pub async fn run(ctx: &mut Ctx, env_file: &Path) -> Result<()> {
    let glance = Glance::from_env(env_file)?;
    let projects: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect();
    let mut images = Vec::new();
    for project in &projects {
        images.push(seed(ctx, &glance.url, project, 1).await?);
    }
    let outcome = measure(ctx, &glance, &projects, &images).await;
    let mut deleted = Ok(());
    for (project, ids) in projects.iter().zip(&images) {
        deleted = deleted.and(delete_all(ctx, &glance.url, project, ids).await);
    }
    outcome.and(deleted)
}

async fn measure(ctx: &mut Ctx, glance: &Glance, projects: &[String], images: &[Vec<String>]) -> Result<()> {
    let image = |index: usize| images[index].first().cloned().ok_or("no image was created");
    polling_rows(ctx, glance, &projects[0], &image(0)?).await?;
    noisy_rows(ctx, glance, [&projects[1], &projects[2]], [&image(1)?, &image(2)?]).await
}

/// The facade in front of the trusted Glance with these `[limits]`.
async fn facade(ctx: &Ctx, glance: &Glance, name: &str, limits: &str) -> Result<crate::procs::Facade> {
    ctx.facade(
        name,
        &trusted_namespace_with(&glance.url, ctx.plan.real_page_size, limits),
    )
    .await
}

async fn load(ctx: &Ctx, url: &str, project: &str, mode: Mode) -> Result<Load> {
    let headers = alliance_headers(project);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    ctx.load_tool
        .run(url, &headers, mode, ctx.plan.backpressure_load, None)
        .await
}

/// What one polling run cost Glance and what the clients saw.
struct Polled {
    load: Load,
    calls: usize,
    glance_cpu: Duration,
}

async fn polling_rows(ctx: &mut Ctx, glance: &Glance, project: &str, id: &str) -> Result<()> {
    let clients = ctx.plan.pollers;
    let mut runs = Vec::new();
    for (name, limits) in [("unshared", UNSHARED), ("shared", "")] {
        let facade = facade(ctx, glance, &format!("polling-{name}"), limits).await?;
        let polled = poll(ctx, glance, &facade, project, id, clients).await;
        facade.stop().await;
        let polled = polled?;
        eprintln!(
            "    {clients} clients polling, shows {name}: {} Glance calls, p50 {:.1} ms, p99 {:.1} ms, Glance CPU {:.2} s",
            polled.calls,
            polled.load.p50_ms,
            polled.load.p99_ms,
            polled.glance_cpu.as_secs_f64()
        );
        runs.push(polled);
    }
    let length = ctx.plan.backpressure_load;
    let seconds = length.as_secs_f64();
    let report = &mut ctx.report;
    let window = alliance_glance::config::LimitsConfig::default().coalesce_window_ms;
    let names = [
        "not shared".to_owned(),
        format!("shared (coalesce_window_ms = {window}, the default)"),
    ];
    for (polled, name) in runs.iter().zip(names) {
        report
            .row(
                PART,
                format!("{clients} clients polling one image for {length:?}, shows {name}"),
                format!(
                    "{} Glance calls ; clients {} ; p50 {} p99 {}",
                    polled.calls,
                    rps(polled.load.rps),
                    ms(polled.load.p50_ms),
                    ms(polled.load.p99_ms)
                ),
            )
            .compared(format!(
                "Glance CPU {:.2} s ({:.0}% of a core); answers not 200: {}",
                polled.glance_cpu.as_secs_f64(),
                polled.glance_cpu.as_secs_f64() * 100.0 / seconds,
                polled.load.non_200
            ));
    }
    let (alone, shared) = (&runs[0], &runs[1]);
    let fewer = alone.calls as f64 / shared.calls.max(1) as f64;
    report
        .row(PART, "Glance calls, not shared / shared", ratio(fewer))
        .target(">= 10 x", fewer >= 10.0);
    report
        .row(
            PART,
            "clients' p99, shared / not shared",
            ratio(shared.load.p99_ms / alone.load.p99_ms),
        )
        .target("<= 1.00 x", shared.load.p99_ms <= alone.load.p99_ms);
    Ok(())
}

async fn poll(
    ctx: &Ctx,
    glance: &Glance,
    facade: &crate::procs::Facade,
    project: &str,
    id: &str,
    clients: u32,
) -> Result<Polled> {
    let path = format!("/v2/images/{id}");
    let url = format!("{}/images/{id}", facade.url());
    glance.settle().await?;
    let (calls, cpu) = (glance.served(&path)?, glance.cpu()?);
    let load = load(ctx, &url, project, Mode::Throughput { connections: clients }).await?;
    // Calls still in flight when the load stopped are Glance's work too.
    glance.settle().await?;
    Ok(Polled {
        load,
        calls: glance.served(&path)? - calls,
        glance_cpu: glance.cpu()?.since(cpu).total(),
    })
}

async fn noisy_rows(ctx: &mut Ctx, glance: &Glance, projects: [&String; 2], ids: [&String; 2]) -> Result<()> {
    let limit = ctx.plan.noisy_limit;
    let noise = limit * NOISE_FACTOR;
    let mut quiet_runs = Vec::new();
    for (name, rate) in [("off", 0), ("on", limit)] {
        let limits = format!("{UNSHARED}\nenvironment_rate_per_sec = {rate}");
        let facade = facade(ctx, glance, &format!("noisy-{name}"), &limits).await?;
        let urls = ids.map(|id| format!("{}/images/{id}", facade.url()));
        glance.settle().await?;
        let (noisy, quiet) = tokio::join!(
            load(
                ctx,
                &urls[0],
                projects[0],
                Mode::Rate {
                    rate: noise,
                    connections: ctx.plan.noisy_connections,
                },
            ),
            load(
                ctx,
                &urls[1],
                projects[1],
                // A connection per request a second: requests do not queue
                // behind each other on the client's side.
                Mode::Rate {
                    rate: QUIET_RATE,
                    connections: QUIET_RATE,
                },
            ),
        );
        facade.stop().await;
        let (noisy, quiet) = (noisy?, quiet?);
        eprintln!(
            "    limits {name}: noisy {:.0} answers/s ({} not 200), quiet p50 {:.1} ms p99 {:.1} ms",
            noisy.rps, noisy.non_200, quiet.p50_ms, quiet.p99_ms
        );
        ctx.report
            .row(
                PART,
                format!(
                    "quiet environment at {QUIET_RATE} req/s beside a noisy one at {noise} req/s, rate limit {name}"
                ),
                format!(
                    "quiet p50 {} p99 {} ({} requests, {} not 200)",
                    ms(quiet.p50_ms),
                    ms(quiet.p99_ms),
                    quiet.requests,
                    quiet.non_200
                ),
            )
            .compared(format!(
                "noisy: {} answered, {} answers not 200{}",
                rps(noisy.rps),
                noisy.non_200,
                if rate == 0 {
                    String::new()
                } else {
                    format!(" (limit: {limit} req/s per environment)")
                }
            ));
        quiet_runs.push(quiet);
    }
    let (off, on) = (&quiet_runs[0], &quiet_runs[1]);
    ctx.report
        .row(
            PART,
            "quiet environment's p99, rate limit on / off",
            ratio(on.p99_ms / off.p99_ms),
        )
        .target("< 1.00 x", on.p99_ms < off.p99_ms);
    Ok(())
}
