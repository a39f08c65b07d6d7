//! Log output: human-readable text or one JSON object per line, on stderr.
//!
//! Lines are handed to a writer thread and written in batches (flushed
//! whenever the queue runs empty), so that no request waits for a write to
//! stderr: one log line per request was, unbatched, the single largest cost
//! of a request in the benchmark (`bench/RESULTS.md`). Nothing is dropped:
//! if the queue is full, the request waits.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Lines waiting for the writer thread; a request logs when the queue is
/// full only after the writer has made room.
const LOG_QUEUE_LINES: usize = 4096;

/// `RUST_LOG` overrides the default level (`info`). Keep the guard until the
/// process ends: dropping it writes out what is still queued.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        // The default queue (128,000 lines) is allocated and touched up
        // front: 4 MiB of resident memory for nothing.
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("alliance-glance-log")
        .finish(BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.fmt_fields(plain_fields()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
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
