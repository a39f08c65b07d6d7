//! Secrets kept in files of their own (`*_file` settings): the first line,
//! trimmed, so that a trailing newline or a comment line after it is no
//! part of the secret.

use std::path::Path;

/// The first line of the file at `path`, trimmed (empty for an empty
/// file); the caller says what the file was for when it cannot be read.
pub fn read_first_line(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}
