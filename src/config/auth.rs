//! `[namespaces.X.auth]`: how the facade proves to Glance which project it
//! acts for, one table per mode.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthConfig {
    /// Glance trusts identity headers from the facade (a Glance pipeline with
    /// `ContextMiddleware` instead of keystonemiddleware, on a private network).
    Trusted(TrustedConfig),
    /// The facade gets a Keystone token scoped to each environment.
    Keystone(Box<KeystoneConfig>),
}

impl AuthConfig {
    /// `glance_url`: the namespace's, which trusted mode cannot do without.
    pub(super) fn validate(&self, glance_url: Option<&Url>) -> Result<(), String> {
        match self {
            AuthConfig::Trusted(trusted) => trusted.validate(glance_url),
            AuthConfig::Keystone(keystone) => keystone.validate(),
        }
    }
}

/// The identity headers sent in trusted mode.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedConfig {
    /// Sent as `X-User-Id`. Must be given.
    pub user_id: String,
    /// Sent as `X-Roles`; Glance needs `reader` to read and `member` to write.
    pub roles: Vec<String>,
}

impl Default for TrustedConfig {
    /// `user_id` empty: not given, refused by `validate`.
    fn default() -> Self {
        TrustedConfig {
            user_id: String::new(),
            roles: vec!["member".into(), "reader".into()],
        }
    }
}

impl TrustedConfig {
    fn validate(&self, glance_url: Option<&Url>) -> Result<(), String> {
        // Header values, and `X-Roles` is a comma-separated list.
        let header_safe = |value: &str| !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        if !header_safe(&self.user_id) || self.roles.is_empty() || !self.roles.iter().all(|r| header_safe(r)) {
            return Err("trusted auth needs a user_id and roles made of visible ASCII".into());
        }
        self.glance_endpoint(glance_url).map(drop)
    }

    /// The namespace's `glance_url`, which trusted mode cannot do without
    /// (it has no catalog to find Glance in).
    pub fn glance_endpoint<'u>(&self, glance_url: Option<&'u Url>) -> Result<&'u Url, String> {
        glance_url.ok_or_else(|| "trusted auth needs glance_url".to_owned())
    }
}

/// Keystone v3 credentials of a namespace. Either name a `cloud` of a
/// `clouds.yaml` (its `auth`, `region_name` and `interface` are used; fields
/// given here win), or give the fields here. Secrets come from an
/// environment variable or a file, never from this file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeystoneConfig {
    pub cloud: Option<String>,
    /// Identity endpoint, with or without `/v3`.
    pub auth_url: Option<Url>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// An application credential binds the namespace to its one project.
    pub application_credential_id: Option<String>,
    pub application_credential_secret_env: Option<String>,
    pub application_credential_secret_file: Option<PathBuf>,
    /// Catalog interface of the image endpoint (default `public`).
    pub interface: Option<String>,
    pub region_name: Option<String>,
    pub scope_method: ScopeMethod,
    /// Most environments whose tokens are kept at once.
    pub token_cache_size: usize,
    /// Most environments whose refused scope is remembered at once.
    pub refused_environments_size: usize,
    /// How long a refused scope is answered without asking Keystone again.
    pub refused_environment_secs: u64,
    /// Keystone calls for environments the facade holds no token for (nor
    /// a remembered refusal): this many a second, on average ...
    pub new_environments_per_sec: u32,
    /// ... and this many at once.
    pub new_environments_burst: u32,
    /// The project on which the service user holds the `service` role (as
    /// keystonemiddleware's user does): a token scoped to it may validate
    /// the callers' tokens. Needed by `keystone_token` callers only.
    pub service_project_id: Option<String>,
    /// How long a caller's validated token is trusted without asking
    /// Keystone again (never beyond its expiry): a revoked token keeps
    /// working this long at most. keystonemiddleware's default.
    pub caller_token_cache_secs: u64,
    /// Most callers' tokens kept at once.
    pub caller_token_cache_size: usize,
    /// Validations of callers' tokens not in the cache (each a Keystone
    /// call): this many a second, on average ...
    pub caller_token_validations_per_sec: u32,
    /// ... and this many at once.
    pub caller_token_validations_burst: u32,
}

impl Default for KeystoneConfig {
    fn default() -> Self {
        KeystoneConfig {
            cloud: None,
            auth_url: None,
            username: None,
            user_id: None,
            user_domain_name: None,
            user_domain_id: None,
            password_env: None,
            password_file: None,
            application_credential_id: None,
            application_credential_secret_env: None,
            application_credential_secret_file: None,
            interface: None,
            region_name: None,
            scope_method: ScopeMethod::default(),
            token_cache_size: 10_000,
            refused_environments_size: 10_000,
            refused_environment_secs: 60,
            new_environments_per_sec: 20,
            new_environments_burst: 100,
            service_project_id: None,
            caller_token_cache_secs: 300,
            caller_token_cache_size: 10_000,
            caller_token_validations_per_sec: 20,
            caller_token_validations_burst: 100,
        }
    }
}

impl KeystoneConfig {
    fn validate(&self) -> Result<(), String> {
        if self.token_cache_size == 0 || self.refused_environments_size == 0 || self.caller_token_cache_size == 0 {
            return Err(
                "token_cache_size, refused_environments_size and caller_token_cache_size must be positive".into(),
            );
        }
        if self.new_environments_per_sec == 0 || self.new_environments_burst == 0 {
            return Err("new_environments_per_sec and new_environments_burst must be positive".into());
        }
        if self.caller_token_validations_per_sec == 0 || self.caller_token_validations_burst == 0 {
            return Err("caller_token_validations_per_sec and caller_token_validations_burst must be positive".into());
        }
        Ok(())
    }
}

/// How a project-scoped token is obtained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeMethod {
    /// Re-scope one unscoped token per environment: one password check in
    /// all, instead of one per environment.
    #[default]
    Rescope,
    /// A password authentication per environment.
    Password,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::tests::{MINIMAL, error};

    #[test]
    fn keystone_namespaces() {
        let config = Config::parse(
            r#"
            [namespaces.ccsr2]
            auth = { type = "keystone", cloud = "devstack", scope_method = "password" }
            "#,
        )
        .unwrap();
        let AuthConfig::Keystone(keystone) = &config.namespaces["ccsr2"].auth else {
            panic!("keystone auth expected");
        };
        assert_eq!(keystone.cloud.as_deref(), Some("devstack"));
        assert_eq!(keystone.scope_method, ScopeMethod::Password);
        assert_eq!(keystone.token_cache_size, 10_000);
        assert_eq!(
            (
                keystone.refused_environments_size,
                keystone.refused_environment_secs,
                keystone.new_environments_per_sec,
                keystone.new_environments_burst
            ),
            (10_000, 60, 20, 100)
        );
        // Trusted mode has no catalog to find Glance in.
        assert!(Config::parse("[namespaces.x]\nauth = { type = \"trusted\", user_id = \"u\" }").is_err());
        // Secrets are never written in this file.
        assert!(Config::parse("[namespaces.x]\nauth = { type = \"keystone\", password = \"p\" }").is_err());
    }

    #[test]
    fn trusted_auth_needs_a_user_id() {
        let expected = "namespace ccsr1: trusted auth needs a user_id and roles made of visible ASCII";
        assert_eq!(error(&MINIMAL.replace(", user_id = \"alliance\"", "")), expected);
        assert_eq!(
            error(&MINIMAL.replace("user_id = \"alliance\"", "user_id = \"\"")),
            expected
        );
        let unknown = error(&MINIMAL.replace("user_id = \"alliance\"", "user_id = \"a\", password = \"p\""));
        assert!(unknown.contains("unknown field `password`"), "{unknown}");
        assert!(error(&MINIMAL.replace("\"trusted\"", "\"other\"")).contains("unknown variant `other`"));
    }
}
