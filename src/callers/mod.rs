//! Step 2 of a request (README, "How a request goes through"), between
//! inbound's head and its body: who is calling - from what the
//! connection proves (the peer's address, a client certificate) and what the
//! request carries (a bearer secret, a Keystone token) - and whether a
//! `[[callers]]` rule lets that caller act on the namespace and environment
//! the request names.
//!
//! With no rules, every caller may do anything (the loopback deployment).
//! Otherwise a request is let through by the first rule that recognises its
//! caller and permits the act; a Keystone token is validated (a call to the
//! namespace's Keystone, cached) only when no other rule let the request
//! through. No rule recognises the caller: 401. Some did, none permits: 403
//! with the most specific reason. Each refusal is logged with what the
//! caller presented (never a secret or token); nothing goes upstream. The
//! rule that lets a request through counts it against its caller's `rate`
//! (429 over it; see [`crate::limits::rate::CallerRates`]).

pub mod bearer;
pub mod rules;

use std::future::Future;
use std::sync::Arc;

use http::{HeaderMap, header};

use self::bearer::BearerHashes;
use self::rules::{Identity, Rule};
use crate::audit::{Caller, Credential};
use crate::config::{Config, ConfigError};
use crate::connection::Peer;
use crate::error::AllianceError;
use crate::ids;
use crate::refusal::{Denial, Refusal};
use crate::shared_cache::SharedCache;
use crate::upstream::keystone::client::TokenFacts;

pub use rules::Act;

const AUTH_TOKEN: &str = "x-auth-token";

/// Longer `X-Auth-Token` values are no token (Fernet tokens are about 200
/// bytes, JWS tokens under 1 KiB): not sent to Keystone.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Asks a namespace's Keystone who a token speaks for (`None`: not valid).
pub trait Tokens {
    fn validate(
        &self,
        namespace: &str,
        token: &str,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<TokenFacts>, AllianceError>>;
}

/// The compiled `[[callers]]` rules.
#[derive(Debug, Default)]
pub struct Callers {
    rules: Vec<Rule>,
    bearer: BearerHashes,
}

impl Callers {
    /// Compiles the rules, reading `bearer_secret_file`s (only their
    /// hashes are kept).
    /// `shared`: the cache the replicas share their rules' rates in.
    pub fn from_config(config: &Config, shared: Option<&Arc<SharedCache>>) -> Result<Self, ConfigError> {
        let mut bearer = BearerHashes::default();
        let rules = config
            .callers
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                Rule::compile(index, rule, config, &mut bearer, shared)
                    .map_err(|message| ConfigError(format!("callers[{index}]{message}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Callers { rules, bearer })
    }

    /// The name of the rule that lets the request through (`None`: no
    /// rules, anyone may), or the 401 or 403 refusal, or 429 when the
    /// caller is over that rule's `rate`. `caller`, when there is an audit
    /// trail, says who the caller was found to be (never a secret or token).
    pub async fn authorize(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
        act: &Act<'_>,
        tokens: &impl Tokens,
        request_id: &str,
        mut caller: Option<&mut Caller>,
    ) -> Result<Option<Arc<str>>, AllianceError> {
        if self.rules.is_empty() {
            return Ok(None);
        }
        let bearer_secret = bearer_secret(headers);
        if let Some(caller) = caller.as_deref_mut() {
            caller.presented_bearer = bearer_secret.is_some();
            caller.presented_token = headers.contains_key(AUTH_TOKEN);
            caller.credential = Credential::Unrecognised;
        }
        let bearer_rules = bearer_secret
            .map(|secret| self.bearer.matching(secret))
            .unwrap_or_default();
        let mut denial: Option<Denial> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.recognises(index, peer, &bearer_rules) {
                match rule.permits(act) {
                    Ok(()) => {
                        rule.describe(peer, None, caller.as_deref_mut());
                        return rule.admit(peer, None).await.map(|()| Some(Arc::clone(&rule.name)));
                    }
                    Err(reason) => {
                        if denial < Some(reason) {
                            rule.describe(peer, None, caller.as_deref_mut());
                        }
                        denial = denial.max(Some(reason));
                    }
                }
            }
        }
        let token_rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|rule| rule.identity == Identity::KeystoneToken && rule.covers_namespace(act.namespace))
            .collect();
        let token = single_header(headers, AUTH_TOKEN).filter(|token| token.len() <= MAX_TOKEN_BYTES);
        let mut token_facts = None;
        if let Some(token) = token
            && !token_rules.is_empty()
        {
            token_facts = tokens.validate(act.namespace, token, request_id).await?;
            if let Some(facts) = &token_facts {
                for rule in &token_rules {
                    match rule.permits_token(act, facts) {
                        Ok(()) => {
                            rule.describe(peer, Some(facts), caller.as_deref_mut());
                            return rule
                                .admit(peer, Some(facts))
                                .await
                                .map(|()| Some(Arc::clone(&rule.name)));
                        }
                        Err(reason) => {
                            if denial < Some(reason) {
                                rule.describe(peer, Some(facts), caller.as_deref_mut());
                            }
                            denial = denial.max(Some(reason));
                        }
                    }
                }
            }
        }
        let presented = Presented {
            peer,
            bearer: match (bearer_secret, bearer_rules.first()) {
                (None, _) => "none",
                (Some(_), None) => "not recognised",
                (Some(_), Some(_)) => "recognised",
            },
            token: match (token, token_rules.is_empty(), &token_facts) {
                (None, ..) => "none".to_owned(),
                (Some(_), true, _) => "not accepted in this namespace".to_owned(),
                (Some(_), false, None) => "not valid".to_owned(),
                (Some(_), false, Some(facts)) => format!(
                    "user {} project {}",
                    facts.user_id,
                    facts.project_id.as_deref().unwrap_or("-")
                ),
            },
        };
        Err(refuse(request_id, act, &presented, denial))
    }
}

/// What a refused caller presented, for the log.
struct Presented<'a> {
    peer: &'a Peer,
    bearer: &'static str,
    token: String,
}

fn refuse(request_id: &str, act: &Act<'_>, presented: &Presented<'_>, denial: Option<Denial>) -> AllianceError {
    let certificate = presented.peer.certificate.as_ref();
    let fingerprint = certificate.map_or_else(|| "-".to_owned(), |certificate| ids::hex(&certificate.sha256));
    let names = certificate.map_or_else(String::new, |certificate| certificate.names.join(","));
    let (refusal, why) = match denial {
        None => (Refusal::CallerNotRecognised, "no rule recognises the caller"),
        Some(denial) => (Refusal::CallerNotAllowed { denial }, denial.name()),
    };
    tracing::warn!(
        target: "alliance_glance::callers",
        request_id,
        status = refusal.status(),
        reason = refusal.label(),
        why,
        peer = %presented.peer.address,
        certificate_sha256 = fingerprint.as_str(),
        certificate_names = names.as_str(),
        bearer = presented.bearer,
        token = presented.token.as_str(),
        namespace = act.namespace,
        environment = act.environment,
        write = act.operation.writes(),
        "caller refused"
    );
    AllianceError::refused(refusal)
}

/// A header that appears exactly once, as text.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok().map(str::trim).filter(|value| !value.is_empty())
}

/// The secret of `Authorization: Bearer <secret>` (scheme in any case).
fn bearer_secret(headers: &HeaderMap) -> Option<&str> {
    let value = single_header(headers, header::AUTHORIZATION.as_str())?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|secret| !secret.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ClientCertificate;
    use crate::operation::Operation;
    use std::cell::Cell;
    use std::net::IpAddr;

    const ALPHA: &str = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1";
    const BETA: &str = "b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2";

    /// Knows one token, scoped to ALPHA with member and reader; counts the calls.
    #[derive(Default)]
    struct Keystone {
        calls: Cell<usize>,
    }

    impl Tokens for Keystone {
        async fn validate(&self, namespace: &str, token: &str, _: &str) -> Result<Option<TokenFacts>, AllianceError> {
            assert_eq!(namespace, "ccsr2", "only the keystone namespace is asked");
            self.calls.set(self.calls.get() + 1);
            Ok((token == "good-token").then(|| TokenFacts {
                user_id: "u1".into(),
                project_id: Some(ALPHA.into()),
                roles: vec!["member".into(), "reader".into()],
                expires_at: time::OffsetDateTime::now_utc(),
            }))
        }
    }

    fn callers(rules: &str) -> Callers {
        let config = Config::parse(&format!(
            r#"
            [namespaces.ccsr1]
            glance_url = "http://127.0.0.1:9292"
            auth = {{ type = "trusted", user_id = "u" }}
            [namespaces.ccsr2]
            auth = {{ type = "keystone", auth_url = "http://127.0.0.1:5000/v3", username = "u", password_env = "P", service_project_id = "5e5e" }}
            [tls]
            cert_chain_file = "/unused"
            key_file = "/unused"
            client_auth = "request"
            {rules}
            "#
        ))
        .unwrap();
        Callers::from_config(&config, None).unwrap()
    }

    const RULES: &str = r#"
        [[callers]]
        name = "gateway"
        client_cert_sha256 = "0707070707070707070707070707070707070707070707070707070707070707"
        namespaces = ["ccsr1"]
        environments = ["a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1"]
        [[callers]]
        name = "readers"
        source_cidrs = ["10.0.0.0/8"]
        namespaces = "*"
        environments = "*"
        read_only = true
        [[callers]]
        name = "users"
        keystone_token = true
        namespaces = "*"
        environments = "*"
    "#;

    async fn decide(
        callers: &Callers,
        peer: &Peer,
        token: Option<&str>,
        namespace: &'static str,
        environment: &'static str,
        write: bool,
    ) -> (Result<Option<String>, u16>, usize) {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(AUTH_TOKEN, token.parse().unwrap());
        }
        let keystone = Keystone::default();
        let act = Act {
            namespace,
            environment,
            operation: if write { Operation::Create } else { Operation::List },
        };
        let decision = callers
            .authorize(peer, &headers, &act, &keystone, "req-1", Some(&mut Caller::default()))
            .await
            .map(|rule| rule.map(|rule| rule.to_string()))
            .map_err(|error| error.status.as_u16());
        (decision, keystone.calls.get())
    }

    fn from(address: &str, certificate: Option<[u8; 32]>) -> Peer {
        Peer {
            address: address.parse::<IpAddr>().unwrap(),
            certificate: certificate.map(|sha256| {
                Arc::new(ClientCertificate {
                    sha256,
                    names: Vec::new(),
                })
            }),
        }
    }

    #[test]
    fn the_example_rules_compile() {
        let example = Config::parse(include_str!("../../config/alliance-glance.example.toml")).unwrap();
        assert_eq!(Callers::from_config(&example, None).unwrap().rules.len(), 5);
    }

    #[tokio::test]
    async fn without_rules_anyone_may() {
        let open = callers("");
        let decision = decide(&open, &from("192.0.2.1", None), Some("x"), "ccsr2", BETA, true).await;
        assert_eq!(decision, (Ok(None), 0));
    }

    #[tokio::test]
    async fn recognised_callers_act_within_their_rule() {
        let callers = callers(RULES);
        let gateway = from("192.0.2.1", Some([7; 32]));
        let stranger = from("192.0.2.1", Some([8; 32]));
        let reader = from("10.1.2.3", None);
        let anyone = from("192.0.2.1", None);
        let gateway_rule = Ok(Some("gateway".to_owned()));
        assert_eq!(
            decide(&callers, &gateway, None, "ccsr1", ALPHA, true).await,
            (gateway_rule, 0)
        );
        assert_eq!(
            decide(&callers, &gateway, None, "ccsr1", BETA, false).await,
            (Err(403), 0)
        );
        assert_eq!(
            decide(&callers, &gateway, None, "ccsr2", ALPHA, false).await,
            (Err(403), 0)
        );
        assert_eq!(
            decide(&callers, &stranger, None, "ccsr1", ALPHA, false).await,
            (Err(401), 0)
        );
        assert_eq!(
            decide(&callers, &anyone, None, "ccsr1", ALPHA, false).await,
            (Err(401), 0)
        );
        let readers_rule = Ok(Some("readers".to_owned()));
        assert_eq!(
            decide(&callers, &reader, None, "ccsr1", BETA, false).await,
            (readers_rule, 0)
        );
        assert_eq!(
            decide(&callers, &reader, None, "ccsr1", BETA, true).await,
            (Err(403), 0)
        );
    }

    #[tokio::test]
    async fn tokens_are_validated_only_when_needed_and_where_accepted() {
        let callers = callers(RULES);
        let reader = from("10.1.2.3", None);
        let anyone = from("192.0.2.1", None);
        let users_rule = Ok(Some("users".to_owned()));
        // A read the address allows: Keystone is not asked.
        let readers_rule = Ok(Some("readers".to_owned()));
        assert_eq!(
            decide(&callers, &reader, Some("good-token"), "ccsr2", ALPHA, false).await,
            (readers_rule, 0)
        );
        // A write it does not: the token decides.
        assert_eq!(
            decide(&callers, &reader, Some("good-token"), "ccsr2", ALPHA, true).await,
            (users_rule.clone(), 1)
        );
        assert_eq!(
            decide(&callers, &anyone, Some("good-token"), "ccsr2", ALPHA, true).await,
            (users_rule, 1)
        );
        assert_eq!(
            decide(&callers, &anyone, Some("good-token"), "ccsr2", BETA, false).await,
            (Err(403), 1)
        );
        assert_eq!(
            decide(&callers, &anyone, Some("revoked"), "ccsr2", ALPHA, false).await,
            (Err(401), 1)
        );
        // ccsr1 has no Keystone: the "*" of the token rule leaves it out,
        // and the token goes to no Keystone.
        assert_eq!(
            decide(&callers, &anyone, Some("good-token"), "ccsr1", ALPHA, false).await,
            (Err(401), 0)
        );
        let huge = "t".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            decide(&callers, &anyone, Some(&huge), "ccsr2", ALPHA, false).await,
            (Err(401), 0)
        );
    }

    #[tokio::test]
    async fn each_caller_of_a_rule_has_its_own_rate() {
        let callers = callers(
            &RULES
                .replace(
                    "read_only = true",
                    "read_only = true\nrate = { rate_per_sec = 1, burst = 2 }",
                )
                .replace(
                    "keystone_token = true",
                    "keystone_token = true\nrate = { rate_per_sec = 1, burst = 1 }",
                ),
        );
        let reader = from("10.1.2.3", None);
        let other_reader = from("10.1.2.4", None);
        let readers_rule = Ok(Some("readers".to_owned()));
        for _ in 0..2 {
            assert_eq!(
                decide(&callers, &reader, None, "ccsr1", BETA, false).await,
                (readers_rule.clone(), 0)
            );
        }
        assert_eq!(
            decide(&callers, &reader, None, "ccsr1", BETA, false).await,
            (Err(429), 0)
        );
        assert_eq!(
            decide(&callers, &other_reader, None, "ccsr1", BETA, false).await,
            (readers_rule, 0),
            "another address, another caller"
        );
        // A token's user is the caller, wherever it connects from.
        let users_rule = Ok(Some("users".to_owned()));
        assert_eq!(
            decide(&callers, &reader, Some("good-token"), "ccsr2", ALPHA, true).await,
            (users_rule, 1)
        );
        assert_eq!(
            decide(&callers, &other_reader, Some("good-token"), "ccsr2", ALPHA, true).await,
            (Err(429), 1)
        );
        // Rules without a rate: no limit.
        let gateway = from("192.0.2.1", Some([7; 32]));
        for _ in 0..10 {
            assert_eq!(
                decide(&callers, &gateway, None, "ccsr1", ALPHA, true).await.0,
                Ok(Some("gateway".to_owned()))
            );
        }
    }

    #[test]
    fn bearer_secrets_are_read_from_one_authorization_header() {
        let headers = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::AUTHORIZATION, value.parse().unwrap());
            }
            headers
        };
        assert_eq!(bearer_secret(&headers(&["Bearer abc"])), Some("abc"));
        assert_eq!(bearer_secret(&headers(&["bearer   abc "])), Some("abc"));
        assert_eq!(bearer_secret(&headers(&["Basic abc"])), None);
        assert_eq!(bearer_secret(&headers(&["Bearer"])), None);
        assert_eq!(bearer_secret(&headers(&["Bearer "])), None);
        assert_eq!(bearer_secret(&headers(&["Bearer a", "Bearer b"])), None);
        assert_eq!(bearer_secret(&headers(&[])), None);
    }
}
