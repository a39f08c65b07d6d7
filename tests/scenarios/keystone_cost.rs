//! What requests with random environment ids cost a real Keystone 30 - not
//! something a client sees, so not a scenario: the facade reaches Keystone
//! through a proxy that counts the requests and the password checks among
//! them. (The contract tests measure the same against the mock Keystone.)

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest::Method;

use crate::support::real_env::RealEnv;
use crate::support::{TempFile, alliance_call, client, send, start_facade};

#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    password_checks: AtomicUsize,
}

/// A proxy on loopback to `target` (an origin, no path) that counts.
async fn counting_proxy(target: String) -> (String, Arc<Counts>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let counts = Arc::new(Counts::default());
    let (counted, upstream) = (Arc::clone(&counts), client());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (counts, upstream, target) = (Arc::clone(&counted), upstream.clone(), target.clone());
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let (counts, upstream, target) = (Arc::clone(&counts), upstream.clone(), target.clone());
                async move { Ok::<_, Infallible>(forward(&counts, &upstream, &target, request).await) }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (url, counts)
}

async fn forward(
    counts: &Counts,
    upstream: &reqwest::Client,
    target: &str,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    counts.requests.fetch_add(1, Ordering::SeqCst);
    let methods =
        serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default()["auth"]["identity"]["methods"].clone();
    if methods
        .as_array()
        .is_some_and(|methods| methods.iter().any(|method| method == "password"))
    {
        counts.password_checks.fetch_add(1, Ordering::SeqCst);
    }
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let mut outgoing = upstream.request(parts.method, format!("{target}{path}")).body(body);
    for name in [
        "content-type",
        "x-auth-token",
        "x-subject-token",
        "x-openstack-request-id",
    ] {
        if let Some(value) = parts.headers.get(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.expect("keystone reachable");
    let mut response = http::Response::builder().status(answer.status());
    for name in ["content-type", "x-subject-token"] {
        if let Some(value) = answer.headers().get(name) {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(Full::new(body)).expect("a response")
}

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
