//! The replicas under load, behind HAProxy retrying nothing: a rolling
//! restart and reloads lose no request; one rate is the replicas' together;
//! memcached lost and back fails no request (or refuses with 503 while
//! gone, when rates fail closed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::fleet::{Balancing, Replica, Tally, load, mock_glance, three, wait_readyz, wait_seen_by_haproxy};
use crate::support::TempDir;
use crate::support::memcached::Memcached;

/// Runs `during` while `connections` clients load `port`, then stops them.
async fn under_load<F: std::future::Future<Output = ()>>(port: u16, connections: usize, during: F) -> Arc<Tally> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tally, workers) = load(port, connections, "ccsr1", "/images", Arc::clone(&stop));
    during.await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_and_reloads_under_load_lose_no_request() {
    let (_glance, namespace) = mock_glance("").await;
    let dir = TempDir::new();
    let tables = format!("drain_secs = 2\nshutdown_grace_secs = 5\n{namespace}");
    let (mut replicas, haproxy) = three(&dir, "r", &tables, Balancing::Http).await;
    let restarts = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for replica in &mut replicas {
            replica.stop().await;
            replica.resume();
            wait_seen_by_haproxy(replica).await;
        }
        for replica in &replicas {
            replica.signal("HUP");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let tally = under_load(haproxy.port, 32, restarts).await;
    let summary = tally.summary();
    assert_eq!(tally.count(&tally.failed), 0, "{summary}");
    assert_eq!(
        tally.count(&tally.other_status) + tally.count(&tally.unavailable),
        0,
        "{summary}"
    );
    assert!(tally.count(&tally.ok) > 1_000, "{summary}");
    eprintln!("rolling restart of 3 under 32 connections: {summary}");
}

/// The replica's shared-cache counters, for the test's output.
async fn shared_cache_events(replica: &Replica) -> String {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", replica.admin))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| line.starts_with("alliance_glance_shared_cache_events_total"))
        .map(|line| line.trim_start_matches("alliance_glance_shared_cache_events_total"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Requests of one environment admitted in ten seconds of a load heavier
/// than its rate, at `port`.
async fn admitted_in_ten_seconds(port: u16) -> (u64, String) {
    let tally = under_load(port, 8, tokio::time::sleep(Duration::from_secs(10))).await;
    let summary = tally.summary();
    assert_eq!(
        tally.count(&tally.failed) + tally.count(&tally.other_status),
        0,
        "{summary}"
    );
    (tally.count(&tally.ok), summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_admit_what_one_process_admits() {
    const RATE: &str = "[namespaces.ccsr1.limits]\nenvironment_rate_per_sec = 40\n";
    let (_glance, namespace) = mock_glance(RATE).await;
    let dir = TempDir::new();
    // One process, its own bucket.
    let alone = Replica::start(&dir, "alone", &namespace);
    wait_readyz(&alone).await;
    let (one, one_summary) = admitted_in_ten_seconds(alone.port).await;
    drop(alone);
    // Three behind HAProxy, one bucket in memcached.
    let memcached = Memcached::start();
    let tables = format!("{namespace}\n{}", memcached.table(""));
    let (replicas, haproxy) = three(&dir, "r", &tables, Balancing::Http).await;
    let (three, three_summary) = admitted_in_ten_seconds(haproxy.port).await;
    for replica in &replicas {
        eprintln!("{}: {}", replica.port, shared_cache_events(replica).await);
    }
    let ratio = three as f64 / one as f64;
    eprintln!(
        "rate 40/s over 10 s: one process {one} ({one_summary}); three replicas {three} ({three_summary}); {ratio:.3}x"
    );
    assert!((0.9..=1.1).contains(&ratio), "one {one}, three {three}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_lost_under_load_fails_no_request() {
    const RATE: &str = "[namespaces.ccsr1.limits]\nenvironment_rate_per_sec = 100000\n";
    let (_glance, namespace) = mock_glance(RATE).await;
    for fail_closed in [false, true] {
        let dir = TempDir::new();
        let mut memcached = Memcached::start();
        let shared = memcached.table(&format!("fail_closed = {fail_closed}\ndead_retry_secs = 1"));
        let tables = format!("{namespace}\n{shared}");
        let (_replicas, haproxy) = three(&dir, "r", &tables, Balancing::Http).await;
        let lost_and_back = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            memcached.stop();
            tokio::time::sleep(Duration::from_secs(2)).await;
            memcached.resume();
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let tally = under_load(haproxy.port, 16, lost_and_back).await;
        let summary = tally.summary();
        eprintln!("memcached lost for 2 s under load, fail_closed = {fail_closed}: {summary}");
        assert_eq!(
            tally.count(&tally.failed) + tally.count(&tally.other_status),
            0,
            "{summary}"
        );
        if fail_closed {
            assert!(
                tally.count(&tally.unavailable) > 0,
                "503 while memcached is gone: {summary}"
            );
        } else {
            assert_eq!(tally.count(&tally.unavailable), 0, "{summary}");
        }
        // Back: every replica serves from the shared buckets again.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let after = under_load(haproxy.port, 4, tokio::time::sleep(Duration::from_millis(500))).await;
        assert_eq!(after.count(&after.unavailable), 0, "{}", after.summary());
        assert!(after.count(&after.ok) > 0);
    }
}
