//! Replicas sharing a memcached (`[shared_cache]`): Keystone tokens, refused
//! environments, callers' token validations and rates shared, against the
//! mock Keystone and Glance and the Debian memcached the test starts; and
//! memcached lost, or holding entries the deployment did not write.

use std::sync::Arc;
use std::time::Duration;

use async_memcached::{AsciiProtocol, Client};
use reqwest::Method;

use alliance_glance::app::App;
use alliance_glance::config::SecurityStrategy;
use alliance_glance::server::RunningServer;
use alliance_glance::shared_cache::protect::Protection;
use openstack_mock::keystone::{ALPHA, GAMMA};

use crate::support::memcached::Memcached;
use crate::support::*;

/// A replica: the facade of `harness.config` with its own process state.
struct Replica {
    app: Arc<App>,
    facade: RunningServer,
}

impl Replica {
    async fn start(harness: &KeystoneHarness) -> Self {
        let (app, facade) = start_app(&harness.config).await;
        Replica { app, facade }
    }

    async fn call(&self, harness: &KeystoneHarness, environment: &str) -> Answer {
        list(harness, &self.facade, environment).await
    }
}

async fn list(harness: &KeystoneHarness, facade: &RunningServer, environment: &str) -> Answer {
    send(alliance_call(
        &harness.client,
        facade,
        NAMESPACE,
        environment,
        Method::GET,
        "/images",
    ))
    .await
}

/// A counter of the shared cache's events in `app`'s metrics.
fn events(app: &App, event: &str) -> u64 {
    metric_value(
        app,
        &format!("alliance_glance_shared_cache_events_total{{event=\"{event}\"}}"),
    )
}

/// Keystone mode with `[shared_cache]` on `memcached` (and `shared` in its
/// table), `tables` before it.
async fn harness(memcached: &Memcached, shared: &str, tables: &str) -> KeystoneHarness {
    KeystoneHarness::start_with_tables(|options| options, "", &format!("{tables}\n{}", memcached.table(shared))).await
}

#[tokio::test]
async fn replicas_share_tokens_and_refusals_and_a_new_one_asks_keystone_nothing() {
    let memcached = Memcached::start();
    let harness = harness(&memcached, "", "").await;
    let first = Replica::start(&harness).await;
    assert_eq!(first.call(&harness, ENV_A).await.status, 200);
    // The unscoped token (one password check) and one re-scope.
    assert_eq!(harness.keystone.token_requests(), 2);

    let second = Replica::start(&harness).await;
    assert_eq!(second.call(&harness, ENV_A).await.status, 200);
    assert_eq!(
        harness.keystone.token_requests(),
        2,
        "the second replica took both tokens from memcached"
    );
    assert_eq!(second.call(&harness, ENV_B).await.status, 200);
    assert_eq!(
        (harness.keystone.token_requests(), harness.keystone.password_checks()),
        (3, 1),
        "a new environment: one re-scope of the shared unscoped token"
    );
    // A refused environment, learned by one replica, costs the other nothing.
    first.call(&harness, GAMMA).await.error_message(403);
    let after_refusal = harness.keystone.requests();
    second.call(&harness, GAMMA).await.error_message(403);
    assert_eq!(harness.keystone.requests(), after_refusal);

    // A replica started now (a restart) asks Keystone for nothing the others hold.
    let restarted = Replica::start(&harness).await;
    for environment in [ENV_A, ENV_B] {
        assert_eq!(restarted.call(&harness, environment).await.status, 200);
    }
    restarted.call(&harness, GAMMA).await.error_message(403);
    assert_eq!(harness.keystone.requests(), after_refusal);
    assert!(events(&restarted.app, "hit") >= 3);
    assert_eq!(events(&restarted.app, "rejected"), 0);

    // Entries hold no token in clear, and no key is a token.
    let mut raw = Client::new(format!("tcp://127.0.0.1:{}", memcached.port))
        .await
        .unwrap();
    let token = harness.glance.take_requests()[0]
        .header("x-auth-token")
        .unwrap()
        .to_owned();
    let mut values = 0;
    for key in all_keys(&mut raw).await {
        assert!(key.starts_with("ag1:") && !key.contains(&token), "{key}");
        let Some(value) = raw.get(&key).await.unwrap().and_then(|value| value.data) else {
            continue;
        };
        assert!(!value.windows(token.len()).any(|window| window == token.as_bytes()));
        values += 1;
    }
    assert!(values >= 2, "the tokens were there to look at");
}

/// Every key memcached holds (the metadump gives them URL-encoded).
async fn all_keys(raw: &mut Client) -> Vec<String> {
    let mut keys = Vec::new();
    let mut dump = raw.dump_keys().await.unwrap();
    while let Some(Ok(metadata)) = dump.next().await {
        let encoded = String::from_utf8_lossy(&metadata.key).into_owned();
        keys.push(
            percent_encoding::percent_decode_str(&encoded)
                .decode_utf8_lossy()
                .into_owned(),
        );
    }
    assert!(!keys.is_empty(), "memcached holds entries");
    keys
}

#[tokio::test]
async fn callers_token_validations_are_shared() {
    let memcached = Memcached::start();
    let harness = KeystoneHarness::start_with_tables(
        with_service_role_and_alice,
        &format!(", service_project_id = \"{SERVICE_PROJECT}\""),
        &format!(
            "[[callers]]\nname = \"users\"\nkeystone_token = true\nnamespaces = \"*\"\nenvironments = \"*\"\n{}",
            memcached.table("")
        ),
    )
    .await;
    let token = project_token(&harness.keystone.url(), ALICE, ALICE_PASSWORD, ALPHA).await;
    let replicas = [Replica::start(&harness).await, Replica::start(&harness).await];
    for replica in &replicas {
        let answer = send(
            alliance_call(
                &harness.client,
                &replica.facade,
                NAMESPACE,
                ALPHA,
                Method::GET,
                "/images",
            )
            .header("X-Auth-Token", &token),
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(
        harness.keystone.validations(),
        1,
        "the second replica took the first one's validation"
    );
}

#[tokio::test]
async fn memcached_lost_fails_no_request_and_is_used_again_when_back() {
    let mut memcached = Memcached::start();
    let harness = harness(&memcached, "dead_retry_secs = 1", "").await;
    memcached.stop();
    // A replica starting while memcached is gone: Keystone directly.
    let alone = Replica::start(&harness).await;
    for environment in [ENV_A, ENV_B] {
        assert_eq!(alone.call(&harness, environment).await.status, 200);
    }
    assert!(events(&alone.app, "error") >= 1);
    assert!(events(&alone.app, "fallback") >= 1);
    memcached.resume();
    // Once the failed server's rest is over, entries are stored again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let later = Replica::start(&harness).await;
    assert_eq!(later.call(&harness, ENV_A).await.status, 200);
    assert!(events(&later.app, "stored") >= 1, "stored again once memcached is back");
}

#[tokio::test]
async fn entries_written_otherwise_are_refused_and_counted() {
    let memcached = Memcached::start();
    let harness = harness(&memcached, "", "").await;
    let first = Replica::start(&harness).await;
    assert_eq!(first.call(&harness, ENV_A).await.status, 200);
    let tokens_before = harness.keystone.token_requests();
    // Every entry with a byte changed (an attacker, a broken memcached).
    let mut raw = Client::new(format!("tcp://127.0.0.1:{}", memcached.port))
        .await
        .unwrap();
    let keys = all_keys(&mut raw).await;
    assert!(!keys.is_empty());
    for key in &keys {
        // A lock may have gone since the listing.
        let Some(mut value) = raw.get(key).await.unwrap().and_then(|value| value.data) else {
            continue;
        };
        let last = value.len() - 1;
        value[last] ^= 0x40;
        raw.set(key, value.as_slice(), Some(600), None).await.unwrap();
    }
    let second = Replica::start(&harness).await;
    assert_eq!(second.call(&harness, ENV_A).await.status, 200);
    assert!(events(&second.app, "rejected") >= 1);
    assert!(
        harness.keystone.token_requests() > tokens_before,
        "a changed entry is never used: the replica asked Keystone"
    );
    // Entries sealed with another deployment's secret, under these keys: refused too.
    let ours = Protection::new(
        std::fs::read_to_string(&memcached.secret.0).unwrap().trim(),
        SecurityStrategy::Encrypt,
    );
    let theirs = Protection::new(
        "another deployment, another secret of 32+ chars",
        SecurityStrategy::Encrypt,
    );
    let third = Replica::start(&harness).await;
    assert_eq!(
        third.call(&harness, ENV_A).await.status,
        200,
        "stores good entries again"
    );
    let mut resealed = 0;
    for key in all_keys(&mut raw).await {
        let Some(value) = raw.get(&key).await.unwrap().and_then(|value| value.data) else {
            continue;
        };
        if let Some(payload) = ours.open(&key, &value) {
            raw.set(&key, theirs.seal(&key, &payload).as_slice(), Some(600), None)
                .await
                .unwrap();
            resealed += 1;
        }
    }
    assert!(resealed > 0);
    let tokens_before = harness.keystone.token_requests();
    let fourth = Replica::start(&harness).await;
    assert_eq!(fourth.call(&harness, ENV_A).await.status, 200);
    assert!(events(&fourth.app, "rejected") >= 1);
    assert_eq!(events(&fourth.app, "hit"), 0);
    assert!(harness.keystone.token_requests() > tokens_before);
}

#[tokio::test]
async fn rates_are_the_replicas_together_and_fail_closed_when_asked() {
    let memcached = Memcached::start();
    let harness = harness(
        &memcached,
        "",
        "[namespaces.ccsr1.limits]\nenvironment_rate_per_sec = 1\nenvironment_burst = 6\n",
    )
    .await;
    let replicas = [
        Replica::start(&harness).await,
        Replica::start(&harness).await,
        Replica::start(&harness).await,
    ];
    let mut admitted = 0;
    for round in 0..8 {
        for replica in &replicas {
            let answer = replica.call(&harness, ENV_A).await;
            match answer.status {
                200 => admitted += 1,
                429 => assert!(answer.header("retry-after").is_some(), "round {round}"),
                other => panic!("status {other}"),
            }
        }
    }
    // One bucket of 6 for the three (and a token back within the test, at 1/s).
    assert!((6..=8).contains(&admitted), "{admitted} admitted by three replicas");
}

#[tokio::test]
async fn rates_fail_closed_when_asked_and_open_by_default() {
    let rated = "[namespaces.ccsr1.limits]\nenvironment_rate_per_sec = 100\n";
    for fail_closed in [false, true] {
        let mut memcached = Memcached::start();
        let setting = format!("fail_closed = {fail_closed}\ndead_retry_secs = 1");
        let harness = harness(&memcached, &setting, rated).await;
        assert_eq!(list(&harness, &harness.facade, ENV_A).await.status, 200);
        memcached.stop();
        let answer = list(&harness, &harness.facade, ENV_B).await;
        let clouds = harness.app.clouds();
        let cloud = Arc::clone(clouds.get(NAMESPACE).unwrap());
        let ready = match clouds.shared_cache_problem().await {
            Some(problem) => Err(problem),
            None => cloud.check_ready("req-test").await,
        };
        if fail_closed {
            assert_eq!(
                answer.error_message(503),
                "the rates shared by the replicas cannot be checked now; retry later"
            );
            assert_eq!(answer.header("retry-after"), Some("1"));
            assert!(ready.unwrap_err().contains("memcached"));
        } else {
            assert_eq!(answer.status, 200, "the replica's own bucket");
            assert_eq!(ready, Ok(()));
        }
    }
}

/// `[shared_cache]` on `memcached`, with its secret.
fn cache_config(memcached: &Memcached) -> alliance_glance::config::SharedCacheConfig {
    alliance_glance::config::SharedCacheConfig {
        servers: vec![format!("127.0.0.1:{}", memcached.port)],
        secret_file: Some(memcached.secret.0.clone()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_of_many_replicas_at_once_grant_one_buckets_tokens() {
    use alliance_glance::config::Rate;
    use alliance_glance::metrics::Metrics;
    use alliance_glance::shared_cache::{Lease, SharedCache};
    use std::num::NonZeroU32;

    let memcached = Memcached::start();
    let config = cache_config(&memcached);
    let rate = Rate {
        per_sec: NonZeroU32::new(10).unwrap(),
        burst: NonZeroU32::new(20).unwrap(),
    };
    // Three replicas, eight requests each at once, for a second.
    let replicas: Vec<_> = (0..3)
        .map(|_| SharedCache::from_config(&config, &Metrics::disabled()).unwrap())
        .collect();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for replica in &replicas {
        for _ in 0..8 {
            let replica = Arc::clone(replica);
            tasks.push(tokio::spawn(async move {
                let mut granted = 0;
                while started.elapsed() < Duration::from_secs(1) {
                    match replica.lease(&[b"rate", b"test", b"e"], rate, 2).await {
                        Lease::Granted(tokens) => granted += tokens,
                        Lease::Refused { .. } => tokio::time::sleep(Duration::from_millis(5)).await,
                        Lease::Unavailable => panic!("memcached is there"),
                    }
                }
                granted
            }));
        }
    }
    let mut granted = 0;
    for task in tasks {
        granted += task.await.unwrap();
    }
    // The burst, and ten a second for the second.
    assert!((20..=31).contains(&granted), "{granted} tokens granted");
}

/// A replica that waited in vain for another's fetch (3 s) fetches itself
/// (and fails here, so stores nothing) but leaves the holder's lock: a
/// third replica still waits for the holder's value instead of fetching too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_waited_in_vain_leaves_the_holders_lock() {
    use alliance_glance::metrics::Metrics;
    use alliance_glance::shared_cache::SharedCache;
    use std::sync::atomic::{AtomicU32, Ordering};

    let memcached = Memcached::start();
    let config = cache_config(&memcached);
    let replica = || SharedCache::from_config(&config, &Metrics::disabled()).unwrap();
    let fetches = Arc::new(AtomicU32::new(0));
    let fetch_shared = |cache: Arc<SharedCache>, took: Duration, value: Result<u8, ()>| {
        let fetches = Arc::clone(&fetches);
        async move {
            cache
                .fetch_shared(
                    &[b"test", b"lock"],
                    |payload| payload.first().copied(),
                    |value| Some((vec![*value], Duration::from_secs(60))),
                    || async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(took).await;
                        value
                    },
                )
                .await
        }
    };
    // The holder's fetch takes 4.5 s (its lock lasts 5 s).
    let holder = tokio::spawn(fetch_shared(replica(), Duration::from_millis(4500), Ok(1)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Waits 3 s in vain, then fetches itself.
    assert_eq!(fetch_shared(replica(), Duration::ZERO, Err(())).await, Err(()));
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // The holder's lock is still there: this one waits for its value.
    assert_eq!(fetch_shared(replica(), Duration::ZERO, Ok(3)).await, Ok(1));
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "the third replica fetched too");
    assert_eq!(holder.await.unwrap(), Ok(1));
}
