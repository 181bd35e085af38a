//! The properties file of `ember-master`, `ember-worker` and `ember-submit`: the one named by
//! `--properties-file`, else `$EMBER_CONF_DIR/ember-defaults.conf` when it exists, as Spark's
//! `spark-defaults.conf`. Only its `ember.*` keys count, as Spark keeps only `spark.*` ones.

use std::path::{Path, PathBuf};

use rpc_env::RpcConf;

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

/// The `ember.*` settings of the file at `path`.
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
    Ok(conf)
}
