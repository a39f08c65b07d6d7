//! Log output: human-readable text or one JSON object per line, on stderr.
//!
//! The serving threads keep their lines in a per-thread batch, written with
//! one `write(2)` when it holds [`BATCH_BYTES`] or every [`BATCH_INTERVAL`]
//! (nginx's `access_log ... buffer= flush=`): a `write(2)` per request, or
//! a hand-off to a writer thread, was the largest cost left in a request in
//! the benchmark (bench/README.md). A batch is written out when its thread
//! ends, panics included; a killed process loses at most one interval of
//! lines. Every other thread writes its lines at once.
//!
//! The text format is written by [`TextLine`] rather than tracing's own
//! formatter, whose per-field `core::fmt` calls and timestamp formatting
//! were a tenth of a request's instructions.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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
        .with_ansi(false)
        .with_writer(|| Stderr);
    match format {
        LogFormat::Text => builder.event_format(TextLine).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// One text line per event, the layout of tracing's default format without
/// colours: `2026-11-27T06:28:37.792409Z  INFO target: message name=value
/// ...`, text values as they are (no quotes), in the order they were given.
/// The facade opens no spans, so lines carry no span context.
struct TextLine;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let metadata = event.metadata();
        write_utc_time(&mut writer, SystemTime::now(), "Z")?;
        writer.write_str(match *metadata.level() {
            Level::ERROR => " ERROR ",
            Level::WARN => "  WARN ",
            Level::INFO => "  INFO ",
            Level::DEBUG => " DEBUG ",
            Level::TRACE => " TRACE ",
        })?;
        writer.write_str(metadata.target())?;
        writer.write_char(':')?;
        let mut fields = PlainFields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// ` name=value` per field (` value` for the message).
struct PlainFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl PlainFields<'_, '_> {
    fn write(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_char(' ')?;
                if field.name() != "message" {
                    self.writer.write_str(field.name())?;
                    self.writer.write_char('=')?;
                }
                value(self.writer)
            })();
        }
    }
}

impl Visit for PlainFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, |writer| writer.write_str(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, |writer| writer.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, |writer| write!(writer, "{value:?}"));
    }
}

thread_local! {
    /// The second last formatted by this thread, and its text up to the
    /// seconds (`2026-11-27T06:28:37`): formatting a date once a second.
    static LAST_SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-11-27T06:28:37.792409` and `zone` (UTC, microseconds): `Z` for the
/// log, `+0000` for the audit trail.
pub fn write_utc_time(writer: &mut impl fmt::Write, now: SystemTime, zone: &str) -> fmt::Result {
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let second = since_epoch.as_secs();
    LAST_SECOND.with_borrow_mut(|(last, text)| {
        if *last != second {
            let date = i64::try_from(second)
                .ok()
                .and_then(|second| time::OffsetDateTime::from_unix_timestamp(second).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            text.clear();
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                date.year(),
                u8::from(date.month()),
                date.day(),
                date.hour(),
                date.minute(),
                date.second()
            )?;
            *last = second;
        }
        writer.write_str(text)
    })?;
    let mut fraction = *b".000000";
    let mut micros = since_epoch.subsec_micros();
    for digit in fraction[1..].iter_mut().rev() {
        // `micros % 10` is below 10: the cast cannot truncate.
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    writer.write_str(std::str::from_utf8(&fraction).map_err(|_| fmt::Error)?)?;
    writer.write_str(zone)
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

/// What `run` logs on this thread, in the text format (for tests).
#[cfg(test)]
pub fn captured(run: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .event_format(TextLine)
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let bytes = lines.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A repeated WARN line (a limit refusing, a cache failing) is written at
/// most this often.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// A warning shared by every thread, written at most once per
/// [`WARNING_INTERVAL`].
pub struct Throttled {
    epoch: Instant,
    /// When the next warning may be written, in milliseconds from `epoch`.
    next_ms: AtomicU64,
    /// Events since the last warning.
    count: AtomicU64,
}

impl Default for Throttled {
    fn default() -> Self {
        Throttled {
            epoch: Instant::now(),
            next_ms: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Throttled {
    /// Counts one event; `Some(events since the last warning, this one
    /// included)` when a warning is due now.
    pub fn due(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(WARNING_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if now < next
            || self
                .next_ms
                .compare_exchange(next, now.saturating_add(interval), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let at = |micros: u64| SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
        let mut text = String::new();
        write_utc_time(&mut text, at(1_795_761_717_792_409), "Z").unwrap();
        text.push(' ');
        write_utc_time(&mut text, at(1_795_761_717_000_007), "Z").unwrap();
        text.push(' ');
        write_utc_time(&mut text, at(1_795_761_718_000_000), "Z").unwrap();
        assert_eq!(
            text,
            "2026-11-27T06:41:57.792409Z 2026-11-27T06:41:57.000007Z 2026-11-27T06:41:58.000000Z"
        );
    }

    #[test]
    fn text_lines_have_the_default_layout_without_colours() {
        let text = captured(|| {
            tracing::info!(target: "alliance_glance::request", request_id = "req-1", status = 200_u16, aborted = false);
            let detail = "refused";
            tracing::warn!(%detail, quoted = ?"x y", "image service {}", "unreachable");
        });
        let without_times: Vec<&str> = text
            .lines()
            .map(|line| {
                let (time, rest) = line.split_once(' ').unwrap();
                assert!(time.len() == 27 && time.ends_with('Z'), "{time}");
                rest
            })
            .collect();
        assert_eq!(
            without_times,
            [
                " INFO alliance_glance::request: request_id=req-1 status=200 aborted=false",
                " WARN alliance_glance::logging::tests: image service unreachable detail=refused quoted=\"x y\"",
            ]
        );
    }

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
    #[test]
    fn a_warning_stands_for_the_events_since_the_last() {
        let warnings = Throttled::default();
        assert_eq!(warnings.due(), Some(1));
        assert_eq!(warnings.due(), None);
        assert_eq!(warnings.due(), None);
        // The interval passed: the next warning counts the two left out.
        warnings.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(warnings.due(), Some(3));
    }
}
