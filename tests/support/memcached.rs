//! A memcached of the tests' own (Debian's `memcached`, which `.ci/run`
//! installs), on a free loopback port, stopped when dropped; stopped and
//! started again on the same port by the tests that lose it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TempFile, free_port};

pub struct Memcached {
    pub port: u16,
    child: Option<Child>,
    /// The deployment's secret, in a file, for `[shared_cache]`.
    pub secret: TempFile,
}

impl Memcached {
    pub fn start() -> Self {
        let mut memcached = Memcached {
            port: free_port(),
            child: None,
            secret: TempFile::with_contents("0123456789abcdef0123456789abcdef-tests\n"),
        };
        memcached.resume();
        memcached
    }

    /// Starts it again (on its port, empty).
    pub fn resume(&mut self) {
        let mut command = Command::new("memcached");
        command
            .args(["-l", "127.0.0.1", "-U", "0", "-m", "16", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // memcached refuses to run as root unless told which user to be
        // (and ignores -u when not root).
        if running_as_root() {
            command.args(["-u", "root"]);
        }
        let child = command
            .spawn()
            .expect("memcached (Debian's memcached package; .ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "memcached did not start on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (its entries are gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The `[shared_cache]` table of a facade using it, with `extra` settings.
    pub fn table(&self, extra: &str) -> String {
        format!(
            "[shared_cache]\nservers = [\"127.0.0.1:{}\"]\nsecret_file = \"{}\"\n{extra}\n",
            self.port,
            self.secret.0.display()
        )
    }
}

/// Whether this process's user is root (its real uid, from /proc).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .and_then(|line| line.split_whitespace().nth(1))
            == Some("0")
    })
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.stop();
    }
}
