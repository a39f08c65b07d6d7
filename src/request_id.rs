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

pub fn generate() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
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
