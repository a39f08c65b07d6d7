//! What every part shares: the plan (durations and sizes, full or smoke),
//! the run context, facade configurations and request headers.

use std::path::PathBuf;
use std::time::Duration;

use crate::load::{Load, LoadTool, Mode};
use crate::report::Report;

pub const NAMESPACE: &str = "ccsr1";
/// The environment most parts act as (the mock Keystone's `alpha`).
pub const ENV: &str = openstack_mock::keystone::ALPHA;
pub const FACADE_USER: &str = "alliance-bench";

/// Durations and sizes of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub smoke: bool,
    /// Length of one load run.
    pub load: Duration,
    pub warmup: Duration,
    /// Each comparison is repeated this many times, targets interleaved;
    /// the median is reported.
    pub rounds: usize,
    /// Connections for the throughput runs.
    pub connections: u32,
    /// The fixed request rate of the latency runs, and its connections.
    pub rate: u32,
    pub rate_connections: u32,
    /// Image counts listed (the last is the headline), and the page size.
    pub list_counts: Vec<usize>,
    pub page_size: u32,
    pub list_repeats: usize,
    /// First requests at once, over `keystone_envs` environments.
    pub keystone_requests: usize,
    pub keystone_envs: usize,
    /// Environments whose first requests are timed for the scoping cost.
    pub scoping_envs: usize,
    /// Requests with a new random environment id each, `random_env_clients` at a time.
    pub random_envs: usize,
    pub random_env_clients: usize,
    pub password_check_delay: Duration,
    pub open_connections: usize,
    /// Requests at once whose upstream answer is `huge_answer_bytes` each.
    pub huge_answers: usize,
    pub huge_answer_bytes: usize,
    /// How long the facade is left idle before its RSS is read again.
    pub settle: Duration,
    /// Images in each copy_from list, and how many of them have a copy_from
    /// in the "few" list.
    pub copy_from_images: usize,
    pub copy_from_few: usize,
    pub copy_from_repeats: usize,
    /// Images listed from real Glance (part 7), and its page size.
    pub real_images: usize,
    pub real_page_size: u32,
    /// Part 9: the length of its load runs, the clients polling one
    /// image, and the noisy environment's rate limit and connections.
    pub backpressure_load: Duration,
    pub pollers: u32,
    pub noisy_limit: u32,
    pub noisy_connections: u32,
}

impl Plan {
    pub fn full() -> Self {
        Plan {
            smoke: false,
            load: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            rounds: 3,
            connections: 64,
            rate: 1_000,
            rate_connections: 16,
            list_counts: vec![10_000, 100_000],
            page_size: 1000,
            list_repeats: 3,
            keystone_requests: 1000,
            keystone_envs: 10,
            scoping_envs: 10,
            random_envs: 1000,
            random_env_clients: 10,
            password_check_delay: Duration::from_millis(360),
            open_connections: 1000,
            huge_answers: 32,
            huge_answer_bytes: 30 << 20,
            settle: Duration::from_secs(12),
            copy_from_images: 1000,
            copy_from_few: 10,
            copy_from_repeats: 5,
            real_images: 10_000,
            real_page_size: 1000,
            backpressure_load: Duration::from_secs(10),
            pollers: 300,
            noisy_limit: 50,
            noisy_connections: 200,
        }
    }

    /// Every part, with tiny durations and sizes: checks only that it runs.
    pub fn smoke() -> Self {
        Plan {
            smoke: true,
            load: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            rounds: 1,
            connections: 8,
            rate: 200,
            rate_connections: 8,
            list_counts: vec![500, 2_000],
            page_size: 100,
            list_repeats: 1,
            keystone_requests: 100,
            keystone_envs: 10,
            scoping_envs: 2,
            random_envs: 50,
            random_env_clients: 10,
            password_check_delay: Duration::from_millis(360),
            open_connections: 50,
            huge_answers: 4,
            huge_answer_bytes: 1 << 20,
            settle: Duration::from_millis(300),
            copy_from_images: 100,
            copy_from_few: 10,
            copy_from_repeats: 1,
            real_images: 30,
            real_page_size: 10,
            backpressure_load: Duration::from_millis(300),
            pollers: 10,
            noisy_limit: 20,
            noisy_connections: 4,
        }
    }
}

pub struct Ctx {
    pub plan: Plan,
    pub facade_bin: PathBuf,
    pub nginx_bin: Option<PathBuf>,
    pub load_tool: LoadTool,
    /// Configs, logs, nginx's prefix.
    pub dir: PathBuf,
    pub report: Report,
    pub client: reqwest::Client,
}

impl Ctx {
    /// Starts the facade `name` (its config and log under the work dir)
    /// serving `namespaces` (TOML tables).
    pub async fn facade(&self, name: &str, namespaces: &str) -> Result<crate::procs::Facade, String> {
        crate::procs::Facade::start(&self.facade_bin, &self.dir, name, namespaces).await
    }
}

/// The `[limits]` of the parts that measure what each request costs:
/// shows are not shared (part 9 measures the sharing).
pub const UNSHARED: &str = "coalesce_window_ms = 0";

/// A `[namespaces.ccsr1]` table in trusted mode, shows not shared.
pub fn trusted_namespace(glance_url: &str, page_size: u32) -> String {
    trusted_namespace_with(glance_url, page_size, UNSHARED)
}

/// A `[namespaces.ccsr1]` table in trusted mode with these `[limits]` lines.
pub fn trusted_namespace_with(glance_url: &str, page_size: u32, limits: &str) -> String {
    format!(
        r#"[namespaces.{NAMESPACE}]
glance_url = "{glance_url}"
page_size = {page_size}
auth = {{ type = "trusted", user_id = "{FACADE_USER}" }}
[namespaces.{NAMESPACE}.limits]
{limits}
"#
    )
}

/// A `[namespaces.ccsr1]` table in keystone mode (Glance from the
/// catalog), shows not shared.
pub fn keystone_namespace(auth_url: &str, password_file: &std::path::Path, scope_method: &str) -> String {
    use openstack_mock::keystone::SERVICE_USER;
    format!(
        r#"[namespaces.{NAMESPACE}]
auth = {{ type = "keystone", auth_url = "{auth_url}", username = "{SERVICE_USER}", user_domain_id = "default", password_file = "{}", scope_method = "{scope_method}" }}
[namespaces.{NAMESPACE}.limits]
{UNSHARED}
"#,
        password_file.display()
    )
}

/// The Alliance headers of an environment.
pub fn alliance_headers(environment: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Target-Ns", NAMESPACE.to_owned()),
        ("X-Environment-Id", environment.to_owned()),
    ]
}

/// What the facade sends Glance in trusted mode (used for direct calls).
pub fn trusted_headers(environment: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Identity-Status", "Confirmed".to_owned()),
        ("X-Project-Id", environment.to_owned()),
        ("X-User-Id", FACADE_USER.to_owned()),
        ("X-Roles", "member,reader".to_owned()),
        ("Accept", "application/json".to_owned()),
    ]
}

pub fn with_headers(request: reqwest::RequestBuilder, headers: &[(&'static str, String)]) -> reqwest::RequestBuilder {
    headers
        .iter()
        .fold(request, |request, (name, value)| request.header(*name, value))
}

/// A load target: a URL and the headers sent with it (and for `https`, the
/// CA its certificate is checked against).
pub struct Target {
    pub name: String,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub ca_file: Option<std::path::PathBuf>,
}

/// Median over rounds, per figure.
pub fn median_load(runs: &[Load]) -> Load {
    let median = |pick: fn(&Load) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Load {
        requests: runs.iter().map(|l| l.requests).sum(),
        rps: median(|l| l.rps),
        p50_ms: median(|l| l.p50_ms),
        p99_ms: median(|l| l.p99_ms),
        p999_ms: median(|l| l.p999_ms),
        success_rate: median(|l| l.success_rate),
        non_200: runs.iter().map(|l| l.non_200).sum(),
    }
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Throughput and fixed-rate latency of each target, in interleaved rounds
/// (A B C, A B C, ...), so that drift on the machine hits all alike.
pub async fn compare(ctx: &Ctx, targets: &[Target]) -> Result<Vec<(Load, Load)>, String> {
    let plan = &ctx.plan;
    fn headers(target: &Target) -> Vec<(&str, &str)> {
        target
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect()
    }
    let throughput_mode = Mode::Throughput {
        connections: plan.connections,
    };
    let rate_mode = Mode::Rate {
        rate: plan.rate,
        connections: plan.rate_connections,
    };
    for target in targets {
        ctx.load_tool
            .run(
                &target.url,
                &headers(target),
                throughput_mode,
                plan.warmup,
                target.ca_file.as_deref(),
            )
            .await?;
    }
    let mut throughput: Vec<Vec<Load>> = vec![Vec::new(); targets.len()];
    let mut rate: Vec<Vec<Load>> = vec![Vec::new(); targets.len()];
    for round in 0..plan.rounds {
        for (index, target) in targets.iter().enumerate() {
            let load = ctx
                .load_tool
                .run(
                    &target.url,
                    &headers(target),
                    throughput_mode,
                    plan.load,
                    target.ca_file.as_deref(),
                )
                .await?;
            eprintln!(
                "    round {} {:<28} {:>8.0} req/s  (non-200: {})",
                round + 1,
                target.name,
                load.rps,
                load.non_200
            );
            throughput[index].push(load);
        }
        for (index, target) in targets.iter().enumerate() {
            let load = ctx
                .load_tool
                .run(
                    &target.url,
                    &headers(target),
                    rate_mode,
                    plan.load,
                    target.ca_file.as_deref(),
                )
                .await?;
            eprintln!(
                "    round {} {:<28} at {} req/s: p50 {:.3} p99 {:.3} p99.9 {:.3} ms",
                round + 1,
                target.name,
                plan.rate,
                load.p50_ms,
                load.p99_ms,
                load.p999_ms
            );
            rate[index].push(load);
        }
    }
    Ok(throughput
        .iter()
        .zip(&rate)
        .map(|(t, r)| (median_load(t), median_load(r)))
        .collect())
}

/// Sends `GET /images` to the facade as `environment`; an error unless 200.
pub async fn get_facade_list(
    ctx: &Ctx,
    facade: &crate::procs::Facade,
    environment: &str,
) -> Result<reqwest::Response, String> {
    let response = with_headers(
        ctx.client.get(format!("{}/images", facade.url())),
        &alliance_headers(environment),
    )
    .send()
    .await
    .map_err(|e| e.to_string())?;
    if response.status() != 200 {
        return Err(format!("the facade answered {}", response.status()));
    }
    Ok(response)
}
