//! The token API of Keystone v3 (`/v3/auth/tokens`: issue, validate,
//! revoke), as the differential test drives it: generated request bodies
//! (methods, users by name or id, passwords, scopes, and any JSON in any
//! place), sent to the mock Keystone and to real Keystone 30.

use std::fmt;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::select;
use reqwest::Method;
use serde_json::Value;

use crate::json;
use crate::normalise::{self, Answer, Seen, Symbols};

/// A value each side resolves for itself.
#[derive(Clone, Copy, PartialEq)]
pub enum Ref {
    /// The service user's password, and its id.
    Password,
    UserId,
    /// alpha and beta (member and reader), gamma (no role).
    Project(usize),
    /// The n-th token issued in the sequence (modulo their number); a
    /// well-formed token of no one when there is none yet.
    Token(usize),
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Password => f.write_str("password"),
            Ref::UserId => f.write_str("user-id"),
            Ref::Project(n) => f.write_str(PROJECTS[n % PROJECTS.len()]),
            Ref::Token(n) => write!(f, "token-{n}"),
        }
    }
}

type Json = json::Json<Ref>;

const PROJECTS: [&str; 3] = ["alpha", "beta", "gamma"];

/// One call of a sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// `POST /v3/auth/tokens[?nocatalog]`.
    Issue { body: Json, nocatalog: bool },
    /// `GET`, `HEAD` or `DELETE /v3/auth/tokens`, with `X-Auth-Token` and
    /// `X-Subject-Token` (either may be missing).
    Subject {
        method: &'static str,
        auth: Option<Ref>,
        subject: Option<Ref>,
        nocatalog: bool,
    },
}

fn any_value() -> BoxedStrategy<Json> {
    json::value(2)
}

fn or_any(valid: impl Strategy<Value = Json> + 'static) -> BoxedStrategy<Json> {
    prop_oneof![6 => valid, 1 => any_value()].boxed()
}

fn text(values: &'static [&'static str]) -> impl Strategy<Value = Json> {
    select(values).prop_map(Json::str)
}

fn domain() -> BoxedStrategy<Json> {
    or_any(prop_oneof![
        3 => Just(Json::object([("id", Json::str("default"))])),
        1 => Just(Json::object([("name", Json::str("Default"))])),
        1 => text(&["nope", ""]).prop_map(|id| Json::object([("id", id)])),
        1 => Just(Json::object([])),
    ])
}

fn user() -> BoxedStrategy<Json> {
    let password = or_any(prop_oneof![4 => Just(Json::Ref(Ref::Password)), 1 => text(&["wrong", ""])]);
    let by_name = (
        or_any(text(&["alliance", "nobody", "Alliance"])),
        domain(),
        password.clone(),
    )
        .prop_map(|(name, domain, password)| {
            Json::object([("name", name), ("domain", domain), ("password", password)])
        });
    let by_id = (
        or_any(prop_oneof![3 => Just(Json::Ref(Ref::UserId)), 1 => text(&["0123456789abcdef0123456789abcdef"])]),
        password,
    )
        .prop_map(|(id, password)| Json::object([("id", id), ("password", password)]));
    or_any(prop_oneof![3 => by_name, 1 => by_id, 1 => Just(Json::object([]))])
}

fn scope() -> impl Strategy<Value = Option<Json>> {
    let project_by_id = or_any((0..PROJECTS.len()).prop_map(|n| Json::Ref(Ref::Project(n))))
        .prop_map(|id| Json::object([("project", Json::object([("id", id)]))]));
    let project_by_name = (or_any(text(&["alpha", "gamma", "nowhere"])), domain())
        .prop_map(|(name, domain)| Json::object([("project", Json::object([("name", name), ("domain", domain)]))]));
    proptest::option::weighted(
        0.8,
        prop_oneof![
            6 => project_by_id,
            2 => project_by_name,
            1 => Just(Json::str("unscoped")),
            1 => domain().prop_map(|domain| Json::object([("domain", domain)])),
            1 => Just(Json::object([("system", Json::object([("all", Json::Bool(true))]))])),
            1 => any_value(),
        ],
    )
}

fn methods() -> BoxedStrategy<Json> {
    or_any(
        prop_oneof![
            6 => Just(vec!["password"]),
            2 => Just(vec!["token"]),
            1 => Just(vec!["password", "token"]),
            1 => Just(vec!["application_credential"]),
            1 => Just(vec![]),
        ]
        .prop_map(|methods| Json::Array(methods.into_iter().map(Json::str).collect())),
    )
}

fn issue_body() -> impl Strategy<Value = Json> {
    let token = or_any((0..4usize).prop_map(|n| Json::Ref(Ref::Token(n)))).prop_map(|id| Json::object([("id", id)]));
    let identity = (
        methods(),
        proptest::option::weighted(0.8, user()),
        proptest::option::weighted(0.3, token),
    )
        .prop_map(|(methods, user, token)| {
            let mut members = vec![("methods".to_owned(), methods)];
            members.extend(user.map(|user| ("password".to_owned(), Json::object([("user", user)]))));
            members.extend(token.map(|token| ("token".to_owned(), token)));
            Json::Object(members)
        });
    let auth = (or_any(identity), scope()).prop_map(|(identity, scope)| {
        let mut members = vec![("identity".to_owned(), identity)];
        members.extend(scope.map(|scope| ("scope".to_owned(), scope)));
        Json::Object(members)
    });
    prop_oneof![8 => or_any(auth).prop_map(|auth| Json::object([("auth", auth)])), 1 => any_value()]
}

fn token_ref() -> impl Strategy<Value = Option<Ref>> {
    proptest::option::weighted(0.9, (0..4usize).prop_map(Ref::Token))
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        3 => (issue_body(), proptest::bool::weighted(0.2)).prop_map(|(body, nocatalog)| Call::Issue { body, nocatalog }),
        2 => (select(vec!["GET", "HEAD", "DELETE"]), token_ref(), token_ref(), proptest::bool::weighted(0.2))
            .prop_map(|(method, auth, subject, nocatalog)| Call::Subject { method, auth, subject, nocatalog }),
    ]
}

/// A sequence: a token as the facade gets one, then anything.
pub fn sequence() -> impl Strategy<Value = Vec<Call>> {
    let facade_token = (0..2usize).prop_map(|n| Call::Issue {
        body: Json::object([(
            "auth",
            Json::object([
                (
                    "identity",
                    Json::object([
                        ("methods", Json::Array(vec![Json::str("password")])),
                        (
                            "password",
                            Json::object([(
                                "user",
                                Json::object([
                                    ("name", Json::str("alliance")),
                                    ("domain", Json::object([("id", Json::str("default"))])),
                                    ("password", Json::Ref(Ref::Password)),
                                ]),
                            )]),
                        ),
                    ]),
                ),
                (
                    "scope",
                    Json::object([("project", Json::object([("id", Json::Ref(Ref::Project(n)))]))]),
                ),
            ]),
        )]),
        nocatalog: false,
    });
    (facade_token, proptest::collection::vec(call(), 1..=5))
        .prop_map(|(first, rest)| std::iter::once(first).chain(rest).collect())
}

/// One Keystone, and what the test knows of its users and projects.
pub struct Side {
    pub name: &'static str,
    /// `http://127.0.0.1:PORT/v3`.
    pub url: String,
    pub password: String,
    pub user_id: String,
    /// alpha, beta, gamma.
    pub projects: [String; 3],
    /// Keystone behind DevStack's Apache (mod_proxy_uwsgi), as `up.sh
    /// --layout devstack` serves it.
    pub behind_apache: bool,
}

/// Tokens are secrets of a given format, not values to compare.
const NO_ONES_TOKEN: &str = "gAAAAABpbm90LWEtdG9rZW4tb2YtYW55b25lLW5vdC1hLXRva2VuLW9mLWFueW9uZQ";

struct Run<'a> {
    side: &'a Side,
    client: &'a reqwest::Client,
    tokens: Vec<String>,
    symbols: Symbols,
}

impl<'a> Run<'a> {
    fn new(side: &'a Side, client: &'a reqwest::Client) -> Self {
        let base = side.url.trim_end_matches("/v3").to_owned();
        let mut known = vec![
            (side.user_id.clone(), "<alliance>".to_owned()),
            (base, "<keystone>".to_owned()),
        ];
        known.extend(
            side.projects
                .iter()
                .zip(PROJECTS)
                .map(|(id, name)| (id.clone(), format!("<{name}>"))),
        );
        Run {
            side,
            client,
            tokens: Vec::new(),
            symbols: Symbols::new(known),
        }
    }

    fn resolve(&self, reference: &Ref) -> String {
        match reference {
            Ref::Password => self.side.password.clone(),
            Ref::UserId => self.side.user_id.clone(),
            Ref::Project(n) => self.side.projects[n % PROJECTS.len()].clone(),
            Ref::Token(_) if self.tokens.is_empty() => NO_ONES_TOKEN.to_owned(),
            Ref::Token(n) => self.tokens[n % self.tokens.len()].clone(),
        }
    }

    async fn send(&self, call: &Call) -> Answer {
        let url = |nocatalog: bool| {
            let query = if nocatalog { "?nocatalog" } else { "" };
            format!("{}/auth/tokens{query}", self.side.url)
        };
        let request = match call {
            Call::Issue { body, nocatalog } => self
                .client
                .post(url(*nocatalog))
                .header("Content-Type", "application/json")
                .body(body.render(&|r| self.resolve(r))),
            Call::Subject {
                method,
                auth,
                subject,
                nocatalog,
            } => {
                let mut request = self
                    .client
                    .request(Method::from_bytes(method.as_bytes()).expect("method"), url(*nocatalog));
                if let Some(auth) = auth {
                    request = request.header("X-Auth-Token", self.resolve(auth));
                }
                if let Some(subject) = subject {
                    request = request.header("X-Subject-Token", self.resolve(subject));
                }
                request
            }
        };
        match request.header("Accept", "application/json").send().await {
            Ok(response) => Answer::read(response).await,
            Err(error) => Answer::failed(&error),
        }
    }

    fn seen(&mut self, answer: &Answer) -> Seen {
        let mut headers = Vec::new();
        for name in ["content-type", "vary", "www-authenticate"] {
            if let Some(value) = answer.header(name) {
                headers.push((name, self.symbols.replace(value)));
            }
        }
        if let Some(token) = answer.header("x-subject-token") {
            headers.push(("x-subject-token", token_shape(token)));
        }
        if let Some(value) = answer.header("x-openstack-request-id") {
            headers.push(("x-openstack-request-id", normalise::request_id(value, None)));
        }
        let body = match answer.json() {
            Some(document) if answer.status < 400 => {
                let normal = roles_by_name(without_secrets(self.symbols.json(&document)));
                normalise::SeenBody::Json(serde_json::to_string_pretty(&normal).unwrap_or_default())
            }
            _ => normalise::body(answer, &mut self.symbols),
        };
        Seen {
            status: answer.status,
            headers,
            body,
        }
    }

    /// Waits (at most 10 s) until the token no longer authenticates a call
    /// (401, not the 403 of a valid caller without a subject token), five
    /// times in a row: Keystone's worker threads (on SQLite here) see the
    /// revocation one after the other.
    async fn until_refused(&self, token: &Ref) {
        let token = self.resolve(token);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut refused = 0;
        while refused < 5 && Instant::now() < deadline {
            let answer = self
                .client
                .get(format!("{}/auth/tokens", self.side.url))
                .header("X-Auth-Token", &token)
                .send()
                .await;
            if answer.map_or(true, |answer| answer.status() == 401) {
                refused += 1;
            } else {
                refused = 0;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    fn after(&mut self, call: &Call, answer: &Answer) {
        if let (Call::Issue { .. }, 201, Some(token)) = (call, answer.status, answer.header("x-subject-token")) {
            self.tokens.push(token.to_owned());
        }
    }
}

/// Fernet tokens by their form, not their bytes.
fn token_shape(token: &str) -> String {
    if token.starts_with("gAAAAA")
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        "<fernet token>".to_owned()
    } else {
        token.to_owned()
    }
}

/// Audit ids and the ids Keystone generated (roles, services, endpoints)
/// by their form: 22 URL-safe characters, 32 hex digits.
fn without_secrets(value: Value) -> Value {
    match value {
        Value::String(text) if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Value::String("<hex id>".to_owned())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(without_secrets).collect()),
        Value::Object(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("audit_ids", Value::Array(ids)) => (
                        key,
                        Value::Array(ids.iter().map(|_| Value::from("<audit id>")).collect()),
                    ),
                    (_, value) => (key, without_secrets(value)),
                })
                .collect(),
        ),
        other => other,
    }
}

/// Keystone lists a token's roles and methods in the order of a Python
/// set, which differs from process to process: sorted, then.
fn roles_by_name(mut document: Value) -> Value {
    for list in ["/token/roles", "/token/methods"] {
        if let Some(Value::Array(items)) = document.pointer_mut(list) {
            items.sort_by_key(|item| item.get("name").unwrap_or(item).to_string());
        }
    }
    document
}

/// A difference of the deployment, not of Keystone (docs/mock-vs-real.md):
/// Keystone refuses a body over its size limit (413) without reading it, so
/// behind DevStack's Apache the refusal races Apache's sending of the body
/// to uwsgi, and Apache, its write cut, answers 503 of its own (HTML) when
/// it loses. Only that pair is let through: the other side's 413, Apache's 503.
fn apache_cut_an_oversized_body(sides: [&Side; 2], answers: [&Answer; 2]) -> bool {
    let apache_503 = |side: &Side, answer: &Answer| {
        side.behind_apache
            && answer.status == 503
            && answer
                .header("content-type")
                .is_some_and(|value| value.starts_with("text/html"))
    };
    (apache_503(sides[0], answers[0]) && answers[1].status == 413)
        || (apache_503(sides[1], answers[1]) && answers[0].status == 413)
}

/// Sends `calls` to both sides, one at a time, and compares each pair of
/// answers; the first difference is the error.
pub async fn compare(sides: &[Side; 2], client: &reqwest::Client, calls: &[Call]) -> Result<(), String> {
    let mut runs = [Run::new(&sides[0], client), Run::new(&sides[1], client)];
    let mut last_issue: Option<Instant> = None;
    for (index, call) in calls.iter().enumerate() {
        // Keystone's revocation events have one-second granularity: a token
        // revoked in the second it was issued stays valid (a difference
        // kept, docs/mock-vs-real.md), so a revocation waits for the next second.
        if let (Call::Subject { method: "DELETE", .. }, Some(issued)) = (call, last_issue) {
            tokio::time::sleep(Duration::from_millis(1100).saturating_sub(issued.elapsed())).await;
        }
        if matches!(call, Call::Issue { .. }) {
            last_issue = Some(Instant::now());
        }
        let [first, second] = &mut runs;
        let (a, b) = tokio::join!(first.send(call), second.send(call));
        let (seen_a, seen_b) = (first.seen(&a), second.seen(&b));
        if seen_a != seen_b && !apache_cut_an_oversized_body([first.side, second.side], [&a, &b]) {
            return Err(format!(
                "call {} of {}: {call:?}\n--- {}:\n{seen_a:?}--- {}:\n{seen_b:?}",
                index + 1,
                calls.len(),
                first.side.name,
                second.side.name
            ));
        }
        first.after(call, &a);
        second.after(call, &b);
        // ... and a revoked token may still be accepted for a second or two.
        if let (
            Call::Subject {
                method: "DELETE",
                subject: Some(token),
                ..
            },
            204,
        ) = (call, a.status)
        {
            tokio::join!(first.until_refused(token), second.until_refused(token));
        }
    }
    Ok(())
}
