//! Step 2 of a request: namespace -> cloud (Glance endpoint, how to
//! authenticate), environment -> project-scoped credentials for the session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AuthConfig, Config, ConfigError, EnvironmentIdFormat, FallbackConfig, NamespaceConfig};
use crate::copy_from::guard::Guard;
use crate::copy_from::methods::ImportMethods;

use crate::upstream::auth::TrustedAuth;
use crate::upstream::keystone::KeystoneAuth;
use crate::upstream::keystone::settings::{self, ProcessEnvironment};

use crate::upstream::{AnswerBudget, Authenticator, HttpOptions, Memberships, Session, UpstreamHttp};

/// Idle pooled connections to Glance are not used again after this, below
/// gunicorn's default keep-alive of 2 s, so a request rarely meets a
/// connection the server is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

/// One configured namespace, ready to serve.
pub struct Cloud {
    pub name: String,
    pub http: Arc<UpstreamHttp>,
    pub auth: Arc<Authenticator>,
    pub memberships: Arc<Memberships>,
    pub page_size: u32,
    pub max_pages: u32,
    pub environment_id_format: EnvironmentIdFormat,
    pub copy_from_guard: Guard,
    pub import_methods: ImportMethods,
    pub copy_from_fallback: FallbackConfig,
}

impl Cloud {
    /// `budget`: the process's memory for upstream answers, shared by every namespace.
    pub fn from_config(name: &str, config: &NamespaceConfig, budget: &AnswerBudget) -> Result<Self, ConfigError> {
        let fail = |message: String| ConfigError(format!("namespace {name}: {message}"));
        let http = UpstreamHttp::new(&HttpOptions {
            connect_timeout: config.connect_timeout(),
            request_timeout: config.request_timeout(),
            pool_idle_timeout: POOL_IDLE_TIMEOUT,
            budget: budget.clone(),
        })
        .map_err(fail)?;
        let http = Arc::new(http);
        let auth = match &config.auth {
            AuthConfig::Trusted { user_id, roles } => {
                let endpoint = config
                    .glance_url
                    .clone()
                    .ok_or_else(|| fail("trusted auth needs glance_url".into()))?;
                Authenticator::Trusted(TrustedAuth::new(endpoint, user_id, roles).map_err(fail)?)
            }
            AuthConfig::Keystone(keystone) => {
                let settings = settings::resolve(keystone, &ProcessEnvironment).map_err(fail)?;
                let keystone = KeystoneAuth::new(settings, Arc::clone(&http), config.glance_url.clone());
                Authenticator::Keystone(Box::new(keystone))
            }
        };
        Ok(Cloud {
            name: name.to_owned(),
            http,
            auth: Arc::new(auth),
            memberships: Arc::new(Memberships::new(
                config.membership_cache_size,
                Duration::from_secs(config.membership_cache_secs),
                config.membership_concurrency,
            )),
            page_size: config.page_size,
            max_pages: config.max_pages,
            environment_id_format: config.environment_id_format,
            copy_from_guard: Guard::new(&config.copy_from).map_err(|error| fail(format!("copy_from: {error}")))?,
            import_methods: ImportMethods::default(),
            copy_from_fallback: config.copy_from_fallback.clone(),
        })
    }

    /// The upstream session of one request by one environment.
    pub fn session(&self, environment: &str, request_id: &str) -> Session {
        Session::new(
            Arc::clone(&self.http),
            Arc::clone(&self.auth),
            Arc::clone(&self.memberships),
            environment.to_owned(),
            request_id.to_owned(),
        )
    }
}

/// All namespaces, by name.
pub struct Clouds {
    by_name: HashMap<String, Arc<Cloud>>,
}

impl Clouds {
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let budget = AnswerBudget::new(
            config.upstream.buffer_bytes,
            config.upstream.max_answer_bytes,
            config.upstream.buffer_wait(),
        );
        let by_name = config
            .namespaces
            .iter()
            .map(|(name, namespace)| Ok((name.clone(), Arc::new(Cloud::from_config(name, namespace, &budget)?))))
            .collect::<Result<_, ConfigError>>()?;
        Ok(Clouds { by_name })
    }

    pub fn get(&self, namespace: &str) -> Option<&Arc<Cloud>> {
        self.by_name.get(namespace)
    }
}
