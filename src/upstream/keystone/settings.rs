//! A namespace's Keystone settings, resolved at start-up from its
//! configuration table, an optional `clouds.yaml` cloud, and the secrets'
//! environment variables or files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::config::{KeystoneConfig, ScopeMethod, read_first_line};

/// A secret: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Who the service user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Password { user: UserRef, password: Secret },
    ApplicationCredential { id: String, secret: Secret },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneSettings {
    /// Ends in `/v3`.
    pub auth_url: Url,
    pub identity: Identity,
    pub interface: String,
    pub region: Option<String>,
    pub scope_method: ScopeMethod,
    pub token_cache_size: usize,
    pub refused_environments_size: usize,
    pub refused_environment_ttl: Duration,
    pub new_environments_per_sec: u32,
    pub new_environments_burst: u32,
    /// Where the token that validates callers' tokens is scoped.
    pub service_project_id: Option<String>,
    /// How long a caller's validated token is trusted (never beyond its expiry).
    pub caller_token_ttl: Duration,
    pub caller_token_cache_size: usize,
    pub caller_token_validations_per_sec: u32,
    pub caller_token_validations_burst: u32,
}

/// Where environment variables come from (the process, or a test's map).
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn home(&self) -> Option<PathBuf>;
}

pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn home(&self) -> Option<PathBuf> {
        std::env::var_os("HOME").map(PathBuf::from)
    }
}

pub fn resolve(config: &KeystoneConfig, env: &impl Environment) -> Result<KeystoneSettings, String> {
    let cloud = match &config.cloud {
        Some(name) => Some(load_cloud(name, env)?),
        None => None,
    };
    let cloud_auth = cloud.as_ref().map(|cloud| &cloud.auth);
    let pick =
        |ours: &Option<String>, theirs: Option<&Option<String>>| ours.clone().or_else(|| theirs.cloned().flatten());

    let auth_url = match (&config.auth_url, cloud_auth.and_then(|auth| auth.auth_url.as_deref())) {
        (Some(url), _) => url.clone(),
        (None, Some(text)) => Url::parse(text).map_err(|error| format!("clouds.yaml auth_url: {error}"))?,
        (None, None) => return Err("keystone auth needs auth_url (here or in clouds.yaml)".into()),
    };
    let auth_url = with_v3(auth_url)?;

    let app_credential_id = pick(
        &config.application_credential_id,
        cloud_auth.map(|a| &a.application_credential_id),
    );
    let identity = match app_credential_id {
        Some(id) => {
            let secret = secret(
                config.application_credential_secret_env.as_deref(),
                config.application_credential_secret_file.as_deref(),
                cloud_auth.and_then(|auth| auth.application_credential_secret.clone()),
                env,
                "application credential secret",
            )?;
            Identity::ApplicationCredential { id, secret }
        }
        None => {
            let user = match (
                pick(&config.user_id, cloud_auth.map(|a| &a.user_id)),
                pick(&config.username, cloud_auth.map(|a| &a.username)),
            ) {
                (Some(id), _) => UserRef::Id(id),
                (None, Some(name)) => {
                    let domain = match (
                        pick(&config.user_domain_id, cloud_auth.map(|a| &a.user_domain_id)),
                        pick(&config.user_domain_name, cloud_auth.map(|a| &a.user_domain_name)),
                    ) {
                        (Some(id), _) => DomainRef::Id(id),
                        (None, Some(name)) => DomainRef::Name(name),
                        (None, None) => DomainRef::Id("default".into()),
                    };
                    UserRef::Name { name, domain }
                }
                (None, None) => {
                    return Err("keystone auth needs username or user_id, or an application credential".into());
                }
            };
            let password = secret(
                config.password_env.as_deref(),
                config.password_file.as_deref(),
                cloud_auth.and_then(|auth| auth.password.clone()),
                env,
                "password",
            )?;
            Identity::Password { user, password }
        }
    };
    let interface = config
        .interface
        .clone()
        .or_else(|| cloud.as_ref().and_then(|cloud| cloud.interface.clone()))
        .unwrap_or_else(|| "public".into());
    let interface = interface.strip_suffix("URL").unwrap_or(&interface).to_owned();
    Ok(KeystoneSettings {
        auth_url,
        identity,
        interface,
        region: config
            .region_name
            .clone()
            .or_else(|| cloud.as_ref().and_then(|cloud| cloud.region_name.clone())),
        scope_method: config.scope_method,
        token_cache_size: config.token_cache_size,
        refused_environments_size: config.refused_environments_size,
        refused_environment_ttl: Duration::from_secs(config.refused_environment_secs),
        new_environments_per_sec: config.new_environments_per_sec,
        new_environments_burst: config.new_environments_burst,
        service_project_id: config.service_project_id.clone(),
        caller_token_ttl: Duration::from_secs(config.caller_token_cache_secs),
        caller_token_cache_size: config.caller_token_cache_size,
        caller_token_validations_per_sec: config.caller_token_validations_per_sec,
        caller_token_validations_burst: config.caller_token_validations_burst,
    })
}

/// `http://host:5000` and `http://host/identity/` become `.../v3`.
pub fn with_v3(mut url: Url) -> Result<Url, String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("auth_url must be http or https".into());
    }
    let path = url.path().trim_end_matches('/').to_owned();
    if !path.ends_with("/v3") {
        url.set_path(&format!("{path}/v3"));
    } else {
        url.set_path(&path);
    }
    Ok(url)
}

/// A secret from an environment variable or a file (first line, trimmed),
/// or else from clouds.yaml.
fn secret(
    env_name: Option<&str>,
    file: Option<&Path>,
    from_cloud: Option<String>,
    env: &impl Environment,
    what: &str,
) -> Result<Secret, String> {
    if let Some(name) = env_name {
        return env
            .var(name)
            .filter(|value| !value.is_empty())
            .map(Secret::new)
            .ok_or_else(|| format!("the {what} variable {name} is not set"));
    }
    if let Some(path) = file {
        let value = read_first_line(path)
            .map_err(|error| format!("cannot read the {what} file {}: {error}", path.display()))?;
        if value.is_empty() {
            return Err(format!("the {what} file {} is empty", path.display()));
        }
        return Ok(Secret::new(value));
    }
    from_cloud
        .map(Secret::new)
        .ok_or_else(|| format!("no {what}: give {what} _env or _file, or a clouds.yaml cloud that has it"))
}

#[derive(Debug, Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, Cloud>,
}

#[derive(Debug, Default, Deserialize)]
struct Cloud {
    #[serde(default)]
    auth: CloudAuth,
    region_name: Option<String>,
    interface: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct CloudAuth {
    auth_url: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
    password: Option<String>,
    user_domain_name: Option<String>,
    user_domain_id: Option<String>,
    application_credential_id: Option<String>,
    application_credential_secret: Option<String>,
}

/// The OpenStack search order: `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
/// `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`.
pub fn clouds_yaml_candidates(env: &impl Environment) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = env.var("OS_CLIENT_CONFIG_FILE") {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(PathBuf::from("clouds.yaml"));
    if let Some(home) = env.home() {
        candidates.push(home.join(".config/openstack/clouds.yaml"));
    }
    candidates.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    candidates
}

fn load_cloud(name: &str, env: &impl Environment) -> Result<Cloud, String> {
    let path = clouds_yaml_candidates(env)
        .into_iter()
        .find(|path| path.is_file())
        .ok_or_else(|| {
            "no clouds.yaml found (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack, /etc/openstack)"
                .to_owned()
        })?;
    let text = std::fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut file: CloudsFile = serde_saphyr::from_str(&text)
        .map_err(|error| format!("{} is not a valid clouds.yaml: {error}", path.display()))?;
    file.clouds
        .remove(name)
        .ok_or_else(|| format!("{} has no cloud named {name}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnvironment(HashMap<&'static str, String>);

    impl Environment for FakeEnvironment {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }

        fn home(&self) -> Option<PathBuf> {
            None
        }
    }

    fn config(toml_text: &str) -> KeystoneConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn password_from_the_environment() {
        let env = FakeEnvironment(HashMap::from([("PW", "s3cret".to_owned())]));
        let settings = resolve(
            &config(
                "auth_url = 'http://k:5000'\nusername = 'alliance'\npassword_env = 'PW'\nregion_name = 'RegionOne'",
            ),
            &env,
        )
        .unwrap();
        assert_eq!(settings.auth_url.as_str(), "http://k:5000/v3");
        assert_eq!(
            settings.identity,
            Identity::Password {
                user: UserRef::Name {
                    name: "alliance".into(),
                    domain: DomainRef::Id("default".into())
                },
                password: Secret::new("s3cret"),
            }
        );
        assert_eq!(settings.interface, "public");
        assert_eq!(settings.region.as_deref(), Some("RegionOne"));
        assert!(!format!("{settings:?}").contains("s3cret"), "secrets never printed");
    }

    #[test]
    fn missing_secrets_are_errors() {
        let env = FakeEnvironment(HashMap::new());
        let error = resolve(
            &config("auth_url = 'http://k/v3'\nusername = 'a'\npassword_env = 'NOPE'"),
            &env,
        )
        .unwrap_err();
        assert_eq!(error, "the password variable NOPE is not set");
        assert!(resolve(&config("auth_url = 'http://k/v3'\nusername = 'a'"), &env).is_err());
        assert!(resolve(&config("username = 'a'\npassword_env = 'X'"), &env).is_err());
    }

    #[test]
    fn clouds_yaml_supplies_what_the_table_leaves_out() {
        let dir = std::env::temp_dir().join(format!("alliance-clouds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clouds.yaml");
        std::fs::write(
            &path,
            "clouds:\n  devstack:\n    auth:\n      auth_url: http://127.0.0.1/identity\n      username: alliance\n      password: from-yaml\n      user_domain_name: Default\n      project_name: ignored\n    region_name: RegionOne\n    interface: internal\n  appcred:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://127.0.0.1:5000/v3/\n      application_credential_id: abc\n      application_credential_secret: def\n",
        )
        .unwrap();
        let env = FakeEnvironment(HashMap::from([("OS_CLIENT_CONFIG_FILE", path.display().to_string())]));
        let settings = resolve(&config("cloud = 'devstack'"), &env).unwrap();
        assert_eq!(settings.auth_url.as_str(), "http://127.0.0.1/identity/v3");
        assert_eq!(settings.interface, "internal");
        assert_eq!(settings.region.as_deref(), Some("RegionOne"));
        assert!(matches!(&settings.identity, Identity::Password { password, .. } if password.expose() == "from-yaml"));
        let overridden = resolve(&config("cloud = 'devstack'\ninterface = 'public'"), &env).unwrap();
        assert_eq!(overridden.interface, "public");
        let app = resolve(&config("cloud = 'appcred'"), &env).unwrap();
        assert_eq!(app.auth_url.as_str(), "http://127.0.0.1:5000/v3");
        assert!(
            matches!(&app.identity, Identity::ApplicationCredential { id, secret } if id == "abc" && secret.expose() == "def")
        );
        assert!(
            resolve(&config("cloud = 'missing'"), &env)
                .unwrap_err()
                .contains("no cloud named missing")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn password_files_keep_the_first_line() {
        let path = std::env::temp_dir().join(format!("alliance-pw-{}", std::process::id()));
        std::fs::write(&path, "file-secret\n").unwrap();
        let env = FakeEnvironment(HashMap::new());
        let settings = resolve(
            &config(&format!(
                "auth_url = 'http://k/v3'\nuser_id = 'u1'\npassword_file = '{}'",
                path.display()
            )),
            &env,
        )
        .unwrap();
        assert!(
            matches!(&settings.identity, Identity::Password { user: UserRef::Id(id), password } if id == "u1" && password.expose() == "file-secret")
        );
        std::fs::remove_file(&path).unwrap();
    }
}
