//! Configuration reload (SIGHUP): the one place where the configuration
//! file is read again and every reloadable part takes it up.
//!
//! A reload is all or nothing. The new file is read and checked, the
//! namespaces it names are built (an unchanged namespace is the running
//! one, its token cache and connection pool kept; see [`Clouds::reusing`]),
//! and every [`ReloadAction`] prepares its part; only if all of that
//! succeeds is anything swapped in. Otherwise the error is logged and the
//! running configuration stays. Requests under way finish with the
//! namespaces they started with.
//!
//! `listen`, `allow_open`, `shutdown_grace_secs`, `max_body_bytes`,
//! `[client]`, `[upstream]`, `[admin]`, `[audit]` and whether there is a
//! `[tls]` take effect at restart (SIGHUP reopens the audit file): a reload that changes them says so in the log and
//! applies the rest (the namespaces, the `[[callers]]` rules, the TLS
//! files - [`CallerRules`], [`TlsFiles`]).
//!
//! [`Clouds::reusing`]: crate::route::Clouds::reusing

use std::path::PathBuf;
use std::sync::Arc;

use crate::app::App;
use crate::callers::Callers;
use crate::config::Config;
use crate::listener_tls::{Certificates, Tls};
use crate::metrics::ReloadOutcome;
use crate::route::Changes;

/// The step that makes a prepared part of a reload take effect.
pub type Commit = Box<dyn FnOnce() + Send>;

/// A part of the facade that takes up a new configuration (for instance the
/// Alliance listener's TLS certificate).
pub trait ReloadAction: Send {
    /// Checks `config` and builds what the part needs, changing nothing
    /// yet; the returned step is run only if every part prepared.
    fn prepare(&self, config: &Config) -> Result<Commit, String>;
}

/// The `[[callers]]` rules, compiled again (bearer secret files read again).
pub struct CallerRules(pub Arc<App>);

impl ReloadAction for CallerRules {
    fn prepare(&self, config: &Config) -> Result<Commit, String> {
        let callers =
            Callers::from_config(config, self.0.clouds().shared_cache()).map_err(|error| error.to_string())?;
        let app = Arc::clone(&self.0);
        Ok(Box::new(move || app.install_callers(callers)))
    }
}

/// The Alliance listener's certificate chain, key and client CA, read
/// again (a listener started without `[tls]` gets it at restart).
pub struct TlsFiles(pub Arc<Tls>);

impl ReloadAction for TlsFiles {
    fn prepare(&self, config: &Config) -> Result<Commit, String> {
        let Some(settings) = &config.tls else {
            return Ok(Box::new(|| ()));
        };
        let certificates = Certificates::load(settings)?;
        let tls = Arc::clone(&self.0);
        Ok(Box::new(move || tls.install(certificates)))
    }
}

pub struct Reloader {
    path: PathBuf,
    app: Arc<App>,
    /// The settings that take effect at restart, as the process runs them.
    started_with: Config,
    actions: Vec<Box<dyn ReloadAction>>,
}

impl Reloader {
    pub fn new(path: PathBuf, app: Arc<App>, started_with: Config) -> Self {
        Reloader {
            path,
            app,
            started_with,
            actions: Vec::new(),
        }
    }

    /// `action` takes part in every reload from now on.
    pub fn add(&mut self, action: Box<dyn ReloadAction>) {
        self.actions.push(action);
    }

    /// Reads the configuration file again and applies it, or keeps the
    /// running one; either way a log line says what happened.
    pub fn reload(&self) -> Result<Changes, String> {
        // Whatever becomes of the file: log rotation's signal.
        self.app.reopen_audit();
        let outcome = self.try_reload();
        let metrics = self.app.metrics();
        match &outcome {
            Ok(changes) => {
                metrics.reload(ReloadOutcome::Applied);
                tracing::info!(
                    config = %self.path.display(),
                    added = ?changes.added,
                    removed = ?changes.removed,
                    changed = ?changes.changed,
                    kept = ?changes.kept,
                    "configuration reloaded"
                );
            }
            Err(error) => {
                metrics.reload(ReloadOutcome::Refused);
                tracing::error!(%error, "configuration reload refused; the running configuration stays");
            }
        }
        outcome
    }

    fn try_reload(&self) -> Result<Changes, String> {
        let config = Config::load(&self.path).map_err(|error| error.to_string())?;
        let (clouds, changes) = self.app.prepare(&config).map_err(|error| error.to_string())?;
        let commits = self
            .actions
            .iter()
            .map(|action| action.prepare(&config))
            .collect::<Result<Vec<_>, _>>()?;
        for setting in restart_only_changes(&self.started_with, &config) {
            tracing::warn!(setting, "this setting changed; it takes effect at restart");
        }
        self.app.install(clouds);
        for commit in commits {
            commit();
        }
        Ok(changes)
    }
}

/// The settings that differ between `running` and `new` but take effect
/// only at restart.
pub fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("listen", running.listen != new.listen),
        ("allow_open", running.allow_open != new.allow_open),
        ("tls", running.tls.is_some() != new.tls.is_some()),
        (
            "shutdown_grace_secs",
            running.shutdown_grace_secs != new.shutdown_grace_secs,
        ),
        ("drain_secs", running.drain_secs != new.drain_secs),
        ("shared_cache", running.shared_cache != new.shared_cache),
        ("max_body_bytes", running.max_body_bytes != new.max_body_bytes),
        ("client", running.client != new.client),
        ("upstream", running.upstream != new.upstream),
        ("admin", running.admin != new.admin),
        ("audit", running.audit != new.audit),
    ]
    .into_iter()
    .filter_map(|(setting, changed)| changed.then_some(setting))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_settings_are_named() {
        let base = "[namespaces.a]\nglance_url = \"http://g\"\nauth = { type = \"trusted\", user_id = \"u\" }\n";
        let running = Config::parse(base).unwrap();
        let moved = Config::parse(&format!(
            "listen = \"127.0.0.1:9999\"\nshutdown_grace_secs = 3\nmax_body_bytes = 5\n[client]\nmax_connections = 7\n[admin]\nmetrics = false\n{base}\n[tls]\ncert_chain_file = \"/c\"\nkey_file = \"/k\"\n"
        ))
        .unwrap();
        assert_eq!(
            restart_only_changes(&running, &moved),
            [
                "listen",
                "tls",
                "shutdown_grace_secs",
                "max_body_bytes",
                "client",
                "admin"
            ]
        );
        assert!(restart_only_changes(&running, &running.clone()).is_empty());
    }
}
