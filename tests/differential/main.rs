//! Differential testing: generated sequences of calls sent to the project's
//! mock and to the real service, the answers compared after normalising
//! what must differ (see `normalise`). The runs against real Glance and
//! Keystone are `#[ignore]`d for a plain `cargo test`; `scripts/test.sh`
//! includes them (with the services `scripts/openstack/up.sh` started).
//! Differences kept on purpose are in `docs/mock-vs-real.md`.

#[path = "../support/real_env.rs"]
mod real_env;

mod engine;
mod glance;
mod json;
mod keystone;
mod normalise;

use std::time::Duration;

use openstack_mock::{glance as mock_glance, keystone as mock_keystone};

use crate::engine::Settings;
use crate::glance::run::Side;
use crate::real_env::RealEnv;

/// Cases per run of the test command: about a minute against real Glance.
const GLANCE_CASES: u32 = 48;
/// Keystone's password checks take 0.3-0.4 s each: about 30 s.
const KEYSTONE_CASES: u32 = 24;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A mock Glance configured as `up.sh` configures the real one.
async fn mock_glance(allowed_ports: Vec<u16>, import_delay: Duration) -> mock_glance::Handle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    mock_glance::spawn(
        listener,
        mock_glance::Options {
            web_download_allowed_hosts: Some(vec!["127.0.0.1".into()]),
            web_download_allowed_ports: allowed_ports,
            import_delay,
            ..mock_glance::Options::default()
        },
    )
    .await
}

/// A client that never reuses a connection: gunicorn closes idle ones after
/// 2 s, and a request on a closed one would read as a difference.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn port_of(url: &str) -> u16 {
    url::Url::parse(url)
        .ok()
        .and_then(|url| url.port())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[test]
#[ignore = "needs real OpenStack: scripts/test.sh starts it"]
fn the_mock_glance_answers_like_real_glance() {
    let env = RealEnv::load();
    let files_url = env.get("OS_IMAGE_SERVER_URL").trim_end_matches('/').to_owned();
    let runtime = runtime();
    let mock = runtime.block_on(mock_glance(
        vec![80, 443, port_of(&files_url)],
        Duration::from_millis(100),
    ));
    let sides = [
        Side {
            name: "mock",
            url: mock.url(),
            files_url: files_url.clone(),
        },
        Side {
            name: "real",
            url: env.get("OS_GLANCE_TRUSTED_URL").trim_end_matches('/').to_owned(),
            files_url,
        },
    ];
    let client = client();
    for side in &sides {
        runtime.block_on(glance::run::warm_up(side, &client));
    }
    let outcome = engine::run(
        Settings::from_env(GLANCE_CASES),
        glance::generate::sequence(),
        |steps| runtime.block_on(glance::run::compare(&sides, &client, steps)),
    );
    if let Err(failure) = outcome {
        engine::report("The mock Glance and real Glance", failure);
    }
}

#[test]
#[ignore = "needs real OpenStack: scripts/test.sh starts it"]
fn the_mock_keystone_answers_like_real_keystone() {
    let env = RealEnv::load();
    let runtime = runtime();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    // The catalog's image endpoints are the real Glance's, on both sides.
    let mut options = mock_keystone::Options::standard(env.get("OS_GLANCE_KEYSTONE_URL"));
    if env.layout_is_devstack() {
        // The catalog as DevStack registers it: public endpoints only, Keystone's
        // without a version (`scripts/openstack/up.sh --layout devstack`).
        options.image_endpoints.retain(|(interface, _)| interface == "public");
        options.identity_endpoints = vec![("public".to_owned(), String::new())];
    }
    let mock = runtime
        .block_on(mock_keystone::spawn(listener, options))
        .expect("mock Keystone");
    let password = std::fs::read_to_string(env.get("OS_SERVICE_PASSWORD_FILE")).expect("service password");
    let sides = [
        keystone::Side {
            name: "mock",
            url: mock.url(),
            password: mock_keystone::SERVICE_PASSWORD.to_owned(),
            user_id: mock_keystone::SERVICE_USER_ID.to_owned(),
            projects: [mock_keystone::ALPHA, mock_keystone::BETA, mock_keystone::GAMMA].map(str::to_owned),
            behind_apache: false,
        },
        keystone::Side {
            name: "real",
            url: env.get("OS_KEYSTONE_URL").to_owned(),
            password: password.trim().to_owned(),
            user_id: env.get("OS_SERVICE_USER_ID").to_owned(),
            projects: ["OS_PROJECT_ALPHA", "OS_PROJECT_BETA", "OS_PROJECT_GAMMA"].map(|key| env.get(key).to_owned()),
            behind_apache: env.layout_is_devstack(),
        },
    ];
    let client = client();
    let outcome = engine::run(Settings::from_env(KEYSTONE_CASES), keystone::sequence(), |calls| {
        runtime.block_on(keystone::compare(&sides, &client, calls))
    });
    if let Err(failure) = outcome {
        engine::report("The mock Keystone and real Keystone", failure);
    }
}

/// The shrinking works: two mocks that differ only in the ports
/// web-download may use differ first on an import, and the sequence
/// reported is the smallest that shows it: a create, then an import.
#[test]
fn a_planted_difference_shrinks_to_a_create_and_an_import() {
    let runtime = runtime();
    // Nothing listens on the discard port: imports that pass the filter fail.
    let files_url = "http://127.0.0.1:9".to_owned();
    let allowing = runtime.block_on(mock_glance(vec![80, 443, 9], Duration::ZERO));
    let refusing = runtime.block_on(mock_glance(vec![80, 443], Duration::ZERO));
    let sides = [
        Side {
            name: "allowing",
            url: allowing.url(),
            files_url: files_url.clone(),
        },
        Side {
            name: "refusing",
            url: refusing.url(),
            files_url,
        },
    ];
    let client = client();
    let settings = Settings { cases: 256, seed: 1 };
    let failure = engine::run(settings, glance::generate::sequence(), |steps| {
        runtime.block_on(glance::run::compare(&sides, &client, steps))
    })
    .expect_err("the planted difference is found");
    let calls: Vec<&'static str> = failure.minimal.iter().map(|step| step.call.kind()).collect();
    assert_eq!(calls, ["create", "import"], "{:?}\n{}", failure.minimal, failure.reason);
    assert!(failure.reason.starts_with("step 2 of 2"), "{}", failure.reason);
}
