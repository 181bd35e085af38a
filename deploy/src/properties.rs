//! The properties file of `ember-master`, `ember-worker` and `ember-submit`: the one named by
//! `--properties-file`, else `$EMBER_CONF_DIR/ember-defaults.conf` when it exists, as Spark's
//! `spark-defaults.conf`. Only its `ember.*` keys count, as Spark keeps only `spark.*` ones.
//!
//! An `ember.*` key no Ember crate reads is kept (an application may read keys of its own)
//! but warned about, naming the nearest known key: a misspelled setting that is silently
//! ignored is an evening lost. Spark warns only about keys without the `spark.` prefix.

use std::path::{Path, PathBuf};

use rpc_env::RpcConf;

/// The `ember.*` keys the driver side reads: `ember-scheduler`'s and the root crate's. This
/// crate cannot depend on those, so they are listed here, and a test in the root crate
/// (which depends on all) checks that the list is exactly theirs.
pub const DRIVER_SIDE_KEYS: &[&str] = &[
    // ember_scheduler::keys::ALL
    "ember.locality.wait",
    "ember.locality.wait.process",
    "ember.locality.wait.node",
    "ember.locality.wait.rack",
    "ember.locality.wait.legacyResetOnTaskLaunch",
    "ember.speculation",
    "ember.speculation.interval",
    "ember.speculation.multiplier",
    "ember.speculation.quantile",
    "ember.speculation.minTaskRuntime",
    "ember.task.cpus",
    "ember.task.maxFailures",
    "ember.scheduler.mode",
    "ember.scheduler.allocation.file",
    "ember.scheduler.pool",
    "ember.scheduler.revive.interval",
    "ember.driver.maxResultSize",
    "ember.executor.heartbeatInterval",
    "ember.scheduler.launchAhead",
    "ember.scheduler.launchAheadTime",
    "ember.scheduler.executorLossGrace",
    // the root crate's ember::keys
    "ember.master",
    "ember.app.name",
    "ember.driver.host",
    "ember.driver.port",
    "ember.network.timeoutInterval",
    "ember.cores.max",
    "ember.executor.cores",
    "ember.executor.memory",
    "ember.executor.program",
    "ember.executor.programArgs",
    "ember.standalone.registrationTimeout",
    "ember.standalone.registrationRetries",
    "ember.scheduler.starvationTimeout",
    "ember.standalone.executorRemoveDelayOnDisconnection",
    "ember.ui.showConsoleProgress",
    "ember.eventLog.enabled",
    "ember.eventLog.dir",
];

/// Every `ember.*` key some Ember crate reads: rpc-env's, the master's, the worker's,
/// `ember-submit`'s, the status UI's and [`DRIVER_SIDE_KEYS`].
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    [
        rpc_env::keys::ALL,
        crate::master::keys::ALL,
        crate::worker::keys::ALL,
        crate::submit::keys::ALL,
        crate::ui::keys::ALL,
        DRIVER_SIDE_KEYS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// The file to read: `flag` when given, else `$EMBER_CONF_DIR/ember-defaults.conf` if it is a
/// file (a conf dir without one is no error). `env` looks up an environment variable.
pub(crate) fn properties_file(
    flag: Option<PathBuf>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    flag.or_else(|| {
        env("EMBER_CONF_DIR")
            .map(|dir| PathBuf::from(dir).join("ember-defaults.conf"))
            .filter(|path| path.is_file())
    })
}

/// The `ember.*` settings of the file at `path`; each key no Ember crate knows is logged
/// as a warning ([`unknown_key_warnings`]), once per read (a key appears once in a file's
/// settings, the last value winning).
///
/// # Errors
///
/// The file cannot be read, or is not in the properties format: the text says which file
/// and why.
pub(crate) fn read_properties(path: &Path) -> Result<RpcConf, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Cannot read properties file {}: {e}", path.display()))?;
    let all = RpcConf::from_properties(&text)
        .map_err(|e| format!("Bad properties file {}: {e}", path.display()))?;
    let mut conf = RpcConf::new();
    for (key, value) in all.iter().filter(|(k, _)| k.starts_with("ember.")) {
        conf.set(key, value);
    }
    for warning in unknown_key_warnings(&conf, path) {
        log::warn!("{warning}");
    }
    Ok(conf)
}

/// One warning per key of `conf` that no Ember crate reads, naming the nearest known key:
/// `Unknown setting 'ember.executor.memroy' in <file>: did you mean
/// 'ember.executor.memory'?`.
pub fn unknown_key_warnings(conf: &RpcConf, file: &Path) -> Vec<String> {
    let mut unknown: Vec<&str> = conf
        .iter()
        .map(|(key, _)| key)
        .filter(|key| !known_keys().any(|known| known == *key))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    unknown
        .into_iter()
        .map(|key| match nearest_known_key(key) {
            Some(near) => format!(
                "Unknown setting '{key}' in {}: did you mean '{near}'?",
                file.display()
            ),
            None => format!("Unknown setting '{key}' in {}", file.display()),
        })
        .collect()
}

/// The known key with the fewest edits from `key` (ties: the first in [`known_keys`]).
fn nearest_known_key(key: &str) -> Option<&'static str> {
    known_keys().min_by_key(|known| edit_distance(key, known))
}

/// Levenshtein distance over chars: the fewest insertions, deletions and substitutions that
/// turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // One row of the table at a time: row[j] is the distance from a's prefix to b[..j].
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("memroy", "memory"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("cores", "core"), 1);
    }

    #[test]
    fn unknown_keys_are_named_with_the_nearest_known_one_once_each() {
        let conf = RpcConf::new()
            .with("ember.executor.memroy", "1g")
            .with("ember.deploy.spreadOut", "false")
            .with("ember.worker.cleanup.enable", "true")
            .with("ember.authenticate", "true");
        let file = Path::new("/etc/ember/ember-defaults.conf");
        assert_eq!(
            unknown_key_warnings(&conf, file),
            [
                "Unknown setting 'ember.executor.memroy' in /etc/ember/ember-defaults.conf: \
                 did you mean 'ember.executor.memory'?",
                "Unknown setting 'ember.worker.cleanup.enable' in \
                 /etc/ember/ember-defaults.conf: did you mean 'ember.worker.cleanup.enabled'?",
            ]
        );
    }

    #[test]
    fn every_known_key_is_known() {
        let mut conf = RpcConf::new();
        for key in known_keys() {
            conf.set(key, "x");
        }
        assert!(unknown_key_warnings(&conf, Path::new("f")).is_empty());
        assert!(known_keys().all(|key| key.starts_with("ember.")));
    }

    /// The template operators copy must not teach them a key that draws a warning.
    #[test]
    fn every_key_of_the_template_is_known() {
        let template = include_str!("../../conf/ember-defaults.conf.template");
        let keys: Vec<&str> = template
            .lines()
            .map(|line| line.trim_start_matches(['#', ' ']))
            .filter_map(|line| line.split_whitespace().next())
            .filter(|word| word.starts_with("ember."))
            .collect();
        assert!(keys.len() > 10, "the template's keys: {keys:?}");
        for key in keys {
            assert!(known_keys().any(|k| k == key), "{key}");
        }
    }
}
