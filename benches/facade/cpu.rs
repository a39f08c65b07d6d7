//! Part 1's deciding figure: the proxy's own CPU time per request (user +
//! system from `/proc/PID/stat`, all threads; nginx: master and workers),
//! read before and after a load run, for nginx `proxy_pass`, the bare hyper
//! proxy and the facade, in alternating rounds; medians. Unlike throughput,
//! it hardly moves with what else the two cores are doing (the load tool
//! and the upstream cost the same behind every path).

use crate::common::{Ctx, Target, median};
use crate::load::Mode;
use crate::procs::{Cpu, Result};

/// A path whose process CPU time can be read.
pub struct Measured<'a> {
    pub target: Target,
    pub cpu_time: Box<dyn Fn() -> Result<Cpu> + 'a>,
}

/// Microseconds of a proxy's CPU per request: user, system and their sum
/// (each the median of the rounds).
#[derive(Debug, Clone, Copy)]
pub struct PerRequest {
    pub user: f64,
    pub system: f64,
    pub total: f64,
}

impl PerRequest {
    /// `12.3 us (user 4.5 + system 7.8)`.
    pub fn text(&self) -> String {
        format!(
            "{:.1} us (user {:.1} + system {:.1})",
            self.total, self.user, self.system
        )
    }
}

/// The proxy's CPU per request, median of the rounds, per path (in the
/// order given).
pub async fn per_request(ctx: &Ctx, paths: &[Measured<'_>]) -> Result<Vec<PerRequest>> {
    let plan = &ctx.plan;
    let mode = Mode::Throughput {
        connections: plan.connections,
    };
    let mut rounds: Vec<Vec<(f64, f64)>> = vec![Vec::new(); paths.len()];
    for round in 0..plan.rounds {
        for (index, path) in paths.iter().enumerate() {
            let headers: Vec<(&str, &str)> = path
                .target
                .headers
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            let before = (path.cpu_time)()?;
            let load = ctx
                .load_tool
                .run(
                    &path.target.url,
                    &headers,
                    mode,
                    plan.load,
                    path.target.ca_file.as_deref(),
                )
                .await?;
            let after = (path.cpu_time)()?;
            if load.requests == 0 || load.non_200 > 0 {
                return Err(format!(
                    "{}: {} answers, {} not 200",
                    path.target.name, load.requests, load.non_200
                ));
            }
            let used = after.since(before);
            let per = |time: std::time::Duration| time.as_secs_f64() * 1e6 / load.requests as f64;
            let (user, system) = (per(used.user), per(used.system));
            eprintln!(
                "    round {} {:<28} {:>6.1} us CPU per request (user {user:.1} + system {system:.1}; {} requests)",
                round + 1,
                path.target.name,
                user + system,
                load.requests
            );
            rounds[index].push((user, system));
        }
    }
    Ok(rounds
        .iter()
        .map(|values| {
            let pick = |f: fn(&(f64, f64)) -> f64| median(&mut values.iter().map(f).collect::<Vec<_>>());
            PerRequest {
                user: pick(|(user, _)| *user),
                system: pick(|(_, system)| *system),
                total: pick(|(user, system)| user + system),
            }
        })
        .collect())
}
