//! `X-Openstack-Request-Id`: one id per request, shown to the client and sent
//! upstream so that both logs can be joined.

use http::HeaderMap;

pub const HEADER: &str = "x-openstack-request-id";

/// Reuses the client's id only when it has the OpenStack form
/// `req-<uuid>`; anything else (too long, odd characters) would end up in
/// Glance's logs and headers, so a fresh id replaces it.
pub fn from_inbound(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_openstack_request_id(value))
        .map(str::to_owned)
        .unwrap_or_else(generate)
}

/// A fresh `req-<uuid v4>`. The random bits come from a per-thread keyed
/// hash of a counter (SipHash with keys the standard library draws from the
/// OS once per thread) rather than from a `getrandom` system call per
/// request: request ids need to be unique, not secret.
pub fn generate() -> String {
    let uuid = uuid::Builder::from_random_bytes(random_bytes()).into_uuid();
    let mut id = String::with_capacity(40);
    id.push_str("req-");
    id.push_str(uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()));
    id
}

/// 16 bytes unique per call (per thread: a counter; across threads: keys).
pub fn random_bytes() -> [u8; 16] {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher, RandomState};
    thread_local! {
        static SOURCE: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
    }
    SOURCE.with(|(keys, counter)| {
        let count = counter.get();
        counter.set(count.wrapping_add(1));
        let mut bytes = [0u8; 16];
        for (half, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            let mut hasher = keys.build_hasher();
            hasher.write_u64(count);
            hasher.write_u8(half as u8);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
        bytes
    })
}

/// `req-` followed by a lower-case, dashed UUID.
pub fn is_openstack_request_id(value: &str) -> bool {
    value
        .strip_prefix("req-")
        .is_some_and(|rest| crate::ids::is_dashed_uuid(rest) && !rest.bytes().any(|b| b.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_well_formed_inbound_id() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, "req-11111111-2222-4333-8444-555555555555".parse().unwrap());
        assert_eq!(from_inbound(&headers), "req-11111111-2222-4333-8444-555555555555");
    }

    #[test]
    fn generated_ids_have_the_form_and_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| generate()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| is_openstack_request_id(id)), "{ids:?}");
        let other_thread = std::thread::spawn(generate).join().unwrap();
        assert!(!ids.contains(&other_thread));
    }

    #[test]
    fn replaces_ids_of_another_form() {
        for bad in [
            "req-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "11111111-2222-4333-8444-555555555555",
            "req-11111111-2222-4333-8444-55555555555Z",
            "req-11111111-2222-4333-8444-555555555555 ",
            "req-11111111-2222-4333-8444-55555555555A",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, bad.parse().unwrap());
            let id = from_inbound(&headers);
            assert_ne!(id, bad);
            assert!(is_openstack_request_id(&id), "{id}");
        }
    }
}
