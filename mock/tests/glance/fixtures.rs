//! The recorded exchanges in `tests/fixtures/`: a reader for their format, and
//! the check that every transcript cited under `mock/` has its file there (and
//! that every file there is cited).
//!
//! A citation reads `transcript NNN` or `transcripts NNN, NNN-NNN and
//! folder/NNN` (files of `glance-33.0.0/` by number, in a sub-folder if named,
//! a range citing all files between its ends), or the same after "keystone"
//! for files of `keystone-30.0.0/`. Lists may continue on the next comment line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const CRATE: &str = env!("CARGO_MANIFEST_DIR");
const GLANCE: &str = "tests/fixtures/glance-33.0.0";
const KEYSTONE: &str = "tests/fixtures/keystone-30.0.0";

/// The response of a recorded exchange.
#[derive(Debug)]
pub struct Recorded {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as sent: empty for `(empty, 0 bytes)`, the recorder's summary
    /// line for binary data.
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The response of Glance transcript `citation` (`"029"`, `"extras/004"`).
pub fn recorded(citation: &str) -> Recorded {
    let (folder, number) = citation.rsplit_once('/').unwrap_or(("", citation));
    let path = fixture(&Path::new(CRATE).join(GLANCE).join(folder), number)
        .unwrap_or_else(|| panic!("no fixture for transcript {citation}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file `NUMBER-*.txt` in `folder`.
fn fixture(folder: &Path, number: &str) -> Option<PathBuf> {
    let prefix = format!("{number}-");
    std::fs::read_dir(folder)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".txt"))
        })
}

/// Reads the final response of a transcript: the first head after
/// `=== RESPONSE ===` that is not `100 Continue`, and its body (the recorder
/// adds a newline, and may add a pretty-printed copy; a HEAD has no body).
fn parse(text: &str) -> Result<Recorded, String> {
    let (request, mut rest) = text.split_once("=== RESPONSE ===\n").ok_or("no response section")?;
    let head_request = request.contains("=== REQUEST ===\nHEAD ");
    loop {
        let (head, body) = rest.split_once("\n\n").ok_or("no end of the response head")?;
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        if status == 100 {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|line| line.split_once(": "))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let body = body
            .split("\n--- (response body pretty-printed")
            .next()
            .unwrap_or_default();
        let body = body.strip_suffix('\n').unwrap_or(body);
        let body = if head_request || body == "(empty, 0 bytes)" {
            String::new()
        } else {
            body.to_owned()
        };
        return Ok(Recorded { status, headers, body });
    }
}

/// A cited transcript: which fixture folder, and the first and last number.
#[derive(Debug, PartialEq)]
struct Citation {
    folder: String,
    first: String,
    last: String,
}

/// The citations in a source text, with their line numbers.
fn citations(text: &str) -> Vec<(usize, Citation)> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    for (at, _) in lower.match_indices("transcript") {
        if lower[..at].ends_with(|c: char| c.is_ascii_alphanumeric()) {
            continue;
        }
        let root = if lower[..at].trim_end_matches([' ', '_']).ends_with("keystone") {
            KEYSTONE
        } else {
            GLANCE
        };
        let rest = &text[at + "transcript".len()..];
        let rest = rest.strip_prefix('s').unwrap_or(rest);
        let Some(mut rest) = gap(rest).or_else(|| rest.strip_prefix('_')) else {
            continue;
        };
        let line = text[..at].matches('\n').count() + 1;
        while let Some((citation, after)) = item(rest) {
            found.push((
                line,
                Citation {
                    folder: format!("{root}/{}", citation.folder).trim_end_matches('/').to_owned(),
                    ..citation
                },
            ));
            let Some(next) = separator(after) else { break };
            rest = next;
        }
    }
    found
}

/// A space, or a line break that continues a comment (`//`, `///`, `//!`).
fn gap(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix(' ') {
        return Some(rest);
    }
    let rest = text.strip_prefix('\n')?.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix("//")?;
    rest.strip_prefix(['/', '!']).unwrap_or(rest).strip_prefix(' ')
}

/// `, `, ` and ` or `, and ` between two items of a list.
fn separator(text: &str) -> Option<&str> {
    match text.strip_prefix(',') {
        Some(rest) => gap(rest).map(|rest| and(rest).unwrap_or(rest)),
        None => gap(text).and_then(and),
    }
}

/// `and` and a gap.
fn and(text: &str) -> Option<&str> {
    text.strip_prefix("and").and_then(gap)
}

/// One `[folder/]NNN[-NNN]` at the start of `text`, and what follows it.
fn item(text: &str) -> Option<(Citation, &str)> {
    let word = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(s.len())
    };
    let end = word(text);
    let (folder, number, rest) = match text[end..].strip_prefix('/') {
        Some(after) => {
            let number_end = word(after);
            (&text[..end], &after[..number_end], &after[number_end..])
        }
        None => ("", &text[..end], &text[end..]),
    };
    let (first, last) = number.split_once('-').unwrap_or((number, number));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(first) && digits(last)).then(|| {
        let citation = Citation {
            folder: folder.to_owned(),
            first: first.to_owned(),
            last: last.to_owned(),
        };
        (citation, rest)
    })
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every citation in the `.rs` files of the mock crate, with file and line.
fn all_citations() -> Vec<(String, Citation)> {
    let mut files = Vec::new();
    sources(Path::new(CRATE), &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let name = path.strip_prefix(CRATE).unwrap_or(&path).display().to_string();
        for (line, citation) in citations(&text) {
            found.push((format!("{name}:{line}"), citation));
        }
    }
    found
}

/// The fixture files (without `INDEX.*`) under `dir`, relative to the crate.
fn fixture_files(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            fixture_files(&path, out);
        } else if name.ends_with(".txt") && !name.starts_with("INDEX") {
            out.insert(path.strip_prefix(CRATE).unwrap_or(&path).to_owned());
        }
    }
}

/// The number of a fixture file name (`067` of `067-get-missing.txt`).
fn number_of(path: &Path) -> &str {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.split('-').next().unwrap_or_default()
}

#[test]
fn every_cited_transcript_has_a_fixture() {
    let cited = all_citations();
    assert!(cited.len() > 100, "only {} citations found", cited.len());
    let missing: Vec<String> = cited
        .iter()
        .flat_map(|(place, c)| {
            let ends = if c.first == c.last {
                vec![&c.first]
            } else {
                vec![&c.first, &c.last]
            };
            ends.into_iter().map(move |number| (place, &c.folder, number))
        })
        .filter(|(_, folder, number)| fixture(&Path::new(CRATE).join(folder), number).is_none())
        .map(|(place, folder, number)| format!("{place}: {folder}/{number}-*.txt"))
        .collect();
    assert!(missing.is_empty(), "cited without a fixture:\n{}", missing.join("\n"));
}

#[test]
fn every_fixture_is_cited() {
    let mut files = BTreeSet::new();
    for root in [GLANCE, KEYSTONE] {
        fixture_files(&Path::new(CRATE).join(root), &mut files);
    }
    assert!(files.len() > 100, "only {} fixtures found", files.len());
    let cited = all_citations();
    let uncited: Vec<String> = files
        .iter()
        .filter(|file| {
            let folder = file.parent().unwrap_or(Path::new(""));
            let number = number_of(file);
            !cited.iter().any(|(_, c)| {
                Path::new(&c.folder) == folder
                    && number.len() == c.first.len()
                    && (c.first.as_str()..=c.last.as_str()).contains(&number)
            })
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(uncited.is_empty(), "fixtures nothing cites:\n{}", uncited.join("\n"));
}

#[test]
fn citations_are_read_in_lists_ranges_and_folders() {
    // Assembled so that this file does not cite these numbers itself.
    let cite = "transcr".to_owned() + "ipt";
    let text =
        format!("// see {cite}s 001, 002-004 and\n  // extras/001.\n/// Keystone {cite} 20; fn matches_{cite}_067()");
    let read: Vec<(usize, String, String, String)> = citations(&text)
        .into_iter()
        .map(|(line, c)| (line, c.folder, c.first, c.last))
        .collect();
    let glance = |folder: &str| format!("{GLANCE}{folder}");
    assert_eq!(
        read,
        [
            (1, glance(""), "001".to_owned(), "001".to_owned()),
            (1, glance(""), "002".to_owned(), "004".to_owned()),
            (1, glance("/extras"), "001".to_owned(), "001".to_owned()),
            (3, KEYSTONE.to_owned(), "20".to_owned(), "20".to_owned()),
            (3, glance(""), "067".to_owned(), "067".to_owned()),
        ]
    );
    // Prose about transcripts cites nothing; a number without its file is caught.
    let prose = format!("the {cite}s show it; {cite}_lengths");
    assert!(citations(&prose).is_empty());
    let missing = format!("{cite} 999");
    let (_, citation) = &citations(&missing)[0];
    assert!(fixture(&Path::new(CRATE).join(&citation.folder), &citation.first).is_none());
}

#[test]
fn every_fixture_parses_with_its_content_length() {
    let mut files = BTreeSet::new();
    fixture_files(&Path::new(CRATE).join(GLANCE), &mut files);
    for file in files {
        let text = std::fs::read_to_string(Path::new(CRATE).join(&file)).unwrap_or_default();
        if !text.contains("=== RESPONSE ===") {
            // The import poll logs are not exchanges.
            assert!(text.contains("### poll log"), "{}", file.display());
            continue;
        }
        let recorded = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let length = recorded.header("content-length");
        if !recorded.body.starts_with("(binary, ") {
            let expected = length.map_or(recorded.body.len(), |l| l.parse().unwrap_or(usize::MAX));
            assert_eq!(recorded.body.len(), expected, "{}", file.display());
        }
    }
}
