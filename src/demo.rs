//! `alliance-glance demo`: the facade on its built-in mock Glance, with a
//! local `copy_from` source, and curl lines that work as printed.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::config::Config;
use crate::server;
use openstack_mock::files::{FileServer, tiny_qcow2};
use openstack_mock::glance;

/// The environment (project) the printed examples use.
pub const DEMO_ENVIRONMENT: &str = "54915a05b0bb43dcbb218525c426b6a5";
pub const DEMO_NAMESPACE: &str = "ccsr1";

pub async fn run(listen: SocketAddr, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |error: std::io::Error| format!("{what}: {error}")
    };
    let files = FileServer::start(vec![("/cirros.qcow2".into(), tiny_qcow2(1 << 30))])
        .await
        .map_err(io("cannot start the copy_from source"))?;
    let glance_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io("cannot start the mock Glance"))?;
    let glance = glance::spawn(
        glance_listener,
        glance::Options {
            prefix: "/image".into(),
            web_download_allowed_hosts: Some(vec!["127.0.0.1".into()]),
            web_download_allowed_ports: vec![files.addr.port()],
            ..glance::Options::default()
        },
    )
    .await;
    let config = demo_config(listen, &glance.url())?;
    let app = Arc::new(App::new(&config).map_err(|error| error.to_string())?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(io(&format!("cannot listen on {listen}")))?;
    let address = listener.local_addr().map_err(io("no local address"))?;
    // `println!` would panic on a closed stdout (the reader went away) and
    // stop the demo.
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        banner(address, &glance.url(), &files.url("/cirros.qcow2"))
    );
    let slots = server::ConnectionSlots::new(app.client_limits().max_connections);
    server::serve(listener, app, None, slots, shutdown, Duration::from_secs(5)).await;
    glance.shutdown().await;
    Ok(())
}

/// The demo's facade: trusted mode on the mock Glance. Listening beyond
/// loopback (the demo image's `--listen 0.0.0.0:8080`) is meant: nothing of
/// the demo is anyone's.
fn demo_config(listen: SocketAddr, glance_url: &str) -> Result<Config, String> {
    Config::parse(&format!(
        r#"
        listen = "{listen}"
        allow_open = {open}
        [namespaces.{DEMO_NAMESPACE}]
        glance_url = "{glance_url}"
        auth = {{ type = "trusted", user_id = "alliance-glance-demo" }}
        # The demo's copy_from source is on loopback, which the guard refuses by default.
        copy_from = {{ allow_cidrs = ["127.0.0.1/32"] }}
        "#,
        open = !listen.ip().is_loopback(),
    ))
    .map_err(|error| error.to_string())
}

fn banner(address: SocketAddr, glance_url: &str, image_url: &str) -> String {
    let base = format!("http://{address}");
    let headers = format!(
        "-H 'X-Target-Ns: {DEMO_NAMESPACE}' -H 'X-Environment-Id: {DEMO_ENVIRONMENT}' -H 'Content-Type: application/json'"
    );
    format!(
        "alliance-glance demo: Alliance API on {base} (namespace {DEMO_NAMESPACE}, trusted mode)\n\
         mock Glance v2 on {glance_url}; copy_from source {image_url}\n\
         \n\
         Try (Ctrl-C stops everything):\n\
         curl -s {base}/images {headers}\n\
         curl -s -X POST {base}/images {headers} -d '{{\"image\": {{\"name\": \"cirrosimage\", \"disk_format\": \"qcow2\", \"container_format\": \"bare\", \"copy_from\": \"{image_url}\", \"min_ram\": 1, \"min_disk\": 1}}}}'\n\
         curl -s {base}/images/cirrosimage {headers}\n\
         curl -s -X PUT {base}/images/cirrosimage {headers} -d '{{\"image\": {{\"name\": \"ubuntu_image\", \"min_ram\": 512}}}}'\n\
         curl -s -X DELETE {base}/images/ubuntu_image {headers} -w '%{{http_code}}\\n'\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_serves_beyond_loopback_when_told_to() {
        for listen in ["127.0.0.1:8080", "0.0.0.0:8080", "[::]:8080"] {
            let config = demo_config(listen.parse().unwrap(), "http://127.0.0.1:9292/image").unwrap();
            assert_eq!(config.allow_open, !config.listen.ip().is_loopback(), "{listen}");
        }
    }
}
