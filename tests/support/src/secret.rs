//! A cluster secret for tests: random, in a file only its owner can read.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes a fresh random secret (64 hex digits, from `/dev/urandom`) to `path`, which must
/// not exist yet, with mode 0600, as `ember.authenticate.secret.file` wants it.
pub fn write_secret_file(path: &Path) {
    let mut random = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .expect("random bytes");
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(hex.as_bytes()))
        .expect("the secret file");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_secret_is_long_random_and_private() {
        let dir = std::env::temp_dir().join(format!("ember-secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        write_secret_file(&a);
        write_secret_file(&b);
        let text = std::fs::read_to_string(&a).unwrap();
        assert_eq!(text.len(), 64);
        assert_ne!(text, std::fs::read_to_string(&b).unwrap());
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
