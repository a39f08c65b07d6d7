//! What memcached holds, protected as keystonemiddleware's
//! `memcache_security_strategy` protects its token cache: every key is
//! derived from the deployment's secret (HMAC-SHA256), so a deployment
//! sharing the memcached neither finds another's entries nor can write one
//! it would accept, and no key is a token; every value is authenticated
//! (`mac`: HMAC-SHA256 over the key and the value) or encrypted and
//! authenticated (`encrypt`: AES-256-GCM, a fresh nonce each time, the key
//! as associated data). An entry moved to another key, written with another
//! secret, or with a byte changed, does not open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::SecurityStrategy;

type HmacSha256 = Hmac<Sha256>;

/// The first byte of a sealed value: how it was sealed (an entry sealed
/// otherwise than this deployment seals is refused, never downgraded).
const MAC_V1: u8 = 1;
const ENCRYPT_V1: u8 = 2;
const MAC_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// A deployment's keys, derived from its secret.
pub struct Protection {
    strategy: SecurityStrategy,
    key_key: [u8; 32],
    mac_key: [u8; 32],
    cipher: Aes256Gcm,
}

/// HMAC-SHA256 of `parts` under `key` (parts separated, so that no two
/// lists of parts give the same input).
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl Protection {
    pub fn new(secret: &str, strategy: SecurityStrategy) -> Self {
        let derive = |purpose: &str| {
            hmac(
                secret.as_bytes(),
                &[b"alliance-glance shared cache v1", purpose.as_bytes()],
            )
        };
        let encryption = derive("encryption");
        Protection {
            strategy,
            key_key: derive("keys"),
            mac_key: derive("mac"),
            cipher: Aes256Gcm::new(&encryption.into()),
        }
    }

    /// The memcached key of a logical key (its kind and parts): 43
    /// characters of `[0-9a-f]` after a prefix, whatever the parts hold.
    pub fn cache_key(&self, parts: &[&[u8]]) -> String {
        let digest = hmac(&self.key_key, parts);
        format!("ag1:{}", crate::ids::hex(&digest[..20]))
    }

    /// `payload` as stored under `cache_key`.
    pub fn seal(&self, cache_key: &str, payload: &[u8]) -> Vec<u8> {
        match self.strategy {
            SecurityStrategy::Mac => {
                let tag = hmac(&self.mac_key, &[cache_key.as_bytes(), payload]);
                let mut sealed = Vec::with_capacity(1 + MAC_BYTES + payload.len());
                sealed.push(MAC_V1);
                sealed.extend_from_slice(&tag);
                sealed.extend_from_slice(payload);
                sealed
            }
            SecurityStrategy::Encrypt => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let aad = Payload {
                    msg: payload,
                    aad: cache_key.as_bytes(),
                };
                // Encrypting into a Vec does not fail.
                let ciphertext = self.cipher.encrypt(&nonce, aad).unwrap_or_default();
                let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
                sealed.push(ENCRYPT_V1);
                sealed.extend_from_slice(&nonce);
                sealed.extend_from_slice(&ciphertext);
                sealed
            }
        }
    }

    /// The payload of a value found under `cache_key`; `None` when it was
    /// not sealed by this deployment for this key.
    pub fn open(&self, cache_key: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        match (self.strategy, version) {
            (SecurityStrategy::Mac, MAC_V1) if rest.len() >= MAC_BYTES => {
                let (tag, payload) = rest.split_at(MAC_BYTES);
                let expected = hmac(&self.mac_key, &[cache_key.as_bytes(), payload]);
                bool::from(expected.ct_eq(tag)).then(|| payload.to_vec())
            }
            (SecurityStrategy::Encrypt, ENCRYPT_V1) if rest.len() >= NONCE_BYTES => {
                let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
                let aad = Payload {
                    msg: ciphertext,
                    aad: cache_key.as_bytes(),
                };
                self.cipher.decrypt(Nonce::from_slice(nonce), aad).ok()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn keys_derive_from_the_secret_and_hide_their_parts() {
        let ours = Protection::new(SECRET, SecurityStrategy::Encrypt);
        let theirs = Protection::new("another deployment's secret, 32+ chars", SecurityStrategy::Encrypt);
        let key = ours.cache_key(&[b"token", b"ns", b"gAAAAAtoken"]);
        assert_eq!(key.len(), 44);
        assert!(key.starts_with("ag1:") && key[4..].bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert!(!key.contains("token") && !key.contains("gAAAA"));
        assert_eq!(key, ours.cache_key(&[b"token", b"ns", b"gAAAAAtoken"]));
        assert_ne!(key, theirs.cache_key(&[b"token", b"ns", b"gAAAAAtoken"]));
        // Parts are not simply concatenated.
        assert_ne!(ours.cache_key(&[b"ab", b"c"]), ours.cache_key(&[b"a", b"bc"]));
    }

    #[test]
    fn sealed_values_open_only_where_and_how_they_were_sealed() {
        for strategy in [SecurityStrategy::Encrypt, SecurityStrategy::Mac] {
            let ours = Protection::new(SECRET, strategy);
            let payload = br#"{"id":"gAAAAAsecret-token"}"#;
            let sealed = ours.seal("ag1:k", payload);
            assert_eq!(ours.open("ag1:k", &sealed).as_deref(), Some(&payload[..]));
            // Moved to another key, another deployment's, a byte changed, cut short.
            assert_eq!(ours.open("ag1:other", &sealed), None);
            assert_eq!(
                Protection::new("another deployment's secret, 32+ chars", strategy).open("ag1:k", &sealed),
                None
            );
            for at in [0, 1, 20, sealed.len() - 1] {
                let mut changed = sealed.clone();
                changed[at] ^= 1;
                assert_eq!(ours.open("ag1:k", &changed), None, "{strategy:?} byte {at}");
            }
            assert_eq!(ours.open("ag1:k", &sealed[..10]), None);
            assert_eq!(ours.open("ag1:k", b""), None);
        }
    }

    #[test]
    fn encrypt_stores_no_token_in_clear_and_refuses_mac_entries() {
        let encrypt = Protection::new(SECRET, SecurityStrategy::Encrypt);
        let sealed = encrypt.seal("ag1:k", b"gAAAAAsecret-token");
        assert!(!sealed.windows(5).any(|window| window == b"gAAAA"));
        // Two seals of one value differ (a fresh nonce each).
        assert_ne!(sealed, encrypt.seal("ag1:k", b"gAAAAAsecret-token"));
        let mac = Protection::new(SECRET, SecurityStrategy::Mac);
        assert_eq!(encrypt.open("ag1:k", &mac.seal("ag1:k", b"x")), None);
        assert_eq!(mac.open("ag1:k", &sealed), None);
    }
}
