//! README's first command: `alliance-glance demo` serves the five calls on
//! its built-in mock, and the curl lines it prints work as printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_printed_curl_lines_work_as_printed() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_alliance-glance"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let stdout = demo.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let started = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("utf-8");
        let done = line.starts_with("curl -s -X DELETE");
        lines.push(line);
        if done || started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    let curls: Vec<&String> = lines.iter().filter(|line| line.starts_with("curl ")).collect();
    assert_eq!(curls.len(), 5, "banner: {lines:#?}");

    let run = |line: &str| {
        let output = Command::new("sh").args(["-c", line]).output().expect("curl runs");
        assert!(output.status.success(), "{line}");
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let list = run(curls[0]);
    assert_eq!(list, r#"[{"images":[]}]"#);
    let created: serde_json::Value = serde_json::from_str(&run(curls[1])).expect("created image");
    assert_eq!(created["status"], "queued", "{created}");
    assert_eq!(created["name"], "cirrosimage");
    // The import runs in the background; the image becomes active.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown: serde_json::Value = serde_json::from_str(&run(curls[2])).expect("shown image");
        if shown["status"] == "active" {
            assert_eq!(shown["virtual_size"], 1u64 << 30);
            break;
        }
        assert!(Instant::now() < deadline, "import never finished: {shown}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let updated: serde_json::Value = serde_json::from_str(&run(curls[3])).expect("updated image");
    assert_eq!(
        (updated["name"].as_str(), updated["min_ram"].as_u64()),
        (Some("ubuntu_image"), Some(512))
    );
    assert_eq!(run(curls[4]), "200\n");
    assert_eq!(run(curls[0]), r#"[{"images":[]}]"#);

    // SIGTERM: a clean exit.
    Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .expect("kill");
    let status = demo.wait().expect("demo exits");
    assert!(status.success(), "{status}");
}
