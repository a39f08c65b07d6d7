//! The audit trail's writer: one thread of its own that takes the lines
//! requests queued and appends them to the file and/or sends them to the
//! syslog socket. Requests never wait for it: they only queue (see
//! [`super::Audit`]), so a sink that blocks (a FIFO nobody reads, a hung
//! NFS mount) holds this thread and, once the queue is full, costs events -
//! never requests.
//!
//! The file is appended to with `O_APPEND` and reopened when its path names
//! another file than the one open (renamed or deleted by log rotation: the
//! check of Python's `WatchedFileHandler`, a `stat` per batch) and on SIGHUP
//! ([`Shared::reopen`]), so rotation needs no signal and loses nothing. A
//! write that fails half-way is cut back (a regular file is truncated to
//! its length before the write), so that no broken line stays in the trail.
//!
//! When a sink fails: without `required`, the batch's events are given up,
//! counted (`audit_events_total{outcome="write_failed"}`) and reported by a
//! WARN line at most every 10 s; the next batch tries again (reopening).
//! With `required`, nothing is given up: the batch is tried again (with a
//! growing pause, at most 1 s) until it is written, and meanwhile
//! [`Shared::failing`] makes new changes be refused.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::AuditConfig;
use crate::limits::Throttled;
use crate::metrics::{AuditOutcome, Metrics};

/// What goes through the queue.
#[derive(Debug)]
pub enum Item {
    /// One event, a JSON line ending with `\n`.
    Line(Vec<u8>),
    /// Write what is queued, then end.
    Stop,
}

/// What the writer and the requests share.
#[derive(Debug, Default)]
pub struct Shared {
    /// The last write failed (and, with `required`, is being tried again).
    pub failing: AtomicBool,
    /// Reopen the file before the next write (SIGHUP).
    pub reopen: AtomicBool,
    /// Write what is queued and end.
    pub stopping: AtomicBool,
    /// Events that could not be written when the writer ended.
    pub lost: AtomicU64,
}

/// Lines written in one go, at most (about).
const BATCH_BYTES: usize = 64 * 1024;

/// The first pause after a failed write, doubled at each try (with `required`).
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The longest pause between two tries of a failed write (with `required`).
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Tries of a failed write once the writer is told to stop (with `required`).
const TRIES_WHEN_STOPPING: u32 = 3;

/// Syslog tag (RFC 3164's TAG: at most 32 characters).
const TAG: &str = "alliance-glance-audit";

/// Starts the writer thread; it ends after [`Item::Stop`], or when every
/// sender is gone. `done` is sent when it ends.
pub fn spawn(
    config: &AuditConfig,
    receiver: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
    metrics: Metrics,
    done: std::sync::mpsc::Sender<()>,
) -> std::io::Result<()> {
    let writer = Writer {
        file: (!config.file.as_os_str().is_empty()).then(|| FileSink::new(config.file.clone())),
        syslog: (!config.syslog.as_os_str().is_empty())
            .then(|| SyslogSink::new(config.syslog.clone(), config.facility())),
        required: config.required,
        shared,
        metrics,
        warnings: Throttled::default(),
    };
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            writer.run(receiver);
            let _ = done.send(());
        })
        .map(|_| ())
}

struct Writer {
    file: Option<FileSink>,
    syslog: Option<SyslogSink>,
    required: bool,
    shared: Arc<Shared>,
    metrics: Metrics,
    warnings: Throttled,
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::Receiver<Item>) {
        // At once, so that a path that cannot be written shows before the
        // first event (a FIFO with no reader waits here, in this thread).
        if let Some(file) = &mut self.file
            && let Err(error) = file.open()
        {
            self.shared.failing.store(true, Ordering::Relaxed);
            tracing::warn!(
                reason = "audit_write_failed",
                file = %file.path.display(),
                %error,
                "the audit file cannot be opened; trying again with the next event"
            );
        }
        let mut stop = false;
        let mut pause = FIRST_RETRY_PAUSE;
        while !stop {
            let first = match receiver.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                // With `required`, changes are refused while the sink
                // fails: try it now and then, so that they are not refused
                // for ever once it works again (a write that then fails
                // sets `failing` again).
                Err(mpsc::error::TryRecvError::Empty)
                    if self.required && self.shared.failing.load(Ordering::Relaxed) =>
                {
                    if self.shared.stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                    if self.probe() {
                        self.shared.failing.store(false, Ordering::Relaxed);
                    }
                    continue;
                }
                Err(mpsc::error::TryRecvError::Empty) => match receiver.blocking_recv() {
                    Some(item) => item,
                    None => break,
                },
            };
            pause = FIRST_RETRY_PAUSE;
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    Item::Line(line) => {
                        bytes += line.len();
                        batch.push(line);
                    }
                    Item::Stop => stop = true,
                }
                if bytes < BATCH_BYTES {
                    next = receiver.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.write(&batch, &receiver);
            }
            if self.shared.stopping.load(Ordering::Relaxed) && receiver.is_empty() {
                stop = true;
            }
        }
        // What could not be taken any more (the writer was told to stop).
        let mut left = 0;
        while let Ok(item) = receiver.try_recv() {
            left += u64::from(matches!(item, Item::Line(_)));
        }
        self.shared.lost.fetch_add(left, Ordering::Relaxed);
    }

    /// Whether every sink can be opened (with `required`, while failing).
    fn probe(&mut self) -> bool {
        let file = self.file.as_mut().is_none_or(|file| {
            file.follow_rotation();
            file.open().is_ok()
        });
        file && self.syslog.as_mut().is_none_or(|syslog| syslog.connect().is_ok())
    }

    /// Writes `batch` to every sink, as `required` says (`receiver`: the
    /// queue, whose end is a stop too).
    fn write(&mut self, batch: &[Vec<u8>], receiver: &mpsc::Receiver<Item>) {
        let count = batch.len() as u64;
        let mut file_done = self.file.is_none();
        let mut syslog_done = 0;
        let mut pause = FIRST_RETRY_PAUSE;
        let mut tries_left = TRIES_WHEN_STOPPING;
        loop {
            if self.shared.reopen.swap(false, Ordering::Relaxed)
                && let Some(file) = &mut self.file
            {
                file.close();
            }
            let mut failure = None;
            if !file_done && let Some(file) = &mut self.file {
                match file.append(batch) {
                    Ok(()) => file_done = true,
                    Err(error) => failure = Some((file.path.clone(), error)),
                }
            }
            if let Some(syslog) = &mut self.syslog {
                while syslog_done < batch.len() {
                    match syslog.send(&batch[syslog_done]) {
                        Ok(()) => syslog_done += 1,
                        Err(error) => {
                            failure = failure.or(Some((syslog.path.clone(), error)));
                            break;
                        }
                    }
                }
            }
            let Some((path, error)) = failure else {
                self.shared.failing.store(false, Ordering::Relaxed);
                self.metrics.audit_events(AuditOutcome::Written, count);
                return;
            };
            self.shared.failing.store(true, Ordering::Relaxed);
            let stopping = self.shared.stopping.load(Ordering::Relaxed) || receiver.is_closed();
            if !self.required || (stopping && tries_left == 0) {
                self.metrics.audit_events(AuditOutcome::WriteFailed, count);
                if stopping {
                    self.shared.lost.fetch_add(count, Ordering::Relaxed);
                }
                self.warn(&path, &error, count, "audit events given up");
                return;
            }
            self.warn(&path, &error, count, "audit events not written yet; trying again");
            if stopping {
                tries_left -= 1;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
        }
    }

    fn warn(&self, path: &Path, error: &std::io::Error, events: u64, message: &'static str) {
        if let Some(failures) = self.warnings.due() {
            tracing::warn!(
                reason = "audit_write_failed",
                sink = %path.display(),
                %error,
                events,
                failures,
                required = self.required,
                "{message}"
            );
        }
    }
}

/// The audit file, appended to; reopened when its path names another file.
struct FileSink {
    path: PathBuf,
    open: Option<(File, (u64, u64))>,
}

impl FileSink {
    fn new(path: PathBuf) -> Self {
        FileSink { path, open: None }
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.open.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(&self.path)?;
            let metadata = file.metadata()?;
            self.open = Some((file, (metadata.dev(), metadata.ino())));
        }
        match &mut self.open {
            Some((file, _)) => Ok(file),
            None => Err(std::io::Error::other("the audit file is not open")),
        }
    }

    fn close(&mut self) {
        self.open = None;
    }

    /// Closed if the path no longer names the open file (rotated away,
    /// deleted), so that the next write opens (creates) the path's.
    fn follow_rotation(&mut self) {
        if let Some((_, identity)) = &self.open {
            let current = std::fs::metadata(&self.path).map(|metadata| (metadata.dev(), metadata.ino()));
            if current.ok() != Some(*identity) {
                self.close();
            }
        }
    }

    /// Appends the lines in one write; on failure, cuts a regular file
    /// back to where it was and closes it (the next try reopens).
    fn append(&mut self, lines: &[Vec<u8>]) -> std::io::Result<()> {
        self.follow_rotation();
        let file = self.open()?;
        let metadata = file.metadata()?;
        let before = metadata.is_file().then_some(metadata.len());
        let result = if let [line] = lines {
            file.write_all(line)
        } else {
            file.write_all(&lines.concat())
        };
        if let Err(error) = result {
            if let Some(length) = before {
                let _ = file.set_len(length);
            }
            self.close();
            return Err(error);
        }
        Ok(())
    }
}

/// A syslog socket (Unix datagram), one message per event, in the format
/// the C library's `syslog(3)` sends to `/dev/log`.
struct SyslogSink {
    path: PathBuf,
    priority: u8,
    socket: Option<UnixDatagram>,
}

impl SyslogSink {
    fn new(path: PathBuf, facility: u8) -> Self {
        SyslogSink {
            path,
            // Severity 6, informational.
            priority: facility * 8 + 6,
            socket: None,
        }
    }

    fn connect(&mut self) -> std::io::Result<&UnixDatagram> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound()?;
            socket.set_write_timeout(Some(Duration::from_secs(5)))?;
            socket.connect(&self.path)?;
            self.socket = Some(socket);
        }
        match &self.socket {
            Some(socket) => Ok(socket),
            None => Err(std::io::Error::other("the syslog socket is not connected")),
        }
    }

    fn send(&mut self, line: &[u8]) -> std::io::Result<()> {
        let message = self.message(line);
        let sent = self.connect().and_then(|socket| socket.send(&message)).map(|_| ());
        if sent.is_err() {
            // A restarted syslog daemon has a new socket: connect again.
            self.socket = None;
        }
        sent
    }

    /// `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG` (the time in UTC; syslog
    /// daemons stamp local messages with their own time).
    fn message(&self, line: &[u8]) -> Vec<u8> {
        let now = time::OffsetDateTime::now_utc();
        let format =
            time::macros::format_description!("[month repr:short] [day padding:space] [hour]:[minute]:[second]");
        let stamp = now.format(&format).unwrap_or_default();
        let mut message = format!("<{}>{stamp} {TAG}[{}]: ", self.priority, std::process::id()).into_bytes();
        message.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!("alliance-audit-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn the_file_follows_rotation() {
        let dir = temp();
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let mut sink = FileSink::new(path.clone());
        sink.append(&[b"1\n".to_vec(), b"2\n".to_vec()]).unwrap();
        std::fs::rename(&path, dir.join("audit.jsonl.1")).unwrap();
        sink.append(&[b"3\n".to_vec()]).unwrap();
        std::fs::remove_file(&path).unwrap();
        sink.append(&[b"4\n".to_vec()]).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("audit.jsonl.1")).unwrap(), "1\n2\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_disk_is_an_error() {
        let mut sink = FileSink::new("/dev/full".into());
        assert!(sink.append(&[b"x\n".to_vec()]).is_err());
    }

    #[test]
    fn syslog_messages_have_the_local_form() {
        let path = temp();
        let daemon = UnixDatagram::bind(&path).unwrap();
        let mut sink = SyslogSink::new(path.clone(), 10);
        sink.send(b"{\"a\":1}\n").unwrap();
        let mut buffer = [0u8; 256];
        let length = daemon.recv(&mut buffer).unwrap();
        let message = std::str::from_utf8(&buffer[..length]).unwrap();
        assert!(message.starts_with("<86>"), "{message}");
        assert!(
            message.ends_with(&format!(" alliance-glance-audit[{}]: {{\"a\":1}}", std::process::id())),
            "{message}"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
