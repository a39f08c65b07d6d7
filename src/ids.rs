//! Identifier forms: image UUIDs, OpenStack project ids, hexadecimal digests.

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

/// Lower-case hexadecimal digits of `bytes` (digests, fingerprints).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| [DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 0xf)]])
        .map(char::from)
        .collect()
}

/// The bytes of hexadecimal digits (either case), `None` for anything else.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |byte: u8| char::from(byte).to_digit(16).and_then(|value| u8::try_from(value).ok());
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
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

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0x00, 0x9f, 0xff]), "009fff");
        assert_eq!(from_hex("009FfF"), Some(vec![0x00, 0x9f, 0xff]));
        assert_eq!(from_hex(""), Some(vec![]));
        for bad in ["0", "0g", "+1", "é0"] {
            assert_eq!(from_hex(bad), None, "{bad}");
        }
    }
}
