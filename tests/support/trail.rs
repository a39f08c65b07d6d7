//! The audit trail as tests read it: the `[audit]` table, the events of a
//! trail file, and pycadf's verdict on them (`scripts/cadf-check.py`, run
//! with the venv's Python).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// An `[audit]` table writing to `file`, with `extra` settings.
pub fn audit_table(file: &Path, extra: &str) -> String {
    format!("[audit]\nfile = \"{}\"\n{extra}\n", file.display())
}

/// The lines of `file` (none if it does not exist).
pub fn trail_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The events of `file` once it holds `count` (waiting up to 10 s), after
/// a moment in which no other came: exactly `count`.
pub async fn events(file: &Path, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        if trail_lines(file).len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = trail_lines(file);
    let events: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
        .collect();
    assert_eq!(
        events.len(),
        count,
        "events in {}:\n{}",
        file.display(),
        lines.join("\n")
    );
    events
}

/// pycadf's check of every line of `file` (`scripts/cadf-check.py`): each
/// rebuilt as a valid `pycadf.event.Event` whose `as_dict()` is the line.
/// Fails - never skips - without the venv (scripts/test.sh builds it).
pub fn checked_by_pycadf(file: &Path) -> Vec<Value> {
    let python = super::venv_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cadf-check.py");
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(file)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "{}: {error} (scripts/test.sh builds the venv with scripts/openstack/up.sh)",
                python.display()
            )
        });
    assert!(
        output.status.success(),
        "pycadf refused the trail: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the checker's output")
}

/// `action outcome status` of an event (`-` without a reason).
pub fn summary(event: &Value) -> String {
    format!(
        "{} {} {}",
        event["action"].as_str().unwrap_or("?"),
        event["outcome"].as_str().unwrap_or("?"),
        event["reason"]["reasonCode"].as_str().unwrap_or("-")
    )
}

/// The attachment `name` of a resource (or of the event)'s content.
pub fn attachment<'a>(holder: &'a Value, name: &str) -> &'a Value {
    holder["attachments"]
        .as_array()
        .and_then(|attachments| attachments.iter().find(|attachment| attachment["name"] == name))
        .map_or(&Value::Null, |attachment| &attachment["content"])
}

/// The caller facts of an event's initiator.
pub fn caller(event: &Value) -> &Value {
    attachment(&event["initiator"], "caller")
}

/// The request id the event names.
pub fn event_request_id(event: &Value) -> &str {
    attachment(event, "request_id").as_str().unwrap_or_default()
}
