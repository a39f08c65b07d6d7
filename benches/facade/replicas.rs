//! Part 10: several replicas sharing a memcached (Debian's, started here).
//! What the shared cache and the global rates add to a request's latency
//! (`GET /images/{id}` at a fixed rate, against the static upstream, with
//! them on and off, in interleaved rounds), and what restarting one of
//! three replicas costs Keystone (the mock's token requests) without and
//! with the shared cache.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use openstack_mock::glance;

use crate::common::*;
use crate::procs::free_port;
use crate::report::ms;
use crate::show::record_image;
use crate::upstream::StaticUpstream;

const PART: &str = "10 replicas";
/// A rate no request reaches: the global bucket is consulted, never empty.
const RATE: &str = "environment_rate_per_sec = 100000";

struct Memcached {
    port: u16,
    child: Child,
    secret: std::path::PathBuf,
}

impl Memcached {
    fn start(ctx: &Ctx) -> Result<Self, String> {
        let port = free_port()?;
        let mut command = Command::new("memcached");
        command
            .args([
                "-l",
                "127.0.0.1",
                "-U",
                "0",
                "-m",
                "16",
                "-p",
                &port.to_string(),
                "-u",
                "root",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .map_err(|error| format!("memcached (apt-get install memcached): {error}"))?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let secret = ctx.dir.join("memcached-secret");
                std::fs::write(&secret, "bench secret of at least thirty-two characters\n")
                    .map_err(|e| e.to_string())?;
                return Ok(Memcached { port, child, secret });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("memcached did not start".into())
    }

    fn table(&self) -> String {
        format!(
            "[shared_cache]\nservers = [\"127.0.0.1:{}\"]\nsecret_file = \"{}\"\n",
            self.port,
            self.secret.display()
        )
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<(), String> {
    let memcached = Memcached::start(ctx)?;
    latency(ctx, &memcached).await?;
    restart_cost(ctx, &memcached).await
}

async fn latency(ctx: &mut Ctx, memcached: &Memcached) -> Result<(), String> {
    let (recorded, id) = record_image(ctx, false).await?;
    let upstream = StaticUpstream::start(recorded).await.map_err(|e| e.to_string())?;
    let limits = format!("{UNSHARED}\n{RATE}");
    let off = ctx
        .facade(
            "replicas-off",
            &trusted_namespace_with(&upstream.url(), ctx.plan.page_size, &limits),
        )
        .await?;
    let on = ctx
        .facade(
            "replicas-on",
            &format!(
                "{}\n{}",
                trusted_namespace_with(&upstream.url(), ctx.plan.page_size, &limits),
                memcached.table()
            ),
        )
        .await?;
    let target = |name: &str, url: String| Target {
        name: name.to_owned(),
        url: format!("{url}/images/{id}"),
        headers: alliance_headers(ENV),
        ca_file: None,
    };
    let results = compare(
        ctx,
        &[
            target("shared cache off", off.url()),
            target("shared cache on", on.url()),
        ],
    )
    .await?;
    let (_, off_rate) = results[0];
    let (_, on_rate) = results[1];
    let rate = format!("at {} req/s, {} connections", ctx.plan.rate, ctx.plan.rate_connections);
    for (name, load) in [("off", off_rate), ("on", on_rate)] {
        ctx.report
            .row(
                PART,
                format!("GET /images/{{id}} latency, shared cache and global rate {name}"),
                format!("p50 {} p99 {}", ms(load.p50_ms), ms(load.p99_ms)),
            )
            .compared(rate.clone());
    }
    ctx.report
        .row(
            PART,
            "added latency, shared cache and global rate on over off",
            format!(
                "p50 {} p99 {}",
                ms(on_rate.p50_ms - off_rate.p50_ms),
                ms(on_rate.p99_ms - off_rate.p99_ms)
            ),
        )
        .compared(format!(
            "{rate}; the rate's leases cost a memcached round trip every 100 ms of its tokens"
        ));
    off.stop().await;
    on.stop().await;
    Ok(())
}

/// Keystone token requests caused by restarting one of three replicas after
/// they served `environments`, without and with the shared cache.
async fn restart_cost(ctx: &mut Ctx, memcached: &Memcached) -> Result<(), String> {
    let environments: Vec<String> = (0..ctx.plan.scoping_envs.max(2))
        .map(|index| format!("{:032x}", 0xbe00 + index))
        .collect();
    for shared in [false, true] {
        let glance_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let glance_url = format!("http://{}", glance_listener.local_addr().map_err(|e| e.to_string())?);
        let keystone =
            crate::keystone::start_keystone(&glance_url, &environments, ctx.plan.password_check_delay).await?;
        let _glance = glance::spawn(
            glance_listener,
            glance::Options {
                keystone: Some(keystone.clone()),
                ..glance::Options::default()
            },
        )
        .await;
        let mut namespace = keystone_namespace(&keystone.url(), &crate::keystone::password_file(ctx)?, "rescope");
        if shared {
            namespace = format!("{namespace}\n{}", memcached.table());
        }
        let name = if shared { "shared" } else { "alone" };
        let mut replicas = Vec::new();
        for index in 0..3 {
            replicas.push(ctx.facade(&format!("replica-{name}-{index}"), &namespace).await?);
        }
        for replica in &replicas {
            for environment in &environments {
                get_facade_list(ctx, replica, environment).await?;
            }
        }
        let before = keystone.token_requests();
        let restarted = replicas.remove(0);
        restarted.stop().await;
        let restarted = ctx.facade(&format!("replica-{name}-0b"), &namespace).await?;
        for environment in &environments {
            get_facade_list(ctx, &restarted, environment).await?;
        }
        let caused = keystone.token_requests() - before;
        ctx.report
            .row(
                PART,
                format!(
                    "Keystone token requests caused by restarting one of three replicas, shared cache {}",
                    if shared { "on" } else { "off" }
                ),
                caused.to_string(),
            )
            .compared(format!("{} environments, re-scope", environments.len()));
        restarted.stop().await;
        for replica in replicas {
            replica.stop().await;
        }
    }
    Ok(())
}
