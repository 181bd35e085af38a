//! The console progress bar in a real terminal: `examples/pi` runs in a `tmux` pane, whose
//! screen shows `[Stage 0:=====>    (done + running) / total]` while the job runs and a
//! clean line once it ends; with stderr redirected to a file, no bar is drawn at all.

mod built;
#[path = "../deploy/tests/script_support/mod.rs"]
pub mod script_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use built::{ensure_built, profile_dir};
use ember_test_support::{wait_for, TempDir, DEADLINE};

/// Slices for a job that runs for seconds in this build (a debug build is ten times slower).
fn slices(bins: &Path) -> u32 {
    if bins.ends_with("debug") {
        4_000
    } else {
        40_000
    }
}

/// A tmux server of this test's own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs (.ci/run installs it)");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "pi"])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn pi(bins: &Path) -> PathBuf {
    bins.join("examples/pi")
}

#[test]
fn a_running_job_shows_sparks_bar_in_a_terminal_and_leaves_a_clean_line() {
    let bins = profile_dir();
    ensure_built(&bins);
    let slices = slices(&bins);
    let tmux = Tmux {
        socket: format!("ember-progress-{}", std::process::id()),
    };
    // The pane's program: pi, then a marker with its exit status, then a pause so the
    // screen stays to be read. The setting is given too, in case pi's binary predates it.
    let command = format!(
        "EMBER_CONF=ember.ui.showConsoleProgress=true {} --master 'local[2]' --slices {slices}; \
         echo EXITED $?; sleep 600",
        pi(&bins).display()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "pi",
        "-x",
        "100",
        "-y",
        "20",
        &command,
    ]);

    let running = wait_for("the bar on the terminal", DEADLINE, || {
        let screen = tmux.screen();
        match screen.lines().find(|l| l.starts_with("[Stage 0:")) {
            Some(line) => Ok(line.to_string()),
            None if screen.contains("EXITED") => panic!("pi ended without a bar:\n{screen}"),
            None => Err(screen),
        }
    });
    let line = running.trim_end();
    assert!(line.ends_with(&format!(") / {slices}]")), "{line}");
    let counts = line
        .rsplit_once('(')
        .and_then(|(_, tail)| tail.split_once(')'))
        .map(|(inside, _)| inside.to_string())
        .unwrap_or_default();
    let (done, active) = counts.split_once(" + ").expect("(done + running)");
    let done: u32 = done.trim().parse().expect("done");
    let active: u32 = active.trim().parse().expect("running");
    assert!(done < slices && active <= 2, "{line}");
    assert!(
        line.len() >= 90,
        "the bar fills the terminal's width: {line:?}"
    );

    let end = wait_for("pi to end", DEADLINE, || {
        let screen = tmux.screen();
        if screen.contains("EXITED") {
            Ok(screen)
        } else {
            Err(screen)
        }
    });
    assert!(end.contains("EXITED 0"), "{end}");
    assert!(end.contains("Pi is roughly"), "{end}");
    assert!(
        !end.contains("[Stage"),
        "the bar is cleared when the job ends:\n{end}"
    );
}

#[test]
fn no_bar_is_drawn_when_stderr_is_not_a_terminal() {
    let bins = profile_dir();
    ensure_built(&bins);
    let dir = TempDir::new("progress-redirected");
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("a file for stderr");
    let output = Command::new(pi(&bins))
        .args([
            "--master",
            "local[2]",
            "--slices",
            &(slices(&bins) / 4).to_string(),
        ])
        .env("EMBER_CONF", "ember.ui.showConsoleProgress=true")
        .stdin(Stdio::null())
        .stderr(stderr)
        .output()
        .expect("pi runs");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("Pi is roughly"));
    let written = std::fs::read_to_string(&stderr_path).expect("stderr's file");
    assert!(!written.contains("[Stage"), "{written}");
}
