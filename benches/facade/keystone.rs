//! Part 3: keystone mode against a mock Keystone - one token request per
//! environment however many first requests arrive at once, and the
//! steady-state cost of keystone mode over trusted mode. Part 6: the cost
//! of scoping tokens to new environments, re-scope versus password, and
//! what requests with random environment ids cost Keystone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openstack_mock::glance;
use openstack_mock::keystone::{self, Project, SERVICE_PASSWORD, SERVICE_USER_ID};

use crate::common::*;
use crate::report::{ms, ratio, rps};
use crate::show::record_image;
use crate::upstream::StaticUpstream;

const PART: &str = "3 Keystone mode";
const SCOPING: &str = "6 Keystone scoping";

fn environments(count: usize) -> Vec<String> {
    (0..count).map(|index| format!("{:032x}", 0xca00 + index)).collect()
}

/// A mock Keystone whose catalog sends the image service to `image_url`,
/// with the service user a member of every environment.
pub async fn start_keystone(
    image_url: &str,
    environments: &[String],
    delay: Duration,
) -> Result<keystone::Handle, String> {
    let mut options = keystone::Options::standard(image_url).with_password_check_delay(delay);
    for id in environments {
        options.projects.push(Project {
            id: id.clone(),
            name: id.clone(),
        });
        options
            .assignments
            .push((SERVICE_USER_ID.to_owned(), id.clone(), "member".to_owned()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    keystone::spawn(listener, options).await.map_err(|e| e.to_string())
}

pub fn password_file(ctx: &Ctx) -> Result<std::path::PathBuf, String> {
    let path = ctx.dir.join("keystone-password");
    std::fs::write(&path, format!("{SERVICE_PASSWORD}\n")).map_err(|e| e.to_string())?;
    Ok(path)
}

/// `count` first requests at once, spread over the environments, against
/// a mock Glance that validates every token with the mock Keystone.
async fn first_requests(ctx: &mut Ctx, scope_method: &str) -> Result<(), String> {
    let plan = ctx.plan.clone();
    let environments = environments(plan.keystone_envs);
    let glance_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let glance_url = format!("http://{}", glance_listener.local_addr().map_err(|e| e.to_string())?);
    let keystone = start_keystone(&glance_url, &environments, plan.password_check_delay).await?;
    let mock = glance::spawn(
        glance_listener,
        glance::Options {
            keystone: Some(keystone.clone()),
            ..glance::Options::default()
        },
    )
    .await;
    let images: Vec<String> = environments
        .iter()
        .map(|environment| mock.seed_images(environment, 1, "ks-").remove(0))
        .collect();
    let facade = ctx
        .facade(
            "keystone-first",
            &keystone_namespace(&keystone.url(), &password_file(ctx)?, scope_method),
        )
        .await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let base = Arc::new(facade.url());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..plan.keystone_requests {
        let environment = environments[index % environments.len()].clone();
        let url = format!("{base}/images/{}", images[index % environments.len()]);
        let client = client.clone();
        tasks.spawn(async move {
            with_headers(client.get(url), &alliance_headers(&environment))
                .send()
                .await
                .map(|response| response.status().as_u16())
                .unwrap_or(0)
        });
    }
    let mut ok = 0;
    while let Some(status) = tasks.join_next().await {
        if matches!(status, Ok(200)) {
            ok += 1;
        }
    }
    let elapsed = started.elapsed();
    facade.stop().await;
    mock.shutdown().await;
    keystone.shutdown().await;
    let (tokens, scoped, checks) = (
        keystone.token_requests(),
        keystone.scoped_token_requests(),
        keystone.password_checks(),
    );
    let expected_total = if scope_method == "rescope" {
        plan.keystone_envs + 1
    } else {
        plan.keystone_envs
    };
    let what = if scope_method == "rescope" {
        format!("{} scoped (re-scopes) + {} unscoped", scoped, tokens - scoped)
    } else {
        format!("{scoped} scoped, each a password check")
    };
    ctx.report
        .row(
            PART,
            format!(
                "token requests, {} first requests at once over {} environments, scope_method = {scope_method}",
                plan.keystone_requests, plan.keystone_envs
            ),
            tokens.to_string(),
        )
        .compared(format!(
            "{what}; {checks} password checks; {ok}/{} answered 200 in {}",
            plan.keystone_requests,
            ms(elapsed.as_secs_f64() * 1000.0)
        ))
        .target(
            if scope_method == "rescope" {
                format!("{} scoped (one per environment) + 1 unscoped", plan.keystone_envs)
            } else {
                format!("exactly {}", plan.keystone_envs)
            },
            scoped == plan.keystone_envs && tokens == expected_total && ok == plan.keystone_requests,
        );
    Ok(())
}

/// Keystone mode versus trusted mode on `GET /images/{id}`, same upstream.
async fn steady_state(ctx: &mut Ctx) -> Result<(), String> {
    let (recorded, id) = record_image(ctx, false).await?;
    let upstream = StaticUpstream::start(recorded).await.map_err(|e| e.to_string())?;
    let keystone = start_keystone(&upstream.url(), &environments(1), Duration::ZERO).await?;
    let trusted = ctx
        .facade(
            "steady-trusted",
            &trusted_namespace(&upstream.url(), ctx.plan.page_size),
        )
        .await?;
    let keystone_facade = ctx
        .facade(
            "steady-keystone",
            &keystone_namespace(&keystone.url(), &password_file(ctx)?, "rescope"),
        )
        .await?;
    let targets = [
        Target {
            name: "facade, trusted mode".into(),
            url: format!("{}/images/{id}", trusted.url()),
            headers: alliance_headers(ENV),
            ca_file: None,
        },
        Target {
            name: "facade, keystone mode".into(),
            url: format!("{}/images/{id}", keystone_facade.url()),
            headers: alliance_headers(ENV),
            ca_file: None,
        },
    ];
    let outcome = compare(ctx, &targets).await;
    let tokens = keystone.token_requests();
    trusted.stop().await;
    keystone_facade.stop().await;
    keystone.shutdown().await;
    let results = outcome?;
    let ((trusted_load, trusted_rate), (keystone_load, keystone_rate)) = (results[0], results[1]);
    let plan = &ctx.plan;
    ctx.report
        .row(PART, "steady-state throughput, keystone mode", rps(keystone_load.rps))
        .compared(format!(
            "{} of trusted mode ({}); {} token requests in all",
            ratio(keystone_load.rps / trusted_load.rps),
            rps(trusted_load.rps),
            tokens
        ));
    ctx.report
        .row(
            PART,
            "steady-state p50 / p99, keystone mode",
            format!("{} / {}", ms(keystone_rate.p50_ms), ms(keystone_rate.p99_ms)),
        )
        .compared(format!(
            "trusted mode {} / {} at {} req/s",
            ms(trusted_rate.p50_ms),
            ms(trusted_rate.p99_ms),
            plan.rate
        ));
    Ok(())
}

/// First requests for N environments one after another: re-scope (one
/// password check, then a re-scope per environment) versus password (a
/// password check per environment), password checks taking 360 ms.
async fn scoping(ctx: &mut Ctx) -> Result<(), String> {
    let plan = ctx.plan.clone();
    let environments = environments(plan.scoping_envs);
    let (recorded, id) = record_image(ctx, true).await?;
    let upstream = StaticUpstream::start(recorded).await.map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for method in ["rescope", "password"] {
        let keystone = start_keystone(&upstream.url(), &environments, plan.password_check_delay).await?;
        let facade = ctx
            .facade(
                &format!("scoping-{method}"),
                &keystone_namespace(&keystone.url(), &password_file(ctx)?, method),
            )
            .await?;
        let started = Instant::now();
        let mut failure = None;
        for environment in &environments {
            let response = with_headers(
                ctx.client.get(format!("{}/images/{id}", facade.url())),
                &alliance_headers(environment),
            )
            .send()
            .await;
            match response {
                Ok(response) if response.status() == 200 => {}
                Ok(response) => failure = Some(format!("{method}: the facade answered {}", response.status())),
                Err(error) => failure = Some(format!("{method}: {error}")),
            }
        }
        let elapsed = started.elapsed();
        facade.stop().await;
        keystone.shutdown().await;
        if let Some(failure) = failure {
            return Err(failure);
        }
        results.push((method, elapsed, keystone.password_checks(), keystone.token_requests()));
    }
    let delay_ms = plan.password_check_delay.as_millis();
    let n = plan.scoping_envs;
    for (method, elapsed, checks, tokens) in &results {
        ctx.report
            .row(
                SCOPING,
                format!("first requests for {n} environments, one after another, scope_method = {method}"),
                ms(elapsed.as_secs_f64() * 1000.0),
            )
            .compared(format!(
                "{checks} password checks ({} ms of Keystone bcrypt), {tokens} token requests; {} per environment",
                *checks as u128 * delay_ms,
                ms(elapsed.as_secs_f64() * 1000.0 / n as f64)
            ));
    }
    if let [(_, rescope, ..), (_, password, ..)] = results.as_slice() {
        ctx.report
            .row(SCOPING, "password / rescope, time for the first requests", ratio(password.as_secs_f64() / rescope.as_secs_f64()))
            .compared(format!(
                "a password check costs {delay_ms} ms here (the mock Keystone's password_check_delay standing for bcrypt, as measured on real Keystone 30)"
            ));
    }
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> Result<(), String> {
    first_requests(ctx, "rescope").await?;
    first_requests(ctx, "password").await?;
    steady_state(ctx).await
}

pub async fn run_scoping(ctx: &mut Ctx) -> Result<(), String> {
    scoping(ctx).await?;
    random_environments(ctx).await
}

/// `plan.random_envs` requests, each with a new random environment id (no
/// role, no project), `plan.random_env_clients` at a time, in re-scope
/// mode with the default limits: what they cost Keystone.
async fn random_environments(ctx: &mut Ctx) -> Result<(), String> {
    use futures_util::StreamExt;
    let plan = ctx.plan.clone();
    let keystone = start_keystone("http://127.0.0.1:9/image", &[], plan.password_check_delay).await?;
    let facade = ctx
        .facade(
            "scoping-random",
            &keystone_namespace(&keystone.url(), &password_file(ctx)?, "rescope"),
        )
        .await?;
    let started = Instant::now();
    let base = facade.url();
    let statuses: Vec<String> = futures_util::stream::iter(0..plan.random_envs)
        .map(|_| {
            let environment = uuid::Uuid::new_v4().simple().to_string();
            let request = with_headers(
                ctx.client.get(format!("{base}/images")),
                &alliance_headers(&environment),
            );
            async move {
                match request.send().await {
                    Ok(response) => response.status().as_u16().to_string(),
                    Err(_) => "no answer".to_owned(),
                }
            }
        })
        .buffer_unordered(plan.random_env_clients)
        .collect()
        .await;
    let elapsed = started.elapsed();
    facade.stop().await;
    keystone.shutdown().await;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for status in statuses {
        *counts.entry(status).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(status, n)| format!("{n} x {status}")).collect();
    let checks = keystone.password_checks();
    ctx.report
        .row(
            SCOPING,
            format!(
                "password checks, {} requests with random environment ids, {} at a time",
                plan.random_envs, plan.random_env_clients
            ),
            checks.to_string(),
        )
        .compared(format!(
            "{} Keystone requests in all; {}; {}",
            keystone.requests(),
            counts.join(", "),
            ms(elapsed.as_secs_f64() * 1000.0)
        ))
        .target("<= 2", checks <= 2);
    Ok(())
}
