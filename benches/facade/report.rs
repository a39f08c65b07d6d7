//! The table the harness prints: one row per figure, with what it is
//! compared with, the target and whether it is met.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// A figure reported for information, with no target.
    Info,
    /// The part did not produce the figure (smoke mode, or it failed).
    NotRun,
}

impl Verdict {
    pub fn from(met: bool) -> Self {
        if met { Verdict::Met } else { Verdict::Missed }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "**missed**",
            Verdict::Info => "",
            Verdict::NotRun => "not run",
        }
    }
}

pub struct Row {
    pub part: String,
    pub measure: String,
    pub value: String,
    pub compared: String,
    pub target: String,
    pub verdict: Verdict,
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    pub fn row(&mut self, part: &str, measure: impl Into<String>, value: impl Into<String>) -> RowBuilder<'_> {
        self.rows.push(Row {
            part: part.to_owned(),
            measure: measure.into(),
            value: value.into(),
            compared: String::new(),
            target: String::new(),
            verdict: Verdict::Info,
        });
        let row = self.rows.last_mut().expect("just pushed");
        eprintln!("  {} | {} | {}", row.part, row.measure, row.value);
        RowBuilder { row }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn failed(&mut self, part: &str, error: &str) {
        let first_line: String = error.lines().next().unwrap_or_default().chars().take(200).collect();
        self.row(part, "part failed", first_line.replace('|', "/"))
            .verdict(Verdict::NotRun);
    }

    pub fn missed(&self) -> usize {
        self.rows.iter().filter(|row| row.verdict == Verdict::Missed).count()
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| Part | Measure | Result | Compared with | Target | Status |");
        let _ = writeln!(out, "| --- | --- | ---: | --- | --- | --- |");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                row.part,
                row.measure,
                row.value,
                row.compared,
                row.target,
                row.verdict.label()
            );
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

pub struct RowBuilder<'a> {
    row: &'a mut Row,
}

impl RowBuilder<'_> {
    pub fn compared(self, text: impl Into<String>) -> Self {
        self.row.compared = text.into();
        self
    }

    pub fn target(self, text: impl Into<String>, met: bool) -> Self {
        self.row.target = text.into();
        self.row.verdict = Verdict::from(met);
        self
    }

    pub fn verdict(self, verdict: Verdict) -> Self {
        self.row.verdict = verdict;
        self
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A difference of times, with its sign (`+0.083 ms`, `-1.173 ms`).
pub fn signed_ms(value: f64) -> String {
    let sign = if value < 0.0 { '-' } else { '+' };
    format!("{sign}{}", ms(value.abs()))
}

pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.3} ms")
    } else if value < 1000.0 {
        format!("{value:.1} ms")
    } else {
        format!("{:.2} s", value / 1000.0)
    }
}

pub fn rps(value: f64) -> String {
    format!("{value:.0} req/s")
}

pub fn ratio(value: f64) -> String {
    format!("{value:.2} x")
}
