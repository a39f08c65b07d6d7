//! Identifier forms: image UUIDs and OpenStack project ids.

/// `8-4-4-4-12` hexadecimal digits, the form of Glance image ids.
pub fn is_dashed_uuid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

/// 32 hexadecimal digits, the form of Keystone project ids.
pub fn is_hex32(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_uuids() {
        assert!(is_dashed_uuid("75da8211-b8d3-4329-a12b-953e7db4690a"));
        assert!(is_dashed_uuid("75DA8211-B8D3-4329-A12B-953E7DB4690A"));
        assert!(!is_dashed_uuid("75da8211b8d34329a12b953e7db4690a"));
        assert!(!is_dashed_uuid("75da8211-b8d3-4329-a12b-953e7db4690"));
        assert!(!is_dashed_uuid("75da8211-b8d3-4329-a12b-953e7db4690g"));
        assert!(!is_dashed_uuid("cirros"));
    }

    #[test]
    fn recognises_project_ids() {
        assert!(is_hex32("54915a05b0bb43dcbb218525c426b6a5"));
        assert!(!is_hex32("54915a05b0bb43dcbb218525c426b6a"));
        assert!(!is_hex32("54915a05-b0bb-43dc-bb21-8525c426b6a5"));
    }
}
