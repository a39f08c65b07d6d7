//! Part 1: `GET /images/{id}` through the facade, directly against the
//! upstream, through nginx as a plain `proxy_pass` and through the bare
//! hyper proxy of bare.rs, side by side.

use std::time::Duration;

use openstack_mock::glance;

use crate::common::*;
use crate::cpu::{self, Measured};
use crate::load::Mode;
use crate::procs::{BareProxy, Facade, FacadeSettings, Nginx};
use crate::report::{Verdict, ms, ratio, rps};
use crate::upstream::{Recorded, StaticUpstream};

const PART: &str = "1 GET /images/{id}";

/// Records the mock Glance's answer to `GET /v2/images/{id}` for one image
/// owned by [`ENV`], and returns it with the image id. A `community` image
/// is visible to every environment without a membership look-up.
pub async fn record_image(ctx: &Ctx, community: bool) -> Result<(Recorded, String), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let mock = glance::spawn(listener, glance::Options::default()).await;
    let id = if community {
        let created = with_headers(
            ctx.client.post(format!("{}/v2/images", mock.url())),
            &trusted_headers(ENV),
        )
        .header("Content-Type", "application/json")
        .body(
            r#"{"name": "bench-image-1", "disk_format": "raw", "container_format": "bare", "visibility": "community"}"#,
        )
        .send()
        .await
        .map_err(|e| format!("mock Glance: {e}"))?;
        let body = created.bytes().await.map_err(|e| e.to_string())?;
        let document: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        document["id"]
            .as_str()
            .ok_or("mock Glance created no image")?
            .to_owned()
    } else {
        mock.seed_images(ENV, 1, "bench-image-").remove(0)
    };
    let response = with_headers(
        ctx.client.get(format!("{}/v2/images/{id}", mock.url())),
        &trusted_headers(ENV),
    )
    .send()
    .await
    .map_err(|e| format!("mock Glance: {e}"))?;
    if response.status() != 200 {
        return Err(format!("mock Glance answered {}", response.status()));
    }
    let request_id = response
        .headers()
        .get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("req-00000000-0000-4000-8000-000000000000")
        .to_owned();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    mock.shutdown().await;
    Ok((Recorded { body, request_id }, id))
}

pub async fn run(ctx: &mut Ctx) -> Result<(), String> {
    let (recorded, id) = record_image(ctx, false).await?;
    let body_bytes = recorded.body.len();
    let upstream = StaticUpstream::start(recorded).await.map_err(|e| e.to_string())?;
    let facade = ctx
        .facade("show", &trusted_namespace(&upstream.url(), ctx.plan.page_size))
        .await?;
    let quiet = Facade::start_with(
        &ctx.facade_bin,
        &ctx.dir,
        "show-warn",
        &trusted_namespace(&upstream.url(), ctx.plan.page_size),
        FacadeSettings {
            rust_log: Some("warn"),
            ..FacadeSettings::default()
        },
    )
    .await?;
    let unmetered = Facade::start_with(
        &ctx.facade_bin,
        &ctx.dir,
        "show-no-metrics",
        &trusted_namespace(&upstream.url(), ctx.plan.page_size),
        FacadeSettings {
            metrics: false,
            ..FacadeSettings::default()
        },
    )
    .await?;
    let nginx = match &ctx.nginx_bin {
        Some(bin) => Some(Nginx::start(bin, &ctx.dir, upstream.addr).await?),
        None => None,
    };
    let bare = BareProxy::start(upstream.addr).await?;
    let paths = Paths {
        upstream: &upstream,
        nginx: nginx.as_ref(),
        bare: &bare,
        facade: &facade,
        unmetered: &unmetered,
        quiet: &quiet,
    };
    let outcome = measure(ctx, &paths, &id, body_bytes).await;
    facade.stop().await;
    unmetered.stop().await;
    quiet.stop().await;
    bare.stop().await;
    if let Some(nginx) = nginx {
        nginx.stop().await;
    }
    outcome
}

/// What part 1 compares, all in front of the same static upstream.
struct Paths<'a> {
    upstream: &'a StaticUpstream,
    nginx: Option<&'a Nginx>,
    bare: &'a BareProxy,
    facade: &'a Facade,
    /// The facade with `admin.metrics = false`.
    unmetered: &'a Facade,
    quiet: &'a Facade,
}

async fn measure(ctx: &mut Ctx, paths: &Paths<'_>, id: &str, body_bytes: usize) -> Result<(), String> {
    let Paths {
        upstream,
        nginx,
        bare,
        facade,
        unmetered,
        quiet,
    } = *paths;
    // Each path answers 200 with an image before anything is timed.
    let check = with_headers(
        ctx.client.get(format!("{}/images/{id}", facade.url())),
        &alliance_headers(ENV),
    )
    .send()
    .await
    .map_err(|e| format!("facade: {e}"))?;
    let status = check.status();
    let text = check.text().await.unwrap_or_default();
    if status != 200 || !text.contains(id) {
        return Err(format!("the facade answered {status}: {text}"));
    }
    let mut targets = vec![Target {
        name: "direct (upstream)".into(),
        url: format!("{}/v2/images/{id}", upstream.url()),
        headers: trusted_headers(ENV),
        ca_file: None,
    }];
    if let Some(nginx) = nginx {
        targets.push(Target {
            name: "nginx proxy_pass".into(),
            url: format!("{}/v2/images/{id}", nginx.url()),
            headers: trusted_headers(ENV),
            ca_file: None,
        });
    }
    let bare_index = targets.len();
    targets.push(Target {
        name: "bare hyper proxy".into(),
        url: format!("{}/images/{id}", bare.url()),
        headers: alliance_headers(ENV),
        ca_file: None,
    });
    targets.push(Target {
        name: "facade".into(),
        url: format!("{}/images/{id}", facade.url()),
        headers: alliance_headers(ENV),
        ca_file: None,
    });
    let unmetered_index = targets.len();
    targets.push(Target {
        name: "facade, metrics off".into(),
        url: format!("{}/images/{id}", unmetered.url()),
        headers: alliance_headers(ENV),
        ca_file: None,
    });
    targets.push(Target {
        name: "facade, RUST_LOG=warn".into(),
        url: format!("{}/images/{id}", quiet.url()),
        headers: alliance_headers(ENV),
        ca_file: None,
    });
    let results = compare(ctx, &targets).await?;
    let counted = shows_counted(ctx, facade).await?;
    let plan = ctx.plan.clone();
    let report = &mut ctx.report;
    let (direct, direct_rate) = results[0];
    let (quiet_load, quiet_rate) = results[results.len() - 1];
    let (unmetered_load, unmetered_rate) = results[unmetered_index];
    let (facade_load, facade_rate) = results[unmetered_index - 1];
    let nginx_result = nginx.map(|_| results[1]);
    let (bare_load, _) = results[bare_index];

    let load_line = format!(
        "{} connections, {} x {:.1} s, median",
        plan.connections,
        plan.rounds,
        plan.load.as_secs_f64()
    );
    report
        .row(PART, "throughput, direct (upstream alone)", rps(direct.rps))
        .compared(load_line.clone());
    if let Some((nginx_load, _)) = nginx_result {
        report
            .row(PART, "throughput, nginx proxy_pass", rps(nginx_load.rps))
            .compared(format!("{} of direct", ratio(nginx_load.rps / direct.rps)));
    }
    report
        .row(
            PART,
            "throughput, bare hyper proxy (the facade's stack, no translation)",
            rps(bare_load.rps),
        )
        .compared(match nginx_result {
            Some((nginx_load, _)) => format!(
                "{} of nginx; the facade does {} of it",
                ratio(bare_load.rps / nginx_load.rps),
                ratio(facade_load.rps / bare_load.rps)
            ),
            None => format!("the facade does {} of it", ratio(facade_load.rps / bare_load.rps)),
        });
    let facade_row = report
        .row(PART, "throughput, facade", rps(facade_load.rps))
        .compared(format!("{} of direct", ratio(facade_load.rps / direct.rps)));
    if nginx_result.is_none() {
        facade_row.verdict(Verdict::NotRun);
    }
    if let Some((nginx_load, _)) = nginx_result {
        let versus = facade_load.rps / nginx_load.rps;
        // Throughput swings 10-20% between runs on two shared cores; the
        // deciding figure is CPU per request (cpu_rows).
        report.row(PART, "facade / nginx throughput", ratio(versus));
    }
    report
        .row(
            PART,
            "throughput, facade with metrics off (admin.metrics = false)",
            rps(unmetered_load.rps),
        )
        .compared(format!(
            "the facade with metrics (the line above) does {} of it; its /metrics counted {counted} shows",
            ratio(facade_load.rps / unmetered_load.rps)
        ));
    report
        .row(
            PART,
            "throughput, facade without its request log (RUST_LOG=warn)",
            rps(quiet_load.rps),
        )
        .compared(match nginx_result {
            Some((nginx_load, _)) => format!("{} of nginx", ratio(quiet_load.rps / nginx_load.rps)),
            None => String::new(),
        });
    let rate_line = format!("at {} req/s, {} connections", plan.rate, plan.rate_connections);
    let mut latency = |name: &str, load: crate::load::Load| {
        report
            .row(
                PART,
                format!("latency p50 / p99 / p99.9, {name}"),
                format!("{} / {} / {}", ms(load.p50_ms), ms(load.p99_ms), ms(load.p999_ms)),
            )
            .compared(rate_line.clone());
    };
    latency("direct", direct_rate);
    if let Some((_, nginx_rate)) = nginx_result {
        latency("nginx", nginx_rate);
    }
    latency("facade", facade_rate);
    latency("facade, metrics off", unmetered_rate);
    latency("facade, RUST_LOG=warn", quiet_rate);
    let added = facade_rate.p99_ms - direct_rate.p99_ms;
    report
        .row(PART, "added p99 latency, facade over direct", ms(added))
        .compared(match nginx_result {
            Some((_, nginx_rate)) => format!("nginx adds {}", ms(nginx_rate.p99_ms - direct_rate.p99_ms)),
            None => String::new(),
        })
        .target("<= 0.5 ms", added <= 0.5);
    report
        .row(
            PART,
            "added p50 latency, facade over direct",
            ms(facade_rate.p50_ms - direct_rate.p50_ms),
        )
        .compared(match nginx_result {
            Some((_, nginx_rate)) => format!("nginx adds {}", ms(nginx_rate.p50_ms - direct_rate.p50_ms)),
            None => String::new(),
        });
    cpu_rows(ctx, paths, id).await?;
    let report = &mut ctx.report;
    let failures: u64 = results.iter().map(|(a, b)| a.non_200 + b.non_200).sum();
    report
        .row(PART, "non-200 answers or errors during the runs", failures.to_string())
        .target("0", failures == 0);
    report.note(format!(
        "Part 1 upstream: a static server in the driver that answers every `GET /v2/images/{{id}}` with the \
         {body_bytes}-byte image document recorded from the mock Glance; direct, nginx and the facade all \
         go to it. The facade runs with its default log level (INFO: one log line per request, to a file); \
         nginx writes its access log (one line per request)."
    ));
    Ok(())
}

/// The `show` answers with status 2xx that the facade's `/metrics` counted:
/// proof that its metrics were on while it was measured.
async fn shows_counted(ctx: &Ctx, facade: &Facade) -> Result<u64, String> {
    let text = ctx
        .client
        .get(format!("http://127.0.0.1:{}/metrics", facade.admin_port))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("the facade's /metrics: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let series =
        format!("alliance_glance_requests_total{{namespace=\"{NAMESPACE}\",operation=\"show\",status_class=\"2xx\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .filter(|&count| count > 0)
        .ok_or_else(|| "the facade's /metrics counted no show".to_owned())
}

/// How fast the mock Glance itself answers `GET /v2/images/{id}`, to show
/// why part 1 uses the static upstream.
pub async fn mock_speed(ctx: &mut Ctx) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let mock = glance::spawn(listener, glance::Options::default()).await;
    let id = mock.seed_images(ENV, 1, "bench-image-").remove(0);
    let headers = trusted_headers(ENV);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let load = ctx
        .load_tool
        .run(
            &format!("{}/v2/images/{id}", mock.url()),
            &headers,
            Mode::Throughput {
                connections: ctx.plan.connections,
            },
            ctx.plan.load.min(Duration::from_secs(3)),
            None,
        )
        .await;
    mock.shutdown().await;
    let load = load?;
    ctx.report
        .row(
            PART,
            "throughput, mock Glance direct (not used as upstream)",
            rps(load.rps),
        )
        .compared("why part 1 uses a static upstream: the mock renders and records each request");
    Ok(())
}

/// The deciding rows: CPU per request of nginx, the bare proxy and the
/// facade (see cpu.rs).
async fn cpu_rows(ctx: &mut Ctx, paths: &Paths<'_>, id: &str) -> Result<(), String> {
    let mut measured = Vec::new();
    if let Some(nginx) = paths.nginx {
        measured.push(Measured {
            target: Target {
                name: "nginx proxy_pass".into(),
                url: format!("{}/v2/images/{id}", nginx.url()),
                headers: trusted_headers(ENV),
                ca_file: None,
            },
            cpu_time: Box::new(|| nginx.cpu_time()),
        });
    }
    measured.push(Measured {
        target: Target {
            name: "bare hyper proxy".into(),
            url: format!("{}/images/{id}", paths.bare.url()),
            headers: alliance_headers(ENV),
            ca_file: None,
        },
        cpu_time: Box::new(|| paths.bare.cpu_time()),
    });
    measured.push(Measured {
        target: Target {
            name: "facade".into(),
            url: format!("{}/images/{id}", paths.facade.url()),
            headers: alliance_headers(ENV),
            ca_file: None,
        },
        cpu_time: Box::new(|| paths.facade.cpu_time()),
    });
    let micros = cpu::per_request(ctx, &measured).await?;
    let plan = &ctx.plan;
    let line = format!(
        "{} connections, {} x {:.1} s alternating, median",
        plan.connections,
        plan.rounds,
        plan.load.as_secs_f64()
    );
    let facade = micros[micros.len() - 1];
    let bare = micros[micros.len() - 2];
    let report = &mut ctx.report;
    let nginx = paths.nginx.map(|_| micros[0]);
    if let Some(nginx) = nginx {
        report
            .row(PART, "CPU per request, nginx proxy_pass", nginx.text())
            .compared(line.clone());
    }
    report
        .row(PART, "CPU per request, bare hyper proxy", bare.text())
        .compared(match nginx {
            Some(nginx) => format!("{} of nginx", ratio(bare.total / nginx.total)),
            None => line.clone(),
        });
    let facade_row = report
        .row(PART, "CPU per request, facade", facade.text())
        .compared(format!("{} of the bare proxy", ratio(facade.total / bare.total)));
    match nginx {
        Some(nginx) => {
            let versus = facade.total / nginx.total;
            report
                .row(PART, "facade / nginx CPU per request", ratio(versus))
                .target("<= 1.10 x nginx", versus <= 1.10);
        }
        None => {
            facade_row.verdict(Verdict::NotRun);
        }
    }
    Ok(())
}
