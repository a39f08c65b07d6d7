//! Part 2: `GET /images` over many images (page after page from the mock
//! Glance): time to first byte, total time against the upstream's own page
//! times, and the facade's peak RSS for two image counts.

use std::time::{Duration, Instant};

use openstack_mock::glance;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::common::*;
use crate::procs::Facade;
use crate::report::{mib, ms, ratio};

const PART: &str = "2 GET /images";

#[derive(Deserialize)]
struct GlancePage {
    images: Vec<IgnoredAny>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct AllianceList {
    images: Vec<IgnoredAny>,
}

/// Every page fetched straight from the mock, one after another, as the
/// facade asks for them; returns the summed page times and the page count.
async fn upstream_pages(
    ctx: &Ctx,
    glance_url: &str,
    environment: &str,
    page_size: u32,
) -> Result<(Duration, usize, usize), String> {
    let mut path = format!("/v2/images?limit={page_size}");
    let mut total = Duration::ZERO;
    let mut pages = 0;
    let mut images = 0;
    loop {
        let started = Instant::now();
        let response = with_headers(
            ctx.client.get(format!("{glance_url}{path}")),
            &trusted_headers(environment),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("mock Glance answered {} to {path}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        total += started.elapsed();
        pages += 1;
        let page: GlancePage = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        images += page.images.len();
        match page.next {
            Some(next) => path = next,
            None => break,
        }
    }
    Ok((total, pages, images))
}

/// One list through the facade: time to the first body byte, total time,
/// and the number of images in the answer.
async fn facade_list(ctx: &Ctx, facade: &Facade, environment: &str) -> Result<(Duration, Duration, usize), String> {
    let started = Instant::now();
    let mut response = get_facade_list(ctx, facade, environment).await?;
    let mut first_byte = None;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("list body: {e}"))? {
        if first_byte.is_none() && !chunk.is_empty() {
            first_byte = Some(started.elapsed());
        }
        body.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let list: Vec<AllianceList> =
        serde_json::from_slice(&body).map_err(|e| format!("list body is not the document: {e}"))?;
    let count = list.first().map_or(0, |list| list.images.len());
    Ok((first_byte.unwrap_or(total), total, count))
}

pub async fn run(ctx: &mut Ctx) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let mock = glance::spawn(listener, glance::Options::default()).await;
    let page_size = ctx.plan.page_size;
    let counts = ctx.plan.list_counts.clone();
    let started = Instant::now();
    let environments: Vec<String> = (0..counts.len())
        .map(|index| format!("{:032x}", 0xbe00 + index))
        .collect();
    for (count, environment) in counts.iter().zip(&environments) {
        mock.seed_images(environment, *count, "list-");
    }
    eprintln!(
        "    seeded {:?} images in {:.1} s",
        counts,
        started.elapsed().as_secs_f64()
    );
    let mut peaks = Vec::new();
    for (count, environment) in counts.iter().zip(&environments) {
        let facade = ctx.facade("list", &trusted_namespace(&mock.url(), page_size)).await?;
        let outcome = measure_one(ctx, &mock, &facade, *count, environment, page_size).await;
        let memory = facade.memory();
        facade.stop().await;
        outcome?;
        peaks.push((*count, memory?.peak_kib));
    }
    let (count, peak) = *peaks.last().ok_or("no list measured")?;
    ctx.report
        .row(PART, format!("facade peak RSS (VmHWM), {count} images"), mib(peak))
        .compared(
            peaks
                .iter()
                .take(peaks.len() - 1)
                .map(|(count, peak)| format!("{} at {count} images", mib(*peak)))
                .collect::<Vec<_>>()
                .join(", "),
        )
        .target("<= 32 MiB", peak <= 32 * 1024);
    if let Some((small_count, small_peak)) = peaks.first().filter(|_| peaks.len() > 1) {
        let growth = peak as f64 / *small_peak as f64;
        ctx.report
            .row(
                PART,
                format!("peak RSS growth, {small_count} -> {count} images"),
                ratio(growth),
            )
            .target("independent of the count (<= 1.10 x)", growth <= 1.10);
    }
    mock.shutdown().await;
    Ok(())
}

async fn measure_one(
    ctx: &mut Ctx,
    mock: &glance::Handle,
    facade: &Facade,
    count: usize,
    environment: &str,
    page_size: u32,
) -> Result<(), String> {
    let mut first_bytes = Vec::new();
    let mut totals = Vec::new();
    let mut upstream = Vec::new();
    let mut pages = 0;
    let mut cpu = Vec::new();
    for _ in 0..ctx.plan.list_repeats {
        let (sum, page_count, images) = upstream_pages(ctx, &mock.url(), environment, page_size).await?;
        if images != count {
            return Err(format!("the mock listed {images} images, not {count}"));
        }
        pages = page_count;
        upstream.push(sum.as_secs_f64() * 1000.0);
        let cpu_before = facade.cpu_time()?;
        let (first_byte, total, images) = facade_list(ctx, facade, environment).await?;
        cpu.push(facade.cpu_time()?.since(cpu_before).total().as_secs_f64() * 1000.0);
        if images != count {
            return Err(format!("the facade listed {images} images, not {count}"));
        }
        first_bytes.push(first_byte.as_secs_f64() * 1000.0);
        totals.push(total.as_secs_f64() * 1000.0);
    }
    let upstream = median(&mut upstream);
    let total = median(&mut totals);
    let first_byte = median(&mut first_bytes);
    let cpu = median(&mut cpu);
    let repeats = ctx.plan.list_repeats;
    let report = &mut ctx.report;
    report
        .row(PART, format!("time to first byte, {count} images"), ms(first_byte))
        .compared(format!("median of {repeats}"));
    report
        .row(
            PART,
            format!("upstream page times summed, {count} images ({pages} pages)"),
            ms(upstream),
        )
        .compared("pages fetched one after another straight from the mock");
    let over = total / upstream;
    report
        .row(
            PART,
            format!("total time through the facade, {count} images"),
            ms(total),
        )
        // The list's time target is judged against real Glance (part 7):
        // here the mock, the client and the facade share two cores.
        .compared(format!(
            "{} of the upstream page times; the facade used {} of CPU",
            ratio(over),
            ms(cpu)
        ));
    Ok(())
}
