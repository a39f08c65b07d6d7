//! Step 3 of a request (README, "How a request goes through"): namespace -> cloud (Glance endpoint, how to
//! authenticate), environment -> project-scoped credentials for the session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{AuthConfig, Config, ConfigError, EnvironmentIdFormat, FallbackConfig, NamespaceConfig};
use crate::copy_from::guard::Guard;
use crate::copy_from::methods::ImportMethods;
use crate::error::AllianceError;
use crate::limits::gate::Gate;
use crate::limits::rate::EnvironmentRates;
use crate::limits::single_flight::SingleFlight;
use crate::metrics::{Metrics, NamespaceMetrics};
use crate::refusal::Service;
use crate::shared_cache::SharedCache;
use crate::upstream::auth::TrustedAuth;
use crate::upstream::glance;
use crate::upstream::keystone::KeystoneAuth;
use crate::upstream::keystone::caller_tokens::CallerTokens;
use crate::upstream::keystone::settings::{self, KeystoneSettings, ProcessEnvironment};
use crate::upstream::{AnswerBudget, Authenticator, HttpOptions, Memberships, Session, UpstreamAuth, UpstreamHttp};

/// Idle pooled connections to Glance are not used again after this, below
/// gunicorn's default keep-alive of 2 s, so a request rarely meets a
/// connection the server is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

/// What a namespace is built from: its table of the configuration and its
/// auth mode's settings, resolved. A reload keeps a namespace whose spec is
/// equal - its token cache and connection pool with it - and rebuilds one
/// whose spec changed (a rotated password file included).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudSpec {
    pub config: NamespaceConfig,
    pub auth: AuthSpec,
}

/// A namespace's auth mode with what it needs: the one place where a mode's
/// configuration becomes its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthSpec {
    Trusted {
        endpoint: url::Url,
        user_id: String,
        roles: Vec<String>,
    },
    /// Resolved from the auth table, `clouds.yaml` and the secrets' files
    /// and variables.
    Keystone(KeystoneSettings),
}

impl CloudSpec {
    pub fn resolve(name: &str, config: &NamespaceConfig) -> Result<Self, ConfigError> {
        let fail = |message: String| ConfigError(format!("namespace {name}: {message}"));
        let auth = match &config.auth {
            AuthConfig::Trusted(trusted) => AuthSpec::Trusted {
                endpoint: trusted
                    .glance_endpoint(config.glance_url.as_ref())
                    .map_err(fail)?
                    .clone(),
                user_id: trusted.user_id.clone(),
                roles: trusted.roles.clone(),
            },
            AuthConfig::Keystone(keystone) => {
                AuthSpec::Keystone(settings::resolve(keystone, &ProcessEnvironment).map_err(fail)?)
            }
        };
        Ok(CloudSpec {
            config: config.clone(),
            auth,
        })
    }
}

/// One configured namespace, ready to serve.
pub struct Cloud {
    pub name: String,
    pub spec: CloudSpec,
    pub http: Arc<UpstreamHttp>,
    pub auth: Arc<Authenticator>,
    /// The judge of callers' Keystone tokens (keystone mode only).
    pub caller_tokens: Option<CallerTokens>,
    pub memberships: Arc<Memberships>,
    pub page_size: u32,
    pub max_pages: u32,
    pub environment_id_format: EnvironmentIdFormat,
    pub copy_from_guard: Guard,
    pub import_methods: ImportMethods,
    pub copy_from_fallback: FallbackConfig,
    pub metrics: NamespaceMetrics,
    /// The request rates of the namespace's environments.
    pub rates: EnvironmentRates,
    /// The calls in flight to the namespace's Glance (its Keystone's are
    /// the authenticator's).
    pub glance_gate: Arc<Gate>,
    /// Shows by id being answered, by environment and image (the body of
    /// the image, or the refusal; see `ops::show`).
    pub shows: SingleFlight<Result<Bytes, AllianceError>>,
}

impl Cloud {
    /// `budget`: the process's memory for upstream answers, shared by every
    /// namespace; `shared`: the cache shared with the other replicas, if any.
    pub fn from_spec(
        name: &str,
        spec: CloudSpec,
        metrics: &Metrics,
        budget: &AnswerBudget,
        shared: Option<&Arc<SharedCache>>,
    ) -> Result<Self, ConfigError> {
        let fail = |message: String| ConfigError(format!("namespace {name}: {message}"));
        let config = &spec.config;
        let http = UpstreamHttp::new(&HttpOptions {
            connect_timeout: config.connect_timeout(),
            request_timeout: config.request_timeout(),
            pool_idle_timeout: POOL_IDLE_TIMEOUT,
            budget: budget.clone(),
        })
        .map_err(fail)?;
        let http = Arc::new(http);
        let metrics = metrics.namespace(name);
        let limits = &config.limits;
        let gate =
            |guarded, max_in_flight| Gate::new(guarded, max_in_flight, limits.max_queued_calls, limits.queue_timeout());
        let (auth, caller_tokens) = match &spec.auth {
            AuthSpec::Trusted {
                endpoint,
                user_id,
                roles,
            } => (
                Authenticator::Trusted(TrustedAuth::new(endpoint.clone(), user_id, roles).map_err(fail)?),
                None,
            ),
            AuthSpec::Keystone(settings) => {
                let keystone = Arc::new(KeystoneAuth::new(
                    settings.clone(),
                    Arc::clone(&http),
                    config.glance_url.clone(),
                    metrics.clone(),
                    gate(Service::Identity, limits.keystone_max_in_flight),
                    shared.cloned(),
                ));
                let callers = CallerTokens::new(Arc::clone(&keystone));
                (Authenticator::Keystone(keystone), Some(callers))
            }
        };
        Ok(Cloud {
            name: name.to_owned(),
            http,
            auth: Arc::new(auth),
            caller_tokens,
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
            metrics,
            rates: EnvironmentRates::new(limits, config.environment_id_format, shared.map(|cache| (cache, name))),
            glance_gate: Arc::new(gate(Service::Image, limits.glance_max_in_flight)),
            shows: SingleFlight::new(
                limits.coalesce_window(),
                limits.coalesce_max_entries,
                limits.coalesce_max_bytes,
            ),
            spec,
        })
    }

    /// The upstream session of one request by one environment.
    pub fn session(&self, environment: &str, request_id: &str) -> Session {
        Session::new(
            Arc::clone(&self.http),
            Arc::clone(&self.auth),
            Arc::clone(&self.memberships),
            self.metrics.clone(),
            Arc::clone(&self.glance_gate),
            environment.to_owned(),
            request_id.to_owned(),
        )
    }

    /// Whether the namespace can serve: its Glance answers its healthcheck
    /// and, in keystone mode, Keystone issues the namespace's token. Why
    /// not, in a few words. (The shared cache every namespace depends on is
    /// checked once for all: [`Clouds::shared_cache_problem`].)
    pub async fn check_ready(&self, request_id: &str) -> Result<(), String> {
        let endpoint = self
            .auth
            .ready_endpoint(request_id)
            .await
            .map_err(|error| format!("identity: {}", error.message))?;
        // Keystone mode with Glance from the catalog: no endpoint before the
        // first token with a catalog; Keystone's answer stands alone then.
        match endpoint {
            Some(endpoint) => glance::healthcheck(&self.http, &self.metrics, &endpoint, request_id).await,
            None => Ok(()),
        }
    }
}

/// All namespaces, by name: one configuration, swapped whole on reload.
pub struct Clouds {
    by_name: HashMap<String, Arc<Cloud>>,
    /// The process's memory for upstream answers, shared by every namespace.
    budget: AnswerBudget,
    /// The cache shared with the other replicas (`[shared_cache]`; kept
    /// across reloads, a change takes effect at restart).
    shared_cache: Option<Arc<SharedCache>>,
    /// The series of requests naming no configured namespace.
    unknown_namespace: NamespaceMetrics,
}

/// What a reload changed, by namespace name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub kept: Vec<String>,
}

impl Clouds {
    pub fn from_config(config: &Config, metrics: &Metrics) -> Result<Self, ConfigError> {
        Self::reusing(config, metrics, None).map(|(clouds, _)| clouds)
    }

    /// The namespaces of `config`; those whose spec is the same as in
    /// `previous` are the previous ones (their caches and pools kept).
    pub fn reusing(
        config: &Config,
        metrics: &Metrics,
        previous: Option<&Clouds>,
    ) -> Result<(Self, Changes), ConfigError> {
        let shared_cache = match previous {
            Some(previous) => previous.shared_cache.clone(),
            None => config
                .shared_cache
                .as_ref()
                .map(|shared| SharedCache::from_config(shared, metrics))
                .transpose()
                .map_err(ConfigError)?,
        };
        // The memory for upstream answers is the process's: kept across reloads.
        let budget = previous.map_or_else(
            || {
                AnswerBudget::new(
                    config.upstream.buffer_bytes,
                    config.upstream.max_answer_bytes,
                    config.upstream.buffer_wait(),
                )
            },
            |previous| previous.budget.clone(),
        );
        let mut changes = Changes::default();
        let mut by_name = HashMap::with_capacity(config.namespaces.len());
        for (name, namespace) in &config.namespaces {
            let spec = CloudSpec::resolve(name, namespace)?;
            let cloud = match previous.and_then(|previous| previous.get(name)) {
                Some(old) if old.spec == spec => {
                    changes.kept.push(name.clone());
                    Arc::clone(old)
                }
                old => {
                    if old.is_some() {
                        changes.changed.push(name.clone());
                    } else {
                        changes.added.push(name.clone());
                    }
                    Arc::new(Cloud::from_spec(name, spec, metrics, &budget, shared_cache.as_ref())?)
                }
            };
            by_name.insert(name.clone(), cloud);
        }
        if let Some(previous) = previous {
            changes.removed = previous
                .by_name
                .keys()
                .filter(|name| !config.namespaces.contains_key(*name))
                .cloned()
                .collect();
            changes.removed.sort();
        }
        Ok((
            Clouds {
                by_name,
                budget,
                shared_cache,
                unknown_namespace: metrics.unknown_namespace(),
            },
            changes,
        ))
    }

    /// The cache shared with the other replicas, if any.
    pub fn shared_cache(&self) -> Option<&Arc<SharedCache>> {
        self.shared_cache.as_ref()
    }

    /// Why no namespace can serve, if the shared cache is why: its rates
    /// fail closed and memcached cannot be reached. One question to
    /// memcached, whatever the number of namespaces.
    pub async fn shared_cache_problem(&self) -> Option<String> {
        match &self.shared_cache {
            Some(shared) if shared.fail_closed && !shared.reachable().await => {
                Some("the shared cache (memcached) cannot be reached, and its rates fail closed".into())
            }
            _ => None,
        }
    }

    pub fn get(&self, namespace: &str) -> Option<&Arc<Cloud>> {
        self.by_name.get(namespace)
    }

    /// Every namespace, in name order.
    pub fn all(&self) -> Vec<&Arc<Cloud>> {
        let mut all: Vec<_> = self.by_name.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The metrics handles of `namespace`, or of unknown namespaces.
    pub fn metrics_of(&self, namespace: Option<&str>) -> &NamespaceMetrics {
        namespace
            .and_then(|namespace| self.get(namespace))
            .map_or(&self.unknown_namespace, |cloud| &cloud.metrics)
    }
}
