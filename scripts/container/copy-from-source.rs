//! The compose demo's `copy_from` source: a tiny qcow2 image served over
//! HTTP, the standard library only, so the Dockerfile compiles it with
//! `rustc` alone, in seconds.
//!
//!   copy-from-source ADDRESS      e.g. copy-from-source 0.0.0.0:80
//!
//! `GET` or `HEAD /cirros.qcow2` answers 200 with a qcow2 header announcing
//! 1 GiB (the bytes of `openstack_mock::files::tiny_qcow2(1 << 30)`, enough
//! for the format check of the mock's web-download); any other path is 404,
//! any other method 405. One thread per connection, one request each.
//! SIGTERM and SIGINT end it at once (it keeps no state), also as PID 1.
//!
//! A stand-in until the demo build has a subcommand serving
//! `openstack_mock::files` on a given address.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const PATH: &str = "/cirros.qcow2";
const VIRTUAL_SIZE: u64 = 1 << 30;

fn main() {
    let Some(address) = std::env::args().nth(1) else {
        eprintln!("usage: copy-from-source ADDRESS (e.g. 0.0.0.0:80)");
        std::process::exit(2);
    };
    exit_on_termination();
    let listener = match TcpListener::bind(&address) {
        Ok(listener) => listener,
        Err(error) => {
            log(&format!("cannot listen on {address}: {error}"));
            std::process::exit(1);
        }
    };
    let image = tiny_qcow2(VIRTUAL_SIZE);
    log(&format!(
        "serving {PATH} ({} bytes, qcow2 of {VIRTUAL_SIZE} bytes) on {address}",
        image.len()
    ));
    let image: &'static [u8] = Vec::leak(image);
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = answer(stream, image);
        });
    }
}

fn answer(mut stream: TcpStream, image: &[u8]) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The rest of the head, up to the empty line (no body is expected).
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, body): (&str, &[u8]) = match (method, path) {
        ("GET" | "HEAD", PATH) => ("200 OK", image),
        ("GET" | "HEAD", _) => ("404 Not Found", b"not found\n"),
        _ => ("405 Method Not Allowed", b"method not allowed\n"),
    };
    let content_type = if status.starts_with("200") {
        "application/octet-stream"
    } else {
        "text/plain"
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    stream.flush()?;
    log(&format!("{method} {target} {status}"));
    Ok(())
}

/// One line on stderr in one write: `eprintln!` writes its pieces one by
/// one (stderr is unbuffered), which a container's log shows as broken,
/// interleaved lines when threads log at once.
fn log(message: &str) {
    let _ = std::io::stderr().write_all(format!("copy-from-source: {message}\n").as_bytes());
}

/// A minimal qcow2 (version 3 header) announcing `virtual_size` bytes: the
/// same bytes as `openstack_mock::files::tiny_qcow2`.
fn tiny_qcow2(virtual_size: u64) -> Vec<u8> {
    let mut image = vec![0u8; 1024];
    image[0..4].copy_from_slice(b"QFI\xfb");
    image[4..8].copy_from_slice(&3u32.to_be_bytes());
    image[20..24].copy_from_slice(&16u32.to_be_bytes()); // cluster bits
    image[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    image[96..100].copy_from_slice(&4u32.to_be_bytes()); // refcount order
    image[100..104].copy_from_slice(&104u32.to_be_bytes()); // header length
    image
}

/// As PID 1 of a container the kernel ignores signals the process has no
/// handler for, so `docker stop` would wait for its SIGKILL: handle SIGTERM
/// and SIGINT by exiting.
fn exit_on_termination() {
    unsafe extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn _exit(status: i32) -> !;
    }
    extern "C" fn exit_now(_signum: i32) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { _exit(0) }
    }
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    // SAFETY: installs a handler that only calls an async-signal-safe function.
    unsafe {
        signal(SIGINT, exit_now);
        signal(SIGTERM, exit_now);
    }
}
