//! The real services `scripts/openstack/up.sh` started, as its env file
//! describes them.

use std::collections::HashMap;
use std::path::PathBuf;

/// The env file of `up.sh`: `$ALLIANCE_OPENSTACK_ENV`, else the newest
/// release's, `.cache/openstack/33/env`.
#[derive(Clone)]
pub struct RealEnv(HashMap<String, String>);

impl RealEnv {
    pub fn load() -> Self {
        let path = std::env::var_os("ALLIANCE_OPENSTACK_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/openstack/33/env"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "real OpenStack is not running ({}: {error}); scripts/test.sh starts it with scripts/openstack/up.sh",
                path.display()
            )
        });
        let values = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.trim().to_owned(), value.trim().trim_matches('\'').to_owned()))
            .collect();
        RealEnv(values)
    }

    /// Whether up.sh laid the services out as DevStack does (`--layout devstack`).
    pub fn layout_is_devstack(&self) -> bool {
        self.0.get("OS_LAYOUT").is_some_and(|layout| layout == "devstack")
    }

    pub fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{key} missing from the OpenStack env file"))
    }
}
