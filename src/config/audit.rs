//! `[audit]`: the audit trail (CADF events of changes and refused callers).

use std::path::PathBuf;

use serde::Deserialize;

/// The audit trail (`[audit]`; no table: no trail). Each event is one JSON
/// line appended to `file` and/or one message to the syslog socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// JSON lines, appended; reopened when the path names another file
    /// (rotated away) and on SIGHUP. Empty: no file.
    pub file: PathBuf,
    /// A syslog socket (Unix datagram, e.g. `/dev/log`). Empty: no syslog.
    pub syslog: PathBuf,
    /// The syslog facility of the messages.
    pub syslog_facility: String,
    /// `true`: list and show are recorded too.
    pub reads: bool,
    /// Events waiting for the sink at most; past it they are dropped (or,
    /// with `required`, changes are refused).
    pub queue_events: usize,
    /// `true`: a change is refused (503) while its event could not be written.
    pub required: bool,
    /// The observer of every event (this facade).
    pub observer_name: String,
    /// A UUID; empty: one derived from `observer_name`.
    pub observer_id: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            file: PathBuf::new(),
            syslog: PathBuf::new(),
            syslog_facility: "authpriv".into(),
            reads: false,
            queue_events: 10_000,
            required: false,
            observer_name: "alliance-glance".into(),
            observer_id: String::new(),
        }
    }
}

/// Syslog facilities by name (RFC 5424's numbers).
pub const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("authpriv", 10),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The most events one queue may hold.
const MAX_QUEUE_EVENTS: usize = 1_000_000;

impl AuditConfig {
    /// The facility's number.
    pub fn facility(&self) -> u8 {
        FACILITIES
            .iter()
            .find(|(name, _)| *name == self.syslog_facility)
            .map_or(10, |(_, number)| *number)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.file.as_os_str().is_empty() && self.syslog.as_os_str().is_empty() {
            return Err("audit: give a file, a syslog socket or both".into());
        }
        for (name, path) in [("file", &self.file), ("syslog", &self.syslog)] {
            if !path.as_os_str().is_empty() && !path.is_absolute() {
                return Err(format!("audit.{name} must be an absolute path"));
            }
        }
        if !FACILITIES.iter().any(|(name, _)| *name == self.syslog_facility) {
            let names: Vec<&str> = FACILITIES.iter().map(|(name, _)| *name).collect();
            return Err(format!("audit.syslog_facility must be one of {}", names.join(", ")));
        }
        if self.queue_events == 0 || self.queue_events > MAX_QUEUE_EVENTS {
            return Err(format!("audit.queue_events must be between 1 and {MAX_QUEUE_EVENTS}"));
        }
        if self.observer_name.is_empty() {
            return Err("audit.observer_name must not be empty".into());
        }
        if !self.observer_id.is_empty() && uuid::Uuid::try_parse(&self.observer_id).is_err() {
            return Err("audit.observer_id must be a UUID".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{MINIMAL, error};
    use crate::config::{AuditConfig, Config};

    #[test]
    fn no_table_no_trail_and_defaults_apply() {
        assert_eq!(Config::parse(MINIMAL).unwrap().audit, None);
        let config = Config::parse(&format!("{MINIMAL}\n[audit]\nfile = \"/var/log/audit.jsonl\"\n")).unwrap();
        let audit = config.audit.unwrap();
        assert_eq!(
            audit,
            AuditConfig {
                file: "/var/log/audit.jsonl".into(),
                ..AuditConfig::default()
            }
        );
        assert_eq!(
            (audit.queue_events, audit.reads, audit.required),
            (10_000, false, false)
        );
        assert_eq!(audit.facility(), 10);
    }

    #[test]
    fn bad_settings_are_named() {
        let audit = |lines: &str| error(&format!("{MINIMAL}\n[audit]\n{lines}\n"));
        assert!(audit("").contains("give a file, a syslog socket or both"));
        assert!(audit("file = \"audit.jsonl\"").contains("audit.file must be an absolute path"));
        assert!(audit("syslog = \"/dev/log\"\nsyslog_facility = \"mail\"").contains("audit.syslog_facility"));
        assert!(audit("file = \"/a\"\nqueue_events = 0").contains("audit.queue_events"));
        assert!(audit("file = \"/a\"\nobserver_id = \"x\"").contains("audit.observer_id must be a UUID"));
        assert!(audit("file = \"/a\"\nbogus = 1").contains("unknown field"));
        Config::parse(&format!(
            "{MINIMAL}\n[audit]\nsyslog = \"/dev/log\"\nobserver_id = \"0b6c4a8e-2f7d-4c1b-9a3e-5d8f7e6c4b2a\"\n"
        ))
        .unwrap();
    }
}
