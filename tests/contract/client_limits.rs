//! What a slow, careless or hostile client can do to the facade, and what
//! it gets: bodies that never arrive (408), answers sent before the body
//! was read (they must reach the client), readers that never read, heads
//! hyper cannot parse, too many connections, and shutdown. Each refusal has
//! a request log line with its `reason`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const REQUEST_ID: &str = "req-11111111-2222-4333-8444-";

fn request_id(suffix: u32) -> String {
    format!("{REQUEST_ID}{suffix:012}")
}

async fn facade_with(client: &str) -> Harness {
    Harness::start_with(
        openstack_mock::glance::Options::default(),
        FacadeOptions {
            page_size: 1000,
            client: client.to_owned(),
            ..FacadeOptions::default()
        },
    )
    .await
}

/// The next Glance call (whose path ends with `path_suffix`) waits `delay`.
fn delay_next_call(glance: &openstack_mock::glance::Handle, path_suffix: Option<String>, delay: Duration) {
    glance.inject(openstack_mock::glance::Fault {
        method: None,
        path_suffix,
        action: openstack_mock::glance::FaultAction::Delay(delay),
    });
}

/// The log line of a request cut short names what was known of it, and why.
async fn assert_cut_short(request_id: &str, operation: &str, status: u16, reason: &str) {
    let line = request_log_line(request_id).await;
    assert_eq!(line["operation"], operation);
    assert_eq!(line["namespace"], NAMESPACE);
    assert_eq!(line["environment"], ENV_A);
    assert_eq!(line["status"], status);
    assert_eq!(line["aborted"], true);
    assert_eq!(line["reason"], reason);
}

async fn connect(harness: &Harness) -> TcpStream {
    TcpStream::connect(harness.facade.addr).await.expect("connect")
}

/// Reads until the facade closes the connection, or resets it (fails
/// after 10 s).
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "the facade did not close the connection");
    bytes
}

#[tokio::test]
async fn a_body_that_stops_short_is_408_and_its_connection_released() {
    capture_request_log();
    let harness = facade_with("body_idle_timeout_secs = 1\nlingering_timeout_secs = 1").await;
    let mut stream = connect(&harness).await;
    let id = request_id(1);
    let head = raw_head(
        "POST",
        "/images",
        &format!("Content-Length: 100\r\nX-Openstack-Request-Id: {id}\r\n"),
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b' '; 99]).await.unwrap();
    let answer = read_raw_answer(&mut stream).await;
    assert_eq!(answer.assert_error(408), id);
    assert_eq!(answer.header("connection"), Some("close"));
    // The connection is closed (and its buffered body freed), not kept.
    read_to_close(&mut stream).await;
    let line = request_log_line(&id).await;
    assert_eq!(line["status"], 408);
    assert_eq!(line["reason"], "body_timeout");
    assert_eq!(line["namespace"], NAMESPACE);
    assert_eq!(line["environment"], ENV_A);
    assert!(harness.glance.take_requests().is_empty());
}

#[tokio::test]
async fn a_trickled_body_is_408_at_the_total_limit() {
    let harness = facade_with("body_idle_timeout_secs = 1\nbody_total_timeout_secs = 2").await;
    let mut stream = connect(&harness).await;
    stream
        .write_all(raw_head("POST", "/images", "Content-Length: 100\r\n").as_bytes())
        .await
        .unwrap();
    // A byte every 300 ms is never 1 s apart, and would take 30 s in all.
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let answer = async {
        let mut bytes = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut bytes)).await;
        bytes
    };
    let started = Instant::now();
    let bytes = tokio::select! {
        bytes = answer => bytes,
        () = trickle => panic!("the whole trickled body was taken"),
    };
    assert!(
        bytes.starts_with(b"HTTP/1.1 408 "),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Python's `http.client` sends the whole body before it reads an answer;
/// closing the connection with its body unread resets it, and the client
/// sees a broken pipe instead of the answer.
#[tokio::test]
async fn answers_sent_before_the_body_was_read_reach_the_client() {
    let harness = facade_with("").await;
    let script = r#"
import http.client, sys
port, env = int(sys.argv[1]), sys.argv[2]
cases = [("413", {"Content-Type": "application/json", "X-Environment-Id": env}, 20),
         ("415", {"Content-Type": "text/plain", "X-Environment-Id": env}, 5),
         ("400", {"Content-Type": "application/json"}, 5)]
for expected, headers, tries in cases:
    seen = []
    for _ in range(tries):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            headers["X-Target-Ns"] = "ccsr1"
            connection.request("POST", "/images", body=b"x" * (4 << 20), headers=headers)
            response = connection.getresponse()
            response.read()
            seen.append(str(response.status))
        except OSError as error:
            seen.append(type(error).__name__)
        finally:
            connection.close()
    print(expected, seen.count(expected), tries, sorted(set(seen)))
"#;
    let output = tokio::process::Command::new("python3")
        .args(["-c", script, &harness.facade.addr.port().to_string(), ENV_A])
        .output()
        .await
        .expect("python3 runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 3, "{printed}");
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1], fields[2], "{line}: every try must see the answer");
    }
}

#[tokio::test]
async fn a_client_that_reads_nothing_is_cut_off_and_logged_aborted() {
    capture_request_log();
    let harness = facade_with("send_timeout_secs = 1").await;
    // About 15 MB of list: more than the socket buffers hold.
    harness.glance.seed_images(ENV_A, 20_000, "list-");
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(harness.facade.addr).await.unwrap();
    let id = request_id(3);
    let head = raw_head("GET", "/images", &format!("X-Openstack-Request-Id: {id}\r\n"));
    stream.write_all(head.as_bytes()).await.unwrap();
    assert_cut_short(&id, "list", 200, "send_timeout").await;
    // What the client finally reads is a truncated list, never a whole one.
    let bytes = read_to_close(&mut stream).await;
    assert!(bytes.starts_with(b"HTTP/1.1 200 OK"));
    assert!(!bytes.ends_with(b"0\r\n\r\n"), "the list was cut, not finished");
}

#[tokio::test]
async fn requests_cut_short_are_logged_with_what_was_known() {
    capture_request_log();
    let harness = facade_with("").await;
    harness.glance.seed_images(ENV_A, 20_000, "list-");
    // A list whose client leaves after its first bytes.
    let mut stream = connect(&harness).await;
    let id = request_id(4);
    let head = raw_head("GET", "/images", &format!("X-Openstack-Request-Id: {id}\r\n"));
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut first = [0u8; 64];
    stream.read_exact(&mut first).await.unwrap();
    drop(stream);
    assert_cut_short(&id, "list", 200, "client_gone").await;

    // A show whose client leaves while Glance is slow: no answer was made.
    let image = "75da8211-b8d3-4329-a12b-953e7db4690a";
    delay_next_call(
        &harness.glance,
        Some(format!("/v2/images/{image}")),
        Duration::from_secs(2),
    );
    let id = request_id(5);
    let gone = harness
        .call(reqwest::Method::GET, &format!("/images/{image}"))
        .header("X-Openstack-Request-Id", &id)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gone.is_err());
    assert_cut_short(&id, "show", 0, "client_gone").await;
}

#[tokio::test]
async fn requests_cut_by_the_end_of_the_grace_period_are_logged() {
    capture_request_log();
    let glance = mock_glance().await;
    delay_next_call(&glance, None, Duration::from_secs(5));
    let config = facade_config(&glance.url(), &FacadeOptions::default());
    let facade = start_facade_with_grace(&config, Duration::from_millis(300)).await;
    let id = request_id(6);
    let url = format!("{}/images", facade.url());
    let in_flight = tokio::spawn(
        client()
            .get(url)
            .header("X-Target-Ns", NAMESPACE)
            .header("X-Environment-Id", ENV_A)
            .header("X-Openstack-Request-Id", &id)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    facade.shutdown().await;
    assert!(in_flight.await.unwrap().is_err(), "cut at the end of the grace period");
    assert_cut_short(&id, "list", 0, "shutdown").await;
}

#[tokio::test]
async fn heads_hyper_cannot_parse_get_json_errors_with_request_ids() {
    capture_request_log();
    let harness = facade_with("max_header_bytes = 4096\nmax_uri_bytes = 1024").await;
    let many_headers: String = (0..120).map(|index| format!("X-Extra-{index}: y\r\n")).collect();
    let cases: Vec<(String, u16, &str)> = vec![
        ("GARBAGE\r\n\r\n".into(), 400, "malformed_request"),
        (
            "GET /images HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".into(),
            400,
            "malformed_request",
        ),
        (
            raw_head("GET", "/images", &format!("X-Big: {}\r\n", "y".repeat(5000))),
            431,
            "headers_too_large",
        ),
        (raw_head("GET", "/images", &many_headers), 431, "headers_too_large"),
        (
            raw_head("GET", &format!("/images/{}", "a".repeat(2000)), ""),
            414,
            "uri_too_long",
        ),
    ];
    for (head, status, reason) in cases {
        // Alone, and after a good request on a kept-alive connection.
        for after_a_request in [false, true] {
            let mut stream = connect(&harness).await;
            if after_a_request {
                stream
                    .write_all(raw_head("GET", "/images", "").as_bytes())
                    .await
                    .unwrap();
                assert_eq!(read_raw_answer(&mut stream).await.status, 200);
            }
            stream.write_all(head.as_bytes()).await.unwrap();
            let answer = read_raw_answer(&mut stream).await;
            let id = answer.assert_error(status);
            let line = request_log_line(&id).await;
            assert_eq!(line["status"], status);
            assert_eq!(line["reason"], reason, "{status}");
        }
    }
}

#[tokio::test]
async fn at_the_connection_limit_open_connections_are_still_served() {
    let harness = facade_with("max_connections = 3").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&harness).await;
        stream
            .write_all(raw_head("GET", "/images", "").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_raw_answer(&mut stream).await.status, 200);
        open.push(stream);
    }
    // The kernel takes a fourth connection into the listen queue, but the
    // facade does not serve it while three are open...
    let mut waiting = connect(&harness).await;
    waiting
        .write_all(raw_head("GET", "/images", "").as_bytes())
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "served beyond the limit");
    // ...while the open ones are.
    for stream in &mut open {
        stream
            .write_all(raw_head("GET", "/images", "").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_raw_answer(stream).await.status, 200);
    }
    // One leaves: the waiting one is served.
    drop(open.pop());
    assert_eq!(read_raw_answer(&mut waiting).await.status, 200);
}

#[tokio::test]
async fn shutdown_closes_connections_with_no_request_in_flight_at_once() {
    let glance = mock_glance().await;
    let config = facade_config(&glance.url(), &FacadeOptions::default());
    let facade = start_facade_with_grace(&config, Duration::from_secs(30)).await;
    // A half-sent first head, and a connection idle after a request.
    let mut half_sent = TcpStream::connect(facade.addr).await.unwrap();
    half_sent
        .write_all(b"GET /images HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(facade.addr).await.unwrap();
    idle.write_all(raw_head("GET", "/images", "").as_bytes()).await.unwrap();
    assert_eq!(read_raw_answer(&mut idle).await.status, 200);
    // A request in flight still gets its answer.
    delay_next_call(&glance, None, Duration::from_millis(500));
    let mut in_flight = TcpStream::connect(facade.addr).await.unwrap();
    in_flight
        .write_all(raw_head("GET", "/images", "").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(10), facade.shutdown())
        .await
        .expect("shutdown does not wait for connections with no request in flight");
    assert_eq!(read_raw_answer(&mut in_flight).await.status, 200);
    assert!(read_to_close(&mut half_sent).await.is_empty());
    assert!(read_to_close(&mut idle).await.is_empty());
}

/// `alliance-glance serve` as a process, in front of `glance`.
struct ServeProcess {
    child: std::process::Child,
    port: u16,
    _config: TempFile,
}

impl ServeProcess {
    /// Starts `serve` on `port` (through `prefix`, e.g. `prlimit`), and
    /// waits until it answers.
    async fn start(glance: &openstack_mock::glance::Handle, port: u16, prefix: &[&str]) -> Self {
        let process = Self::spawn(glance, port, prefix);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "serve never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process
    }

    fn spawn(glance: &openstack_mock::glance::Handle, port: u16, prefix: &[&str]) -> Self {
        let config = TempFile::with_contents(&format!(
            "listen = \"127.0.0.1:{port}\"\n[namespaces.{NAMESPACE}]\nglance_url = \"{}\"\nauth = {{ type = \"trusted\", user_id = \"u\" }}\n",
            glance.url()
        ));
        let binary = env!("CARGO_BIN_EXE_alliance-glance");
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = std::process::Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => std::process::Command::new(binary),
        };
        let child = command
            .args(["serve", "--config"])
            .arg(&config.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("serve starts");
        ServeProcess {
            child,
            port,
            _config: config,
        }
    }

    async fn get_images(&self) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.expect("connect");
        stream
            .write_all(raw_head("GET", "/images", "").as_bytes())
            .await
            .unwrap();
        read_raw_answer(&mut stream).await.status
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn mock_glance() -> openstack_mock::glance::Handle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    openstack_mock::glance::spawn(
        listener,
        openstack_mock::glance::Options {
            prefix: "/image".into(),
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn a_second_serve_on_a_served_address_fails_to_start() {
    let glance = mock_glance().await;
    let port = free_port();
    let first = ServeProcess::start(&glance, port, &[]).await;
    let mut second = ServeProcess::spawn(&glance, port, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the second serve is running alongside the first"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}: the address is in use")),
        "{stderr}"
    );
    for _ in 0..20 {
        assert_eq!(first.get_images().await, 200);
    }
}

#[tokio::test]
async fn the_open_file_limit_is_raised_so_idle_connections_do_not_lock_others_out() {
    let glance = mock_glance().await;
    let port = free_port();
    let facade = ServeProcess::start(&glance, port, &["prlimit", "--nofile=256:4096"]).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", facade.child.id())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a limit")
        .split_whitespace()
        .collect();
    assert_eq!(open_files[3..5], ["4096", "4096"], "soft limit raised to the hard one");
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.expect("connect"));
    }
    assert_eq!(facade.get_images().await, 200);
    assert_eq!(
        tokio::time::timeout(
            Duration::from_secs(1),
            idle[0].write_all(raw_head("GET", "/images", "").as_bytes())
        )
        .await
        .map(|written| written.is_ok()),
        Ok(true)
    );
    assert_eq!(read_raw_answer(&mut idle[0]).await.status, 200);
}
