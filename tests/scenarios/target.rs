//! Where the scenarios run: the project's mock Glance and Keystone, or the
//! real Glance 33 and Keystone 30 that `scripts/openstack/up.sh` started
//! (described by the env file of a release, `.cache/openstack/N/env`). Either way the facade has two
//! namespaces, `trusted` and `keystone`, and each scenario runs in both.
//! Or, [`external`], a facade someone else started and configured - the
//! DevStack plugin's, which `devstack/tests/plugin-test.sh` starts as
//! `run_process` was asked - reached through the Apache path the plugin
//! configured, in keystone mode, with the callers' own Keystone tokens.

use std::collections::HashMap;

use std::path::PathBuf;
use std::time::Duration;

use alliance_glance::config::Config;
use alliance_glance::server::RunningServer;
use md5::{Digest, Md5};
use openstack_mock::files::{FileServer, tiny_qcow2};
use openstack_mock::{glance, keystone};

use crate::support::real_env::RealEnv;
use crate::support::{TempFile, alliance_call, client, project_token, start_facade};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Trusted,
    Keystone,
}

impl Mode {
    pub fn namespace(self) -> &'static str {
        match self {
            Mode::Trusted => "trusted",
            Mode::Keystone => "keystone",
        }
    }

    /// The same cloud, with copy_from done by the facade's own transfer.
    pub fn upload_namespace(self) -> &'static str {
        match self {
            Mode::Trusted => "trusted-upload",
            Mode::Keystone => "keystone-upload",
        }
    }
}

/// What a scenario works with.
pub struct Ctx {
    pub mode: Mode,
    facade: Facade,
    pub client: reqwest::Client,
    pub env_a: String,
    pub env_b: String,
    /// A project the service user has no role on (keystone mode).
    pub env_without_role: String,
    /// A valid qcow2 for copy_from, and what Glance should report for it.
    pub good_image_url: String,
    pub good_image_md5: String,
    pub good_image_size: u64,
    /// A URL that answers 404, and one with bytes that are no qcow2.
    pub missing_image_url: String,
    pub garbage_url: String,
    /// The Glance release behind the facade (the mock answers as 33 does).
    pub glance_release: u32,
    services: Services,
    _keep: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

enum Services {
    Mock(keystone::Handle),
    Real(RealEnv),
    /// The real services, behind a facade started elsewhere whose service
    /// user is `service_user_id`.
    External {
        env: RealEnv,
        service_user_id: String,
    },
}

enum Facade {
    /// Started by the scenario, in this process.
    InProcess(RunningServer),
    /// Started by someone else: its Alliance API at `url`, the one
    /// namespace it serves, and for each environment the caller's token
    /// (its `[[callers]]` rule asks for Keystone tokens).
    External {
        url: String,
        namespace: String,
        tokens: HashMap<String, String>,
    },
}

impl Ctx {
    pub fn call(&self, environment: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let namespace = match &self.facade {
            Facade::InProcess(_) => self.mode.namespace(),
            Facade::External { namespace, .. } => namespace,
        };
        self.call_in(namespace, environment, method, path)
    }

    pub fn call_in(
        &self,
        namespace: &str,
        environment: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        match &self.facade {
            Facade::InProcess(facade) => alliance_call(&self.client, facade, namespace, environment, method, path),
            Facade::External { url, tokens, .. } => {
                let request = self
                    .client
                    .request(method, format!("{url}{path}"))
                    .header("X-Target-Ns", namespace)
                    .header("X-Environment-Id", environment)
                    .header("Content-Type", "application/json");
                match tokens.get(environment) {
                    Some(token) => request.header("X-Auth-Token", token),
                    None => request,
                }
            }
        }
    }

    /// Revokes every token of the facade's service user in Keystone.
    pub async fn revoke_service_tokens(&self) {
        match &self.services {
            Services::Mock(keystone) => {
                keystone.revoke_user_tokens(keystone::SERVICE_USER_ID);
            }
            Services::Real(env) => env.revoke_user_tokens(env.get("OS_SERVICE_USER_ID")).await,
            Services::External { env, service_user_id } => env.revoke_user_tokens(service_user_id).await,
        }
    }

    /// Waits until Glance's own work on an image of `env_a` (its import
    /// tasks) is over. The real clouds here keep their data in SQLite,
    /// where a write racing an import task's last writes fails with
    /// "database is locked" (500); a scenario's next write waits for them.
    pub async fn upstream_settled(&self, image_id: &str) {
        match (&self.services, &self.facade) {
            (Services::Real(env), _) => env.wait_for_import_tasks(self.mode, &self.env_a, image_id, None).await,
            (Services::External { env, .. }, Facade::External { tokens, .. }) => {
                let token = tokens.get(&self.env_a).map(String::as_str);
                env.wait_for_import_tasks(self.mode, &self.env_a, image_id, token).await;
            }
            _ => {}
        }
    }
}

const FACADE_TUNING: &str = r#"
page_size = 2
request_timeout_ms = 20000
copy_from = { allow_cidrs = ["127.0.0.1/32"] }
"#;

const UPLOAD: &str = "copy_from_fallback = { enabled = true, always = true }";

/// Four namespaces on one cloud: trusted and keystone auth, each with
/// web-download and with the facade's own copy_from transfer.
fn facade_config(trusted_glance: &str, auth_url: &str, user: &str, domain: &str, password_file: &str) -> Config {
    let trusted = format!(
        r#"glance_url = "{trusted_glance}"
auth = {{ type = "trusted", user_id = "scenario" }}"#
    );
    let keystone = format!(
        r#"auth = {{ type = "keystone", auth_url = "{auth_url}", username = "{user}", user_domain_id = "{domain}", password_file = "{password_file}" }}"#
    );
    Config::parse(&format!(
        "[namespaces.trusted]\n{trusted}\n{FACADE_TUNING}\n\
         [namespaces.trusted-upload]\n{trusted}\n{FACADE_TUNING}\n{UPLOAD}\n\
         [namespaces.keystone]\n{keystone}\n{FACADE_TUNING}\n\
         [namespaces.keystone-upload]\n{keystone}\n{FACADE_TUNING}\n{UPLOAD}\n"
    ))
    .expect("scenario config")
}

/// The facade's warnings (why a `copy_from` transfer failed, why an upstream
/// call did) go to the test's output, which a failing scenario prints.
fn show_facade_warnings() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_test_writer()
            .with_ansi(false)
            .with_env_filter("alliance_glance=warn")
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the scenario suite's only subscriber");
    });
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Mock Glance (trusted flavor), mock Keystone, mock Glance (keystone flavor).
pub async fn mock(mode: Mode) -> Ctx {
    show_facade_warnings();
    let good = tiny_qcow2(1 << 20);
    let files = FileServer::start(vec![
        ("/image.qcow2".into(), good.clone()),
        ("/garbage.bin".into(), bytes::Bytes::from_static(&[0x42; 4096])),
    ])
    .await
    .expect("file server");
    let import_options = || glance::Options {
        prefix: "/image".into(),
        web_download_allowed_hosts: Some(vec!["127.0.0.1".into()]),
        web_download_allowed_ports: vec![80, 443, files.addr.port()],
        ..glance::Options::default()
    };
    let trusted_glance = glance::spawn(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        import_options(),
    )
    .await;
    let keystone_glance_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let keystone_glance_url = format!("http://{}/image", keystone_glance_listener.local_addr().unwrap());
    let keystone = keystone::spawn(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        keystone::Options::standard(&keystone_glance_url),
    )
    .await
    .expect("keystone");
    let keystone_glance = glance::spawn(
        keystone_glance_listener,
        glance::Options {
            keystone: Some(keystone.clone()),
            ..import_options()
        },
    )
    .await;
    let password = TempFile::with_contents(keystone::SERVICE_PASSWORD);
    let config = facade_config(
        &trusted_glance.url(),
        &keystone.url(),
        keystone::SERVICE_USER,
        "default",
        &password.0.display().to_string(),
    );
    let facade = start_facade(&config).await;
    let (env_a, env_b) = match mode {
        // Fresh projects per scenario keep trusted runs apart.
        Mode::Trusted => (random_project(), random_project()),
        Mode::Keystone => (keystone::ALPHA.to_owned(), keystone::BETA.to_owned()),
    };
    Ctx {
        mode,
        facade: Facade::InProcess(facade),
        client: client(),
        env_a,
        env_b,
        env_without_role: keystone::GAMMA.to_owned(),
        good_image_url: files.url("/image.qcow2"),
        good_image_md5: md5_hex(&good),
        good_image_size: good.len() as u64,
        missing_image_url: files.url("/no-such-image.qcow2"),
        garbage_url: files.url("/garbage.bin"),
        glance_release: 33,
        services: Services::Mock(keystone),
        _keep: vec![
            Box::new(files),
            Box::new(trusted_glance),
            Box::new(keystone_glance),
            Box::new(password),
        ],
    }
}

fn random_project() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl RealEnv {
    /// A token of the admin user, scoped to the admin project.
    pub async fn admin_token(&self) -> String {
        let admin = client()
            .post(format!("{}/auth/tokens", self.get("OS_KEYSTONE_URL")))
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {"name": self.get("OS_ADMIN_USER"), "domain": {"id": "default"}, "password": self.get("OS_ADMIN_PASSWORD")}}},
                "scope": {"project": {"name": self.get("OS_ADMIN_PROJECT"), "domain": {"id": "default"}}}
            }}).to_string())
            .send()
            .await
            .expect("keystone reachable");
        assert_eq!(admin.status(), 201, "admin token");
        admin.headers()["x-subject-token"].to_str().unwrap().to_owned()
    }

    /// Disabling a user revokes every token it holds; it is enabled again
    /// at once. Keystone's revocation has one-second granularity, hence the pause.
    async fn revoke_user_tokens(&self, user_id: &str) {
        let client = client();
        let token = self.admin_token().await;
        let user = format!("{}/users/{user_id}", self.get("OS_KEYSTONE_URL"));
        for enabled in [false, true] {
            let response = client
                .patch(&user)
                .header("X-Auth-Token", &token)
                .header("Content-Type", "application/json")
                .body(serde_json::json!({"user": {"enabled": enabled}}).to_string())
                .send()
                .await
                .expect("keystone reachable");
            assert_eq!(response.status(), 200, "user enabled={enabled}");
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    /// Polls the image's import tasks on the Glance of `mode` until none runs
    /// (in keystone mode with `token`, else with the service user's).
    async fn wait_for_import_tasks(&self, mode: Mode, project: &str, image_id: &str, token: Option<&str>) {
        let client = client();
        let tasks = |glance: &str| client.get(format!("{glance}/v2/images/{image_id}/tasks"));
        let request = match (mode, token) {
            (Mode::Trusted, _) => tasks(self.get("OS_GLANCE_TRUSTED_URL"))
                .header("X-Identity-Status", "Confirmed")
                .header("X-Project-Id", project)
                .header("X-Roles", "member,reader"),
            (Mode::Keystone, Some(token)) => tasks(self.get("OS_GLANCE_KEYSTONE_URL")).header("X-Auth-Token", token),
            (Mode::Keystone, None) => {
                let password = std::fs::read_to_string(self.get("OS_SERVICE_PASSWORD_FILE")).expect("service password");
                let issued = client
                    .post(format!("{}/auth/tokens?nocatalog", self.get("OS_KEYSTONE_URL")))
                    .header("Content-Type", "application/json")
                    .body(serde_json::json!({"auth": {
                        "identity": {"methods": ["password"], "password": {"user": {"name": self.get("OS_SERVICE_USER"), "domain": {"id": "default"}, "password": password.trim()}}},
                        "scope": {"project": {"id": project}}
                    }}).to_string())
                    .send()
                    .await
                    .expect("keystone reachable");
                let token = issued.headers()["x-subject-token"].to_str().expect("token").to_owned();
                tasks(self.get("OS_GLANCE_KEYSTONE_URL")).header("X-Auth-Token", token)
            }
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let answer = request
                .try_clone()
                .expect("no body")
                .send()
                .await
                .expect("glance reachable");
            let bytes = answer.bytes().await.unwrap_or_default();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let running = body["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|task| task["status"] != "success" && task["status"] != "failure");
            if !running {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "import tasks of {image_id} never ended: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The real services. Scenarios against them run one at a time: revoking
/// the service user's tokens would disturb a neighbour.
pub async fn real(mode: Mode) -> Ctx {
    show_facade_warnings();
    let env = RealEnv::load();
    let config = facade_config(
        env.get("OS_GLANCE_TRUSTED_URL"),
        env.get("OS_KEYSTONE_URL"),
        env.get("OS_SERVICE_USER"),
        env.get("OS_SERVICE_USER_DOMAIN"),
        env.get("OS_SERVICE_PASSWORD_FILE"),
    );
    let facade = start_facade(&config).await;
    let (env_a, env_b) = match mode {
        Mode::Trusted => (random_project(), random_project()),
        Mode::Keystone => (
            env.get("OS_PROJECT_ALPHA").to_owned(),
            env.get("OS_PROJECT_BETA").to_owned(),
        ),
    };
    let env_without_role = env.get("OS_PROJECT_GAMMA").to_owned();
    on_up_sh_services(
        mode,
        Facade::InProcess(facade),
        [env_a, env_b, env_without_role],
        env,
        Services::Real,
    )
}

/// A context on the services `scripts/openstack/up.sh` started: its image
/// server's files and its Glance release; `projects` are `env_a`, `env_b`
/// and `env_without_role`.
fn on_up_sh_services(
    mode: Mode,
    facade: Facade,
    projects: [String; 3],
    env: RealEnv,
    services: impl FnOnce(RealEnv) -> Services,
) -> Ctx {
    let image_dir = PathBuf::from(env.get("OS_IMAGE_SERVER_DIR"));
    let good = std::fs::read(image_dir.join("image.qcow2")).expect("image.qcow2 from up.sh");
    let server = env.get("OS_IMAGE_SERVER_URL").trim_end_matches('/').to_owned();
    let glance_release = env
        .get("OS_RELEASE")
        .parse()
        .expect("OS_RELEASE is a Glance major version");
    let [env_a, env_b, env_without_role] = projects;
    Ctx {
        mode,
        facade,
        client: client(),
        env_a,
        env_b,
        env_without_role,
        good_image_url: format!("{server}/image.qcow2"),
        good_image_md5: md5_hex(&good),
        good_image_size: good.len() as u64,
        missing_image_url: format!("{server}/no-such-image.qcow2"),
        garbage_url: format!("{server}/garbage.bin"),
        glance_release,
        services: services(env),
        _keep: Vec::new(),
    }
}

/// The facade `devstack/tests/plugin-test.sh` started as the DevStack
/// plugin asked `run_process` to, with the configuration the plugin wrote,
/// published through the Apache path the plugin configured: keystone mode,
/// DevStack's `demo` and `alt_demo` projects (the plugin's default), each
/// call with the token of a user of its project, as the plugin's default
/// `[[callers]]` rule asks. `invisible_to_admin` is the project without a
/// role: DevStack's `demo` user is a member there, the plugin's service user
/// is not. The plugin test says where the facade is:
/// `ALLIANCE_EXTERNAL_FACADE_URL`, `ALLIANCE_EXTERNAL_NAMESPACE`,
/// `ALLIANCE_EXTERNAL_SERVICE_USER_ID`.
pub async fn external() -> Ctx {
    let setting = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: devstack/tests/plugin-test.sh runs these scenarios"))
    };
    let (url, namespace, service_user_id) = (
        setting("ALLIANCE_EXTERNAL_FACADE_URL"),
        setting("ALLIANCE_EXTERNAL_NAMESPACE"),
        setting("ALLIANCE_EXTERNAL_SERVICE_USER_ID"),
    );
    let env = RealEnv::load();
    assert!(
        env.layout_is_devstack(),
        "the plugin's facade runs beside up.sh --layout devstack"
    );
    let (env_a, env_b, env_without_role) = (
        env.get("OS_DEMO_PROJECT").to_owned(),
        env.get("OS_ALT_DEMO_PROJECT").to_owned(),
        env.get("OS_INVISIBLE_TO_ADMIN_PROJECT").to_owned(),
    );
    let tokens = caller_tokens(&env, [&env_a, &env_b, &env_without_role]).await;
    let facade = Facade::External {
        url: url.trim_end_matches('/').to_owned(),
        namespace,
        tokens,
    };
    on_up_sh_services(Mode::Keystone, facade, [env_a, env_b, env_without_role], env, |env| {
        Services::External { env, service_user_id }
    })
}

/// DevStack's users' tokens, fetched once for every scenario (the facade
/// keeps its validation of each): `demo` (a member of demo and of
/// invisible_to_admin) and `alt_demo_member` (of alt_demo), password the
/// admin's, as DevStack gives them.
async fn caller_tokens(env: &RealEnv, [demo, alt_demo, invisible]: [&String; 3]) -> HashMap<String, String> {
    static TOKENS: tokio::sync::OnceCell<HashMap<String, String>> = tokio::sync::OnceCell::const_new();
    TOKENS
        .get_or_init(|| async {
            let keystone = env.get("OS_KEYSTONE_URL");
            let password = std::fs::read_to_string(env.get("OS_DEMO_PASSWORD_FILE")).expect("demo users' password");
            let password = password.trim();
            let (demo_user, alt_user) = (env.get("OS_DEMO_USER_ID"), env.get("OS_ALT_DEMO_MEMBER_USER_ID"));
            let mut tokens = HashMap::new();
            for (user, project) in [(demo_user, demo), (alt_user, alt_demo), (demo_user, invisible)] {
                tokens.insert(project.clone(), project_token(keystone, user, password, project).await);
            }
            tokens
        })
        .await
        .clone()
}
