//! What an env's conf asks of its connections' security, resolved once at `RpcEnv::create`.

use std::ffi::OsString;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use super::Secret;
use crate::conf::{keys, ConfError, RpcConf, TimeUnit};

/// Default of [`keys::AUTH_TIMEOUT`]. A legitimate handshake is one round trip (well under a
/// millisecond on a LAN); the deadline is how long an idle or hostile socket may hold one of
/// the few handshake slots, so it is short. 10 s (not Spark's 30 s, sized for its multi-step
/// SASL) still leaves a peer on a loaded 2-core machine ample time.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// How an env's connections are secured: one value, resolved from its conf at start.
#[derive(Debug, Clone)]
pub enum Security {
    /// No handshake: every byte is trusted as today (the default, for loopback-only envs).
    Off,
    /// Every connection first completes a Noise `NNpsk0` handshake keyed by `secret`.
    Authenticated {
        /// The shared secret (the handshake uses a subkey of it, never the secret itself).
        secret: Secret,
        /// Whether transport bytes are encrypted after the handshake; `false` means the
        /// peer is checked at connect time only ([`keys::CRYPTO_ENABLED`]).
        encrypt: bool,
        /// How long a connection may take to finish its handshake ([`keys::AUTH_TIMEOUT`]).
        handshake_timeout: Duration,
    },
}

impl Security {
    /// The security `conf` asks for. `bind_host` is the listener's host for a server-mode env
    /// (`None` in client mode): with authentication off, a host that is not loopback is
    /// refused unless [`keys::AUTHENTICATE`] is explicitly `false`, since anyone who can reach
    /// the port could then run code on the cluster.
    pub fn from_conf(conf: &RpcConf, bind_host: Option<&str>) -> Result<Security, ConfError> {
        if !conf.get_bool(keys::AUTHENTICATE, false)? {
            if let Some(host) = bind_host {
                if !conf.contains(keys::AUTHENTICATE) && !is_loopback(host) {
                    return Err(ConfError::new(
                        keys::AUTHENTICATE,
                        "",
                        format!(
                            "binding {host}, which is not loopback, without authentication: \
                             set {}=true with a secret ({} preferred), or {}=false to accept \
                             unauthenticated peers from the network",
                            keys::AUTHENTICATE,
                            keys::AUTHENTICATE_SECRET_FILE,
                            keys::AUTHENTICATE
                        ),
                    ));
                }
            }
            return Ok(Security::Off);
        }
        let secret = Secret::from_conf(conf)?.ok_or_else(|| {
            ConfError::new(
                keys::AUTHENTICATE,
                "true",
                format!(
                    "no secret: set {}, {} or the environment variable {}",
                    keys::AUTHENTICATE_SECRET_FILE,
                    keys::AUTHENTICATE_SECRET,
                    keys::AUTH_SECRET_ENV
                ),
            )
        })?;
        Ok(Security::Authenticated {
            secret,
            encrypt: conf.get_bool(keys::CRYPTO_ENABLED, true)?,
            handshake_timeout: conf.get_duration(
                keys::AUTH_TIMEOUT,
                DEFAULT_AUTH_TIMEOUT,
                TimeUnit::Seconds,
            )?,
        })
    }
}

/// The settings a parent may hand down in [`keys::SECURITY_CONF_ENV`]; anything else in it is
/// refused, so the variable cannot smuggle in other settings.
const INHERITED_KEYS: [&str; 3] = [keys::AUTHENTICATE, keys::CRYPTO_ENABLED, keys::AUTH_TIMEOUT];

impl Security {
    /// The environment variables a child process this one starts needs to connect the way
    /// this one does: for [`Security::Authenticated`], the secret in
    /// [`keys::AUTH_SECRET_ENV`] and the settings in [`keys::SECURITY_CONF_ENV`]. Set them
    /// last on the child's command (over anything its command asked for); for
    /// [`Security::Off`] there are none, and [`CHILD_ENV_KEYS`] should be removed instead,
    /// so a secret this process inherited does not travel on.
    pub fn child_env(&self) -> Vec<(&'static str, OsString)> {
        match self {
            Security::Off => Vec::new(),
            Security::Authenticated {
                secret,
                encrypt,
                handshake_timeout,
            } => {
                let settings = format!(
                    "{}=true\n{}={encrypt}\n{}={}ms\n",
                    keys::AUTHENTICATE,
                    keys::CRYPTO_ENABLED,
                    keys::AUTH_TIMEOUT,
                    handshake_timeout.as_millis()
                );
                vec![
                    (keys::AUTH_SECRET_ENV, secret.to_env_value()),
                    (keys::SECURITY_CONF_ENV, OsString::from(settings)),
                ]
            }
        }
    }
}

/// The variables [`Security::child_env`] sets.
pub const CHILD_ENV_KEYS: [&str; 2] = [keys::AUTH_SECRET_ENV, keys::SECURITY_CONF_ENV];

impl RpcConf {
    /// This conf with the security settings a parent process handed down in
    /// [`keys::SECURITY_CONF_ENV`] (they override this conf's), if the variable is set: how
    /// an executor or a cluster-mode driver started by a worker connects as the worker does.
    /// The secret itself comes from [`keys::AUTH_SECRET_ENV`] when the env resolves it.
    pub fn with_inherited_security(self) -> Result<RpcConf, ConfError> {
        match std::env::var(keys::SECURITY_CONF_ENV) {
            Ok(text) => self.with_security_settings(&text),
            Err(std::env::VarError::NotPresent) => Ok(self),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfError::new(
                keys::SECURITY_CONF_ENV,
                "",
                "not valid UTF-8",
            )),
        }
    }

    /// This conf with the `key=value` lines of `text` (a [`keys::SECURITY_CONF_ENV`] value).
    fn with_security_settings(mut self, text: &str) -> Result<RpcConf, ConfError> {
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let refused = |why: &str| ConfError::new(keys::SECURITY_CONF_ENV, "", why.to_owned());
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| refused("a line without '='"))?;
            if !INHERITED_KEYS.contains(&key) {
                return Err(refused(&format!(
                    "{key:?} is not a security setting (only {} are)",
                    INHERITED_KEYS.join(", ")
                )));
            }
            self.set(key, value);
        }
        Ok(self)
    }
}

/// Whether every address `host` names is a loopback address. A name that does not resolve
/// counts as not loopback (binding it fails anyway).
fn is_loopback(host: &str) -> bool {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return ip.is_loopback();
    }
    match (host, 0u16).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-a-good-secret";

    #[test]
    fn a_child_inherits_the_settings_and_the_secret_travels_apart() {
        let conf = RpcConf::new()
            .with(keys::AUTHENTICATE, "true")
            .with(keys::AUTHENTICATE_SECRET, SECRET)
            .with(keys::CRYPTO_ENABLED, "false")
            .with(keys::AUTH_TIMEOUT, "3s");
        let security = Security::from_conf(&conf, None).unwrap();
        let env = security.child_env();
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get(keys::AUTH_SECRET_ENV), Some(OsString::from(SECRET)));
        let settings = get(keys::SECURITY_CONF_ENV).unwrap().into_string().unwrap();
        assert!(!settings.contains(SECRET), "{settings}");
        let child = RpcConf::new()
            .with_security_settings(&settings)
            .unwrap()
            .with(keys::AUTHENTICATE_SECRET, SECRET);
        match Security::from_conf(&child, None).unwrap() {
            Security::Authenticated {
                encrypt,
                handshake_timeout,
                ..
            } => {
                assert!(!encrypt);
                assert_eq!(handshake_timeout, Duration::from_secs(3));
            }
            Security::Off => panic!("the child must authenticate"),
        }
        assert!(Security::Off.child_env().is_empty());
        // Nothing but the security settings may come in that way.
        let e = RpcConf::new()
            .with_security_settings("ember.executor.memory=1g")
            .unwrap_err();
        assert_eq!(e.key(), keys::SECURITY_CONF_ENV);
        assert!(RpcConf::new().with_security_settings("garbage").is_err());
    }

    #[test]
    fn off_by_default_on_loopback_and_in_client_mode() {
        for host in [Some("127.0.0.1"), Some("localhost"), Some("::1"), None] {
            let s = Security::from_conf(&RpcConf::new(), host).unwrap();
            assert!(matches!(s, Security::Off), "{host:?}");
        }
    }

    #[test]
    fn a_non_loopback_bind_without_auth_is_refused_unless_explicitly_off() {
        let e = Security::from_conf(&RpcConf::new(), Some("0.0.0.0")).unwrap_err();
        assert_eq!(e.key(), keys::AUTHENTICATE);
        assert!(e.reason().contains("ember.authenticate=false"), "{e}");
        let explicit = RpcConf::new().with(keys::AUTHENTICATE, "false");
        let s = Security::from_conf(&explicit, Some("0.0.0.0")).unwrap();
        assert!(matches!(s, Security::Off));
    }

    #[test]
    fn auth_on_needs_a_secret_and_encrypts_by_default() {
        let on = RpcConf::new().with(keys::AUTHENTICATE, "true");
        // Either the test process has no EMBER_AUTH_SECRET (the error), or it has one.
        if std::env::var_os(keys::AUTH_SECRET_ENV).is_none() {
            let e = Security::from_conf(&on, None).unwrap_err();
            assert_eq!(e.key(), keys::AUTHENTICATE);
            assert!(e.reason().contains(keys::AUTHENTICATE_SECRET_FILE), "{e}");
        }
        let with_secret = on.with(keys::AUTHENTICATE_SECRET, SECRET);
        match Security::from_conf(&with_secret, Some("0.0.0.0")).unwrap() {
            Security::Authenticated {
                encrypt,
                handshake_timeout,
                ..
            } => {
                assert!(encrypt);
                assert_eq!(handshake_timeout, DEFAULT_AUTH_TIMEOUT);
            }
            Security::Off => panic!("authentication was asked for"),
        }
        let plain = with_secret
            .with(keys::CRYPTO_ENABLED, "false")
            .with(keys::AUTH_TIMEOUT, "2s");
        match Security::from_conf(&plain, None).unwrap() {
            Security::Authenticated {
                encrypt,
                handshake_timeout,
                ..
            } => {
                assert!(!encrypt);
                assert_eq!(handshake_timeout, Duration::from_secs(2));
            }
            Security::Off => panic!("authentication was asked for"),
        }
    }
}
