//! Part 4: idle RSS, RSS with many open client connections, RSS while
//! upstream answers are huge and after, binary size.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;
use crate::load::Mode;
use crate::procs::Facade;
use crate::report::mib;
use crate::show::record_image;
use crate::upstream::{Recorded, StaticUpstream};

const PART: &str = "4 Memory and size";

/// Sends one request on a kept-alive connection and reads the whole answer;
/// returns the status.
async fn one_request(stream: &mut TcpStream, request: &[u8]) -> Result<u16, String> {
    stream.write_all(request).await.map_err(|e| e.to_string())?;
    let mut buffer = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("connection closed mid-answer".into());
        }
        buffer.extend_from_slice(&chunk[..read]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        if buffer.len() >= end + 4 + length {
            return Ok(status);
        }
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<(), String> {
    let (recorded, id) = record_image(ctx, false).await?;
    let upstream = StaticUpstream::start(recorded).await.map_err(|e| e.to_string())?;
    let facade = ctx
        .facade("memory", &trusted_namespace(&upstream.url(), ctx.plan.page_size))
        .await?;
    let outcome = measure(ctx, &facade, &id).await;
    facade.stop().await;
    outcome?;
    huge_answers(ctx).await?;
    binary_size(ctx);
    Ok(())
}

/// `plan.huge_answers` shows at once, each answered by the upstream with a
/// valid image of `plan.huge_answer_bytes` (a custom property pads it; the
/// Alliance answer stays small): the facade's peak RSS, which statuses the
/// clients got, and its RSS once idle again.
async fn huge_answers(ctx: &mut Ctx) -> Result<(), String> {
    let (count, bytes) = (ctx.plan.huge_answers, ctx.plan.huge_answer_bytes);
    let id = "0d0d0d0d-0000-4000-8000-000000000001";
    let image = format!(
        r#"{{"id": "{id}", "name": "huge", "owner": "{ENV}", "visibility": "private", "status": "active", "padding": ""#
    );
    let mut body = image.into_bytes();
    body.resize(bytes.saturating_sub(2), b'x');
    body.extend_from_slice(b"\"}");
    let upstream = StaticUpstream::start(Recorded {
        body: body.into(),
        request_id: "req-0d0d0d0d-0000-4000-8000-000000000001".into(),
    })
    .await
    .map_err(|e| e.to_string())?;
    let facade = ctx
        .facade("memory-huge", &trusted_namespace(&upstream.url(), ctx.plan.page_size))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = facade.memory()?;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..count {
        let request = with_headers(
            ctx.client.get(format!("{}/images/{id}", facade.url())),
            &alliance_headers(ENV),
        );
        requests.spawn(async move { request.send().await.map(|response| response.status().as_u16()) });
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    while let Some(status) = requests.join_next().await {
        let status = match status.map_err(|e| e.to_string())? {
            Ok(status) => status.to_string(),
            Err(_) => "no answer".into(),
        };
        *statuses.entry(status).or_default() += 1;
    }
    let done = facade.memory()?;
    tokio::time::sleep(ctx.plan.settle).await;
    let settled = facade.memory()?;
    facade.stop().await;
    let statuses: Vec<String> = statuses.iter().map(|(status, n)| format!("{n} x {status}")).collect();
    ctx.report
        .row(
            PART,
            format!(
                "peak RSS, {count} shows at once of {} upstream answers",
                mib(bytes as u64 / 1024)
            ),
            mib(done.peak_kib),
        )
        .compared(format!(
            "{}; idle before {}, right after {}",
            statuses.join(", "),
            mib(fresh.rss_kib),
            mib(done.rss_kib)
        ));
    ctx.report
        .row(
            PART,
            format!("RSS {} s after those answers", ctx.plan.settle.as_secs_f64()),
            mib(settled.rss_kib),
        )
        .compared(format!("idle before {}", mib(fresh.rss_kib)));
    Ok(())
}

async fn measure(ctx: &mut Ctx, facade: &Facade, id: &str) -> Result<(), String> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = facade.memory()?;
    // Some load, then quiet long enough for pooled upstream connections to
    // be dropped (1.5 s idle timeout).
    let headers = alliance_headers(ENV);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    ctx.load_tool
        .run(
            &format!("{}/images/{id}", facade.url()),
            &headers,
            Mode::Throughput {
                connections: ctx.plan.connections,
            },
            ctx.plan.load.min(Duration::from_secs(2)),
            None,
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_load = facade.memory()?;
    ctx.report
        .row(PART, "idle RSS, just started", mib(fresh.rss_kib))
        .target("<= 16 MiB", fresh.rss_kib <= 16 * 1024);
    ctx.report
        .row(PART, "idle RSS, after a load run", mib(after_load.rss_kib))
        .compared(format!("peak during the load run {}", mib(after_load.peak_kib)))
        .target("<= 16 MiB", after_load.rss_kib <= 16 * 1024);

    let count = ctx.plan.open_connections;
    let request = format!(
        "GET /images/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Target-Ns: {NAMESPACE}\r\nX-Environment-Id: {ENV}\r\n\r\n",
        facade.port
    );
    let mut connections = Vec::with_capacity(count);
    let mut failures = 0;
    for batch in 0..count.div_ceil(100) {
        let mut opening = tokio::task::JoinSet::new();
        for _ in (batch * 100)..((batch + 1) * 100).min(count) {
            let request = request.clone();
            let port = facade.port;
            opening.spawn(async move {
                let mut stream = TcpStream::connect(("127.0.0.1", port))
                    .await
                    .map_err(|e| e.to_string())?;
                let status = one_request(&mut stream, request.as_bytes()).await?;
                Ok::<_, String>((stream, status))
            });
        }
        while let Some(opened) = opening.join_next().await {
            match opened.map_err(|e| e.to_string())? {
                Ok((stream, 200)) => connections.push(stream),
                Ok((stream, _)) => {
                    failures += 1;
                    connections.push(stream);
                }
                Err(_) => failures += 1,
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let open = facade.memory()?;
    let opened = connections.len();
    drop(connections);
    ctx.report
        .row(
            PART,
            format!("RSS with {count} open client connections (each past one request)"),
            mib(open.rss_kib),
        )
        .compared(format!(
            "{opened} connections open, {failures} failed; {} per connection over idle",
            kib_per(open.rss_kib.saturating_sub(after_load.rss_kib), opened)
        ));
    Ok(())
}

fn kib_per(kib: u64, count: usize) -> String {
    if count == 0 {
        return "-".into();
    }
    format!("{:.1} KiB", kib as f64 / count as f64)
}

fn binary_size(ctx: &mut Ctx) {
    let size = std::fs::metadata(&ctx.facade_bin).map(|m| m.len()).unwrap_or(0);
    let stripped_path = ctx.dir.join("alliance-glance.stripped");
    let stripped = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped_path)
        .arg(&ctx.facade_bin)
        .status()
        .ok()
        .filter(|status| status.success())
        .and_then(|_| std::fs::metadata(&stripped_path).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&stripped_path);
    ctx.report
        .row(PART, "binary size (as built)", mib(size / 1024))
        .compared(match stripped {
            Some(stripped) => format!("{} stripped", mib(stripped / 1024)),
            None => "strip not available".into(),
        });
}
