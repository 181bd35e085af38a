//! Addresses of RPC environments and of the endpoints inside them.
//!
//! [`RpcAddress`] is a `host:port` (Spark's `RpcAddress`), with IPv6 literals kept in one
//! bracketed canonical form so the same host always compares, hashes and prints the same.
//! [`EndpointAddress`] adds an endpoint name and prints as `ember://name@host:port`, or as
//! `ember-client://name` for an endpoint in a client-mode env, which has no listen address.

use std::fmt;
use std::net::Ipv6Addr;

/// Which kind of URL failed to parse, which decides the error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressErrorKind {
    /// A master URL `ember://host:port` ([`RpcAddress::from_ember_url`]).
    InvalidMasterUrl,
    /// An endpoint URL `ember://name@host:port` ([`EndpointAddress::parse`]).
    InvalidEmberUrl,
}

/// A URL that is not a valid master or endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressError {
    kind: AddressErrorKind,
    url: String,
}

impl AddressError {
    /// An error of `kind` for the rejected `url`.
    pub fn new(kind: AddressErrorKind, url: impl Into<String>) -> Self {
        AddressError {
            kind,
            url: url.into(),
        }
    }

    /// Which kind of URL was expected.
    pub fn kind(&self) -> AddressErrorKind {
        self.kind
    }

    /// The rejected URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AddressErrorKind::InvalidMasterUrl => write!(f, "Invalid master URL: {}", self.url),
            AddressErrorKind::InvalidEmberUrl => write!(f, "Invalid Ember URL: {}", self.url),
        }
    }
}

impl std::error::Error for AddressError {}

/// The `host:port` of an RPC environment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RpcAddress {
    host: String,
    port: u16,
}

impl RpcAddress {
    /// An address of `host` and `port`. An IPv6 literal, with or without brackets, is stored
    /// bracketed in canonical compressed form (`::0:1` becomes `[::1]`), so that equal
    /// addresses compare equal (SPARK-42173). Other hosts are kept as given, except that one
    /// containing `:` (such as an IPv6 literal with a zone) is bracketed, as Spark does, so
    /// that `host:port` stays unambiguous.
    pub fn new(host: &str, port: u16) -> Self {
        RpcAddress {
            host: normalize_host(host),
            port,
        }
    }

    /// The address of a socket: how a peer with no listen address (a client-mode env) is
    /// known.
    pub(crate) fn of_socket(socket: &std::net::SocketAddr) -> Self {
        RpcAddress::new(&socket.ip().to_string(), socket.port())
    }

    /// The host; IPv6 literals are bracketed (`[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, e.g. `1.2.3.4:1234` or `[::1]:1234`.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The host without brackets, as socket APIs and resolvers want it (`::1`).
    pub fn socket_host(&self) -> &str {
        strip_brackets(&self.host).unwrap_or(&self.host)
    }

    /// The master URL `ember://host:port`.
    pub fn to_ember_url(&self) -> String {
        format!("ember://{}", self.host_port())
    }

    /// Parses a master URL, exactly `ember://host:port`: a non-empty host (IPv6 in
    /// brackets), a port that fits in 16 bits, and no user, path, query or fragment.
    pub fn from_ember_url(url: &str) -> Result<RpcAddress, AddressError> {
        url.strip_prefix("ember://")
            .and_then(parse_host_port)
            .map(|(host, port)| RpcAddress::new(host, port))
            .ok_or_else(|| AddressError::new(AddressErrorKind::InvalidMasterUrl, url))
    }
}

impl fmt::Display for RpcAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The address of one endpoint: its env's address (none in client mode) and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EndpointAddress {
    address: Option<RpcAddress>,
    name: String,
}

impl EndpointAddress {
    /// The endpoint `name` in the env at `address`; `None` for a client-mode env, whose
    /// endpoints can only be reached over a connection they opened.
    pub fn new(address: Option<RpcAddress>, name: impl Into<String>) -> Self {
        EndpointAddress {
            address,
            name: name.into(),
        }
    }

    /// The env's address, or `None` in client mode.
    pub fn address(&self) -> Option<&RpcAddress> {
        self.address.as_ref()
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the endpoint lives in a client-mode env (it has no listen address).
    pub fn is_client(&self) -> bool {
        self.address.is_none()
    }

    /// Parses `ember://name@host:port` strictly: scheme `ember`, a non-empty name, a host
    /// and a port, and no path, query or fragment. `ember-client://name` is rejected too,
    /// since it names nothing that can be connected to.
    pub fn parse(uri: &str) -> Result<EndpointAddress, AddressError> {
        let parsed = uri.strip_prefix("ember://").and_then(|rest| {
            let (name, authority) = rest.split_once('@')?;
            if !is_valid_name(name) {
                return None;
            }
            let (host, port) = parse_host_port(authority)?;
            Some(EndpointAddress::new(
                Some(RpcAddress::new(host, port)),
                name,
            ))
        });
        parsed.ok_or_else(|| AddressError::new(AddressErrorKind::InvalidEmberUrl, uri))
    }
}

impl fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Some(address) => write!(f, "ember://{}@{}", self.name, address),
            None => write!(f, "ember-client://{}", self.name),
        }
    }
}

/// `[inner]` -> `inner`; anything else -> `None`.
fn strip_brackets(host: &str) -> Option<&str> {
    host.strip_prefix('[')?.strip_suffix(']')
}

fn normalize_host(host: &str) -> String {
    let bracketed = strip_brackets(host);
    if let Ok(ip) = bracketed.unwrap_or(host).parse::<Ipv6Addr>() {
        return format!("[{ip}]");
    }
    if bracketed.is_none() && host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Splits `host:port` where the host is a name or IPv4 literal (letters, digits, `-`, `.`,
/// `_`) or a bracketed IPv6 literal. Anything else, including a trailing path, query,
/// fragment or `user@`, gives `None`.
fn parse_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (host, rest) = authority.split_at(end);
        strip_brackets(host)?.parse::<Ipv6Addr>().ok()?;
        (host, rest.strip_prefix(':')?)
    } else {
        let (host, port) = authority.split_once(':')?;
        let host_chars_ok = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if host.is_empty() || !host_chars_ok {
            return None;
        }
        (host, port)
    };
    // `u16::from_str` would also take a leading `+`; a URL port is digits only.
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// An endpoint name must survive a round trip through `ember://name@host:port`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '@' | '/' | '?' | '#' | '[' | ']')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn master_err(url: &str) -> String {
        RpcAddress::from_ember_url(url).unwrap_err().to_string()
    }

    /// RpcAddressSuite "hostPort".
    #[test]
    fn host_port() {
        let address = RpcAddress::new("1.2.3.4", 1234);
        assert_eq!(address.host(), "1.2.3.4");
        assert_eq!(address.port(), 1234);
        assert_eq!(address.host_port(), "1.2.3.4:1234");
        assert_eq!(address.socket_host(), "1.2.3.4");
        assert_eq!(address.to_string(), "1.2.3.4:1234");
    }

    /// RpcAddressSuite "fromSparkURL".
    #[test]
    fn from_ember_url() {
        let address = RpcAddress::from_ember_url("ember://1.2.3.4:1234").unwrap();
        assert_eq!((address.host(), address.port()), ("1.2.3.4", 1234));
        let address = RpcAddress::from_ember_url("ember://my-host_1.example.com:0").unwrap();
        assert_eq!(
            (address.host(), address.port()),
            ("my-host_1.example.com", 0)
        );
        assert_eq!(
            RpcAddress::from_ember_url("ember://h:65535")
                .unwrap()
                .port(),
            65535
        );
    }

    /// RpcAddressSuite "fromSparkURL: a typo url".
    #[test]
    fn from_ember_url_typo() {
        let e = RpcAddress::from_ember_url("ember://1.2. 3.4:1234").unwrap_err();
        assert_eq!(e.kind(), AddressErrorKind::InvalidMasterUrl);
        assert_eq!(e.url(), "ember://1.2. 3.4:1234");
        assert_eq!(e.to_string(), "Invalid master URL: ember://1.2. 3.4:1234");
    }

    /// RpcAddressSuite "fromSparkURL: invalid scheme".
    #[test]
    fn from_ember_url_invalid_scheme() {
        assert_eq!(
            master_err("invalid://1.2.3.4:1234"),
            "Invalid master URL: invalid://1.2.3.4:1234"
        );
        assert!(RpcAddress::from_ember_url("spark://1.2.3.4:1234").is_err());
        assert!(RpcAddress::from_ember_url("EMBER://1.2.3.4:1234").is_err());
    }

    /// RpcAddressSuite "toSparkURL".
    #[test]
    fn to_ember_url() {
        assert_eq!(
            RpcAddress::new("1.2.3.4", 1234).to_ember_url(),
            "ember://1.2.3.4:1234"
        );
    }

    /// RpcAddressSuite "SPARK-39468: IPv6 hostPort".
    #[test]
    fn ipv6_host_port() {
        let address = RpcAddress::new("::1", 1234);
        assert_eq!(address.host(), "[::1]");
        assert_eq!(address.port(), 1234);
        assert_eq!(address.host_port(), "[::1]:1234");
        assert_eq!(address.socket_host(), "::1");
    }

    /// RpcAddressSuite "SPARK-39468: IPv6 fromSparkURL" and "IPv6 toSparkURL".
    #[test]
    fn ipv6_urls() {
        let address = RpcAddress::from_ember_url("ember://[::1]:1234").unwrap();
        assert_eq!((address.host(), address.port()), ("[::1]", 1234));
        assert_eq!(
            RpcAddress::new("::1", 1234).to_ember_url(),
            "ember://[::1]:1234"
        );
        let address = RpcAddress::from_ember_url("ember://[0:0::0:1]:1").unwrap();
        assert_eq!(address, RpcAddress::new("::1", 1));
    }

    /// RpcAddressSuite "SPARK-42173: Consistent Sparse Mapping" (and trailing 0s).
    #[test]
    fn ipv6_canonical_form() {
        assert_eq!(
            RpcAddress::new("::0:1", 1234).to_ember_url(),
            "ember://[::1]:1234"
        );
        assert_eq!(
            RpcAddress::new("2600::", 1234).to_ember_url(),
            "ember://[2600::]:1234"
        );
        assert_eq!(RpcAddress::new("[::0:1]", 1).host(), "[::1]");
        assert_eq!(RpcAddress::new("2600:0:0::ABCD", 1).host(), "[2600::abcd]");
        assert_eq!(
            RpcAddress::new("::1", 1),
            RpcAddress::new("0:0:0:0:0:0:0:1", 1)
        );
        // Not IPv6: kept as given, bracketed only when a bare `:` would be ambiguous.
        assert_eq!(RpcAddress::new("fe80::1%eth0", 1).host(), "[fe80::1%eth0]");
        assert_eq!(
            RpcAddress::new("[fe80::1%eth0]", 1).socket_host(),
            "fe80::1%eth0"
        );
        assert_eq!(RpcAddress::new("[not-ip]", 1).host(), "[not-ip]");
        assert_eq!(RpcAddress::new("Example.COM", 1).host(), "Example.COM");
        assert_eq!(RpcAddress::new("", 1).host_port(), ":1");
        assert_eq!(RpcAddress::new("[]", 1).socket_host(), "");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        // The wire codec rebuilds addresses with `new(host(), port())`.
        for host in [
            "::1",
            "[::1]",
            "1.2.3.4",
            "localhost",
            "fe80::1%eth0",
            "[x",
            "a]",
            "",
        ] {
            let a = RpcAddress::new(host, 9);
            assert_eq!(RpcAddress::new(a.host(), a.port()), a, "{host}");
        }
    }

    #[test]
    fn master_url_round_trips() {
        for (host, port) in [
            ("1.2.3.4", 1234),
            ("localhost", 0),
            ("::", 7077),
            ("2001:db8::1", 65535),
        ] {
            let address = RpcAddress::new(host, port);
            assert_eq!(
                RpcAddress::from_ember_url(&address.to_ember_url()).unwrap(),
                address
            );
        }
    }

    #[test]
    fn malformed_master_urls_are_rejected() {
        let bad = [
            "",
            "ember://",
            "ember:/h:1",
            "ember:h:1",
            "ember://h",
            "ember://h:",
            "ember://:1",
            "ember://h:70000",
            "ember://h:65536",
            "ember://h:-1",
            "ember://h:+1",
            "ember://h:1x",
            "ember://h:1/",
            "ember://h:1/path",
            "ember://h:1?q",
            "ember://h:1#f",
            "ember://u@h:1",
            "ember://h:1:2",
            "ember://::1:1234",
            "ember://[::1]",
            "ember://[::1]1",
            "ember://[::1]:",
            "ember://[zz]:1",
            "ember://[::1:1",
            "ember://[]:1",
            " ember://h:1",
            "ember://h:1 ",
            "ember://hé:1",
            "ember://h:１",
            "ember://h\n:1",
        ];
        for url in bad {
            assert_eq!(
                master_err(url),
                format!("Invalid master URL: {url}"),
                "{url:?}"
            );
        }
    }

    /// NettyRpcAddressSuite "toString".
    #[test]
    fn endpoint_to_string() {
        let address = EndpointAddress::new(Some(RpcAddress::new("localhost", 12345)), "test");
        assert_eq!(address.to_string(), "ember://test@localhost:12345");
        assert_eq!(address.name(), "test");
        assert_eq!(
            address.address(),
            Some(&RpcAddress::new("localhost", 12345))
        );
        assert!(!address.is_client());
        let v6 = EndpointAddress::new(Some(RpcAddress::new("::1", 1)), "w");
        assert_eq!(v6.to_string(), "ember://w@[::1]:1");
    }

    /// NettyRpcAddressSuite "toString for client mode".
    #[test]
    fn endpoint_to_string_client_mode() {
        let address = EndpointAddress::new(None, "test");
        assert_eq!(address.to_string(), "ember-client://test");
        assert!(address.is_client());
        assert_eq!(address.address(), None);
    }

    #[test]
    fn endpoint_parse_and_round_trip() {
        let parsed = EndpointAddress::parse("ember://test@localhost:12345").unwrap();
        let want = EndpointAddress::new(Some(RpcAddress::new("localhost", 12345)), "test");
        assert_eq!(parsed, want);
        let parsed = EndpointAddress::parse("ember://endpoint-verifier@[::0:1]:7077").unwrap();
        assert_eq!(parsed.address().map(RpcAddress::host), Some("[::1]"));
        assert_eq!(parsed.to_string(), "ember://endpoint-verifier@[::1]:7077");
        for name in [
            "Master",
            "CoarseGrainedScheduler",
            "a.b-c_d",
            "user:pass",
            "ünï",
        ] {
            let address = EndpointAddress::new(Some(RpcAddress::new("10.0.0.5", 7077)), name);
            assert_eq!(
                EndpointAddress::parse(&address.to_string()).unwrap(),
                address
            );
        }
        let set: HashSet<_> = [
            want.clone(),
            want.clone(),
            EndpointAddress::new(None, "test"),
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn malformed_endpoint_urls_are_rejected() {
        let bad = [
            "",
            "ember://",
            "ember://localhost:1",
            "ember://@localhost:1",
            "ember-client://test",
            "spark://test@localhost:1",
            "invalid://test@localhost:1",
            "ember://test@localhost",
            "ember://test@localhost:",
            "ember://test@localhost:70000",
            "ember://test@:1",
            "ember://test@localhost:1/",
            "ember://test@localhost:1/path",
            "ember://test@h:1?q=1",
            "ember://test@h:1#frag",
            "ember://a b@h:1",
            "ember://test@1.2. 3.4:1",
            "ember://a@b@h:1",
            "ember://a/b@h:1",
            "ember://test@::1:1",
            "ember://te\tst@h:1",
        ];
        for uri in bad {
            let e = EndpointAddress::parse(uri).unwrap_err();
            assert_eq!(e.kind(), AddressErrorKind::InvalidEmberUrl);
            assert_eq!(
                e.to_string(),
                format!("Invalid Ember URL: {uri}"),
                "{uri:?}"
            );
        }
        let e: Box<dyn std::error::Error> =
            Box::new(EndpointAddress::parse("ember-client://x").unwrap_err());
        assert_eq!(e.to_string(), "Invalid Ember URL: ember-client://x");
    }

    #[test]
    fn no_input_panics() {
        // Every prefix and every single-character edit of valid URLs must parse or fail
        // cleanly, including multi-byte characters next to the delimiters.
        let seeds = ["ember://name@[2600::1]:65535", "ember://h.example:7077"];
        let inserts = ['@', ':', '[', ']', '/', ' ', 'é', '９', '\0'];
        for seed in seeds {
            let chars: Vec<char> = seed.chars().collect();
            for i in 0..=chars.len() {
                let prefix: String = chars[..i].iter().collect();
                let _ = RpcAddress::from_ember_url(&prefix);
                let _ = EndpointAddress::parse(&prefix);
                for c in inserts {
                    let mut edited = chars.clone();
                    edited.insert(i, c);
                    let edited: String = edited.into_iter().collect();
                    let _ = RpcAddress::from_ember_url(&edited);
                    let _ = EndpointAddress::parse(&edited);
                    let _ = RpcAddress::new(&edited, 1).socket_host().len();
                }
            }
        }
    }

    #[test]
    fn addresses_order_and_hash() {
        let mut addresses = [("b", 1), ("a", 2), ("a", 1)].map(|(h, p)| RpcAddress::new(h, p));
        addresses.sort();
        assert_eq!(addresses[0], RpcAddress::new("a", 1));
        assert_eq!(addresses[2], RpcAddress::new("b", 1));
        let set: HashSet<_> = [RpcAddress::new("::1", 1), RpcAddress::new("[::0:1]", 1)]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 1);
    }
}
