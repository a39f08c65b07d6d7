//! Part 1's deciding figure: the proxy's own CPU time per request (user +
//! system from `/proc/PID/stat`, all threads; nginx: master and workers),
//! read before and after a load run, for nginx `proxy_pass`, the bare hyper
//! proxy and the facade, in alternating rounds; medians. Unlike throughput,
//! it hardly moves with what else the two cores are doing (the load tool
//! and the upstream cost the same behind every path).

use std::time::Duration;

use crate::common::{Ctx, Target, median};
use crate::load::Mode;
use crate::procs::Result;

/// A path whose process CPU time can be read.
pub struct Measured<'a> {
    pub target: Target,
    pub cpu_time: Box<dyn Fn() -> Result<Duration> + 'a>,
}

/// Microseconds of the proxy's CPU per request, median of the rounds, per
/// path (in the order given).
pub async fn per_request(ctx: &Ctx, paths: &[Measured<'_>]) -> Result<Vec<f64>> {
    let plan = &ctx.plan;
    let mode = Mode::Throughput {
        connections: plan.connections,
    };
    let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for round in 0..plan.rounds {
        for (index, path) in paths.iter().enumerate() {
            let headers: Vec<(&str, &str)> = path
                .target
                .headers
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            let before = (path.cpu_time)()?;
            let load = ctx.load_tool.run(&path.target.url, &headers, mode, plan.load).await?;
            let after = (path.cpu_time)()?;
            if load.requests == 0 || load.non_200 > 0 {
                return Err(format!(
                    "{}: {} answers, {} not 200",
                    path.target.name, load.requests, load.non_200
                ));
            }
            let micros = (after.saturating_sub(before)).as_secs_f64() * 1e6 / load.requests as f64;
            eprintln!(
                "    round {} {:<28} {:>6.1} us CPU per request ({} requests)",
                round + 1,
                path.target.name,
                micros,
                load.requests
            );
            rounds[index].push(micros);
        }
    }
    Ok(rounds.iter_mut().map(|values| median(values)).collect())
}
