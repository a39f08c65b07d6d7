//! `[tls]`: TLS on the Alliance listener.

use std::path::PathBuf;

use serde::Deserialize;

/// The listener's certificate and key, and client certificates (`[tls]`).
/// The files are read at start and again on SIGHUP (see `tls`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the server certificate first, then the intermediates. Must be given.
    pub cert_chain_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1). Must be given.
    pub key_file: PathBuf,
    /// PEM: the CAs whose client certificates `client_cert_name` callers
    /// are recognised by.
    pub client_ca_file: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// A connection that has not finished its handshake after this is closed.
    pub handshake_timeout_secs: u64,
}

impl Default for TlsConfig {
    /// The files empty: not given, refused by `validate`.
    fn default() -> Self {
        TlsConfig {
            cert_chain_file: PathBuf::new(),
            key_file: PathBuf::new(),
            client_ca_file: None,
            client_auth: ClientAuth::None,
            handshake_timeout_secs: 10,
        }
    }
}

/// Whether the listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    None,
    /// Asked for; a client without one still connects (and is recognised
    /// otherwise, or refused with 401).
    Request,
    /// A client without a certificate fails the handshake.
    Require,
}

impl TlsConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        for (name, file) in [("cert_chain_file", &self.cert_chain_file), ("key_file", &self.key_file)] {
            if file.as_os_str().is_empty() {
                return Err(format!("tls.{name} must be given"));
            }
        }
        if self.client_ca_file.is_some() && self.client_auth == ClientAuth::None {
            return Err("tls.client_auth must be \"request\" or \"require\" when tls.client_ca_file is given".into());
        }
        if self.handshake_timeout_secs == 0 {
            return Err("tls.handshake_timeout_secs must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::{MINIMAL, TLS, error};

    #[test]
    fn the_certificate_and_key_must_be_given() {
        Config::parse(&format!("{MINIMAL}{TLS}")).unwrap();
        let no_key = format!("{MINIMAL}{TLS}").replace("key_file = \"/etc/alliance-glance/key.pem\"", "");
        assert_eq!(error(&no_key), "tls.key_file must be given");
        let empty_chain = format!("{MINIMAL}{TLS}").replace("/etc/alliance-glance/chain.pem", "");
        assert_eq!(error(&empty_chain), "tls.cert_chain_file must be given");
        assert!(Config::parse(&format!("{MINIMAL}{TLS}bogus = 1")).is_err());
    }
}
