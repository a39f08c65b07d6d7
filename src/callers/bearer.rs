//! Bearer secrets (`Authorization: Bearer <secret>`), held only as salted
//! SHA-256 hashes: `sha256:<salt>:<digest>` in hexadecimal, the digest
//! being SHA-256(salt || secret).
//!
//! A presented secret is hashed with every rule's salt and compared with
//! every rule's digest, in constant time (`subtle`), before anything
//! depends on the outcome: the work is the same whether the secret is
//! right, wrong by one character, or unknown, so no timing tells them apart.
//! The secrets are random and long ([`MIN_SECRET_LEN`]), which is why one
//! salted SHA-256 is enough where a password would need a slow hash.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::ids;

/// Shorter secrets are refused: guessing must stay out of reach of a fast hash.
pub const MIN_SECRET_LEN: usize = 32;

/// One secret's salt and digest.
#[derive(Clone, PartialEq, Eq)]
pub struct SaltedHash {
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl std::fmt::Debug for SaltedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SaltedHash(<redacted>)")
    }
}

impl std::fmt::Display for SaltedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}:{}", ids::hex(&self.salt), ids::hex(&self.digest))
    }
}

fn salted_sha256(salt: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret);
    hasher.finalize().into()
}

impl SaltedHash {
    /// The hash of `secret` under a new random salt (16 bytes from the
    /// system's random source, through a v4 UUID).
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "a bearer secret needs at least {MIN_SECRET_LEN} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        if !secret.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err("a bearer secret is made of visible ASCII characters".into());
        }
        let salt = uuid::Uuid::new_v4().into_bytes().to_vec();
        Ok(SaltedHash {
            digest: salted_sha256(&salt, secret.as_bytes()),
            salt,
        })
    }

    /// `sha256:<salt>:<digest>`, as [`Display`](std::fmt::Display) writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid =
            || "expected sha256:<salt hex>:<64 hex digits> (alliance-glance hash-secret writes it)".to_owned();
        let mut parts = text.trim().split(':');
        let (Some("sha256"), Some(salt), Some(digest), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let salt = ids::from_hex(salt).filter(|salt| salt.len() >= 8).ok_or_else(invalid)?;
        let digest = ids::from_hex(digest)
            .and_then(|digest| <[u8; 32]>::try_from(digest).ok())
            .ok_or_else(invalid)?;
        Ok(SaltedHash { salt, digest })
    }
}

/// The bearer rules' hashes, each with the index of its rule.
#[derive(Debug, Default)]
pub struct BearerHashes {
    entries: Vec<(usize, SaltedHash)>,
}

impl BearerHashes {
    pub fn push(&mut self, rule: usize, hash: SaltedHash) {
        self.entries.push((rule, hash));
    }

    /// The rules whose secret `presented` is.
    pub fn matching(&self, presented: &str) -> Vec<usize> {
        self.matching_with(presented, salted_sha256)
    }

    /// Every entry is hashed and compared (constant time) into a list of
    /// [`Choice`]s before any branch looks at one; `digest` is a parameter
    /// so that a test can count the work.
    fn matching_with(&self, presented: &str, digest: impl Fn(&[u8], &[u8]) -> [u8; 32]) -> Vec<usize> {
        let equal: Vec<Choice> = self
            .entries
            .iter()
            .map(|(_, hash)| digest(&hash.salt, presented.as_bytes()).ct_eq(&hash.digest))
            .collect();
        self.entries
            .iter()
            .zip(equal)
            .filter(|(_, equal)| bool::from(*equal))
            .map(|((rule, _), _)| *rule)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const SECRET: &str = "4f6d0c2e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";

    #[test]
    fn hashes_are_written_and_read_back() {
        let hash = SaltedHash::new(SECRET).unwrap();
        let text = hash.to_string();
        assert!(text.starts_with("sha256:"));
        assert!(!text.contains(SECRET));
        assert!(!format!("{hash:?}").contains(&ids::hex(&hash.digest)));
        assert_eq!(SaltedHash::parse(&text).unwrap(), hash);
        // Another salt, another hash of the same secret.
        assert_ne!(SaltedHash::new(SECRET).unwrap().to_string(), text);
    }

    #[test]
    fn malformed_hashes_and_weak_secrets_are_refused() {
        let digest = "0".repeat(64);
        for bad in [
            String::new(),
            format!("md5:00112233aabbccdd:{digest}"),
            format!("sha256:0011:{digest}"),
            format!("sha256:00112233aabbccdd:{}", "0".repeat(62)),
            format!("sha256:00112233aabbccdd:{digest}:extra"),
            format!("sha256:zz112233aabbccdd:{digest}"),
        ] {
            assert!(SaltedHash::parse(&bad).is_err(), "{bad}");
        }
        assert!(SaltedHash::parse(&format!("sha256:00112233aabbccdd:{digest}")).is_ok());
        assert!(SaltedHash::new("short").is_err());
        assert!(SaltedHash::new(&format!("{SECRET} with spaces")).is_err());
    }

    #[test]
    fn the_matching_rules_are_found() {
        let mut hashes = BearerHashes::default();
        hashes.push(0, SaltedHash::new(SECRET).unwrap());
        hashes.push(3, SaltedHash::new(&SECRET.replace('4', "5")).unwrap());
        assert_eq!(hashes.matching(SECRET), [0]);
        assert_eq!(hashes.matching(&SECRET.replace('4', "5")), [3]);
        assert!(hashes.matching(&SECRET[..SECRET.len() - 1]).is_empty());
        assert!(hashes.matching("").is_empty());
    }

    /// The constant-time property by construction: a right secret, a wrong
    /// one (one character off) and an unknown one cost the same work - one
    /// hash per rule, every rule - and the same comparisons.
    #[test]
    fn every_rule_is_hashed_whatever_the_secret() {
        let mut hashes = BearerHashes::default();
        for rule in 0..5 {
            hashes.push(rule, SaltedHash::new(&format!("{SECRET}{rule}")).unwrap());
        }
        let wrong = format!("{SECRET}9");
        let unknown = "x".repeat(SECRET.len() + 1);
        let right = format!("{SECRET}0");
        let mut work = Vec::new();
        for presented in [right.as_str(), wrong.as_str(), unknown.as_str()] {
            let digests = Cell::new(0);
            let matched = hashes.matching_with(presented, |salt, secret| {
                digests.set(digests.get() + 1);
                salted_sha256(salt, secret)
            });
            work.push((digests.get(), matched.len()));
        }
        assert_eq!(work, [(5, 1), (5, 0), (5, 0)]);
    }
}
