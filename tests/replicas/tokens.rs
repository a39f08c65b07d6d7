//! Three replicas in keystone mode behind HAProxy, sharing a memcached,
//! against real Keystone 30 (through a proxy that counts what it is asked)
//! and Glance 33 (found in the catalog): environments used through all
//! three cost Keystone one project token each, and a replica restarted asks
//! Keystone for no token the others hold.

use std::sync::atomic::Ordering;

use crate::fleet::{Balancing, three, wait_readyz};
use crate::support::TempDir;
use crate::support::counting_proxy::counting_proxy;
use crate::support::memcached::Memcached;
use crate::support::real_env::RealEnv;

async fn list(client: &reqwest::Client, url: &str, environment: &str) -> u16 {
    client
        .get(format!("{url}/images"))
        .header("X-Target-Ns", "keystone")
        .header("X-Environment-Id", environment)
        .send()
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs real OpenStack: scripts/test.sh starts it"]
async fn real_keystone_tokens_cost_one_per_environment_for_three_replicas() {
    let env = RealEnv::load();
    let keystone = url::Url::parse(env.get("OS_KEYSTONE_URL")).expect("keystone URL");
    let (proxy, counts) = counting_proxy(keystone.origin().ascii_serialization()).await;
    let dir = TempDir::new();
    let password = dir.write(
        "password",
        &std::fs::read_to_string(env.get("OS_SERVICE_PASSWORD_FILE")).expect("password file"),
    );
    let memcached = Memcached::start();
    let tables = format!(
        "drain_secs = 0\n[namespaces.keystone]\nauth = {{ type = \"keystone\", auth_url = \"{proxy}{path}\", username = \"{user}\", user_domain_id = \"{domain}\", password_file = \"{password}\" }}\n{shared}",
        path = keystone.path(),
        user = env.get("OS_SERVICE_USER"),
        domain = env.get("OS_SERVICE_USER_DOMAIN"),
        password = password.display(),
        shared = memcached.table(""),
    );
    let (mut replicas, haproxy) = three(&dir, "k", &tables, Balancing::Http).await;
    let client = crate::fleet::client_from("127.0.0.1");
    let environments = [env.get("OS_PROJECT_ALPHA"), env.get("OS_PROJECT_BETA")];
    let before = counts.token_requests.load(Ordering::SeqCst);
    // Each environment through each replica (round robin), several times.
    for _ in 0..3 {
        for environment in environments {
            for _ in 0..3 {
                assert_eq!(list(&client, &haproxy.url(), environment).await, 200);
            }
        }
    }
    let asked = counts.token_requests.load(Ordering::SeqCst) - before;
    // One project token per environment; one password check in all (the
    // unscoped token the readiness probes of the three asked for, once).
    assert_eq!(
        (asked, counts.password_checks.load(Ordering::SeqCst)),
        (environments.len(), 1),
        "one project token per environment and one password check, for three replicas"
    );

    // A restarted replica asks Keystone for nothing the others hold.
    let before = counts.requests.load(Ordering::SeqCst);
    replicas[0].stop().await;
    replicas[0].resume();
    wait_readyz(&replicas[0]).await;
    for environment in environments {
        assert_eq!(list(&client, &replicas[0].url(), environment).await, 200);
    }
    assert_eq!(
        counts.requests.load(Ordering::SeqCst) - before,
        0,
        "the restarted replica took every token from memcached"
    );
}
