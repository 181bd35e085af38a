//! The shared secret: where it is read from, how it is kept, what is derived from it.

use std::fmt;
use std::io::Read;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::conf::{keys, ConfError, RpcConf};

/// Shortest secret accepted, in bytes. NNpsk0 lets whoever records a handshake guess the PSK
/// offline, so a short (low-entropy) secret would be found; 16 bytes is 128 bits at best.
pub(crate) const MIN_SECRET_LEN: usize = 16;

/// Largest secret file read, in bytes: a secret is a line of base64, not a data file, and a
/// hostile path (a FIFO, `/dev/zero`) must not make us read without end.
const MAX_SECRET_FILE_LEN: u64 = 4096;

/// Length of [`Secret::random`]'s secrets, in bytes.
const RANDOM_SECRET_LEN: usize = 32;

/// The value written in place of the secret wherever an error quotes a value.
const REDACTED: &str = "<redacted>";

/// A shared secret: the bytes every process of a cluster knows and an attacker does not.
///
/// Never printed (`Debug` and `Display` say `Secret(<redacted>)`), wiped from memory when
/// dropped. Used as is only through [`derive_key`](Secret::derive_key): the Noise PSK and
/// every other key are HKDF-SHA256 subkeys with their own label, so no two uses share a key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// A secret of `bytes`; refused when shorter than 16 bytes. `origin` names where it came
    /// from (a setting, a file, the environment variable) for the error.
    pub fn new(bytes: Vec<u8>, origin: &str) -> Result<Secret, ConfError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_LEN {
            return Err(ConfError::new(
                origin,
                REDACTED,
                format!(
                    "a secret must be at least {MIN_SECRET_LEN} bytes (it is {}); make one with \
                     `head -c 32 /dev/urandom | base64`",
                    bytes.len()
                ),
            ));
        }
        Ok(Secret { bytes })
    }

    /// A fresh random secret (32 bytes from the OS, as 64 hex digits, so it can go in a
    /// setting or an environment variable), for a cluster that lives in one process tree
    /// (`local-cluster`, tests) and so can hand it to every member itself.
    pub fn random() -> Result<Secret, getrandom::Error> {
        let mut random = Zeroizing::new([0u8; RANDOM_SECRET_LEN]);
        getrandom::fill(random.as_mut())?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(2 * RANDOM_SECRET_LEN));
        for b in random.iter() {
            for digit in [b >> 4, b & 0xf] {
                bytes.push(b"0123456789abcdef"[usize::from(digit)]);
            }
        }
        Ok(Secret { bytes })
    }

    /// The secret as text, for [`RpcConf::with_default_authentication`] (random secrets are
    /// hex, so this never fails for them).
    fn to_setting(&self) -> Option<String> {
        String::from_utf8(self.bytes.to_vec()).ok()
    }

    /// The secret a conf names, or `None` when it names none. In order of preference:
    /// the file [`keys::AUTHENTICATE_SECRET_FILE`] (refused when group or others may read it),
    /// the setting [`keys::AUTHENTICATE_SECRET`], the environment variable
    /// [`keys::AUTH_SECRET_ENV`]. Surrounding whitespace (a file's final newline) is trimmed.
    /// Every error names the setting (or variable) at fault and never quotes the secret.
    pub fn from_conf(conf: &RpcConf) -> Result<Option<Secret>, ConfError> {
        Self::from_sources(conf, std::env::var_os(keys::AUTH_SECRET_ENV))
    }

    /// [`from_conf`](Secret::from_conf) with the environment variable's value given, so tests
    /// need not change the process environment.
    pub(crate) fn from_sources(
        conf: &RpcConf,
        env_value: Option<std::ffi::OsString>,
    ) -> Result<Option<Secret>, ConfError> {
        if let Some(path) = conf.get(keys::AUTHENTICATE_SECRET_FILE) {
            return read_secret_file(path).map(Some);
        }
        if let Some(value) = conf.get(keys::AUTHENTICATE_SECRET) {
            return Secret::new(trimmed(value.as_bytes()), keys::AUTHENTICATE_SECRET).map(Some);
        }
        match env_value {
            None => Ok(None),
            Some(value) => {
                let value = Zeroizing::new(value.into_encoded_bytes());
                Secret::new(trimmed(&value), keys::AUTH_SECRET_ENV).map(Some)
            }
        }
    }

    /// The secret as an environment variable's value, for [`Security::child_env`]: the one
    /// way its bytes leave this crate, into a child process's environment (readable only by
    /// its user, unlike a command line).
    ///
    /// [`Security::child_env`]: super::Security::child_env
    pub(crate) fn to_env_value(&self) -> std::ffi::OsString {
        use std::os::unix::ffi::OsStringExt;
        std::ffi::OsString::from_vec(self.bytes.to_vec())
    }

    /// A 32-byte key for one purpose, HKDF-SHA256 of the secret with `label` as the info
    /// (e.g. `b"ember recovery v1"`). Distinct labels give independent keys; put a version in
    /// the label so a change of use changes the key.
    pub fn derive_key(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(None, &self.bytes);
        let mut key = Zeroizing::new([0u8; 32]);
        // Invariant: 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
        hk.expand(label, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }
}

impl RpcConf {
    /// This conf, authenticated with a fresh random secret unless it says otherwise (it sets
    /// [`keys::AUTHENTICATE`]): what a cluster that lives in one process tree runs with
    /// (`local-cluster`, `TestCluster`), so its loopback ports are closed to other local
    /// users by default. The secret is a setting of this conf only: it never leaves the
    /// process in settings ([`keys::holds_secret`]); children get it in their environment.
    pub fn with_default_authentication(self) -> Result<RpcConf, ConfError> {
        if self.contains(keys::AUTHENTICATE) {
            return Ok(self);
        }
        let failed = |why: String| ConfError::new(keys::AUTHENTICATE_SECRET, REDACTED, why);
        let secret = Secret::random().map_err(|e| failed(format!("no random secret: {e}")))?;
        let text = secret
            .to_setting()
            .ok_or_else(|| failed("a random secret that is not text".to_owned()))?;
        Ok(self
            .with(keys::AUTHENTICATE, "true")
            .with(keys::AUTHENTICATE_SECRET, text))
    }
}

/// The bytes of `value` without surrounding ASCII whitespace.
fn trimmed(value: &[u8]) -> Vec<u8> {
    value.trim_ascii().to_vec()
}

/// The secret in the file at `path`: refused when it is not a regular file, is readable by
/// group or others, is empty or short, or is larger than [`MAX_SECRET_FILE_LEN`].
fn read_secret_file(path: &str) -> Result<Secret, ConfError> {
    use std::os::unix::fs::PermissionsExt;
    let key = keys::AUTHENTICATE_SECRET_FILE;
    let err = |reason: String| ConfError::new(key, path, reason);
    let mut file = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| err(format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(err("not a regular file".to_owned()));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "readable by group or others (mode {:o}); run `chmod 600 {path}`",
            mode & 0o777
        )));
    }
    if meta.len() > MAX_SECRET_FILE_LEN {
        return Err(err(format!(
            "larger than {MAX_SECRET_FILE_LEN} bytes: not a secret file"
        )));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    (&mut file)
        .take(MAX_SECRET_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    Secret::new(trimmed(&bytes), key).map_err(|e| err(e.reason().to_owned()))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const GOOD: &str = "0123456789abcdef-a-good-secret";

    fn secret_file(contents: &str, mode: u32) -> (tempdir::Dir, String) {
        let dir = tempdir::Dir::new();
        let path = dir.path().join("secret");
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let path = path.to_str().unwrap().to_owned();
        (dir, path)
    }

    /// A directory removed on drop (no tempfile crate in rpc-env).
    mod tempdir {
        pub(super) struct Dir(std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Dir {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "ember-secret-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub(super) fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new(GOOD.as_bytes().to_vec(), "x").unwrap();
        assert!(!format!("{s:?}").contains("good"));
        assert!(!format!("{s}").contains("good"));
    }

    #[test]
    fn short_secrets_are_refused_naming_the_setting_without_quoting_it() {
        let conf = RpcConf::new().with(keys::AUTHENTICATE_SECRET, "short-secret");
        let e = Secret::from_sources(&conf, None).unwrap_err();
        assert_eq!(e.key(), keys::AUTHENTICATE_SECRET);
        assert!(!e.to_string().contains("short-secret"), "{e}");
        let e = Secret::from_sources(&RpcConf::new(), Some("tiny".into())).unwrap_err();
        assert_eq!(e.key(), keys::AUTH_SECRET_ENV);
    }

    #[test]
    fn the_file_is_preferred_then_the_setting_then_the_environment() {
        let (_dir, path) = secret_file(&format!("{GOOD}-file\n"), 0o600);
        let from_file = Secret::new(format!("{GOOD}-file").into_bytes(), "x").unwrap();
        let from_setting = Secret::new(format!("{GOOD}-setting").into_bytes(), "x").unwrap();
        let from_env = Secret::new(format!("{GOOD}-env").into_bytes(), "x").unwrap();
        let env = Some(format!("{GOOD}-env").into());
        let all = RpcConf::new()
            .with(keys::AUTHENTICATE_SECRET_FILE, path)
            .with(keys::AUTHENTICATE_SECRET, format!("{GOOD}-setting"));
        assert_eq!(
            Secret::from_sources(&all, env.clone()).unwrap(),
            Some(from_file)
        );
        let mut no_file = all.clone();
        no_file.remove(keys::AUTHENTICATE_SECRET_FILE);
        assert_eq!(
            Secret::from_sources(&no_file, env.clone()).unwrap(),
            Some(from_setting)
        );
        assert_eq!(
            Secret::from_sources(&RpcConf::new(), env).unwrap(),
            Some(from_env)
        );
        assert_eq!(Secret::from_sources(&RpcConf::new(), None).unwrap(), None);
    }

    #[test]
    fn a_file_readable_by_group_or_others_is_refused() {
        for mode in [0o640, 0o604, 0o660] {
            let (_dir, path) = secret_file(GOOD, mode);
            let conf = RpcConf::new().with(keys::AUTHENTICATE_SECRET_FILE, path);
            let e = Secret::from_sources(&conf, None).unwrap_err();
            assert_eq!(e.key(), keys::AUTHENTICATE_SECRET_FILE);
            assert!(e.reason().contains("readable by group or others"), "{e}");
        }
    }

    #[test]
    fn missing_short_and_non_regular_files_are_refused() {
        let dir = tempdir::Dir::new();
        for path in [
            dir.path().join("absent").to_str().unwrap().to_owned(),
            dir.path().to_str().unwrap().to_owned(),
        ] {
            let conf = RpcConf::new().with(keys::AUTHENTICATE_SECRET_FILE, path);
            let e = Secret::from_sources(&conf, None).unwrap_err();
            assert_eq!(e.key(), keys::AUTHENTICATE_SECRET_FILE);
        }
        let (_dir, path) = secret_file("short\n", 0o600);
        let conf = RpcConf::new().with(keys::AUTHENTICATE_SECRET_FILE, path);
        let e = Secret::from_sources(&conf, None).unwrap_err();
        assert!(e.reason().contains("at least 16 bytes"), "{e}");
    }

    #[test]
    fn derived_keys_depend_on_secret_and_label() {
        let a = Secret::new(GOOD.as_bytes().to_vec(), "x").unwrap();
        let b = Secret::new(format!("{GOOD}!").into_bytes(), "x").unwrap();
        assert_eq!(*a.derive_key(b"l1"), *a.clone().derive_key(b"l1"));
        assert_ne!(*a.derive_key(b"l1"), *a.derive_key(b"l2"));
        assert_ne!(*a.derive_key(b"l1"), *b.derive_key(b"l1"));
    }

    #[test]
    fn random_secrets_are_long_and_distinct() {
        let a = Secret::random().unwrap();
        let b = Secret::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.bytes.len(), 2 * RANDOM_SECRET_LEN);
        assert!(a.bytes.iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn default_authentication_adds_a_random_secret_unless_the_conf_chose() {
        let conf = RpcConf::new().with_default_authentication().unwrap();
        assert_eq!(conf.get(keys::AUTHENTICATE), Some("true"));
        let secret = Secret::from_sources(&conf, None).unwrap().unwrap();
        assert_eq!(secret.bytes.len(), 2 * RANDOM_SECRET_LEN);
        let other = RpcConf::new().with_default_authentication().unwrap();
        assert_ne!(
            conf.get(keys::AUTHENTICATE_SECRET),
            other.get(keys::AUTHENTICATE_SECRET)
        );
        let off = RpcConf::new().with(keys::AUTHENTICATE, "false");
        let kept = off.clone().with_default_authentication().unwrap();
        assert_eq!(kept.get(keys::AUTHENTICATE), Some("false"));
        assert!(!kept.contains(keys::AUTHENTICATE_SECRET));
    }
}
