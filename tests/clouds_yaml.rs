//! The served binary in keystone mode with its credentials from a standard
//! `clouds.yaml` found through `OS_CLIENT_CONFIG_FILE`, end to end against
//! the mock Keystone and the keystone-flavor mock Glance.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openstack_mock::{glance, keystone};

#[tokio::test]
async fn a_namespace_can_name_a_cloud_of_clouds_yaml() {
    let glance_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let glance_url = format!("http://{}/image", glance_listener.local_addr().unwrap());
    let mut options = keystone::Options::standard("http://127.0.0.1:9/unused");
    // Only the internal endpoint is right: the cloud's `interface` must be used.
    options.image_endpoints = vec![
        ("public".into(), "http://127.0.0.1:9/wrong".into()),
        ("internal".into(), glance_url),
    ];
    let keystone = keystone::spawn(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), options)
        .await
        .unwrap();
    let _glance = glance::spawn(
        glance_listener,
        glance::Options {
            prefix: "/image".into(),
            keystone: Some(keystone.clone()),
            ..glance::Options::default()
        },
    )
    .await;

    let dir = std::env::temp_dir().join(format!("alliance-clouds-yaml-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let clouds = dir.join("clouds.yaml");
    std::fs::write(
        &clouds,
        format!(
            "clouds:\n  ccsr:\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      user_domain_id: default\n      project_name: ignored\n    region_name: RegionOne\n    interface: internal\n",
            keystone.url().trim_end_matches("/v3"),
            keystone::SERVICE_USER,
            keystone::SERVICE_PASSWORD
        ),
    )
    .unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let config = dir.join("alliance-glance.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[namespaces.ccsr1]\nauth = {{ type = \"keystone\", cloud = \"ccsr\" }}\n"
        ),
    )
    .unwrap();

    let mut facade = Command::new(env!("CARGO_BIN_EXE_alliance-glance"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("OS_CLIENT_CONFIG_FILE", &clouds)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{port}/images");
    let deadline = Instant::now() + Duration::from_secs(20);
    let created = loop {
        let attempt = client
            .post(&url)
            .header("X-Target-Ns", "ccsr1")
            .header("X-Environment-Id", keystone::ALPHA)
            .header("Content-Type", "application/json")
            .body(r#"{"image": {"name": "from-clouds-yaml"}}"#)
            .send()
            .await;
        match attempt {
            Ok(response) => break response,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(error) => panic!("facade never answered: {error}"),
        }
    };
    assert_eq!(created.status(), 201);
    let image: serde_json::Value = serde_json::from_slice(&created.bytes().await.unwrap()).unwrap();
    assert_eq!(image["owner"], keystone::ALPHA);
    assert_eq!(keystone.password_checks(), 1);

    Command::new("kill")
        .args(["-TERM", &facade.id().to_string()])
        .status()
        .unwrap();
    assert!(facade.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
