//! `[[callers]]`: who may call, and as which namespaces and environments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use super::auth::AuthConfig;
use super::limits::RateConfig;
use super::namespace::NamespaceConfig;
use super::tls::{ClientAuth, TlsConfig};

/// One `[[callers]]` rule: how the caller is recognised (exactly one of the
/// identity fields) and what it may act on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallerConfig {
    /// Names the rule in logs. Must be given.
    pub name: String,
    /// The SHA-256 fingerprint of the client certificate (hex, colons allowed).
    pub client_cert_sha256: Option<String>,
    /// A subject CN or SAN DNS name of a client certificate issued by
    /// `tls.client_ca_file`.
    pub client_cert_name: Option<String>,
    /// Source addresses.
    pub source_cidrs: Option<Vec<IpNet>>,
    /// `Authorization: Bearer <secret>`, held as `sha256:<salt>:<digest>`
    /// (`alliance-glance hash-secret` writes it).
    pub bearer_secret_sha256: Option<String>,
    /// `Authorization: Bearer <secret>`, the secret being the first line of
    /// this file (hashed when read; only the hash is kept).
    pub bearer_secret_file: Option<PathBuf>,
    /// `X-Auth-Token`, validated by the namespace's Keystone; the
    /// environment must be the token's project.
    pub keystone_token: bool,
    /// Must be given.
    pub namespaces: Scope,
    /// Must be given.
    pub environments: Scope,
    /// List and show only.
    pub read_only: bool,
    /// Requests a second of each caller the rule lets through (nginx's
    /// `limit_req`); none or 0: no limit. Over it: 429.
    pub rate: Option<RateConfig>,
}

/// How a rule recognises its caller: the one identity field it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerIdentity<'a> {
    CertSha256(&'a str),
    CertName(&'a str),
    Source(&'a [IpNet]),
    BearerSha256(&'a str),
    BearerFile(&'a Path),
    KeystoneToken,
}

impl CallerIdentity<'_> {
    /// Its field in the rule.
    pub fn field(self) -> &'static str {
        match self {
            CallerIdentity::CertSha256(_) => "client_cert_sha256",
            CallerIdentity::CertName(_) => "client_cert_name",
            CallerIdentity::Source(_) => "source_cidrs",
            CallerIdentity::BearerSha256(_) => "bearer_secret_sha256",
            CallerIdentity::BearerFile(_) => "bearer_secret_file",
            CallerIdentity::KeystoneToken => "keystone_token",
        }
    }
}

impl CallerConfig {
    /// The rule's identity; the error (`: ...` or `.field: ...`) when it
    /// sets none, or more than one.
    pub fn identity(&self) -> Result<CallerIdentity<'_>, String> {
        let set: Vec<CallerIdentity<'_>> = [
            self.client_cert_sha256.as_deref().map(CallerIdentity::CertSha256),
            self.client_cert_name.as_deref().map(CallerIdentity::CertName),
            self.source_cidrs.as_deref().map(CallerIdentity::Source),
            self.bearer_secret_sha256.as_deref().map(CallerIdentity::BearerSha256),
            self.bearer_secret_file.as_deref().map(CallerIdentity::BearerFile),
            self.keystone_token.then_some(CallerIdentity::KeystoneToken),
        ]
        .into_iter()
        .flatten()
        .collect();
        match set[..] {
            [] => Err(
                ": a rule needs one identity: client_cert_sha256, client_cert_name, source_cidrs, \
                       bearer_secret_sha256, bearer_secret_file or keystone_token"
                    .into(),
            ),
            [identity] => Ok(identity),
            _ => {
                let fields: Vec<&str> = set.iter().map(|identity| identity.field()).collect();
                Err(format!(".{}: a rule has exactly one identity", fields.join(", ")))
            }
        }
    }

    /// One rule, apart from its name; the message starts with the field at
    /// fault (`.source_cidrs: ...`), or with `: ` when the rule has no
    /// identity field.
    fn validate(&self, tls: Option<&TlsConfig>, namespaces: &BTreeMap<String, NamespaceConfig>) -> Result<(), String> {
        for (field, scope) in [("namespaces", &self.namespaces), ("environments", &self.environments)] {
            if *scope == Scope::default() {
                return Err(format!(".{field}: must be given: {SCOPE_EXPECTED}"));
            }
        }
        let identity = self.identity()?;
        let client_auth = tls.map_or(ClientAuth::None, |tls| tls.client_auth);
        let certificate = matches!(identity, CallerIdentity::CertSha256(_) | CallerIdentity::CertName(_));
        if certificate && client_auth == ClientAuth::None {
            return Err(format!(
                ".{}: client certificates need [tls] with client_auth = \"request\" or \"require\"",
                identity.field()
            ));
        }
        if self.client_cert_name.is_some() && tls.is_none_or(|tls| tls.client_ca_file.is_none()) {
            return Err(".client_cert_name: needs tls.client_ca_file, the CA that issues the certificates".into());
        }
        if self.source_cidrs.as_ref().is_some_and(Vec::is_empty) {
            return Err(".source_cidrs: must not be empty".into());
        }
        if self.rate.is_some_and(|rate| rate.burst == Some(0)) {
            return Err(".rate.burst: must be positive".into());
        }
        for namespace in self.namespaces.names() {
            if !namespaces.contains_key(namespace) {
                return Err(format!(".namespaces: {namespace:?} is not a configured namespace"));
            }
        }
        if self.keystone_token {
            self.validate_keystone_token(namespaces)?;
        }
        Ok(())
    }

    /// A `keystone_token` rule needs a Keystone, able to validate tokens, in
    /// each namespace it names (in one at least when it names none).
    fn validate_keystone_token(&self, namespaces: &BTreeMap<String, NamespaceConfig>) -> Result<(), String> {
        let covered = namespaces.iter().filter(|(name, _)| self.namespaces.covers(name));
        let mut keystone = 0;
        for (name, namespace) in covered {
            match &namespace.auth {
                AuthConfig::Keystone(auth) => {
                    if auth.service_project_id.is_none() {
                        return Err(format!(
                            ".keystone_token: namespace {name} needs service_project_id in its auth table \
                             (the project on which its service user has the service role)"
                        ));
                    }
                    keystone += 1;
                }
                AuthConfig::Trusted(_) if self.namespaces != Scope::Any => {
                    return Err(format!(
                        ".keystone_token: namespace {name} has trusted auth: no Keystone to validate tokens with"
                    ));
                }
                AuthConfig::Trusted(_) => {}
            }
        }
        if keystone == 0 {
            return Err(".keystone_token: no namespace of the rule has keystone auth".into());
        }
        Ok(())
    }
}

/// The `[[callers]]` rules; the message starts with the rule and the field
/// at fault (`callers[1].name: ...`).
pub(super) fn validate(
    callers: &[CallerConfig],
    tls: Option<&TlsConfig>,
    namespaces: &BTreeMap<String, NamespaceConfig>,
) -> Result<(), String> {
    for (index, caller) in callers.iter().enumerate() {
        let taken = callers[..index].iter().any(|earlier| earlier.name == caller.name);
        let checked = if caller.name.is_empty() || taken {
            Err(format!(".name: {:?} must be given and unique", caller.name))
        } else {
            caller.validate(tls, namespaces)
        };
        checked.map_err(|message| format!("callers[{index}]{message}"))?;
    }
    Ok(())
}

/// Names a rule covers: `"*"`, or a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ScopeValue")]
pub enum Scope {
    Any,
    Only(Vec<String>),
}

/// What a `Scope` is written as.
const SCOPE_EXPECTED: &str = "expected \"*\" or a non-empty list of names (without \"*\")";

impl Default for Scope {
    /// An empty list: not given (TOML cannot write it), refused by validation.
    fn default() -> Self {
        Scope::Only(Vec::new())
    }
}

impl Scope {
    /// The names listed (none for `"*"`).
    pub fn names(&self) -> &[String] {
        match self {
            Scope::Any => &[],
            Scope::Only(names) => names,
        }
    }

    pub fn covers(&self, name: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Only(names) => names.iter().any(|listed| listed == name),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeValue {
    One(String),
    List(Vec<String>),
}

impl TryFrom<ScopeValue> for Scope {
    type Error = &'static str;

    fn try_from(value: ScopeValue) -> Result<Self, Self::Error> {
        match value {
            ScopeValue::One(star) if star == "*" => Ok(Scope::Any),
            ScopeValue::List(names) if !names.is_empty() && !names.iter().any(|name| name == "*") => {
                Ok(Scope::Only(names))
            }
            _ => Err(SCOPE_EXPECTED),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::{MINIMAL, RULE, TLS, error};

    #[test]
    fn bad_caller_rules_name_their_field() {
        let rule = |body: &str| {
            format!("{MINIMAL}{TLS}\n[[callers]]\nname = \"r\"\nnamespaces = \"*\"\nenvironments = \"*\"\n{body}")
        };
        let cases = [
            ("", "callers[0]: a rule needs one identity: client_cert_sha256,"),
            (
                "source_cidrs = [\"10.0.0.0/8\"]\nkeystone_token = true",
                "callers[0].source_cidrs, keystone_token: a rule has exactly one identity",
            ),
            (
                "client_cert_sha256 = \"ab\"",
                "callers[0].client_cert_sha256: client certificates need [tls] with client_auth",
            ),
            ("source_cidrs = []", "callers[0].source_cidrs: must not be empty"),
            (
                "source_cidrs = [\"10.0.0.0/8\"]\nrate = { rate_per_sec = 5, burst = 0 }",
                "callers[0].rate.burst: must be positive",
            ),
            (
                "keystone_token = true",
                "callers[0].keystone_token: no namespace of the rule has keystone auth",
            ),
        ];
        for (body, expected) in cases {
            let message = error(&rule(body));
            assert!(message.starts_with(expected), "{body:?}: {message}");
        }
        let with_client_auth = format!("{}client_auth = \"request\"\n", TLS);
        let named = format!(
            "{MINIMAL}{with_client_auth}\n[[callers]]\nname = \"r\"\nnamespaces = \"*\"\nenvironments = \"*\"\nclient_cert_name = \"gw\""
        );
        assert!(error(&named).starts_with("callers[0].client_cert_name: needs tls.client_ca_file"));
        let unknown = format!("{MINIMAL}{RULE}").replace("namespaces = \"*\"", "namespaces = [\"nope\"]");
        assert!(error(&unknown).starts_with("callers[0].namespaces: \"nope\" is not a configured namespace"));
        let twice = format!("{MINIMAL}{RULE}{RULE}");
        assert!(error(&twice).starts_with("callers[1].name: \"gateway\" must be given and unique"));
        let star_in_list = format!("{MINIMAL}{RULE}").replace("environments = \"*\"", "environments = [\"*\"]");
        assert!(error(&star_in_list).contains("environments"));
        let trusted_token = format!(
            "{MINIMAL}\n[[callers]]\nname = \"t\"\nkeystone_token = true\nnamespaces = [\"ccsr1\"]\nenvironments = \"*\""
        );
        assert!(error(&trusted_token).starts_with("callers[0].keystone_token: namespace ccsr1 has trusted auth"));
        let keystone = "[namespaces.ks]\nauth = { type = \"keystone\", auth_url = \"http://k/v3\", username = \"u\", password_env = \"P\" }\n";
        let no_service_project = format!(
            "{keystone}\n[[callers]]\nname = \"t\"\nkeystone_token = true\nnamespaces = \"*\"\nenvironments = \"*\""
        );
        assert!(
            error(&no_service_project).starts_with("callers[0].keystone_token: namespace ks needs service_project_id")
        );
        Config::parse(&no_service_project.replace(
            "password_env = \"P\"",
            "password_env = \"P\", service_project_id = \"5e\"",
        ))
        .unwrap();
        let ca_without_client_auth = format!("{MINIMAL}{TLS}client_ca_file = \"/ca.pem\"\n");
        assert!(error(&ca_without_client_auth).starts_with("tls.client_auth must be"));
    }

    #[test]
    fn a_rule_needs_its_name_and_scope() {
        let without = |line: &str| format!("{MINIMAL}{RULE}").replace(line, "");
        let cases = [
            ("name = \"gateway\"", "callers[0].name: \"\" must be given and unique"),
            (
                "namespaces = \"*\"",
                "callers[0].namespaces: must be given: expected \"*\"",
            ),
            (
                "environments = \"*\"",
                "callers[0].environments: must be given: expected \"*\"",
            ),
        ];
        for (line, expected) in cases {
            let message = error(&without(line));
            assert!(message.starts_with(expected), "{line:?}: {message}");
        }
        let empty_list = format!("{MINIMAL}{RULE}").replace("namespaces = \"*\"", "namespaces = []");
        assert!(error(&empty_list).contains("non-empty list"));
    }
}
