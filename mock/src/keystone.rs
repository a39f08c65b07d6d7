//! Mock Keystone v3: the token API the facade and Glance use, answering
//! like Keystone 30.0.0 in the exchanges recorded in `tests/fixtures/keystone-30.0.0/`.
//!
//! - `POST /v3/auth/tokens`: `password` (user by id, or name + domain),
//!   `token` (re-scope) and `application_credential` methods; scoped to a
//!   project by id or unscoped; `?nocatalog`. 201 with `X-Subject-Token`.
//!   Wrong password, unknown user, a project without a role and a missing
//!   project are all the same 401; a malformed body is 400.
//! - `GET`/`HEAD /v3/auth/tokens` (validate `X-Subject-Token`) and
//!   `DELETE /v3/auth/tokens` (revoke): 404 "Failed to validate token" for
//!   a revoked token, "Could not recognize Fernet token" for garbage. As
//!   Keystone's default policy: by the token's own user, or a token with
//!   the `admin` or `service` role (keystone transcripts 93 and 95); 403
//!   otherwise.
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
use serde_json::{Value, json};
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
    audit_id: String,
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
    let mut response = json_response(status, &body);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Keystone uri=\"http://127.0.0.1/v3\""),
        );
    }
    response
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
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok());
    if parts.uri.path().trim_end_matches('/') != "/v3/auth/tokens" {
        return error(StatusCode::NOT_FOUND, "The resource could not be found.");
    }
    match parts.method {
        Method::POST => {
            let nocatalog = parts
                .uri
                .query()
                .is_some_and(|query| query.split('&').any(|pair| pair == "nocatalog"));
            issue(shared, &body, nocatalog).await
        }
        Method::GET | Method::HEAD | Method::DELETE => {
            if parts.method != Method::DELETE {
                shared.validations.fetch_add(1, Ordering::SeqCst);
            }
            let caller = header("x-auth-token").and_then(|token| valid_record(shared, token));
            let Some(caller) = caller else {
                return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED_MESSAGE);
            };
            let Some(subject) = header("x-subject-token") else {
                return error(StatusCode::NOT_FOUND, "Could not recognize Fernet token");
            };
            subject_token(shared, &parts.method, &caller, subject)
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

fn subject_token(shared: &Shared, method: &Method, caller: &TokenRecord, subject: &str) -> http::Response<Full<Bytes>> {
    let mut state = shared.state();
    let Some(record) = state.tokens.get_mut(subject) else {
        return error(StatusCode::NOT_FOUND, "Could not recognize Fernet token");
    };
    let own = record.identity.user_id == caller.identity.user_id;
    let privileged = caller
        .identity
        .roles
        .iter()
        .any(|role| role == "admin" || role == "service");
    if !own && !privileged {
        return error(
            StatusCode::FORBIDDEN,
            "You are not authorized to perform the requested action: identity:validate_token.",
        );
    }
    if record.revoked || record.expires_at <= OffsetDateTime::now_utc() {
        return error(StatusCode::NOT_FOUND, "Failed to validate token");
    }
    if *method == Method::DELETE {
        record.revoked = true;
        let mut response = http::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        return response;
    }
    let record = record.clone();
    let body = token_document(&state, &record, false);
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

async fn issue(shared: &Shared, body: &[u8], nocatalog: bool) -> http::Response<Full<Bytes>> {
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Malformed JSON in request body.");
    };
    let identity = &request["auth"]["identity"];
    let methods: Vec<String> = identity["methods"]
        .as_array()
        .map(|methods| methods.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let Some(method) = methods.first().cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "Expecting to find identity in auth. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.",
        );
    };
    if identity.get(&method).is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Expecting to find {method} in identity. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
            ),
        );
    }
    let scope = request["auth"]["scope"]["project"]["id"].as_str().map(str::to_owned);
    if scope.is_some() {
        shared.scoped_token_requests.fetch_add(1, Ordering::SeqCst);
    }
    let delay = shared.state().options.password_check_delay;
    let authenticated = match method.as_str() {
        "password" => {
            shared.password_checks.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            password_user(&shared.state().options, &identity["password"]["user"]).map(|user| (user, scope))
        }
        "token" => identity["token"]["id"]
            .as_str()
            .and_then(|token| valid_record(shared, token))
            .map(|record| (record.identity.user_id, scope)),
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
                .map(|known| (known.user_id.clone(), Some(known.project_id.clone())))
        }
        _ => None,
    };
    let Some((user_id, project)) = authenticated else {
        return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED_MESSAGE);
    };
    let mut state = shared.state();
    let roles = match &project {
        Some(project) => {
            let roles = implied_roles(&state.options, &user_id, project);
            let known = state.options.projects.iter().any(|known| &known.id == project);
            if roles.is_empty() || !known {
                return error(StatusCode::UNAUTHORIZED, UNAUTHORIZED_MESSAGE);
            }
            roles
        }
        None => Vec::new(),
    };
    let now = OffsetDateTime::now_utc();
    let record = TokenRecord {
        identity: TokenIdentity {
            user_id,
            project_id: project,
            roles,
        },
        methods: vec![method],
        expires_at: now + state.options.token_lifetime,
        issued_at: now,
        audit_id: uuid::Uuid::new_v4().simple().to_string()[..22].to_owned(),
        revoked: false,
    };
    let token = fernet_like_token();
    let body = token_document(&state, &record, !nocatalog);
    state.tokens.insert(token.clone(), record);
    drop(state);
    let mut response = json_response(StatusCode::CREATED, &body);
    if let Ok(value) = HeaderValue::from_str(&token) {
        response.headers_mut().insert("x-subject-token", value);
    }
    response
}

fn password_user(options: &Options, user: &Value) -> Option<String> {
    let password = user["password"].as_str()?;
    options
        .users
        .iter()
        .find(|known| {
            let by_id = user["id"].as_str() == Some(known.id.as_str());
            let by_name = user["name"].as_str() == Some(known.name.as_str())
                && (user["domain"]["id"].as_str() == Some(known.domain_id.as_str())
                    || user["domain"]["name"]
                        .as_str()
                        .is_some_and(|name| name.eq_ignore_ascii_case(&known.domain_id)));
            (by_id || by_name) && known.password == password
        })
        .map(|known| known.id.clone())
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

fn token_document(state: &State, record: &TokenRecord, with_catalog: bool) -> Value {
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
        "audit_ids": [record.audit_id],
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
            let endpoints: Vec<Value> = state
                .options
                .image_endpoints
                .iter()
                .map(|(interface, url)| {
                    json!({"id": uuid::Uuid::new_v4().simple().to_string(), "interface": interface, "region_id": "RegionOne", "url": url, "region": "RegionOne"})
                })
                .collect();
            token["catalog"] = json!([{"endpoints": endpoints, "id": "dd981509f10b457088d13c865cfc7770", "type": "image", "name": "glance"}]);
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
