//! Who the client is behind a load balancer: the PROXY protocol header
//! (v1 text or v2 binary, HAProxy's `send-proxy`/`send-proxy-v2`) a trusted
//! proxy puts at the start of a connection, read before anything else -
//! TLS passed through included - and parsed with the `ppp` crate. Only a
//! connection from `client.trusted_proxies` is read so, and it must start
//! with one (as nginx's `proxy_protocol` and HAProxy's `accept-proxy`
//! require); from anyone else such a header is just bytes of a request,
//! and changes nothing.

use std::io;
use std::net::IpAddr;

use ppp::{HeaderResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 header's first bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 header is one line of at most this many bytes.
const V1_MAX: usize = 107;

/// Reads the PROXY header at the start of `stream` - exactly its bytes,
/// nothing of what follows - and returns the client it names; `peer` (the
/// proxy itself) when it names none (v2 `LOCAL`, v1 `UNKNOWN`: the
/// proxy's own health checks).
pub async fn read_header<S: AsyncRead + Unpin>(stream: &mut S, peer: IpAddr) -> io::Result<IpAddr> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("PROXY header: {why}"));
    // Both versions are at least this long (v1: "PROXY UNKNOWN\r\n").
    let mut header = vec![0; V2_SIGNATURE.len()];
    stream.read_exact(&mut header).await?;
    if header == V2_SIGNATURE {
        let mut rest = [0; 4];
        stream.read_exact(&mut rest).await?;
        header.extend_from_slice(&rest);
        let length = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let start = header.len();
        header.resize(start + length, 0);
        stream.read_exact(&mut header[start..]).await?;
    } else if header.starts_with(b"PROXY ") {
        while !header.ends_with(b"\r\n") {
            if header.len() >= V1_MAX {
                return Err(invalid("a v1 line longer than 107 bytes"));
            }
            header.push(stream.read_u8().await?);
        }
    } else {
        return Err(invalid("the connection does not start with one"));
    }
    client_of(&header, peer).ok_or_else(|| invalid("not a valid header"))
}

/// The client a complete header names (`peer` when it names none); `None`
/// when the bytes are not a valid header.
fn client_of(header: &[u8], peer: IpAddr) -> Option<IpAddr> {
    match HeaderResult::parse(header) {
        HeaderResult::V1(Ok(header)) => Some(match header.addresses {
            v1::Addresses::Tcp4(addresses) => IpAddr::V4(addresses.source_address),
            v1::Addresses::Tcp6(addresses) => IpAddr::V6(addresses.source_address),
            v1::Addresses::Unknown => peer,
        }),
        HeaderResult::V2(Ok(header)) => Some(match (header.command, header.addresses) {
            (v2::Command::Proxy, v2::Addresses::IPv4(addresses)) => IpAddr::V4(addresses.source_address),
            (v2::Command::Proxy, v2::Addresses::IPv6(addresses)) => IpAddr::V6(addresses.source_address),
            _ => peer,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::Builder;

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    async fn read(bytes: &[u8]) -> (io::Result<IpAddr>, Vec<u8>) {
        let mut stream = bytes;
        let client = read_header(&mut stream, PEER).await;
        (client, stream.to_vec())
    }

    #[tokio::test]
    async fn v1_headers_name_the_client_and_leave_the_request() {
        let (client, rest) = read(b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 443\r\nGET / HTTP/1.1\r\n").await;
        assert_eq!(client.unwrap(), "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        let (client, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n").await;
        assert_eq!(client.unwrap(), "2001:db8::7".parse::<IpAddr>().unwrap());
        let (client, rest) = read(b"PROXY UNKNOWN\r\n\x16\x03\x01").await;
        assert_eq!((client.unwrap(), rest.as_slice()), (PEER, &b"\x16\x03\x01"[..]));
    }

    #[tokio::test]
    async fn v2_headers_name_the_client_and_leave_the_request() {
        let header = Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (
                "198.51.100.4:40000".parse::<std::net::SocketAddr>().unwrap(),
                "10.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap(),
            ),
        )
        .write_tlv(v2::Type::NoOp, b"padding")
        .unwrap()
        .build()
        .unwrap();
        let mut bytes = header.clone();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (client, rest) = read(&bytes).await;
        assert_eq!(client.unwrap(), "198.51.100.4".parse::<IpAddr>().unwrap());
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        // LOCAL: the proxy's own connection (a health check).
        let local = Builder::with_addresses(
            v2::Version::Two | v2::Command::Local,
            v2::Protocol::Unspecified,
            v2::Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(read(&local).await.0.unwrap(), PEER);
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"PROXY TCP4 not-an-address 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 51000 443 and much more text than a header may hold, on and on, up to the limit\r\n",
            b"PROXY TCP4 192.0.2.7",
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x01",
        ] {
            assert!(read(bytes).await.0.is_err(), "{}", String::from_utf8_lossy(bytes));
        }
    }
}
