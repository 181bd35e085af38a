//! The binaries the root crate's tests run as programs: the ones `cargo test --workspace`
//! builds next to the test (`target/<profile>/{ember-master,ember-worker,ember-submit,
//! ember-executor,examples/pi}`), missing ones built first. Shared by `tests/scripts_pi.rs`,
//! `tests/help.rs` and `tests/console_progress.rs`, each of which declares it `mod built;`
//! beside `script_support`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::script_support::run_bounded;

/// `target/<profile>`, from this test's own path (`target/<profile>/deps/<test>`).
pub(crate) fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Builds what is missing of the daemons, `ember-submit`, `ember-executor` and `examples/pi`.
pub(crate) fn ensure_built(dir: &Path) {
    let missing = |names: &[&str]| names.iter().any(|n| !dir.join(n).is_file());
    let mut builds: Vec<Vec<&str>> = Vec::new();
    if missing(&["ember-master", "ember-worker", "ember-submit"]) {
        builds.push(vec!["-p", "ember-deploy", "--bins"]);
    }
    if missing(&["ember-executor"]) {
        builds.push(vec!["-p", "ember-executor", "--bins"]);
    }
    if missing(&["examples/pi"]) {
        builds.push(vec!["-p", "ember", "--example", "pi"]);
    }
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a profile directory");
    let target = dir.parent().expect("the target directory");
    for args in builds {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("build")
            .args(&args)
            .arg("--target-dir")
            .arg(target);
        match profile {
            "debug" => {}
            "release" => {
                cargo.arg("--release");
            }
            other => {
                cargo.args(["--profile", other]);
            }
        }
        let output = run_bounded(cargo, "cargo build");
        assert!(
            output.status.success(),
            "cargo build {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
