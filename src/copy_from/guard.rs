//! The SSRF guard: decides whether the cloud may be told to download a
//! `copy_from` URL.
//!
//! Checks, in order, stopping at the first refusal:
//! 1. form, before any DNS: scheme http or https, no user info, a host, a
//!    port other than 0 and allowed by the namespace's port lists, a host
//!    not on its deny list, and no `localhost` name unless allowed;
//! 2. resolution: an IP literal is taken as is, a name is resolved through
//!    the injected [`Resolve`]; failure or no address refuses the URL;
//! 3. every resolved address (one bad address refuses the URL, which defeats
//!    a name that answers with one public and one internal address):
//!    `deny_cidrs` refuse; an `allow_hosts` host or an address inside
//!    `allow_cidrs` passes; otherwise the default ranges of
//!    [`super::ranges`] refuse.
//!
//! The URL is judged as the `url` crate (WHATWG) parsed it, so decimal,
//! octal, hex and short IPv4 spellings arrive here as dotted addresses; the
//! caller must forward that normalised form (`Url::as_str`), never the raw
//! client text, so that the cloud fetches what was checked.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

use super::ranges::{self, Embedded, Embedding, Range};
use crate::config::GuardConfig;

/// A validated [`GuardConfig`], ready to judge URLs.
#[derive(Debug, Clone)]
pub struct Guard {
    allow_hosts: Vec<HostKey>,
    deny_hosts: Vec<HostPattern>,
    allow_cidrs: Vec<IpNet>,
    deny_cidrs: Vec<IpNet>,
    allow_ports: Vec<u16>,
    deny_ports: Vec<u16>,
}

/// A host in comparable form: lower-case name without trailing dot, or an
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKey {
    Name(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone)]
enum HostPattern {
    Exact(HostKey),
    /// `*.suffix`: any name ending in `.suffix`.
    Subdomains(String),
}

impl HostPattern {
    fn matches(&self, host: &HostKey) -> bool {
        match (self, host) {
            (Self::Exact(key), host) => key == host,
            (Self::Subdomains(suffix), HostKey::Name(name)) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            (Self::Subdomains(_), HostKey::Ip(_)) => false,
        }
    }
}

impl Guard {
    /// Validates the configuration: every host entry must be a host name or
    /// an IP literal (`*.` only in `deny_hosts`), and port 0 cannot be
    /// allowed.
    pub fn new(config: &GuardConfig) -> Result<Self, String> {
        let allow_hosts = config
            .allow_hosts
            .iter()
            .map(|entry| host_key(entry).map_err(|error| format!("allow_hosts: {error}")))
            .collect::<Result<_, _>>()?;
        let deny_hosts = config
            .deny_hosts
            .iter()
            .map(|entry| host_pattern(entry).map_err(|error| format!("deny_hosts: {error}")))
            .collect::<Result<_, _>>()?;
        if config.allow_ports.contains(&0) {
            return Err("allow_ports: port 0 can never be allowed".into());
        }
        Ok(Self {
            allow_hosts,
            deny_hosts,
            allow_cidrs: config.allow_cidrs.clone(),
            deny_cidrs: config.deny_cidrs.clone(),
            allow_ports: config.allow_ports.clone(),
            deny_ports: config.deny_ports.clone(),
        })
    }

    /// Checks the URL's form, then resolves the host and checks every
    /// address. Returns the vetted socket addresses, in resolver order
    /// without duplicates, IPv4-mapped ones as plain IPv4: a caller that
    /// fetches the URL itself must connect to exactly these, or DNS could
    /// answer differently between check and use.
    pub async fn check(&self, url: &Url, resolver: &impl Resolve) -> Result<Vec<SocketAddr>, Rejection> {
        let target = self.check_form(url)?;
        let addresses = match &target.key {
            HostKey::Ip(ip) => vec![*ip],
            HostKey::Name(_) => resolve(resolver, &target).await?,
        };
        let host_allowed = self.allow_hosts.contains(&target.key);
        let mut vetted = Vec::with_capacity(addresses.len());
        for ip in addresses {
            self.check_address(&target.display, ip, host_allowed)?;
            let socket = SocketAddr::new(ip.to_canonical(), target.port);
            if !vetted.contains(&socket) {
                vetted.push(socket);
            }
        }
        Ok(vetted)
    }

    fn check_form(&self, url: &Url) -> Result<Target, Rejection> {
        let scheme = url.scheme();
        if !matches!(scheme, "http" | "https") {
            return Err(Rejection::Scheme(shorten(scheme)));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Rejection::Credentials);
        }
        let (Some(host), Some(display)) = (url.host(), url.host_str()) else {
            return Err(Rejection::MissingHost);
        };
        // http and https always have a known default; 0 is refused anyway.
        let port = url.port_or_known_default().unwrap_or(0);
        if port == 0
            || self.deny_ports.contains(&port)
            || !(self.allow_ports.is_empty() || self.allow_ports.contains(&port))
        {
            return Err(Rejection::Port(port));
        }
        let key = match host {
            Host::Domain(name) => HostKey::Name(normalise_name(name)),
            Host::Ipv4(ip) => HostKey::Ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => HostKey::Ip(IpAddr::V6(ip)),
        };
        if self.deny_hosts.iter().any(|pattern| pattern.matches(&key)) {
            return Err(Rejection::DeniedHost(display.to_owned()));
        }
        // RFC 6761: these names are the local machine whatever DNS says, so
        // they are refused without asking it.
        if let HostKey::Name(name) = &key {
            let local = name == "localhost" || name.ends_with(".localhost");
            if local && !self.allow_hosts.contains(&key) {
                return Err(Rejection::Localhost(display.to_owned()));
            }
        }
        Ok(Target {
            display: display.to_owned(),
            key,
            port,
        })
    }

    fn check_address(&self, host: &str, ip: IpAddr, host_allowed: bool) -> Result<(), Rejection> {
        let embedded = match ip {
            IpAddr::V6(v6) => ranges::embedded_ipv4(&v6),
            IpAddr::V4(_) => None,
        };
        let mut views = std::iter::once(ip).chain(embedded.map(|e| IpAddr::V4(e.ipv4)));
        if let Some(net) = views.find_map(|view| self.deny_cidrs.iter().find(|net| net.contains(&view)).copied()) {
            return Err(Rejection::DeniedAddress {
                host: host.to_owned(),
                addr: ip,
                net,
            });
        }
        // Allow lists match the address as the socket will see it; an
        // IPv4-mapped address is that IPv4 address.
        let canonical = ip.to_canonical();
        if host_allowed || self.allow_cidrs.iter().any(|net| net.contains(&canonical)) {
            return Ok(());
        }
        match ranges::blocked(ip) {
            Some((range, via)) => Err(Rejection::BlockedAddress {
                host: host.to_owned(),
                addr: ip,
                range,
                via,
            }),
            None => Ok(()),
        }
    }
}

/// The URL's host, as checked.
struct Target {
    /// As the URL spells it (`[::1]` for IPv6), for messages and DNS.
    display: String,
    key: HostKey,
    port: u16,
}

async fn resolve(resolver: &impl Resolve, target: &Target) -> Result<Vec<IpAddr>, Rejection> {
    let host = &target.display;
    match resolver.resolve(host, target.port).await {
        Ok(addresses) if addresses.is_empty() => Err(Rejection::NoAddresses(host.clone())),
        Ok(addresses) => Ok(addresses),
        Err(error) => {
            // The client gets a plain sentence; the operator gets the cause.
            tracing::debug!(host = %host, %error, "copy_from host does not resolve");
            if error.kind() == io::ErrorKind::TimedOut {
                Err(Rejection::ResolveTimeout(host.clone()))
            } else {
                Err(Rejection::Unresolvable(host.clone()))
            }
        }
    }
}

/// Parses a `copy_from` string, refusing user info that WHATWG parsing would
/// silently drop (`http://@host/`, `http://:@host/` parse to `http://host/`,
/// so [`Guard::check`] can no longer see them). Other rules are
/// [`Guard::check`]'s.
pub fn parse_url(raw: &str) -> Result<Url, Rejection> {
    let url = Url::parse(raw).map_err(Rejection::InvalidUrl)?;
    if matches!(url.scheme(), "http" | "https") && raw_authority_has_at(raw) {
        return Err(Rejection::Credentials);
    }
    Ok(url)
}

/// Whether the authority of a raw http(s) URL holds an `@`, reading it the
/// way WHATWG does for special schemes: tabs and newlines removed, then
/// after `scheme:` any run of `/` or `\`, up to the first `/`, `\`, `?` or
/// `#`.
fn raw_authority_has_at(raw: &str) -> bool {
    let cleaned: String = raw
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let Some((_, rest)) = cleaned.split_once(':') else {
        return false;
    };
    let rest = rest.trim_start_matches(['/', '\\']);
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    rest[..end].contains('@')
}

/// Host lookup, injectable so tests need no DNS.
pub trait Resolve {
    /// The addresses `host` (a name, or an IP literal, IPv6 possibly in
    /// brackets) resolves to. A timeout is reported as
    /// [`io::ErrorKind::TimedOut`].
    fn resolve(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Vec<IpAddr>>> + Send;
}

/// The system resolver (`getaddrinfo` via `tokio::net::lookup_host`), with a
/// timeout. IP literals are answered without DNS.
#[derive(Debug, Clone, Copy)]
pub struct SystemResolver {
    timeout: Duration,
}

impl SystemResolver {
    /// Used by [`SystemResolver::default`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A resolver that gives up on a lookup after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl Default for SystemResolver {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TIMEOUT)
    }
}

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Vec<IpAddr>>> + Send {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let timeout = self.timeout;
        async move {
            let lookup = tokio::net::lookup_host((host.as_str(), port));
            match tokio::time::timeout(timeout, lookup).await {
                Ok(found) => Ok(found?.map(|socket| socket.ip()).collect()),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("resolving {host} took longer than {timeout:?}"),
                )),
            }
        }
    }
}

/// Why a URL was refused. [`fmt::Display`] gives a sentence for the client's
/// 400 answer; none of them echoes user info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a URL at all (only from [`parse_url`]).
    InvalidUrl(url::ParseError),
    /// Anything but http and https (shortened to 32 characters).
    Scheme(String),
    /// User, password or a bare `@` before the host.
    Credentials,
    /// No host to fetch from (the url crate refuses such http URLs already).
    MissingHost,
    /// Port 0, or a port the namespace does not allow.
    Port(u16),
    /// On the namespace's `deny_hosts`.
    DeniedHost(String),
    /// `localhost` or `*.localhost`, not in `allow_hosts`.
    Localhost(String),
    /// The resolver failed for this name.
    Unresolvable(String),
    /// The resolver gave up on this name; the client may try again.
    ResolveTimeout(String),
    /// The name resolved to an empty list.
    NoAddresses(String),
    /// An address inside the namespace's `deny_cidrs`.
    DeniedAddress { host: String, addr: IpAddr, net: IpNet },
    /// An address in a default-blocked range, directly or through the IPv4
    /// address it embeds (`via`).
    BlockedAddress {
        host: String,
        addr: IpAddr,
        range: Range,
        via: Option<Embedded>,
    },
}

impl Rejection {
    /// The URL itself is wrong (the client's syntax), rather than where it
    /// points (the guard's policy).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::InvalidUrl(_) | Self::Scheme(_) | Self::Credentials | Self::MissingHost
        )
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("copy_from is refused: ")?;
        match self {
            Self::InvalidUrl(error) => write!(f, "it is not a valid URL ({error})"),
            Self::Scheme(scheme) => {
                write!(f, "scheme \"{scheme}\" is not allowed; use http or https")
            }
            Self::Credentials => f.write_str("credentials in the URL are not allowed"),
            Self::MissingHost => f.write_str("the URL has no host"),
            Self::Port(port) => write!(f, "port {port} is not allowed"),
            Self::DeniedHost(host) => write!(f, "host {host} is not allowed in this namespace"),
            Self::Localhost(host) => write!(f, "host {host} is a loopback name"),
            Self::Unresolvable(host) => write!(f, "host name {host} does not resolve"),
            Self::ResolveTimeout(host) => {
                write!(f, "resolving host name {host} timed out; try again later")
            }
            Self::NoAddresses(host) => write!(f, "host name {host} resolves to no address"),
            Self::DeniedAddress { host, addr, net } => {
                subject(f, host, *addr)?;
                write!(f, "is in a range this namespace denies ({net})")
            }
            Self::BlockedAddress { host, addr, range, via } => {
                subject(f, host, *addr)?;
                if let Some(Embedded { how, ipv4 }) = via {
                    let article = if *how == Embedding::Nat64 { "a" } else { "an" };
                    write!(f, "is {article} {how} form of {ipv4}, which ")?;
                }
                write!(f, "{range}")
            }
        }
    }
}

/// "host 10.0.0.5 " for a literal, "host a.example resolves to 10.0.0.5,
/// which " for a name.
fn subject(f: &mut fmt::Formatter<'_>, host: &str, addr: IpAddr) -> fmt::Result {
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip == addr);
    if literal {
        write!(f, "host {host} ")
    } else {
        write!(f, "host {host} resolves to {addr}, which ")
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 32;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

/// Lower-case (the url crate already did it for URL hosts) and without the
/// trailing dot of a fully qualified name.
fn normalise_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// A configured host: an IP literal (bare or bracketed IPv6 too) or a host
/// name, normalised as the url crate normalises URL hosts (IDNA, IPv4
/// spellings).
fn host_key(entry: &str) -> Result<HostKey, String> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(HostKey::Ip(ip));
    }
    match Host::parse(entry) {
        Ok(Host::Ipv4(ip)) => Ok(HostKey::Ip(IpAddr::V4(ip))),
        Ok(Host::Ipv6(ip)) => Ok(HostKey::Ip(IpAddr::V6(ip))),
        Ok(Host::Domain(name)) => {
            let name = normalise_name(&name);
            if is_host_name(&name) {
                Ok(HostKey::Name(name))
            } else {
                Err(format!("{entry:?} is not a host name"))
            }
        }
        Err(error) => Err(format!("{entry:?} is not a host name ({error})")),
    }
}

fn host_pattern(entry: &str) -> Result<HostPattern, String> {
    match entry.strip_prefix("*.") {
        Some(suffix) => match host_key(suffix)? {
            HostKey::Name(name) => Ok(HostPattern::Subdomains(name)),
            HostKey::Ip(_) => Err(format!("{entry:?}: a wildcard needs a host name")),
        },
        None => host_key(entry).map(HostPattern::Exact),
    }
}

/// Letters, digits, `-` and `_` in dot-separated labels of 1 to 63
/// characters, 253 at most in all.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::copy_from::ranges::RangeKind;

    /// Names the tests resolve; anything else does not exist.
    struct FakeDns(HashMap<&'static str, Vec<IpAddr>>);

    impl FakeDns {
        fn new() -> Self {
            let table: &[(&str, &[&str])] = &[
                ("example.com", &["93.184.215.14"]),
                ("public.example", &["93.184.215.14", "2606:2800:21f:cb07::1"]),
                (
                    "twice.example",
                    &["93.184.215.14", "93.184.215.14", "::ffff:93.184.215.14"],
                ),
                ("169.254.169.254.nip.io", &["169.254.169.254"]),
                ("internal.example.com", &["10.1.2.3"]),
                ("rebind.example", &["93.184.215.14", "192.168.0.10"]),
                ("mapped.example", &["::ffff:10.0.0.1"]),
                ("ula.example", &["fd12:3456::1"]),
                ("loop6.example", &["2606:2800:21f:cb07::1", "::1"]),
                ("localhost", &["127.0.0.1", "::1"]),
                ("empty.example", &[]),
            ];
            let map = table
                .iter()
                .map(|(name, addresses)| {
                    let parsed = addresses.iter().map(|a| a.parse().expect("test address")).collect();
                    (*name, parsed)
                })
                .collect();
            Self(map)
        }
    }

    impl Resolve for FakeDns {
        fn resolve(&self, host: &str, _port: u16) -> impl Future<Output = io::Result<Vec<IpAddr>>> + Send {
            // Like DNS, a fully qualified name is the same name.
            let host = host.strip_suffix('.').unwrap_or(host);
            let answer = match (host, self.0.get(host)) {
                ("slow.example", _) => Err(io::Error::from(io::ErrorKind::TimedOut)),
                (_, Some(addresses)) => Ok(addresses.clone()),
                (_, None) => Err(io::Error::new(io::ErrorKind::NotFound, "no such name")),
            };
            std::future::ready(answer)
        }
    }

    fn guard(toml_text: &str) -> Guard {
        let config: GuardConfig = toml::from_str(toml_text).expect("test config");
        Guard::new(&config).expect("valid test config")
    }

    async fn judge(guard: &Guard, raw: &str) -> Result<Vec<SocketAddr>, Rejection> {
        let url = parse_url(raw)?;
        guard.check(&url, &FakeDns::new()).await
    }

    /// The shape of a refusal, for tables.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        Invalid,
        Scheme,
        Credentials,
        Port(u16),
        DeniedHost,
        Localhost,
        Unresolvable,
        Timeout,
        NoAddresses,
        Denied,
        Blocked(RangeKind),
        Via(RangeKind, Embedding),
    }

    fn shape(rejection: &Rejection) -> Want {
        match rejection {
            Rejection::InvalidUrl(_) => Want::Invalid,
            Rejection::Scheme(_) => Want::Scheme,
            Rejection::Credentials => Want::Credentials,
            Rejection::MissingHost => panic!("http URLs always have a host"),
            Rejection::Port(port) => Want::Port(*port),
            Rejection::DeniedHost(_) => Want::DeniedHost,
            Rejection::Localhost(_) => Want::Localhost,
            Rejection::Unresolvable(_) => Want::Unresolvable,
            Rejection::ResolveTimeout(_) => Want::Timeout,
            Rejection::NoAddresses(_) => Want::NoAddresses,
            Rejection::DeniedAddress { .. } => Want::Denied,
            Rejection::BlockedAddress { range, via: None, .. } => Want::Blocked(range.kind),
            Rejection::BlockedAddress {
                range,
                via: Some(embedded),
                ..
            } => Want::Via(range.kind, embedded.how),
        }
    }

    async fn assert_refused(guard: &Guard, table: &[(&str, Want)]) {
        for (raw, want) in table {
            match judge(guard, raw).await {
                Ok(addresses) => panic!("{raw} was let through to {addresses:?}"),
                Err(rejection) => assert_eq!(shape(&rejection), *want, "{raw}: {rejection}"),
            }
        }
    }

    #[tokio::test]
    async fn hostile_urls_are_refused_by_default() {
        use Embedding::*;
        use RangeKind::*;
        let table = [
            // Loopback in every spelling the url crate folds to 127.0.0.1.
            ("http://127.0.0.1/", Want::Blocked(Loopback)),
            ("http://127.0.0.1:8080/images/x.img", Want::Blocked(Loopback)),
            ("http://2130706433/", Want::Blocked(Loopback)),
            ("http://0177.0.0.1/", Want::Blocked(Loopback)),
            ("http://0x7f.0.0.1/", Want::Blocked(Loopback)),
            ("http://0x7f.1/", Want::Blocked(Loopback)),
            ("http://0x7f000001/", Want::Blocked(Loopback)),
            ("http://017700000001/", Want::Blocked(Loopback)),
            ("http://127.1/", Want::Blocked(Loopback)),
            ("http://127.0.1/", Want::Blocked(Loopback)),
            ("http://127.0.0.1./", Want::Blocked(Loopback)),
            ("http://127.0.0.%31/", Want::Blocked(Loopback)),
            ("http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/", Want::Blocked(Loopback)),
            ("http://127.255.255.254/", Want::Blocked(Loopback)),
            ("http://[::1]/", Want::Blocked(Loopback)),
            ("http://[0:0:0:0:0:0:0:1]/", Want::Blocked(Loopback)),
            ("http://[::ffff:127.0.0.1]/", Want::Via(Loopback, Mapped)),
            ("http://[::ffff:7f00:1]/", Want::Via(Loopback, Mapped)),
            ("http://[::127.0.0.1]/", Want::Via(Loopback, Compatible)),
            ("http://[64:ff9b::127.0.0.1]/", Want::Via(Loopback, Nat64)),
            ("http://[2002:7f00:1::]/", Want::Via(Loopback, SixToFour)),
            // Unspecified.
            ("http://0.0.0.0/", Want::Blocked(ThisNetwork)),
            ("http://0/", Want::Blocked(ThisNetwork)),
            ("http://[::]/", Want::Blocked(Unspecified)),
            // Private and shared.
            ("http://10.0.0.5/", Want::Blocked(Private)),
            ("http://172.16.0.1/", Want::Blocked(Private)),
            ("https://172.31.255.255/", Want::Blocked(Private)),
            ("http://192.168.1.1:8080/", Want::Blocked(Private)),
            ("http://012.0.0.1/", Want::Blocked(Private)),
            ("http://100.64.0.1/", Want::Blocked(SharedAddress)),
            ("http://[64:ff9b::10.0.0.1]/", Want::Via(Private, Nat64)),
            // Link-local and metadata.
            ("http://169.254.169.254/latest/meta-data/", Want::Blocked(CloudMetadata)),
            ("http://0xa9fea9fe/", Want::Blocked(CloudMetadata)),
            ("http://2852039166/", Want::Blocked(CloudMetadata)),
            ("http://[::ffff:a9fe:a9fe]/", Want::Via(CloudMetadata, Mapped)),
            ("http://169.254.169.254.nip.io/", Want::Blocked(CloudMetadata)),
            ("http://169.254.1.1/", Want::Blocked(LinkLocal)),
            ("http://[fe80::1]/", Want::Blocked(LinkLocal)),
            ("http://[fd00:ec2::254]/", Want::Blocked(CloudMetadata)),
            // Zone ids are refused by the url crate: fails safe.
            ("http://[fe80::1%25eth0]/", Want::Invalid),
            // Unique-local, site-local, multicast, reserved, documentation.
            ("http://[fc00::1]/", Want::Blocked(UniqueLocal)),
            ("http://[fd12:3456::1]/", Want::Blocked(UniqueLocal)),
            ("http://[fec0::1]/", Want::Blocked(SiteLocal)),
            ("http://224.0.0.1/", Want::Blocked(Multicast)),
            ("http://239.255.255.250:1900/", Want::Blocked(Multicast)),
            ("http://[ff02::1]/", Want::Blocked(Multicast)),
            ("http://240.0.0.1/", Want::Blocked(Reserved)),
            ("http://255.255.255.255/", Want::Blocked(Broadcast)),
            ("http://192.0.0.170/", Want::Blocked(IetfProtocol)),
            ("http://192.0.2.1/", Want::Blocked(Documentation)),
            ("http://198.18.0.1/", Want::Blocked(Benchmarking)),
            ("http://[2001:db8::1]/", Want::Blocked(Documentation)),
            ("http://[2001:0:4136:e378::1]/", Want::Blocked(Teredo)),
            ("http://[::8.8.8.8]/", Want::Blocked(Ipv4Compatible)),
            ("http://[4000::1]/", Want::Blocked(NotGlobalUnicast)),
            // Credentials, even empty ones.
            ("http://user:pass@example.com/", Want::Credentials),
            ("http://user@example.com/", Want::Credentials),
            ("http://:pass@example.com/", Want::Credentials),
            ("http://:@example.com/", Want::Credentials),
            ("http://@example.com/", Want::Credentials),
            ("https:\\\\@example.com/", Want::Credentials),
            ("http://user%40x:p@example.com/", Want::Credentials),
            // Other schemes.
            ("file:///etc/passwd", Want::Scheme),
            ("ftp://example.com/image.img", Want::Scheme),
            ("gopher://127.0.0.1:25/_HELO", Want::Scheme),
            ("dict://127.0.0.1:11211/stats", Want::Scheme),
            ("data:text/plain,hello", Want::Scheme),
            ("javascript:alert(1)", Want::Scheme),
            ("ws://example.com/", Want::Scheme),
            // Local names, before any DNS.
            ("http://localhost/", Want::Localhost),
            ("http://LOCALHOST./", Want::Localhost),
            ("http://LocalHost:8080/", Want::Localhost),
            ("http://x.localhost/", Want::Localhost),
            // Names that resolve badly.
            ("http://internal.example.com/", Want::Blocked(Private)),
            ("http://rebind.example/", Want::Blocked(Private)),
            ("http://mapped.example/", Want::Via(Private, Mapped)),
            ("http://ula.example/", Want::Blocked(UniqueLocal)),
            ("http://loop6.example/", Want::Blocked(Loopback)),
            ("http://nowhere.example/", Want::Unresolvable),
            ("http://empty.example/", Want::NoAddresses),
            ("http://slow.example/", Want::Timeout),
            // Ports.
            ("http://example.com:0/", Want::Port(0)),
            // Not URLs.
            ("http://[::1/", Want::Invalid),
            ("http://256.0.0.1/", Want::Invalid),
            ("http://1.2.3.4.5/", Want::Invalid),
            ("http://example.com:65536/", Want::Invalid),
            ("//example.com/", Want::Invalid),
            ("", Want::Invalid),
        ];
        assert!(table.len() >= 40);
        assert_refused(&guard(""), &table).await;
    }

    #[tokio::test]
    async fn namespace_lists_refuse() {
        let guard = guard(
            r#"
            allow_hosts = ["internal.example.com", "both.example"]
            deny_hosts = ["*.corp.example", "Blocked.Example.", "both.example", "203.0.113.9"]
            allow_cidrs = ["127.0.0.0/8", "10.0.0.0/8"]
            deny_cidrs = ["127.0.0.2/32", "93.184.215.0/24", "10.1.0.0/16"]
            deny_ports = [22, 25]
            "#,
        );
        let table = [
            ("http://example.com:25/", Want::Port(25)),
            ("http://127.0.0.1:22/", Want::Port(22)),
            ("http://a.corp.example/", Want::DeniedHost),
            ("http://A.B.Corp.Example./x", Want::DeniedHost),
            ("http://blocked.example/", Want::DeniedHost),
            ("http://BLOCKED.example./", Want::DeniedHost),
            // Deny beats allow, for hosts and for addresses.
            ("http://both.example/", Want::DeniedHost),
            ("http://203.0.113.9/", Want::DeniedHost),
            ("http://127.0.0.2/", Want::Denied),
            ("http://[::ffff:127.0.0.2]/", Want::Denied),
            ("http://internal.example.com/", Want::Denied),
            ("http://example.com/", Want::Denied),
            ("http://rebind.example/", Want::Denied),
            ("http://[64:ff9b::93.184.215.14]/", Want::Denied),
            // allow_cidrs does not reach past the ranges it names.
            ("http://192.168.0.1/", Want::Blocked(RangeKind::Private)),
            ("http://[::1]/", Want::Blocked(RangeKind::Loopback)),
            ("http://localhost/", Want::Localhost),
        ];
        assert_refused(&guard, &table).await;
        // The wildcard needs a subdomain: the apex is another name.
        assert!(
            judge(&guard, "http://corp.example/")
                .await
                .is_err_and(|r| r == Rejection::Unresolvable("corp.example".into()))
        );
    }

    #[tokio::test]
    async fn allow_ports_restricts_to_the_list() {
        let guard = guard("allow_ports = [443, 8080]");
        let refused = [
            ("http://example.com/", Want::Port(80)),
            ("http://example.com:8081/", Want::Port(8081)),
            ("https://example.com:80/", Want::Port(80)),
        ];
        assert_refused(&guard, &refused).await;
        for raw in ["https://example.com/", "http://example.com:8080/"] {
            assert!(judge(&guard, raw).await.is_ok(), "{raw}");
        }
    }

    fn sockets(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| s.parse().expect("test socket")).collect()
    }

    #[tokio::test]
    async fn public_targets_pass_with_their_port() {
        let guard = guard("");
        let cases: &[(&str, &[&str])] = &[
            ("http://93.184.215.14/x.img", &["93.184.215.14:80"]),
            ("https://93.184.215.14/", &["93.184.215.14:443"]),
            (
                "https://[2606:2800:21f:cb07::1]:8443/",
                &["[2606:2800:21f:cb07::1]:8443"],
            ),
            ("http://[::ffff:93.184.215.14]/", &["93.184.215.14:80"]),
            ("http://[64:ff9b::93.184.215.14]/", &["[64:ff9b::5db8:d70e]:80"]),
            ("http://[2002:5db8:d70e::1]/", &["[2002:5db8:d70e::1]:80"]),
            (
                "http://public.example:8080/images/cirros.img?x=1#top",
                &["93.184.215.14:8080", "[2606:2800:21f:cb07::1]:8080"],
            ),
            (
                "https://PUBLIC.Example./",
                &["93.184.215.14:443", "[2606:2800:21f:cb07::1]:443"],
            ),
            ("http://twice.example/", &["93.184.215.14:80"]),
        ];
        for (raw, want) in cases {
            assert_eq!(judge(&guard, raw).await, Ok(sockets(want)), "{raw}");
        }
    }

    #[tokio::test]
    async fn allow_lists_open_blocked_addresses() {
        let guard = guard(
            r#"
            allow_hosts = ["internal.example.com", "LOCALHOST", "10.0.0.5", "[fd12:3456::1]"]
            allow_cidrs = ["127.0.0.1/32"]
            "#,
        );
        let cases: &[(&str, &[&str])] = &[
            ("http://127.0.0.1:8080/image", &["127.0.0.1:8080"]),
            ("http://[::ffff:127.0.0.1]/", &["127.0.0.1:80"]),
            ("http://internal.example.com/", &["10.1.2.3:80"]),
            ("http://internal.example.com./", &["10.1.2.3:80"]),
            ("http://localhost:9292/", &["127.0.0.1:9292", "[::1]:9292"]),
            ("http://10.0.0.5/", &["10.0.0.5:80"]),
            ("http://012.0.0.5/", &["10.0.0.5:80"]),
            ("http://[fd12:3456::1]/", &["[fd12:3456::1]:80"]),
        ];
        for (raw, want) in cases {
            assert_eq!(judge(&guard, raw).await, Ok(sockets(want)), "{raw}");
        }
        let still_refused = [
            ("http://127.0.0.2/", Want::Blocked(RangeKind::Loopback)),
            ("http://[::1]/", Want::Blocked(RangeKind::Loopback)),
            ("http://10.0.0.6/", Want::Blocked(RangeKind::Private)),
            ("http://x.localhost/", Want::Localhost),
            ("http://ula.example/", Want::Blocked(RangeKind::UniqueLocal)),
            ("http://user@127.0.0.1/", Want::Credentials),
        ];
        assert_refused(&guard, &still_refused).await;
    }

    #[tokio::test]
    async fn ip_literals_need_no_resolver() {
        /// Fails every lookup: a literal that reached it would be refused.
        struct NoDns;
        impl Resolve for NoDns {
            fn resolve(&self, host: &str, _port: u16) -> impl Future<Output = io::Result<Vec<IpAddr>>> + Send {
                std::future::ready(Err(io::Error::other(format!("asked for {host}"))))
            }
        }
        for (raw, want) in [
            ("http://93.184.215.14/", "93.184.215.14:80"),
            ("https://[2606:2800:21f:cb07::1]/", "[2606:2800:21f:cb07::1]:443"),
        ] {
            let url = parse_url(raw).expect("url");
            assert_eq!(guard("").check(&url, &NoDns).await, Ok(sockets(&[want])));
        }
    }

    #[test]
    fn url_crate_normalises_what_the_guard_sees() {
        for (raw, host) in [
            ("http://2130706433/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://127.0.0.%31/", "127.0.0.1"),
            ("http://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"),
            ("http://[::127.0.0.1]/", "[::7f00:1]"),
            ("http://EXAMPLE.com./", "example.com."),
            // Backslash ends the authority in http: the host is evil.com.
            ("http://evil.com\\@127.0.0.1/", "evil.com"),
        ] {
            let url = parse_url(raw).expect("valid URL");
            assert_eq!(url.host_str(), Some(host), "{raw}");
        }
    }

    #[test]
    fn messages_say_why_without_secrets() {
        let cases = [
            (
                Rejection::BlockedAddress {
                    host: "10.0.0.5".into(),
                    addr: "10.0.0.5".parse().expect("addr"),
                    range: Range {
                        net: "10.0.0.0/8".parse().expect("net"),
                        kind: RangeKind::Private,
                    },
                    via: None,
                },
                "copy_from is refused: host 10.0.0.5 is in a private range (10.0.0.0/8)",
            ),
            (Rejection::Port(25), "copy_from is refused: port 25 is not allowed"),
            (
                Rejection::Unresolvable("nowhere.example".into()),
                "copy_from is refused: host name nowhere.example does not resolve",
            ),
        ];
        for (rejection, text) in cases {
            assert_eq!(rejection.to_string(), text);
        }
    }

    #[tokio::test]
    async fn rendered_refusals() {
        let guard = guard("deny_cidrs = [\"93.184.215.0/24\"]");
        let cases = [
            (
                "http://169.254.169.254.nip.io/latest",
                "copy_from is refused: host 169.254.169.254.nip.io resolves to 169.254.169.254, which is the cloud metadata address (169.254.169.254/32)",
            ),
            (
                "http://[::ffff:7f00:1]/",
                "copy_from is refused: host [::ffff:7f00:1] is an IPv4-mapped form of 127.0.0.1, which is in a loopback range (127.0.0.0/8)",
            ),
            (
                "http://mapped.example/",
                "copy_from is refused: host mapped.example resolves to ::ffff:10.0.0.1, which is an IPv4-mapped form of 10.0.0.1, which is in a private range (10.0.0.0/8)",
            ),
            (
                "http://[64:ff9b::a00:1]/",
                "copy_from is refused: host [64:ff9b::a00:1] is a NAT64 form of 10.0.0.1, which is in a private range (10.0.0.0/8)",
            ),
            (
                "http://example.com/",
                "copy_from is refused: host example.com resolves to 93.184.215.14, which is in a range this namespace denies (93.184.215.0/24)",
            ),
            (
                "http://user:s3cret@example.com/",
                "copy_from is refused: credentials in the URL are not allowed",
            ),
            (
                "FILE:///etc/passwd",
                "copy_from is refused: scheme \"file\" is not allowed; use http or https",
            ),
            (
                "http://LOCALHOST./",
                "copy_from is refused: host localhost. is a loopback name",
            ),
            (
                "http://slow.example/",
                "copy_from is refused: resolving host name slow.example timed out; try again later",
            ),
        ];
        for (raw, text) in cases {
            let rejection = judge(&guard, raw).await.expect_err(raw);
            assert_eq!(rejection.to_string(), text);
        }
        let long = format!("{}://x/", "a".repeat(100));
        let rejection = judge(&guard, &long).await.expect_err("long scheme");
        assert_eq!(rejection, Rejection::Scheme(format!("{}…", "a".repeat(32))));
    }

    #[test]
    fn config_parses_from_toml_with_defaults() {
        let empty: GuardConfig = toml::from_str("").expect("empty table");
        assert_eq!(empty, GuardConfig::default());
        let full: GuardConfig = toml::from_str(
            r#"
            allow_hosts = ["images.internal"]
            deny_hosts = ["*.corp.example"]
            allow_cidrs = ["127.0.0.1/32", "fd00::/8"]
            deny_cidrs = ["203.0.113.0/24"]
            allow_ports = [80, 443]
            deny_ports = [25]
            "#,
        )
        .expect("full table");
        assert_eq!(full.allow_hosts, ["images.internal"]);
        assert_eq!(full.allow_cidrs.len(), 2);
        assert_eq!(full.allow_ports, [80, 443]);
        assert_eq!(full.deny_ports, [25]);
        let partial: GuardConfig = toml::from_str("deny_ports = [25]").expect("partial");
        assert!(partial.allow_hosts.is_empty() && partial.allow_cidrs.is_empty());
    }

    #[test]
    fn config_parses_inside_a_namespace_table() {
        #[derive(serde::Deserialize)]
        struct Namespace {
            copy_from: GuardConfig,
        }
        #[derive(serde::Deserialize)]
        struct File {
            namespaces: HashMap<String, Namespace>,
        }
        let file: File =
            toml::from_str("[namespaces.test.copy_from]\nallow_cidrs = [\"127.0.0.1/32\"]\n").expect("namespace table");
        let guard = Guard::new(&file.namespaces["test"].copy_from).expect("valid");
        assert_eq!(guard.allow_cidrs, ["127.0.0.1/32".parse::<IpNet>().expect("net")]);
    }

    #[test]
    fn config_rejects_bad_toml() {
        for text in [
            "allow_host = [\"x\"]",
            "allow_cidrs = [\"127.0.0.1\"]",
            "allow_cidrs = [\"127.0.0.1/33\"]",
            "deny_ports = [70000]",
            "allow_ports = [-1]",
            "deny_hosts = \"x\"",
        ] {
            assert!(toml::from_str::<GuardConfig>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn guard_validates_hosts_and_ports() {
        let bad = [
            GuardConfig {
                deny_hosts: vec!["bad host".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                deny_hosts: vec!["a..b".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                deny_hosts: vec!["".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                deny_hosts: vec!["*.".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                deny_hosts: vec!["*.*.example".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                deny_hosts: vec!["*.10.0.0.1".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                deny_hosts: vec!["http://example.com/".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                allow_hosts: vec!["*.example.com".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                allow_hosts: vec!["exa$mple.com".into()],
                ..GuardConfig::default()
            },
            GuardConfig {
                allow_hosts: vec![format!("{}.com", "a".repeat(64))],
                ..GuardConfig::default()
            },
            GuardConfig {
                allow_ports: vec![0],
                ..GuardConfig::default()
            },
        ];
        for config in bad {
            assert!(Guard::new(&config).is_err(), "{config:?}");
        }
        let good = GuardConfig {
            allow_hosts: vec![
                "Images.Example.".into(),
                "::1".into(),
                "[fd00::1]".into(),
                "127.1".into(),
                "b\u{fc}cher.example".into(),
                "_acme.example".into(),
            ],
            deny_hosts: vec!["*.corp.example".into(), "10.0.0.1".into()],
            ..GuardConfig::default()
        };
        let guard = Guard::new(&good).expect("valid");
        assert_eq!(
            guard.allow_hosts,
            [
                HostKey::Name("images.example".into()),
                HostKey::Ip("::1".parse().expect("ip")),
                HostKey::Ip("fd00::1".parse().expect("ip")),
                HostKey::Ip("127.0.0.1".parse().expect("ip")),
                HostKey::Name("xn--bcher-kva.example".into()),
                HostKey::Name("_acme.example".into()),
            ]
        );
    }

    #[tokio::test]
    async fn system_resolver_answers_literals_and_localhost_without_network() {
        let resolver = SystemResolver::default();
        let v4 = resolver.resolve("127.0.0.1", 80).await.expect("v4 literal");
        assert_eq!(v4, [IpAddr::from([127, 0, 0, 1])]);
        for host in ["::1", "[::1]"] {
            let v6 = resolver.resolve(host, 80).await.expect("v6 literal");
            assert_eq!(v6, [IpAddr::from(std::net::Ipv6Addr::LOCALHOST)], "{host}");
        }
        // From the hosts file, not DNS.
        let local = resolver.resolve("localhost", 80).await.expect("localhost");
        assert!(!local.is_empty() && local.iter().all(IpAddr::is_loopback), "{local:?}");
    }

    #[test]
    fn check_can_run_on_a_multithreaded_server() {
        fn assert_send<T: Send>(_: &T) {}
        let guard = guard("");
        let url = parse_url("http://example.com/").expect("url");
        let resolver = SystemResolver::default();
        assert_send(&guard.check(&url, &resolver));
    }

    #[tokio::test]
    async fn system_resolver_end_to_end() {
        let url = parse_url("http://127.0.0.1:9292/image").expect("url");
        let resolver = SystemResolver::new(Duration::from_secs(1));
        assert_eq!(
            guard("").check(&url, &resolver).await.map_err(|r| shape(&r)),
            Err(Want::Blocked(RangeKind::Loopback))
        );
        let open = guard("allow_cidrs = [\"127.0.0.1/32\"]");
        assert_eq!(open.check(&url, &resolver).await, Ok(sockets(&["127.0.0.1:9292"])));
        let local = parse_url("http://localhost:9292/").expect("url");
        let named = guard("allow_hosts = [\"localhost\"]");
        let vetted = named.check(&local, &resolver).await.expect("allowed host");
        assert!(vetted.iter().all(|s| s.ip().is_loopback() && s.port() == 9292));
    }

    #[tokio::test]
    async fn odd_inputs_never_panic() {
        let guard = guard("deny_hosts = [\"*.example\"]");
        let pieces = [
            "",
            "http:",
            "https:",
            "//",
            "\\\\",
            "@",
            ":",
            "[",
            "]",
            "::",
            "%",
            "%00",
            "#",
            "?",
            "0x",
            "0",
            "1.",
            ".",
            "..",
            "\u{0}",
            "\t",
            " ",
            "\u{ff0e}",
            "xn--",
            "[::]",
            "localhost",
            "a.example",
            "99999",
            ":0",
            ":65535",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let raw = format!("{a}{b}{c}");
                    let _ = judge(&guard, &raw).await;
                }
            }
        }
    }

    #[test]
    fn raw_authority_reading_follows_whatwg() {
        assert!(raw_authority_has_at(" \thttp:/\\/u@h/"));
        assert!(raw_authority_has_at("http:@h"));
        assert!(!raw_authority_has_at("http://h/@x"));
        assert!(!raw_authority_has_at("http://h?@x"));
        assert!(!raw_authority_has_at("http://h#@x"));
        assert!(!raw_authority_has_at("http://h\\@x"));
        assert!(!raw_authority_has_at("no-scheme"));
    }
}
