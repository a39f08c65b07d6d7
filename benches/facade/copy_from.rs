//! Part 5: what copy_from failure reporting costs a list. An image with a
//! `copy_from`, `queued` and with no import running costs one more
//! `GET /v2/images/{id}/tasks`; lists of plain images are compared with
//! lists where a few, or all, images are such images.

use std::time::Instant;

use futures_util::StreamExt;
use openstack_mock::glance;
use serde_json::json;

use crate::common::*;
use crate::procs::Facade;
use crate::report::{ms, ratio};

const PART: &str = "5 copy_from reporting";

/// Creates `count` queued images with a `copy_from` property in the mock,
/// through its HTTP API (as the facade's create would leave them).
async fn create_copy_from_images(ctx: &Ctx, glance_url: &str, environment: &str, count: usize) -> Result<(), String> {
    let results: Vec<Result<(), String>> = futures_util::stream::iter(0..count)
        .map(|index| {
            let request = with_headers(
                ctx.client.post(format!("{glance_url}/v2/images")),
                &trusted_headers(environment),
            )
            .header("Content-Type", "application/json")
            .body(
                json!({
                    "name": format!("copy-from-{index:05}"),
                    "disk_format": "raw",
                    "container_format": "bare",
                    "copy_from": "http://127.0.0.1:9/cirros.img",
                })
                .to_string(),
            );
            async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                if response.status() == 201 {
                    Ok(())
                } else {
                    Err(format!("mock create answered {}", response.status()))
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

pub async fn run(ctx: &mut Ctx) -> Result<(), String> {
    let plan = ctx.plan.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    // The part counts the facade's calls to Glance.
    let recording = glance::Options {
        record_requests: true,
        ..glance::Options::default()
    };
    let mock = glance::spawn(listener, recording).await;
    let total = plan.copy_from_images;
    let lists = [
        ("plain", format!("{:032x}", 0xcf00), 0),
        ("few", format!("{:032x}", 0xcf01), plan.copy_from_few),
        ("all", format!("{:032x}", 0xcf02), total),
    ];
    for (_, environment, with_copy_from) in &lists {
        mock.seed_images(environment, total - with_copy_from, "plain-");
        create_copy_from_images(ctx, &mock.url(), environment, *with_copy_from).await?;
    }
    let facade = ctx.facade("copy-from", &trusted_namespace(&mock.url(), 1000)).await?;
    let outcome = measure(ctx, &mock, &facade, &lists).await;
    facade.stop().await;
    mock.shutdown().await;
    let results = outcome?;
    let (_, plain_ms, plain_calls) = results[0];
    for (label, with_copy_from, (_, time_ms, calls)) in [
        ("plain images only", 0, results[0]),
        ("with copy_from", plan.copy_from_few, results[1]),
        ("with copy_from", total, results[2]),
    ] {
        let extra = time_ms - plain_ms;
        let measure = if with_copy_from == 0 {
            format!("list of {total} images, {label}")
        } else {
            format!("list of {total} images, {with_copy_from} {label} (queued, no import)")
        };
        let row = ctx.report.row(PART, measure, ms(time_ms));
        if with_copy_from == 0 {
            row.compared(format!("{calls} upstream calls; median of {}", plan.copy_from_repeats));
        } else {
            row.compared(format!(
                "{calls} upstream calls ({} more); +{} = {} of plain, {:.0} us per such image",
                calls - plain_calls,
                ms(extra),
                ratio(time_ms / plain_ms),
                extra * 1000.0 / with_copy_from as f64
            ));
        }
    }
    Ok(())
}

/// Median list time and upstream call count per list.
async fn measure(
    ctx: &Ctx,
    mock: &glance::Handle,
    facade: &Facade,
    lists: &[(&str, String, usize)],
) -> Result<Vec<(usize, f64, usize)>, String> {
    let mut results = Vec::new();
    for (_, environment, with_copy_from) in lists {
        let mut times = Vec::new();
        let mut calls = 0;
        // One list to warm the connections, then the timed ones.
        for repeat in 0..=ctx.plan.copy_from_repeats {
            mock.take_requests();
            let started = Instant::now();
            let response = get_facade_list(ctx, facade, environment).await?;
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            let document: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let images = document[0]["images"].as_array().map_or(0, Vec::len);
            if images != ctx.plan.copy_from_images {
                return Err(format!("listed {images} images, not {}", ctx.plan.copy_from_images));
            }
            calls = mock.take_requests().len();
            if repeat > 0 {
                times.push(elapsed);
            }
        }
        results.push((*with_copy_from, median(&mut times), calls));
    }
    Ok(results)
}
