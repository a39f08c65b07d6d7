//! The `[[callers]]` rules, compiled from the configuration: how each one
//! recognises its caller, and what it lets that caller do. Pure functions;
//! the decision that applies them (and asks Keystone) is in [`super`].

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::IpNet;

use super::bearer::{BearerHashes, SaltedHash};
use crate::audit::{Caller, Credential, TokenUser};
use crate::config::{AuthConfig, CallerConfig, CallerIdentity, Config, Scope, read_first_line};
use crate::connection::Peer;
use crate::error::AllianceError;
use crate::ids;
use crate::limits::rate::CallerRates;
use crate::operation::Operation;
use crate::refusal::Denial;
use crate::shared_cache::SharedCache;
use crate::upstream::keystone::client::TokenFacts;

/// How a rule recognises its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The client certificate's SHA-256, whoever issued it (the handshake
    /// proved the client holds its key).
    CertSha256([u8; 32]),
    /// A subject CN or SAN DNS name of a client certificate issued by the
    /// configured CA (ASCII case ignored).
    CertName(String),
    Source(Vec<IpNet>),
    /// A bearer secret: its hash is in [`BearerHashes`] under the rule's index.
    Bearer,
    KeystoneToken,
}

#[derive(Debug)]
pub struct Rule {
    pub name: Arc<str>,
    pub identity: Identity,
    namespaces: Scope,
    /// `None`: any environment. Otherwise, per namespace the rule covers,
    /// the listed ids in that namespace's normal form.
    environments: Option<HashMap<String, Vec<String>>>,
    read_only: bool,
    /// The rate of each caller the rule lets through; `None`: no limit.
    rate: Option<CallerRates>,
}

/// What a request asks to do.
#[derive(Debug, Clone, Copy)]
pub struct Act<'a> {
    pub namespace: &'a str,
    /// As normalised by the namespace's rule.
    pub environment: &'a str,
    pub operation: Operation,
}

/// `ab:cd:...` or `abcd...`: the 32 bytes of a SHA-256 fingerprint.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    ids::from_hex(&digits).and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

impl Rule {
    /// Rule `index` of `config`; a bearer rule's hash goes into `bearer`;
    /// `shared`: the cache the replicas share the rule's rate in.
    /// The error starts with the field at fault (`.field: ...`).
    pub fn compile(
        index: usize,
        rule: &CallerConfig,
        config: &Config,
        bearer: &mut BearerHashes,
        shared: Option<&Arc<SharedCache>>,
    ) -> Result<Self, String> {
        let identity = match rule.identity()? {
            CallerIdentity::CertSha256(text) => Identity::CertSha256(
                parse_fingerprint(text)
                    .ok_or(".client_cert_sha256: expected 64 hexadecimal digits (colons allowed)")?,
            ),
            CallerIdentity::CertName(name) => Identity::CertName(name.to_owned()),
            CallerIdentity::Source(networks) => Identity::Source(networks.to_vec()),
            CallerIdentity::BearerSha256(text) => {
                bearer.push(
                    index,
                    SaltedHash::parse(text).map_err(|error| format!(".bearer_secret_sha256: {error}"))?,
                );
                Identity::Bearer
            }
            CallerIdentity::BearerFile(path) => {
                let secret = read_first_line(path)
                    .map_err(|error| format!(".bearer_secret_file: cannot read {}: {error}", path.display()))?;
                let hash = SaltedHash::new(&secret)
                    .map_err(|error| format!(".bearer_secret_file: {}: {error}", path.display()))?;
                bearer.push(index, hash);
                Identity::Bearer
            }
            CallerIdentity::KeystoneToken => Identity::KeystoneToken,
        };
        let environments = match &rule.environments {
            Scope::Any => None,
            Scope::Only(listed) => {
                let mut normalised = HashMap::new();
                for (name, namespace) in config
                    .namespaces
                    .iter()
                    .filter(|(name, _)| rule.namespaces.covers(name))
                {
                    let ids = listed
                        .iter()
                        .map(|id| {
                            namespace.environment_id_format.normalise(id.trim()).ok_or_else(|| {
                                format!(".environments: {id:?} is not a valid X-Environment-Id in namespace {name}")
                            })
                        })
                        .collect::<Result<Vec<String>, String>>()?;
                    normalised.insert(name.clone(), ids);
                }
                Some(normalised)
            }
        };
        // A token can only be validated where the namespace has a Keystone.
        let namespaces = match (&identity, &rule.namespaces) {
            (Identity::KeystoneToken, Scope::Any) => Scope::Only(
                config
                    .namespaces
                    .iter()
                    .filter(|(_, namespace)| matches!(namespace.auth, AuthConfig::Keystone(_)))
                    .map(|(name, _)| name.clone())
                    .collect(),
            ),
            (_, scope) => scope.clone(),
        };
        Ok(Rule {
            name: Arc::from(rule.name.as_str()),
            identity,
            namespaces,
            environments,
            read_only: rule.read_only,
            rate: rule
                .rate
                .and_then(|rate| rate.limited())
                .map(|rate| CallerRates::new(rate, shared.map(|cache| (cache, rule.name.as_str())))),
        })
    }

    /// Whether what the connection and the bearer secret prove is this
    /// rule's identity (`bearer_rules`: the rules whose secret was
    /// presented). Keystone tokens are judged apart, with Keystone.
    pub fn recognises(&self, index: usize, peer: &Peer, bearer_rules: &[usize]) -> bool {
        match &self.identity {
            Identity::CertSha256(fingerprint) => peer
                .certificate
                .as_ref()
                .is_some_and(|certificate| certificate.sha256 == *fingerprint),
            Identity::CertName(name) => peer.certificate.as_ref().is_some_and(|certificate| {
                certificate
                    .names
                    .iter()
                    .any(|presented| presented.eq_ignore_ascii_case(name))
            }),
            Identity::Source(networks) => network_of(networks, peer).is_some(),
            Identity::Bearer => bearer_rules.contains(&index),
            Identity::KeystoneToken => false,
        }
    }

    /// Counts one request the rule lets through against its caller's
    /// rate: 429 when the caller is over it. `token`: what Keystone said of
    /// the caller's token, for a `keystone_token` rule.
    pub async fn admit(&self, peer: &Peer, token: Option<&TokenFacts>) -> Result<(), AllianceError> {
        match &self.rate {
            Some(rate) => rate.admit(&self.name, &self.caller(peer, token)).await,
            None => Ok(()),
        }
    }

    /// Says in `caller` that this rule recognised it, and how (`token`:
    /// what Keystone said of its token, for a `keystone_token` rule).
    pub fn describe(&self, peer: &Peer, token: Option<&TokenFacts>, caller: Option<&mut Caller>) {
        let Some(caller) = caller else { return };
        caller.rule = Some(Arc::clone(&self.name));
        caller.credential = match &self.identity {
            Identity::CertSha256(_) | Identity::CertName(_) => Credential::ClientCertificate,
            Identity::Source(networks) => {
                network_of(networks, peer).map_or(Credential::Unrecognised, Credential::SourceNetwork)
            }
            Identity::Bearer => Credential::BearerSecret,
            Identity::KeystoneToken => Credential::KeystoneToken,
        };
        caller.token = token.map(|facts| TokenUser {
            user_id: facts.user_id.clone(),
            project_id: facts.project_id.clone(),
        });
    }

    /// The caller, as the rule's rate tells callers apart: a certificate
    /// by its fingerprint, an address, a Keystone user; a bearer secret is
    /// one caller.
    fn caller(&self, peer: &Peer, token: Option<&TokenFacts>) -> String {
        match &self.identity {
            Identity::CertSha256(fingerprint) => ids::hex(fingerprint),
            Identity::CertName(_) => peer
                .certificate
                .as_ref()
                .map_or_else(String::new, |certificate| ids::hex(&certificate.sha256)),
            Identity::Source(_) => peer.address.to_canonical().to_string(),
            Identity::Bearer => "bearer secret".to_owned(),
            Identity::KeystoneToken => token.map_or_else(String::new, |token| format!("user {}", token.user_id)),
        }
    }

    pub fn covers_namespace(&self, namespace: &str) -> bool {
        self.namespaces.covers(namespace)
    }

    /// Whether the rule lets its (recognised) caller do `act`.
    pub fn permits(&self, act: &Act<'_>) -> Result<(), Denial> {
        if !self.namespaces.covers(act.namespace) {
            return Err(Denial::Namespace);
        }
        if let Some(environments) = &self.environments {
            let listed = environments
                .get(act.namespace)
                .is_some_and(|ids| ids.iter().any(|id| id == act.environment));
            if !listed {
                return Err(Denial::Environment);
            }
        }
        if act.operation.writes() && self.read_only {
            return Err(Denial::ReadOnly);
        }
        Ok(())
    }

    /// [`Rule::permits`] for a Keystone token that Keystone vouched for:
    /// also scoped to the environment itself, with the role Glance's
    /// default policy asks of a project user (`reader` to read, `member` to
    /// write; Keystone lists implied roles in the token).
    pub fn permits_token(&self, act: &Act<'_>, token: &TokenFacts) -> Result<(), Denial> {
        self.permits(act)?;
        match &token.project_id {
            None => return Err(Denial::TokenNotProjectScoped),
            Some(project) if project != act.environment => return Err(Denial::TokenOtherProject),
            Some(_) => {}
        }
        let needed = if act.operation.writes() { "member" } else { "reader" };
        if !token.roles.iter().any(|role| role.eq_ignore_ascii_case(needed)) {
            return Err(Denial::TokenRoles);
        }
        Ok(())
    }
}

/// The first of `networks` the peer's address is in.
fn network_of(networks: &[IpNet], peer: &Peer) -> Option<IpNet> {
    let address = peer.address.to_canonical();
    networks.iter().find(|network| network.contains(&address)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ClientCertificate;
    use std::net::IpAddr;

    const ALPHA: &str = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1";
    const BETA: &str = "b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2";

    fn config(callers: &str) -> Config {
        Config::parse(&format!(
            r#"
            [namespaces.ccsr1]
            glance_url = "http://127.0.0.1:9292"
            auth = {{ type = "trusted", user_id = "u" }}
            [namespaces.ccsr2]
            glance_url = "http://127.0.0.1:9293"
            environment_id_format = "uuid"
            auth = {{ type = "trusted", user_id = "u" }}
            [tls]
            cert_chain_file = "/unused"
            key_file = "/unused"
            client_ca_file = "/unused"
            client_auth = "request"
            {callers}
            "#
        ))
        .unwrap()
    }

    fn rules(callers: &str) -> (Vec<Rule>, BearerHashes) {
        let config = config(callers);
        let mut bearer = BearerHashes::default();
        let rules = config
            .callers
            .iter()
            .enumerate()
            .map(|(index, rule)| Rule::compile(index, rule, &config, &mut bearer, None))
            .collect::<Result<_, _>>()
            .unwrap();
        (rules, bearer)
    }

    fn compile_error(callers: &str) -> String {
        let config = config(callers);
        Rule::compile(0, &config.callers[0], &config, &mut BearerHashes::default(), None).unwrap_err()
    }

    fn peer(address: &str, certificate: Option<ClientCertificate>) -> Peer {
        Peer {
            address: address.parse::<IpAddr>().unwrap(),
            certificate: certificate.map(Arc::new),
        }
    }

    fn act(namespace: &'static str, environment: &'static str, write: bool) -> Act<'static> {
        Act {
            namespace,
            environment,
            operation: if write { Operation::Create } else { Operation::List },
        }
    }

    #[test]
    fn fingerprints_with_or_without_colons() {
        let hex = "5F1A".repeat(16);
        let colons = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&hex), parse_fingerprint(&colons));
        assert_eq!(parse_fingerprint(&hex).unwrap()[0], 0x5f);
        assert_eq!(parse_fingerprint(&hex[2..]), None);
        assert_eq!(parse_fingerprint("sha256"), None);
    }

    #[test]
    fn each_identity_recognises_its_caller_only() {
        let fingerprint = [7u8; 32];
        let (rules, bearer) = rules(&format!(
            r#"
            [[callers]]
            name = "pinned"
            client_cert_sha256 = "{}"
            namespaces = "*"
            environments = "*"
            [[callers]]
            name = "named"
            client_cert_name = "Gateway.Example"
            namespaces = "*"
            environments = "*"
            [[callers]]
            name = "network"
            source_cidrs = ["10.0.0.0/8", "fd00::/8"]
            namespaces = "*"
            environments = "*"
            [[callers]]
            name = "batch"
            bearer_secret_sha256 = "{}"
            namespaces = "*"
            environments = "*"
            "#,
            ids::hex(&fingerprint),
            SaltedHash::new(&"s".repeat(40)).unwrap()
        ));
        let recognised = |peer: &Peer, secret: &str| -> Vec<&str> {
            let bearer_rules = bearer.matching(secret);
            rules
                .iter()
                .enumerate()
                .filter(|(index, rule)| rule.recognises(*index, peer, &bearer_rules))
                .map(|(_, rule)| &*rule.name)
                .collect()
        };
        let pinned = ClientCertificate {
            sha256: fingerprint,
            names: Vec::new(),
        };
        assert_eq!(recognised(&peer("192.0.2.1", Some(pinned)), ""), ["pinned"]);
        let named = ClientCertificate {
            sha256: [8; 32],
            names: vec!["other.example".into(), "gateway.example".into()],
        };
        assert_eq!(recognised(&peer("192.0.2.1", Some(named)), ""), ["named"]);
        // A name the CA did not vouch for is not there to match.
        let unverified = ClientCertificate {
            sha256: [8; 32],
            names: Vec::new(),
        };
        assert!(recognised(&peer("192.0.2.1", Some(unverified)), "").is_empty());
        assert_eq!(recognised(&peer("10.1.2.3", None), ""), ["network"]);
        assert_eq!(recognised(&peer("::ffff:10.1.2.3", None), ""), ["network"]);
        assert_eq!(recognised(&peer("fd12::1", None), ""), ["network"]);
        assert!(recognised(&peer("11.1.2.3", None), "").is_empty());
        assert_eq!(recognised(&peer("192.0.2.1", None), &"s".repeat(40)), ["batch"]);
        assert!(recognised(&peer("192.0.2.1", None), &"s".repeat(39)).is_empty());
        assert_eq!(
            recognised(&peer("10.0.0.1", None), &"s".repeat(40)),
            ["network", "batch"]
        );
    }

    #[test]
    fn namespaces_environments_and_read_only() {
        let (rules, _) = rules(&format!(
            r#"
            [[callers]]
            name = "one"
            source_cidrs = ["127.0.0.1/32"]
            namespaces = ["ccsr1"]
            environments = ["{}"]
            read_only = true
            "#,
            ALPHA.to_uppercase()
        ));
        let rule = &rules[0];
        assert_eq!(rule.permits(&act("ccsr1", ALPHA, false)), Ok(()));
        assert_eq!(rule.permits(&act("ccsr1", ALPHA, true)), Err(Denial::ReadOnly));
        assert_eq!(rule.permits(&act("ccsr1", BETA, false)), Err(Denial::Environment));
        assert_eq!(rule.permits(&act("ccsr2", ALPHA, false)), Err(Denial::Namespace));
    }

    #[test]
    fn environments_are_compared_in_each_namespaces_form() {
        let (rules, _) = rules(
            r#"
            [[callers]]
            name = "dashed"
            source_cidrs = ["127.0.0.1/32"]
            namespaces = "*"
            environments = ["A1A1A1A1-A1A1-4A1A-8A1A-A1A1A1A1A1A1"]
            "#,
        );
        // ccsr1 (hex32_or_uuid) knows it by its 32 digits, ccsr2 (uuid) dashed.
        assert_eq!(rules[0].permits(&act("ccsr1", ALPHA, true)), Ok(()));
        assert_eq!(
            rules[0].permits(&act("ccsr2", "a1a1a1a1-a1a1-4a1a-8a1a-a1a1a1a1a1a1", true)),
            Ok(())
        );
        let error = compile_error(&format!(
            r#"
            [[callers]]
            name = "hex"
            source_cidrs = ["127.0.0.1/32"]
            namespaces = "*"
            environments = ["{ALPHA}"]
            "#
        ));
        assert_eq!(
            error,
            format!(".environments: \"{ALPHA}\" is not a valid X-Environment-Id in namespace ccsr2")
        );
    }

    #[test]
    fn tokens_act_on_their_own_project_with_the_right_role() {
        let (rules, _) = rules(
            r#"
            [[callers]]
            name = "token"
            source_cidrs = ["127.0.0.1/32"]
            namespaces = ["ccsr1"]
            environments = "*"
            "#,
        );
        let token = |project: Option<&str>, roles: &[&str]| TokenFacts {
            user_id: "u".into(),
            project_id: project.map(str::to_owned),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            expires_at: time::OffsetDateTime::now_utc(),
        };
        let rule = &rules[0];
        let member = token(Some(ALPHA), &["member", "reader"]);
        assert_eq!(rule.permits_token(&act("ccsr1", ALPHA, true), &member), Ok(()));
        assert_eq!(
            rule.permits_token(&act("ccsr1", BETA, false), &member),
            Err(Denial::TokenOtherProject)
        );
        assert_eq!(
            rule.permits_token(&act("ccsr2", ALPHA, false), &member),
            Err(Denial::Namespace)
        );
        let reader = token(Some(ALPHA), &["Reader"]);
        assert_eq!(rule.permits_token(&act("ccsr1", ALPHA, false), &reader), Ok(()));
        assert_eq!(
            rule.permits_token(&act("ccsr1", ALPHA, true), &reader),
            Err(Denial::TokenRoles)
        );
        assert_eq!(
            rule.permits_token(&act("ccsr1", ALPHA, false), &token(None, &["member"])),
            Err(Denial::TokenNotProjectScoped)
        );
    }

    #[test]
    fn bad_identities_name_their_field() {
        let error = compile_error(
            r#"
            [[callers]]
            name = "bad"
            client_cert_sha256 = "abc"
            namespaces = "*"
            environments = "*"
            "#,
        );
        assert!(error.starts_with(".client_cert_sha256: "), "{error}");
        let error = compile_error(
            r#"
            [[callers]]
            name = "bad"
            bearer_secret_sha256 = "the secret itself"
            namespaces = "*"
            environments = "*"
            "#,
        );
        assert!(error.starts_with(".bearer_secret_sha256: "), "{error}");
        let error = compile_error(
            r#"
            [[callers]]
            name = "bad"
            bearer_secret_file = "/nonexistent/secret"
            namespaces = "*"
            environments = "*"
            "#,
        );
        assert!(
            error.starts_with(".bearer_secret_file: cannot read /nonexistent/secret"),
            "{error}"
        );
    }
}
