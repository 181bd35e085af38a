//! Redaction: what the pages show of command lines and settings. Anything whose name looks
//! like a credential (Spark's default `spark.redaction.regex`,
//! `(?i)secret|password|token|access[.]?key`) shows as `*********(redacted)`, in every view:
//! HTML, JSON and the command lines inside them.

use std::collections::BTreeMap;

/// What a redacted value shows as (Spark's text).
pub(crate) const REDACTED: &str = "*********(redacted)";

/// Whether a setting or variable named `name` holds a credential.
pub(crate) fn is_sensitive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["secret", "password", "token", "accesskey", "access.key"]
        .iter()
        .any(|word| lower.contains(word))
}

/// One argument as shown: `key=value` (with or without a leading `-D` or `--conf `) keeps
/// its key and loses its value when the key is sensitive.
pub(crate) fn redact_arg(arg: &str) -> String {
    match arg.split_once('=') {
        Some((key, _)) if is_sensitive(key) => format!("{key}={REDACTED}"),
        _ => arg.to_string(),
    }
}

/// A command line as the pages show it: the environment variables it adds, then the words
/// quoted as the executor's `stderr` header quotes them, with sensitive values redacted.
pub(crate) fn command_line(
    program: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> String {
    let args: Vec<String> = args.iter().map(|a| redact_arg(a)).collect();
    let words = crate::worker::quoted_command_line(program, &args);
    env.iter()
        .map(|(key, value)| {
            let shown = if is_sensitive(key) { REDACTED } else { value };
            format!("{key}={shown}")
        })
        .chain(std::iter::once(words))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_whatever_their_case() {
        for name in [
            "ember.authenticate.secret",
            "EMBER_AUTH_SECRET",
            "db.Password",
            "GITHUB_TOKEN",
            "fs.s3a.access.key",
            "AWS_ACCESSKEY",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in ["ember.executor.memory", "PATH", "ember.app.name"] {
            assert!(!is_sensitive(name), "{name}");
        }
    }

    #[test]
    fn a_command_line_keeps_its_keys_and_loses_secret_values() {
        let env = BTreeMap::from([
            (
                "EMBER_AUTH_SECRET".to_string(),
                "hunter2hunter2hunter2".to_string(),
            ),
            ("RUST_LOG".to_string(), "info".to_string()),
        ]);
        let args = vec![
            "--conf".to_string(),
            "ember.authenticate.secret=hunter2hunter2hunter2".to_string(),
            "--cores=2".to_string(),
        ];
        let line = command_line("/bin/app", &args, &env);
        assert!(!line.contains("hunter2"), "{line}");
        assert!(
            line.contains("ember.authenticate.secret=*********(redacted)"),
            "{line}"
        );
        assert!(
            line.contains("EMBER_AUTH_SECRET=*********(redacted)"),
            "{line}"
        );
        assert!(line.contains("RUST_LOG=info"), "{line}");
        assert!(line.contains("\"--cores=2\""), "{line}");
    }
}
