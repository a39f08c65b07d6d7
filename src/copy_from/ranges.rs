//! The default policy: address ranges a `copy_from` URL may not reach.
//!
//! IPv6 forms that carry an IPv4 address are judged by that IPv4 address:
//! IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated
//! and refused even when the IPv4 address is public), the well-known NAT64
//! prefix (`64:ff9b::/96`, whose gateway forwards to the embedded address)
//! and 6to4 (`2002:AABB:CCDD::/48`, whose relay tunnels to the embedded
//! address). A public IPv4 address in a mapped, NAT64 or 6to4 form passes.
//! Forms whose embedding cannot be read safely are refused whole: the
//! local-use NAT64 prefix `64:ff9b:1::/48` (prefix length chosen per site) and
//! Teredo `2001::/32` (client address obfuscated). Any other IPv6 address
//! outside global unicast `2000::/3` is refused: nothing is allocated there.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why a range is blocked by default; each names itself in the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeKind {
    /// `0.0.0.0/8`: "this network", reaches the local host on many stacks.
    ThisNetwork,
    /// `::/128`.
    Unspecified,
    /// `127.0.0.0/8`, `::1/128`.
    Loopback,
    /// RFC 1918 ranges.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (often internal in clouds).
    SharedAddress,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `169.254.169.254` and AWS's `fd00:ec2::254`.
    CloudMetadata,
    /// `192.0.0.0/24`.
    IetfProtocol,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`.
    Documentation,
    /// `198.18.0.0/15`.
    Benchmarking,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `240.0.0.0/4`.
    Reserved,
    /// IPv6 outside global unicast `2000::/3` and not named otherwise.
    NotGlobalUnicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10`, deprecated but still routed by some stacks.
    SiteLocal,
    /// `100::/64`.
    DiscardOnly,
    /// `2001::/32`.
    Teredo,
    /// `64:ff9b:1::/48`.
    LocalNat64,
    /// `::/96` with a public IPv4 address in it.
    Ipv4Compatible,
}

impl RangeKind {
    /// The rest of "host X ...": how a refusal names the range.
    fn predicate(self) -> &'static str {
        match self {
            Self::ThisNetwork => "is in the \"this network\" range",
            Self::Unspecified => "is the unspecified address",
            Self::Loopback => "is in a loopback range",
            Self::Private => "is in a private range",
            Self::SharedAddress => "is in the carrier-grade NAT shared range",
            Self::LinkLocal => "is in a link-local range",
            Self::CloudMetadata => "is the cloud metadata address",
            Self::IetfProtocol => "is in the IETF protocol assignments range",
            Self::Documentation => "is in a documentation range",
            Self::Benchmarking => "is in the benchmarking range",
            Self::Multicast => "is in a multicast range",
            Self::Reserved => "is in a reserved range",
            Self::NotGlobalUnicast => "is outside the global unicast range",
            Self::Broadcast => "is the broadcast address",
            Self::UniqueLocal => "is in the unique-local range",
            Self::SiteLocal => "is in the deprecated site-local range",
            Self::DiscardOnly => "is in the discard-only range",
            Self::Teredo => "is in the Teredo tunnelling range",
            Self::LocalNat64 => "is in the local-use NAT64 range",
            Self::Ipv4Compatible => "is in the deprecated IPv4-compatible range",
        }
    }
}

/// A default-blocked range that an address fell into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The range as listed in the default policy.
    pub net: IpNet,
    pub kind: RangeKind,
}

impl fmt::Display for Range {
    /// "is in a private range (10.0.0.0/8)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind.predicate(), self.net)
    }
}

/// How an IPv6 address carries an IPv4 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// `::ffff:0:0/96`.
    Mapped,
    /// `::/96` (deprecated).
    Compatible,
    /// `64:ff9b::/96`.
    Nat64,
    /// `2002::/16`, IPv4 address in bits 16-47.
    SixToFour,
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mapped => "IPv4-mapped",
            Self::Compatible => "IPv4-compatible",
            Self::Nat64 => "NAT64",
            Self::SixToFour => "6to4",
        })
    }
}

/// An IPv4 address carried inside an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    pub how: Embedding,
    /// The address the IPv6 form stands for.
    pub ipv4: Ipv4Addr,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, kind: RangeKind) -> (Ipv4Net, RangeKind) {
    (Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len), kind)
}

const fn v6(segments: [u16; 8], len: u8, kind: RangeKind) -> (Ipv6Net, RangeKind) {
    let [a, b, c, d, e, f, g, h] = segments;
    (Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len), kind)
}

/// Most specific first: the first match names the range in the refusal.
const BLOCKED_V4: [(Ipv4Net, RangeKind); 16] = {
    use RangeKind::*;
    [
        v4(169, 254, 169, 254, 32, CloudMetadata),
        v4(255, 255, 255, 255, 32, Broadcast),
        v4(0, 0, 0, 0, 8, ThisNetwork),
        v4(10, 0, 0, 0, 8, Private),
        v4(100, 64, 0, 0, 10, SharedAddress),
        v4(127, 0, 0, 0, 8, Loopback),
        v4(169, 254, 0, 0, 16, LinkLocal),
        v4(172, 16, 0, 0, 12, Private),
        v4(192, 0, 0, 0, 24, IetfProtocol),
        v4(192, 0, 2, 0, 24, Documentation),
        v4(192, 168, 0, 0, 16, Private),
        v4(198, 18, 0, 0, 15, Benchmarking),
        v4(198, 51, 100, 0, 24, Documentation),
        v4(203, 0, 113, 0, 24, Documentation),
        v4(224, 0, 0, 0, 4, Multicast),
        v4(240, 0, 0, 0, 4, Reserved),
    ]
};

/// Most specific first; embedded IPv4 forms are handled apart.
const BLOCKED_V6: [(Ipv6Net, RangeKind); 11] = {
    use RangeKind::*;
    [
        v6([0, 0, 0, 0, 0, 0, 0, 0], 128, Unspecified),
        v6([0, 0, 0, 0, 0, 0, 0, 1], 128, Loopback),
        v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, CloudMetadata),
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, UniqueLocal),
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, LinkLocal),
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, SiteLocal),
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Multicast),
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Documentation),
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Teredo),
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, DiscardOnly),
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, LocalNat64),
    ]
};

const IPV4_COMPATIBLE: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 96);
const GLOBAL_UNICAST: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// The IPv4 address an IPv6 address carries, if it is one of the forms the
/// default policy reads (see the module doc).
pub fn embedded_ipv4(addr: &Ipv6Addr) -> Option<Embedded> {
    let s = addr.segments();
    let low = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    let how = match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Embedding::Mapped,
        // `::` and `::1` are named by the IPv6 table, not as 0.0.0.0/0.0.0.1.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => return None,
        [0, 0, 0, 0, 0, 0, _, _] => Embedding::Compatible,
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Embedding::Nat64,
        [0x2002, high, low16, ..] => {
            let [a, b] = high.to_be_bytes();
            let [c, d] = low16.to_be_bytes();
            return Some(Embedded {
                how: Embedding::SixToFour,
                ipv4: Ipv4Addr::new(a, b, c, d),
            });
        }
        _ => return None,
    };
    Some(Embedded { how, ipv4: low })
}

/// The default range that blocks `addr`, and the embedding through which it
/// was reached when the verdict is about an embedded IPv4 address.
pub fn blocked(addr: IpAddr) -> Option<(Range, Option<Embedded>)> {
    match addr {
        IpAddr::V4(addr) => blocked_v4(addr).map(|range| (range, None)),
        IpAddr::V6(addr) => blocked_v6(addr),
    }
}

fn blocked_v4(addr: Ipv4Addr) -> Option<Range> {
    BLOCKED_V4
        .iter()
        .find(|(net, _)| net.contains(&addr))
        .map(|&(net, kind)| Range {
            net: IpNet::V4(net),
            kind,
        })
}

fn blocked_v6(addr: Ipv6Addr) -> Option<(Range, Option<Embedded>)> {
    let range = |net: Ipv6Net, kind| Range {
        net: IpNet::V6(net),
        kind,
    };
    if let Some(&(net, kind)) = BLOCKED_V6.iter().find(|(net, _)| net.contains(&addr)) {
        return Some((range(net, kind), None));
    }
    if let Some(embedded) = embedded_ipv4(&addr) {
        if let Some(inner) = blocked_v4(embedded.ipv4) {
            return Some((inner, Some(embedded)));
        }
        if embedded.how == Embedding::Compatible {
            // Deprecated since RFC 4291 and never routed: nothing legitimate
            // lives there, whatever IPv4 address it spells.
            return Some((range(IPV4_COMPATIBLE, RangeKind::Ipv4Compatible), None));
        }
        return None;
    }
    if !GLOBAL_UNICAST.contains(&addr) {
        return Some((range(GLOBAL_UNICAST, RangeKind::NotGlobalUnicast), None));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(addr: &str) -> Option<RangeKind> {
        let addr: IpAddr = addr.parse().expect("test address");
        blocked(addr).map(|(range, _)| range.kind)
    }

    #[test]
    fn every_default_ipv4_range_is_blocked_at_both_ends() {
        for (net, kind) in BLOCKED_V4 {
            // The last host, not the broadcast: 255.255.255.255 is named apart.
            let last = net.hosts().next_back().expect("non-empty");
            for addr in [net.network(), last] {
                let (range, via) = blocked(IpAddr::V4(addr)).expect("blocked");
                assert_eq!((range.kind, via), (kind, None), "{addr}");
            }
        }
    }

    #[test]
    fn every_default_ipv6_range_is_blocked_at_both_ends() {
        for (net, want) in BLOCKED_V6 {
            for addr in [net.network(), net.broadcast()] {
                assert_eq!(kind(&addr.to_string()), Some(want), "{addr}");
            }
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860::8888",
        ] {
            assert_eq!(kind(addr), None, "{addr}");
        }
    }

    #[test]
    fn metadata_addresses_are_named() {
        assert_eq!(kind("169.254.169.254"), Some(RangeKind::CloudMetadata));
        assert_eq!(kind("169.254.169.253"), Some(RangeKind::LinkLocal));
        assert_eq!(kind("fd00:ec2::254"), Some(RangeKind::CloudMetadata));
        assert_eq!(kind("fd00:ec2::253"), Some(RangeKind::UniqueLocal));
    }

    #[test]
    fn embedded_ipv4_is_judged() {
        let cases = [
            ("::ffff:127.0.0.1", Embedding::Mapped, RangeKind::Loopback),
            ("::ffff:a9fe:a9fe", Embedding::Mapped, RangeKind::CloudMetadata),
            ("::10.0.0.1", Embedding::Compatible, RangeKind::Private),
            ("64:ff9b::192.168.0.1", Embedding::Nat64, RangeKind::Private),
            ("2002:7f00:1::", Embedding::SixToFour, RangeKind::Loopback),
            ("2002:a9fe:a9fe:1::5", Embedding::SixToFour, RangeKind::CloudMetadata),
        ];
        for (addr, how, expected) in cases {
            let parsed: IpAddr = addr.parse().expect("test address");
            let (range, via) = blocked(parsed).expect("blocked");
            assert_eq!(range.kind, expected, "{addr}");
            assert_eq!(via.map(|e| e.how), Some(how), "{addr}");
        }
    }

    #[test]
    fn embedded_public_ipv4_passes_except_compatible() {
        assert_eq!(kind("::ffff:8.8.8.8"), None);
        assert_eq!(kind("64:ff9b::8.8.8.8"), None);
        assert_eq!(kind("2002:808:808::1"), None);
        assert_eq!(kind("::8.8.8.8"), Some(RangeKind::Ipv4Compatible));
    }

    #[test]
    fn ipv6_outside_global_unicast_is_refused() {
        assert_eq!(kind("4000::1"), Some(RangeKind::NotGlobalUnicast));
        assert_eq!(kind("::1:0:0:1"), Some(RangeKind::NotGlobalUnicast));
        assert_eq!(kind("64:ff9b:2::1"), Some(RangeKind::NotGlobalUnicast));
        assert_eq!(kind("2001:0:4136:e378::1"), Some(RangeKind::Teredo));
        assert_eq!(kind("64:ff9b:1::8.8.8.8"), Some(RangeKind::LocalNat64));
    }

    #[test]
    fn range_names_itself() {
        let (range, _) = blocked("10.0.0.5".parse().expect("test address")).expect("blocked");
        assert_eq!(range.to_string(), "is in a private range (10.0.0.0/8)");
    }
}
