//! What requests with random environment ids cost a real Keystone 30 - not
//! something a client sees, so not a scenario: the facade reaches Keystone
//! through a proxy that counts the requests and the password checks among
//! them. (The contract tests measure the same against the mock Keystone.)

use std::sync::atomic::Ordering;

use reqwest::Method;

use crate::support::counting_proxy::counting_proxy;
use crate::support::real_env::RealEnv;
use crate::support::{TempFile, alliance_call, client, send, start_facade};

pub async fn random_environments_cost_one_password_check() {
    let env = RealEnv::load();
    let keystone = url::Url::parse(env.get("OS_KEYSTONE_URL")).expect("keystone URL");
    let origin = keystone.origin().ascii_serialization();
    let (proxy, counts) = counting_proxy(origin).await;
    let password =
        TempFile::with_contents(&std::fs::read_to_string(env.get("OS_SERVICE_PASSWORD_FILE")).expect("password file"));
    let config = alliance_glance::config::Config::parse(&format!(
        r#"[namespaces.keystone]
        auth = {{ type = "keystone", auth_url = "{proxy}{path}", username = "{user}", user_domain_id = "{domain}", password_file = "{password}", new_environments_per_sec = 2, new_environments_burst = 10 }}
        "#,
        path = keystone.path(),
        user = env.get("OS_SERVICE_USER"),
        domain = env.get("OS_SERVICE_USER_DOMAIN"),
        password = password.0.display(),
    ))
    .expect("config");
    let facade = start_facade(&config).await;
    let client = client();
    let call = |environment: &str| alliance_call(&client, &facade, "keystone", environment, Method::GET, "/images");
    // A project with a role: the one password check, then its re-scope.
    assert_eq!(send(call(env.get("OS_PROJECT_ALPHA"))).await.status, 200);
    assert_eq!(counts.password_checks.load(Ordering::SeqCst), 1);
    // A project without a role: a re-scope Keystone refuses with 401, and
    // the unscoped token's validation of itself (200), no password check.
    let before = counts.requests.load(Ordering::SeqCst);
    send(call(env.get("OS_PROJECT_GAMMA"))).await.error_message(403);
    assert_eq!(counts.requests.load(Ordering::SeqCst) - before, 2);
    let before = counts.requests.load(Ordering::SeqCst);
    let answers = futures_util::future::join_all((0..1000).map(|_| {
        let environment = uuid::Uuid::new_v4().simple().to_string();
        let request = call(&environment);
        async move { send(request).await.status }
    }))
    .await;
    let refused = answers.iter().filter(|status| **status == 403).count();
    let limited = answers.iter().filter(|status| **status == 503).count();
    assert_eq!(refused + limited, 1000, "{answers:?}");
    assert!(
        refused >= 8,
        "the burst (less alpha's and gamma's) is served: {refused}"
    );
    assert_eq!(
        counts.password_checks.load(Ordering::SeqCst),
        1,
        "the unscoped token was kept"
    );
    assert_eq!(
        counts.requests.load(Ordering::SeqCst) - before,
        2 * refused,
        "a re-scope and the unscoped token's validation per admitted environment"
    );
}
