//! Mock Keystone v3: the token API the facade and Glance use, answering
//! like Keystone 30.0.0 in the exchanges recorded in `tests/fixtures/keystone-30.0.0/`
//! and where the differential test (`tests/differential/` of the facade)
//! compared it with a real one.
//!
//! - `POST /v3/auth/tokens`, checked in Keystone's order: the JSON body (an
//!   object), the request schema (its first failure, as Keystone's
//!   `SchemaValidator` reports it), the methods, the scope, each method's
//!   authentication, the roles. `password` (user by id, or name + domain),
//!   `token` (re-scope: the parent's methods and audit chain carry over) and
//!   `application_credential`; a project by id or by name in a domain, or
//!   unscoped; `?nocatalog`. 201 with `X-Subject-Token` and a catalog of
//!   Keystone itself and Glance. Wrong password, unknown user, a project
//!   without a role and a missing project are all the same 401.
//! - `GET`/`HEAD /v3/auth/tokens` (validate `X-Subject-Token`) and
//!   `DELETE /v3/auth/tokens` (revoke the token and those made from it):
//!   404 "Failed to validate token" for a revoked token, "Could not
//!   recognize Fernet token" for garbage. As Keystone's default policy: by
//!   the token's own user, or a token with the `admin` or `service` role
//!   (keystone transcripts 93 and 95); 403 otherwise, naming the action.
//! - Bodies past oslo.middleware's 112 KiB limit are 413; a 401 names this
//!   Keystone in `WWW-Authenticate`.
//! - Roles are expanded as bootstrap implies them: admin > manager > member > reader.
//!
//! The [`Handle`] also lets tests revoke tokens, count requests (all of
//! them, token requests, scoped ones, password checks) and validate tokens
//! in-process (the mock Glance's Keystone mode does so).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::server::Server;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct ApplicationCredential {
    pub id: String,
    pub secret: String,
    pub user_id: String,
    pub project_id: String,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    /// `(user id, project id, role)`; implied roles are added on issue.
    pub assignments: Vec<(String, String, String)>,
    pub application_credentials: Vec<ApplicationCredential>,
    /// `(interface, url)` of the `image` service, in region `RegionOne`.
    pub image_endpoints: Vec<(String, String)>,
    /// `(interface, path)` of the `identity` service, the path after the
    /// mock's own base URL: `keystone-manage bootstrap` with the three
    /// interfaces at `/v3` by default; DevStack registers `public` alone,
    /// without a version.
    pub identity_endpoints: Vec<(String, String)>,
    pub token_lifetime: Duration,
    /// Time spent on a password check (Keystone's bcrypt takes ~360 ms).
    pub password_check_delay: Duration,
}

/// The projects and users the tests and the demo use.
pub const ALPHA: &str = "a1a1a1a1a1a14a1a8a1aa1a1a1a1a1a1";
pub const BETA: &str = "b2b2b2b2b2b24b2b8b2bb2b2b2b2b2b2";
/// A project the service user has no role on.
pub const GAMMA: &str = "c3c3c3c3c3c34c3c8c3cc3c3c3c3c3c3";
pub const SERVICE_USER: &str = "alliance";
pub const SERVICE_USER_ID: &str = "ab29f206735e4393a00bb6cefd83a97a";
pub const SERVICE_PASSWORD: &str = "Alliance-Pass-1";

impl Options {
    /// Like the real set-up: user `alliance` with member and reader on
    /// alpha and beta, none on gamma; Glance at `image_url`.
    pub fn standard(image_url: &str) -> Self {
        let mut assignments = Vec::new();
        for project in [ALPHA, BETA] {
            for role in ["member", "reader"] {
                assignments.push((SERVICE_USER_ID.to_owned(), project.to_owned(), role.to_owned()));
            }
        }
        Options {
            users: vec![User {
                id: SERVICE_USER_ID.into(),
                name: SERVICE_USER.into(),
                domain_id: "default".into(),
                password: SERVICE_PASSWORD.into(),
            }],
            projects: [(ALPHA, "alpha"), (BETA, "beta"), (GAMMA, "gamma")]
                .into_iter()
                .map(|(id, name)| Project {
                    id: id.into(),
                    name: name.into(),
                })
                .collect(),
            assignments,
            application_credentials: Vec::new(),
            image_endpoints: vec![
                ("public".into(), image_url.into()),
                ("internal".into(), image_url.into()),
            ],
            identity_endpoints: ["public", "internal", "admin"]
                .into_iter()
                .map(|interface| (interface.to_owned(), "/v3".to_owned()))
                .collect(),
            token_lifetime: Duration::from_secs(3600),
            password_check_delay: Duration::ZERO,
        }
    }
}

impl Options {
    /// Makes every password check take `delay`, as Keystone's bcrypt does.
    pub fn with_password_check_delay(mut self, delay: Duration) -> Self {
        self.password_check_delay = delay;
        self
    }
}

/// Who a valid token speaks for.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    pub user_id: String,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone)]
struct TokenRecord {
    identity: TokenIdentity,
    methods: Vec<String>,
    expires_at: OffsetDateTime,
    issued_at: OffsetDateTime,
    /// This token's audit id, then its parent's.
    audit_ids: Vec<String>,
    revoked: bool,
}

struct State {
    options: Options,
    tokens: HashMap<String, TokenRecord>,
}

struct Shared {
    state: Mutex<State>,
    requests: AtomicUsize,
    token_requests: AtomicUsize,
    scoped_token_requests: AtomicUsize,
    password_checks: AtomicUsize,
    validations: AtomicUsize,
    base_url: String,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Arc<Mutex<Option<Server>>>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("keystone::Handle").field("addr", &self.addr).finish()
    }
}

pub async fn spawn(listener: TcpListener, options: Options) -> std::io::Result<Handle> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            options,
            tokens: HashMap::new(),
        }),
        requests: AtomicUsize::new(0),
        token_requests: AtomicUsize::new(0),
        scoped_token_requests: AtomicUsize::new(0),
        password_checks: AtomicUsize::new(0),
        validations: AtomicUsize::new(0),
        base_url: format!("http://{addr}"),
    });
    let serving = Arc::clone(&shared);
    let server = Server::spawn(listener, move |request| {
        let shared = Arc::clone(&serving);
        async move { Ok::<_, Infallible>(answer(&shared, request).await) }
    });
    Ok(Handle {
        shared,
        addr,
        server: Arc::new(Mutex::new(Some(server))),
    })
}

impl Handle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The identity endpoint, `http://127.0.0.1:PORT/v3`.
    pub fn url(&self) -> String {
        format!("{}/v3", self.shared.base_url)
    }

    /// Every request received, whatever it asked.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Every `POST /v3/auth/tokens` received.
    pub fn token_requests(&self) -> usize {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// Token requests that asked for a project scope.
    pub fn scoped_token_requests(&self) -> usize {
        self.shared.scoped_token_requests.load(Ordering::SeqCst)
    }

    /// Password authentications (Keystone's costly bcrypt checks).
    pub fn password_checks(&self) -> usize {
        self.shared.password_checks.load(Ordering::SeqCst)
    }

    /// Every `GET`/`HEAD /v3/auth/tokens` received (token validations).
    pub fn validations(&self) -> usize {
        self.shared.validations.load(Ordering::SeqCst)
    }

    /// Who `token` speaks for, if it is valid (not revoked, not expired).
    pub fn validate(&self, token: &str) -> Option<TokenIdentity> {
        let state = self.shared.state();
        state
            .tokens
            .get(token)
            .filter(|record| !record.revoked && record.expires_at > OffsetDateTime::now_utc())
            .map(|record| record.identity.clone())
    }

    /// Revokes every token of a user (as a password change does).
    pub fn revoke_user_tokens(&self, user_id: &str) -> usize {
        let mut state = self.shared.state();
        let mut count = 0;
        for record in state.tokens.values_mut() {
            if record.identity.user_id == user_id && !record.revoked {
                record.revoked = true;
                count += 1;
            }
        }
        count
    }

    /// Removes a role assignment (new scoped tokens for it are refused).
    pub fn unassign(&self, user_id: &str, project_id: &str) {
        self.shared
            .state()
            .options
            .assignments
            .retain(|(user, project, _)| !(user == user_id && project == project_id));
    }

    /// Stops serving (every clone of this handle).
    pub async fn shutdown(&self) {
        let server = self
            .server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(server) = server {
            server.stop().await;
        }
    }
}

const UNAUTHORIZED_MESSAGE: &str = "The request you have made requires authentication.";

fn error(status: StatusCode, message: &str) -> http::Response<Full<Bytes>> {
    let body = json!({"error": {"code": status.as_u16(), "message": message, "title": status.canonical_reason().unwrap_or("Error")}});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("vary", HeaderValue::from_static("X-Auth-Token"));
    if let Ok(id) = HeaderValue::from_str(&format!("req-{}", uuid::Uuid::new_v4())) {
        headers.insert("x-openstack-request-id", id);
    }
    response
}

async fn answer(shared: &Shared, request: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let mut response = route(shared, request).await;
    // keystonemiddleware and clients read where to authenticate from a 401.
    if response.status() == StatusCode::UNAUTHORIZED {
        if let Ok(value) = HeaderValue::from_str(&format!("Keystone uri=\"{}/v3\"", shared.base_url)) {
            response.headers_mut().insert("www-authenticate", value);
        }
    }
    response
}

/// oslo.middleware's `sizelimit` (`max_request_body_size`), in front of Keystone.
const MAX_REQUEST_BODY: usize = 114_688;

async fn route(shared: &Shared, request: http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok());
    if body.len() > MAX_REQUEST_BODY {
        // The `%s` is oslo.middleware's own (its message is never formatted).
        let explanation = "Request is too large. Larger than max_request_body_size (%s).";
        return crate::glance::webob_error(413, explanation, header("accept"));
    }
    if parts.uri.path().trim_end_matches('/') != "/v3/auth/tokens" {
        return error(StatusCode::NOT_FOUND, "The resource could not be found.");
    }
    let nocatalog = parts
        .uri
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair == "nocatalog"));
    match parts.method {
        Method::POST => issue(shared, header("content-type"), &body, nocatalog).await,
        Method::GET | Method::HEAD | Method::DELETE => {
            if parts.method != Method::DELETE {
                shared.validations.fetch_add(1, Ordering::SeqCst);
            }
            let caller = header("x-auth-token").and_then(|token| valid_record(shared, token));
            let Some(caller) = caller else {
                return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED_MESSAGE);
            };
            subject_token(shared, &parts.method, &caller, header("x-subject-token"), nocatalog)
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The method is not allowed for the requested URL.",
        ),
    }
}

fn valid_record(shared: &Shared, token: &str) -> Option<TokenRecord> {
    let state = shared.state();
    state
        .tokens
        .get(token)
        .filter(|record| !record.revoked && record.expires_at > OffsetDateTime::now_utc())
        .cloned()
}

/// GET/HEAD (validate) and DELETE (revoke) of `X-Subject-Token`, for a
/// valid caller: the policy target is built from the subject token, so an
/// unknown or revoked one is 404 before the policy (the subject's owner, or
/// an admin; 403, also when there is no subject token) is checked.
fn subject_token(
    shared: &Shared,
    method: &Method,
    caller: &TokenRecord,
    subject: Option<&str>,
    nocatalog: bool,
) -> http::Response<Full<Bytes>> {
    let action = match *method {
        Method::HEAD => "identity:check_token",
        Method::DELETE => "identity:revoke_token",
        _ => "identity:validate_token",
    };
    let forbidden = || {
        error(
            StatusCode::FORBIDDEN,
            &format!("You are not authorized to perform the requested action: {action}."),
        )
    };
    let mut state = shared.state();
    let record = match subject.map(|subject| state.tokens.get(subject).cloned()) {
        None => None,
        Some(None) => return error(StatusCode::NOT_FOUND, "Could not recognize Fernet token"),
        Some(Some(record)) if record.revoked || record.expires_at <= OffsetDateTime::now_utc() => {
            return error(StatusCode::NOT_FOUND, "Failed to validate token");
        }
        Some(Some(record)) => Some(record),
    };
    let (Some(subject), Some(record)) = (subject, record) else {
        return forbidden();
    };
    let own = record.identity.user_id == caller.identity.user_id;
    let privileged = caller
        .identity
        .roles
        .iter()
        .any(|role| role == "admin" || role == "service");
    if !own && !privileged {
        return forbidden();
    }
    if *method == Method::DELETE {
        // The token goes, and so do the tokens made from it (whose chain
        // starts with it); a token made from another one takes only itself.
        let own = record.audit_ids.first().cloned();
        for token in state.tokens.values_mut() {
            if token.audit_ids.first() == own.as_ref() || token.audit_ids.last() == own.as_ref() {
                token.revoked = true;
            }
        }
        let mut response = json_response(StatusCode::NO_CONTENT, &Value::Null);
        *response.body_mut() = Full::new(Bytes::new());
        response.headers_mut().remove("content-type");
        return response;
    }
    let body = token_document(&state, &shared.base_url, &record, !nocatalog);
    drop(state);
    let mut response = json_response(StatusCode::OK, &body);
    if let Ok(value) = HeaderValue::from_str(subject) {
        response.headers_mut().insert("x-subject-token", value);
    }
    if *method == Method::HEAD {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

/// An error answer that ends the handling of a token request.
type Refusal = Box<http::Response<Full<Bytes>>>;

fn refuse(status: StatusCode, message: &str) -> Refusal {
    Box::new(error(status, message))
}

/// Keystone's `ValidationError` (400).
fn validation_error(attribute: &str, target: &str) -> Refusal {
    refuse(
        StatusCode::BAD_REQUEST,
        &format!(
            "Expecting to find {attribute} in {target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
        ),
    )
}

fn unauthorized() -> Refusal {
    refuse(StatusCode::UNAUTHORIZED, UNAUTHORIZED_MESSAGE)
}

/// The methods Keystone 30 enables by default (`[auth] methods`).
const AUTH_METHODS: [&str; 7] = [
    "external",
    "password",
    "token",
    "oauth1",
    "mapped",
    "application_credential",
    "ec2credential",
];

/// The request body as the JSON-body hook reads it: JSON (when the request
/// says so, or says nothing) that must be an object.
fn request_json(content_type: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    let media_type = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let is_json = media_type == "application/json" || media_type.ends_with("+json");
    if !is_json && !media_type.is_empty() {
        return Err(validation_error("application/json", "Content-Type header"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(document)) => Ok(document),
        _ => Err(validation_error("valid JSON", "request body")),
    }
}

/// The token request schema, validated against as Keystone's
/// `SchemaValidator` does: the first failure, prefixed with its field.
fn token_request_schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(include_str!("documents/keystone-token-issue.json")).unwrap_or(Value::Null)
    })
}

/// `validate_issue_token_auth`: the schema, then the ids-or-names rules.
fn validate_token_request(auth: &Value) -> Result<(), Refusal> {
    if let Some(failure) = crate::jsonschema::failures(auth, token_request_schema())
        .into_iter()
        .next()
    {
        let detail = if failure.at_root() {
            failure.render()
        } else {
            format!("Invalid input for field '{}': {}", failure.path(), failure.render())
        };
        return Err(refuse(StatusCode::BAD_REQUEST, &detail));
    }
    let needs_id_or_name = |value: &Value, field: &str| -> Result<(), Refusal> {
        match value.as_object() {
            Some(object) if !object.contains_key("id") && !object.contains_key("name") => Err(refuse(
                StatusCode::BAD_REQUEST,
                &format!("Invalid input for field {field}: id or name must be present."),
            )),
            _ => Ok(()),
        }
    };
    let user = &auth["identity"]["password"]["user"];
    needs_id_or_name(user, "identity/password/user")?;
    needs_id_or_name(&user["domain"], "identity/password/user/domain")?;
    if let Some(scope) = auth.get("scope").filter(|scope| scope.is_object()) {
        needs_id_or_name(&scope["project"], "scope/project")?;
        needs_id_or_name(&scope["project"]["domain"], "scope/project/domain")?;
        needs_id_or_name(&scope["domain"], "scope/domain")?;
    }
    Ok(())
}

/// What a token request asks to be scoped to.
enum Scope {
    Unscoped,
    Project(String),
    /// A domain, the system or a trust: the service user holds none.
    Other,
}

/// `_lookup_domain`: a known domain by name or id (the mock knows `default`).
fn lookup_domain(domain: &Value) -> Result<(), Refusal> {
    let name = domain["name"].as_str().filter(|name| !name.is_empty());
    let known = match name {
        Some(name) => name == "Default",
        None => domain["id"].as_str() == Some("default"),
    };
    if known { Ok(()) } else { Err(unauthorized()) }
}

/// `_validate_and_normalize_scope_data`, for the scopes the mock serves.
fn requested_scope(options: &Options, scope: Option<&Value>) -> Result<Scope, Refusal> {
    const KINDS: [&str; 5] = ["project", "domain", "unscoped", "system", "OS-TRUST:trust"];
    let Some(scope) = scope else { return Ok(Scope::Unscoped) };
    // Python's `in` is a key test on a dict and a substring test on a string.
    let present = |kind: &str| match scope {
        Value::String(text) => text.contains(kind),
        _ => scope.get(kind).is_some(),
    };
    if KINDS.iter().filter(|kind| present(kind)).count() != 1 {
        return Err(validation_error(
            "system, project, domain, OS-TRUST:trust or unscoped",
            "scope",
        ));
    }
    if present("system") {
        return Ok(Scope::Other);
    }
    if present("unscoped") {
        return Ok(Scope::Unscoped);
    }
    if scope.is_string() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "string indices must be integers, not 'str'",
        ));
    }
    if let Some(project) = scope.get("project") {
        let project_ref = match project["name"].as_str().filter(|name| !name.is_empty()) {
            Some(name) => {
                let Some(domain) = project.get("domain") else {
                    return Err(validation_error("domain", "project"));
                };
                lookup_domain(domain)?;
                options.projects.iter().find(|known| known.name == name)
            }
            None => options
                .projects
                .iter()
                .find(|known| project["id"].as_str() == Some(known.id.as_str())),
        };
        return project_ref
            .map(|known| Scope::Project(known.id.clone()))
            .ok_or_else(unauthorized);
    }
    if let Some(domain) = scope.get("domain") {
        lookup_domain(domain)?;
    }
    Ok(Scope::Other)
}

async fn issue(
    shared: &Shared,
    content_type: Option<&str>,
    body: &[u8],
    nocatalog: bool,
) -> http::Response<Full<Bytes>> {
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
    match issue_token(shared, content_type, body, nocatalog).await {
        Ok(response) => response,
        Err(refusal) => *refusal,
    }
}

/// Keystone 30's order: the JSON body, the schema, the methods, the scope,
/// each method's authentication, then the roles the scope needs.
async fn issue_token(
    shared: &Shared,
    content_type: Option<&str>,
    body: &[u8],
    nocatalog: bool,
) -> Result<http::Response<Full<Bytes>>, Refusal> {
    let document = request_json(content_type, body)?;
    let auth = document.get("auth").filter(|auth| !auth.is_null());
    if let Some(auth) = auth {
        validate_token_request(auth)?;
    }
    let Some(auth) = auth.filter(|auth| auth.as_object().is_some_and(|a| !a.is_empty())) else {
        return Err(validation_error("auth", "request body"));
    };
    let identity = &auth["identity"];
    let mut methods: Vec<String> = Vec::new();
    for method in identity["methods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !methods.iter().any(|known| known == method) {
            methods.push(method.to_owned());
        }
    }
    if let Some(missing) = methods.iter().find(|method| identity.get(method.as_str()).is_none()) {
        return Err(validation_error(missing, "identity"));
    }
    if methods.iter().any(|method| !AUTH_METHODS.contains(&method.as_str())) {
        let body = json!({"error": {"code": 401, "identity": {"methods": AUTH_METHODS}, "message": "Attempted to authenticate with an unsupported method.", "title": "Unauthorized"}});
        return Err(Box::new(json_response(StatusCode::UNAUTHORIZED, &body)));
    }
    let scope = if methods.iter().any(|method| method == "application_credential") {
        if auth.get("scope").is_some() {
            return Err(unauthorized());
        }
        let id = identity["application_credential"]["id"].as_str().unwrap_or_default();
        let state = shared.state();
        let known = state
            .options
            .application_credentials
            .iter()
            .find(|known| known.id == id)
            .ok_or_else(|| {
                error(
                    StatusCode::NOT_FOUND,
                    &format!("Could not find Application Credential: {id}."),
                )
            })?;
        Scope::Project(known.project_id.clone())
    } else {
        requested_scope(&shared.state().options, auth.get("scope"))?
    };

    // Each method must authenticate the same user.
    let mut user: Option<String> = None;
    let mut parent: Option<TokenRecord> = None;
    for method in &methods {
        let authenticated = match method.as_str() {
            "password" => {
                shared.password_checks.fetch_add(1, Ordering::SeqCst);
                let delay = shared.state().options.password_check_delay;
                tokio::time::sleep(delay).await;
                Some(password_user(&shared.state().options, &identity["password"])?)
            }
            // The token plugin validates the token as a subject token is (404).
            "token" => {
                let token = identity["token"]["id"].as_str().unwrap_or_default();
                let record = shared.state().tokens.get(token).cloned();
                let Some(record) = record else {
                    return Err(refuse(StatusCode::NOT_FOUND, "Could not recognize Fernet token"));
                };
                if record.revoked || record.expires_at <= OffsetDateTime::now_utc() {
                    return Err(refuse(StatusCode::NOT_FOUND, "Failed to validate token"));
                }
                let user = Some(record.identity.user_id.clone());
                parent = Some(record);
                user
            }
            "application_credential" => {
                let credential = &identity["application_credential"];
                let state = shared.state();
                state
                    .options
                    .application_credentials
                    .iter()
                    .find(|known| {
                        credential["id"].as_str() == Some(known.id.as_str())
                            && credential["secret"].as_str() == Some(known.secret.as_str())
                    })
                    .map(|known| known.user_id.clone())
            }
            _ => None,
        };
        match (authenticated, &user) {
            (Some(id), None) => user = Some(id),
            (Some(id), Some(earlier)) if &id == earlier => {}
            _ => return Err(unauthorized()),
        }
    }
    let Some(user_id) = user else {
        return Err(unauthorized());
    };
    let project = match scope {
        Scope::Unscoped => None,
        Scope::Project(project) => Some(project),
        Scope::Other => return Err(unauthorized()),
    };
    if project.is_some() {
        shared.scoped_token_requests.fetch_add(1, Ordering::SeqCst);
    }
    let mut state = shared.state();
    let roles = match &project {
        Some(project) => {
            let roles = implied_roles(&state.options, &user_id, project);
            if roles.is_empty() {
                return Err(unauthorized());
            }
            roles
        }
        None => Vec::new(),
    };
    let now = OffsetDateTime::now_utc();
    // A token from a token continues its parent's audit chain and lifetime.
    let mut audit_ids = vec![uuid::Uuid::new_v4().simple().to_string()[..22].to_owned()];
    audit_ids.extend(parent.as_ref().and_then(|parent| parent.audit_ids.last().cloned()));
    // A token from a token keeps the methods that made its parent.
    for method in parent.iter().flat_map(|parent| &parent.methods) {
        if !methods.contains(method) {
            methods.push(method.clone());
        }
    }
    let record = TokenRecord {
        identity: TokenIdentity {
            user_id,
            project_id: project,
            roles,
        },
        methods,
        expires_at: parent
            .as_ref()
            .map_or(now + state.options.token_lifetime, |parent| parent.expires_at),
        issued_at: now,
        audit_ids,
        revoked: false,
    };
    let token = fernet_like_token();
    let body = token_document(&state, &shared.base_url, &record, !nocatalog);
    state.tokens.insert(token.clone(), record);
    drop(state);
    let mut response = json_response(StatusCode::CREATED, &body);
    if let Ok(value) = HeaderValue::from_str(&token) {
        response.headers_mut().insert("x-subject-token", value);
    }
    Ok(response)
}

/// The password plugin: the user by id, or by name in a domain, then the
/// password. Anything not found, or a wrong password, is the same 401.
fn password_user(options: &Options, password: &Value) -> Result<String, Refusal> {
    let Some(user) = password.get("user") else {
        return Err(validation_error("user", "password"));
    };
    let truthy = |value: &Value| value.as_str().is_some_and(|text| !text.is_empty());
    let (id, name) = (&user["id"], &user["name"]);
    if !truthy(id) && !truthy(name) {
        return Err(validation_error("id or name", "user"));
    }
    let known = if truthy(name) {
        let Some(domain) = user.get("domain") else {
            return Err(validation_error("domain", "user"));
        };
        if !truthy(&domain["id"]) && !truthy(&domain["name"]) {
            return Err(validation_error("id or name", "domain"));
        }
        lookup_domain(domain)?;
        options
            .users
            .iter()
            .find(|known| name.as_str() == Some(known.name.as_str()))
    } else {
        options
            .users
            .iter()
            .find(|known| id.as_str() == Some(known.id.as_str()))
    };
    match known {
        Some(known) if user["password"].as_str() == Some(known.password.as_str()) => Ok(known.id.clone()),
        _ => Err(unauthorized()),
    }
}

/// Assigned roles plus what they imply (admin > manager > member > reader).
fn implied_roles(options: &Options, user_id: &str, project_id: &str) -> Vec<String> {
    const CHAIN: [&str; 4] = ["admin", "manager", "member", "reader"];
    let mut roles: Vec<String> = Vec::new();
    for (_, _, role) in options
        .assignments
        .iter()
        .filter(|(user, project, _)| user == user_id && project == project_id)
    {
        let implied = match CHAIN.iter().position(|known| known == role) {
            Some(start) => CHAIN[start..].iter().map(|role| (*role).to_owned()).collect(),
            None => vec![role.clone()],
        };
        for role in implied {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    roles
}

fn timestamp(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000000Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn token_document(state: &State, base_url: &str, record: &TokenRecord, with_catalog: bool) -> Value {
    let user = state
        .options
        .users
        .iter()
        .find(|user| user.id == record.identity.user_id);
    let mut token = json!({
        "methods": record.methods,
        "user": {
            "domain": {"id": "default", "name": "Default"},
            "id": record.identity.user_id,
            "name": user.map(|user| user.name.as_str()).unwrap_or_default(),
            "password_expires_at": null
        },
        "audit_ids": record.audit_ids,
        "expires_at": timestamp(record.expires_at),
        "issued_at": timestamp(record.issued_at),
    });
    if let Some(project_id) = &record.identity.project_id {
        let name = state
            .options
            .projects
            .iter()
            .find(|project| &project.id == project_id)
            .map(|project| project.name.as_str())
            .unwrap_or_default();
        token["project"] = json!({"domain": {"id": "default", "name": "Default"}, "id": project_id, "name": name});
        token["is_domain"] = json!(false);
        token["roles"] = Value::Array(
            record
                .identity
                .roles
                .iter()
                .map(|role| json!({"id": format!("{:0>32}", role.len()), "name": role}))
                .collect(),
        );
        if with_catalog {
            let endpoints = |endpoints: &[(String, String)]| -> Vec<Value> {
                endpoints
                    .iter()
                    .map(|(interface, url)| {
                        json!({"id": uuid::Uuid::new_v4().simple().to_string(), "interface": interface, "region_id": "RegionOne", "url": url, "region": "RegionOne"})
                    })
                    .collect()
            };
            // Keystone's own endpoints, as the deployment registered them.
            let identity: Vec<(String, String)> = state
                .options
                .identity_endpoints
                .iter()
                .map(|(interface, path)| (interface.clone(), format!("{base_url}{path}")))
                .collect();
            token["catalog"] = json!([
                {"endpoints": endpoints(&identity), "id": "9a2e4b8f1c6d4e0fa7b3c5d9e1f20384", "type": "identity", "name": "keystone"},
                {"endpoints": endpoints(&state.options.image_endpoints), "id": "dd981509f10b457088d13c865cfc7770", "type": "image", "name": "glance"},
            ]);
        }
    }
    json!({"token": token})
}

/// A random token of Fernet's shape and length (183 characters).
fn fernet_like_token() -> String {
    let mut token = String::from("gAAAAA");
    while token.len() < 183 {
        token.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    token.truncate(183);
    token
}
