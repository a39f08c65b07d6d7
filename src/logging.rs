//! Log output: human-readable text or one JSON object per line, on stderr.
//!
//! The serving threads keep their lines in a per-thread batch, written with
//! one `write(2)` when it holds [`BATCH_BYTES`] or every [`BATCH_INTERVAL`]
//! (nginx's `access_log ... buffer= flush=`): a `write(2)` per request, or
//! a hand-off to a writer thread, was the largest cost left in a request in
//! the benchmark (bench/README.md). A batch is written out when its thread
//! ends, panics included; a killed process loses at most one interval of
//! lines. Every other thread writes its lines at once.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A batch is written once it holds this much.
const BATCH_BYTES: usize = 16 * 1024;

/// How often a serving thread writes out its batch.
const BATCH_INTERVAL: Duration = Duration::from_millis(100);

/// `RUST_LOG` overrides the default level (`info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(|| Stderr);
    match format {
        LogFormat::Text => builder.fmt_fields(plain_fields()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// `name=value` pairs as the default text format writes them without
/// colours. The default formatter styles every field name even when colours
/// are off, which cost more than the rest of a request's log line.
fn plain_fields() -> impl for<'writer> FormatFields<'writer> + 'static {
    format::debug_fn(|writer, field, value| {
        if field.name() == "message" {
            write!(writer, "{value:?}")
        } else {
            write!(writer, "{field}={value:?}")
        }
    })
    .delimited(" ")
}

/// This thread's pending lines, when it batches.
struct Batch(Vec<u8>);

impl Batch {
    fn write_out(&mut self) {
        if !self.0.is_empty() {
            write_stderr(&self.0);
            self.0.clear();
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.write_out();
    }
}

thread_local! {
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// From now on this thread's log lines are batched; the thread's runtime
/// runs [`flush_batch_regularly`].
pub fn batch_this_thread() {
    BATCH.with(|batch| *batch.borrow_mut() = Some(Batch(Vec::with_capacity(BATCH_BYTES))));
}

/// Writes out the batch of the thread it runs on every [`BATCH_INTERVAL`];
/// never ends (abort it).
pub async fn flush_batch_regularly() {
    let mut ticks = tokio::time::interval(BATCH_INTERVAL);
    loop {
        ticks.tick().await;
        flush_batch();
    }
}

/// Writes out this thread's batched lines, if any.
fn flush_batch() {
    let _ = BATCH.try_with(|batch| {
        if let Some(batch) = batch.borrow_mut().as_mut() {
            batch.write_out();
        }
    });
}

/// Lines that cannot be written are dropped: logging never fails a request.
fn write_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// The subscriber's writer: each call gets one whole formatted line.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let batched = BATCH
            .try_with(|batch| match batch.borrow_mut().as_mut() {
                Some(batch) => {
                    batch.0.extend_from_slice(line);
                    if batch.0.len() >= BATCH_BYTES {
                        batch.write_out();
                    }
                    true
                }
                None => false,
            })
            .unwrap_or(false);
        if !batched {
            write_stderr(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_only_where_asked_and_flushes() {
        std::thread::spawn(|| {
            batch_this_thread();
            let mut writer = Stderr;
            writer.write_all(b"one line\n").unwrap();
            let pending = BATCH.with(|batch| batch.borrow().as_ref().map(|batch| batch.0.len()));
            assert_eq!(pending, Some(9));
            flush_batch();
            let pending = BATCH.with(|batch| batch.borrow().as_ref().map(|batch| batch.0.len()));
            assert_eq!(pending, Some(0));
        })
        .join()
        .unwrap();
        let unbatched = BATCH.with(|batch| batch.borrow().is_none());
        assert!(unbatched);
    }
}
