//! Part 7: against real Glance 33 (trusted flavor, one gunicorn worker, as
//! scripts/openstack/up.sh starts it for the test command):
//! - `GET /images` of every image of a project through the facade, against
//!   a client paging Glance v2 directly with the same page size, one page
//!   after another (what openstacksdk's `images()` generator does);
//! - `GET /images/{id}` throughput and latency through the facade against
//!   Glance directly, at 1 and 8 connections.
//!
//! The images are created in a project of their own and deleted at the end.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::common::*;
use crate::load::Mode;
use crate::report::{mib, ms, ratio, rps, signed_ms};

const PART: &str = "7 real Glance 33";

/// Creates run this many at once (Glance serves 4 threads); deletes run one
/// after another, as concurrent ones keep colliding on SQLite's lock.
const SEEDING_CONCURRENCY: usize = 4;

/// Glance on SQLite answers 500 ("database is locked") when two writes
/// meet; the seeding client tries a write this many times.
const WRITE_ATTEMPTS: usize = 5;

#[derive(Deserialize)]
struct GlancePage {
    images: Vec<IgnoredAny>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// `KEY=value` lines of scripts/openstack/up.sh's env file.
pub fn read_env(path: &Path) -> Result<HashMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect())
}

pub async fn run(ctx: &mut Ctx, env_file: &Path) -> Result<(), String> {
    let env = read_env(env_file)?;
    let glance = env
        .get("OS_GLANCE_TRUSTED_URL")
        .ok_or("the env file names no trusted Glance (OS_GLANCE_TRUSTED_URL)")?
        .clone();
    let project = uuid::Uuid::new_v4().simple().to_string();
    let count = ctx.plan.real_images;
    let started = Instant::now();
    let ids = seed(ctx, &glance, &project, count).await?;
    eprintln!(
        "    created {count} images in real Glance in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let outcome = measure(ctx, &glance, &project, &ids).await;
    let started = Instant::now();
    let deleted = delete_all(ctx, &glance, &project, &ids).await;
    eprintln!("    deleted them in {:.1} s", started.elapsed().as_secs_f64());
    outcome.and(deleted)
}

async fn measure(ctx: &mut Ctx, glance: &str, project: &str, ids: &[String]) -> Result<(), String> {
    let page_size = ctx.plan.real_page_size;
    let facade = ctx.facade("real", &trusted_namespace(glance, page_size)).await?;
    let outcome = async {
        list_rows(ctx, &facade, glance, project, ids.len(), page_size).await?;
        let id = ids.first().ok_or("no image was created")?;
        show_rows(ctx, &facade, glance, project, id).await
    }
    .await;
    facade.stop().await;
    outcome
}

/// The list, alternating direct paging and the facade, medians of the rounds.
async fn list_rows(
    ctx: &mut Ctx,
    facade: &crate::procs::Facade,
    glance: &str,
    project: &str,
    count: usize,
    page_size: u32,
) -> Result<(), String> {
    let mut direct_times = Vec::new();
    let mut facade_times = Vec::new();
    let mut pages = 0;
    for round in 0..ctx.plan.rounds {
        let (direct, direct_pages, direct_images) = page_directly(ctx, glance, project, page_size).await?;
        let (through, images) = list_through(ctx, facade, project).await?;
        if direct_images != count || images != count {
            return Err(format!(
                "expected {count} images, Glance listed {direct_images}, the facade {images}"
            ));
        }
        eprintln!(
            "    round {} list of {count}: direct {:.1} ms, facade {:.1} ms",
            round + 1,
            direct.as_secs_f64() * 1e3,
            through.as_secs_f64() * 1e3
        );
        pages = direct_pages;
        direct_times.push(direct.as_secs_f64() * 1e3);
        facade_times.push(through.as_secs_f64() * 1e3);
    }
    let direct = median(&mut direct_times);
    let through = median(&mut facade_times);
    let peak = facade.memory()?.peak_kib;
    let report = &mut ctx.report;
    report
        .row(
            PART,
            format!("GET /images of {count} images, client paging Glance directly"),
            ms(direct),
        )
        .compared(format!(
            "{pages} pages of {page_size}, one after another; median of {}",
            ctx.plan.rounds
        ));
    report
        .row(
            PART,
            format!("GET /images of {count} images through the facade"),
            ms(through),
        )
        .compared(format!("facade peak RSS {}", mib(peak)));
    report
        .row(PART, "facade / direct list time", ratio(through / direct))
        .target("<= 1.00 x", through <= direct);
    Ok(())
}

/// Every page of the project's images, one after another, as a client of
/// Glance v2 reads them: the total time, pages and images.
async fn page_directly(
    ctx: &Ctx,
    glance: &str,
    project: &str,
    page_size: u32,
) -> Result<(Duration, usize, usize), String> {
    let started = Instant::now();
    let mut path = format!("/v2/images?limit={page_size}");
    let (mut pages, mut images) = (0, 0);
    loop {
        let response = with_headers(ctx.client.get(format!("{glance}{path}")), &trusted_headers(project))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("Glance answered {} to {path}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let page: GlancePage = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        pages += 1;
        images += page.images.len();
        match page.next {
            Some(next) => path = next,
            None => break,
        }
    }
    Ok((started.elapsed(), pages, images))
}

/// The whole list through the facade, read to the end and parsed.
async fn list_through(ctx: &Ctx, facade: &crate::procs::Facade, project: &str) -> Result<(Duration, usize), String> {
    #[derive(Deserialize)]
    struct AllianceList {
        images: Vec<IgnoredAny>,
    }
    let started = Instant::now();
    let response = get_facade_list(ctx, facade, project).await?;
    let body = response.bytes().await.map_err(|e| format!("list body: {e}"))?;
    let list: Vec<AllianceList> = serde_json::from_slice(&body).map_err(|e| format!("list body: {e}"))?;
    Ok((started.elapsed(), list.first().map_or(0, |list| list.images.len())))
}

/// `GET /images/{id}`, directly and through the facade, at 1 and 8
/// connections (closed loop), alternating.
async fn show_rows(
    ctx: &mut Ctx,
    facade: &crate::procs::Facade,
    glance: &str,
    project: &str,
    id: &str,
) -> Result<(), String> {
    for connections in [1, 8] {
        let targets = [
            Target {
                name: "Glance directly".into(),
                url: format!("{glance}/v2/images/{id}"),
                headers: trusted_headers(project),
                ca_file: None,
            },
            Target {
                name: "facade".into(),
                url: format!("{}/images/{id}", facade.url()),
                headers: alliance_headers(project),
                ca_file: None,
            },
        ];
        let mut runs: Vec<Vec<crate::load::Load>> = vec![Vec::new(), Vec::new()];
        for _ in 0..ctx.plan.rounds {
            for (index, target) in targets.iter().enumerate() {
                let headers: Vec<(&str, &str)> = target.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let load = ctx
                    .load_tool
                    .run(
                        &target.url,
                        &headers,
                        Mode::Throughput { connections },
                        ctx.plan.load,
                        None,
                    )
                    .await?;
                if load.non_200 > 0 {
                    return Err(format!("{}: {} answers not 200", target.name, load.non_200));
                }
                runs[index].push(load);
            }
        }
        let direct = median_load(&runs[0]);
        let through = median_load(&runs[1]);
        let report = &mut ctx.report;
        report
            .row(
                PART,
                format!("GET /images/{{id}} at {connections} connection(s), Glance directly"),
                format!(
                    "{} ; p50 {} p99 {}",
                    rps(direct.rps),
                    ms(direct.p50_ms),
                    ms(direct.p99_ms)
                ),
            )
            .compared(format!(
                "closed loop, {} x {:.1} s, median",
                ctx.plan.rounds,
                ctx.plan.load.as_secs_f64()
            ));
        report
            .row(
                PART,
                format!("GET /images/{{id}} at {connections} connection(s), facade"),
                format!(
                    "{} ; p50 {} p99 {}",
                    rps(through.rps),
                    ms(through.p50_ms),
                    ms(through.p99_ms)
                ),
            )
            .compared(format!(
                "{} of Glance's throughput; {} at p50, {} at p99",
                ratio(through.rps / direct.rps),
                signed_ms(through.p50_ms - direct.p50_ms),
                signed_ms(through.p99_ms - direct.p99_ms)
            ));
    }
    Ok(())
}

/// Creates `count` private images owned by `project`; their ids.
pub async fn seed(ctx: &Ctx, glance: &str, project: &str, count: usize) -> Result<Vec<String>, String> {
    let width = count.to_string().len();
    let creations = futures_util::stream::iter(0..count)
        .map(|index| async move {
            let body = format!(
                r#"{{"name": "bench-{index:0width$}", "disk_format": "raw", "container_format": "bare", "visibility": "private"}}"#
            );
            let response = write(|| {
                with_headers(ctx.client.post(format!("{glance}/v2/images")), &trusted_headers(project))
                    .header("Content-Type", "application/json")
                    .body(body.clone())
            })
            .await?;
            if response.status() != 201 {
                return Err(format!("Glance answered {} to a create", response.status()));
            }
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            let created: Created = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            Ok(created.id)
        })
        .buffer_unordered(SEEDING_CONCURRENCY);
    creations
        .collect::<Vec<Result<String, String>>>()
        .await
        .into_iter()
        .collect()
}

pub async fn delete_all(ctx: &Ctx, glance: &str, project: &str, ids: &[String]) -> Result<(), String> {
    let deletions = futures_util::stream::iter(ids)
        .map(|id| async move {
            let response = with_headers(
                ctx.client.delete(format!("{glance}/v2/images/{id}")),
                &trusted_headers(project),
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
            match response.status().as_u16() {
                204 | 404 => Ok(()),
                status => Err(format!("Glance answered {status} to a delete")),
            }
        })
        .buffered(1);
    deletions
        .collect::<Vec<Result<(), String>>>()
        .await
        .into_iter()
        .collect()
}

/// Sends a write, again while Glance answers 500 (see [`WRITE_ATTEMPTS`]).
async fn write(request: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    let mut attempt = 1;
    loop {
        let response = request().send().await.map_err(|e| e.to_string())?;
        if response.status() != 500 || attempt == WRITE_ATTEMPTS {
            return Ok(response);
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(20 * attempt as u64)).await;
    }
}
