use super::*;
use std::collections::HashMap;

use ember_test_support::TempDir;

fn parse_with(args: &[&str], vars: &[(&str, &str)]) -> Result<SubmitCommand, SubmitError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse_submit_args(args.iter().copied(), |k| vars.get(k).cloned())
}

fn submit(args: &[&str], vars: &[(&str, &str)]) -> SubmitArgs {
    match parse_with(args, vars) {
        Ok(SubmitCommand::Submit(args)) => args,
        other => panic!("{args:?}: expected a submission, got {other:?}"),
    }
}

fn error(args: &[&str], vars: &[(&str, &str)]) -> SubmitError {
    match parse_with(args, vars) {
        Err(e) => e,
        Ok(other) => panic!("{args:?}: expected an error, got {other:?}"),
    }
}

#[test]
fn client_mode_by_default_with_the_apps_arguments_untouched() {
    let s = submit(
        &[
            "--master",
            "ember://m:7077",
            "./pi",
            "--slices",
            "8",
            "--master",
            "x",
        ],
        &[],
    );
    assert_eq!(s.deploy_mode, DeployMode::Client);
    assert_eq!(s.master.as_deref(), Some("ember://m:7077"));
    assert_eq!(s.masters, [RpcAddress::new("m", 7077)]);
    assert_eq!(s.app, PathBuf::from("./pi"));
    assert_eq!(s.app_args, ["--slices", "8", "--master", "x"]);
    assert_eq!(s.conf.get("ember.submit.deployMode"), Some("client"));
    assert_eq!(s.conf.get("ember.master"), Some("ember://m:7077"));
    let env = s.app_env();
    assert_eq!(
        env.get("EMBER_MASTER").map(String::as_str),
        Some("ember://m:7077")
    );
    let conf = RpcConf::from_properties(&env["EMBER_CONF"]).expect("properties");
    assert_eq!(conf.get("ember.master"), Some("ember://m:7077"));
}

#[test]
fn client_mode_takes_any_master_or_none() {
    let s = submit(&["--master", "local[2]", "app"], &[]);
    assert_eq!(s.master.as_deref(), Some("local[2]"));
    assert!(s.masters.is_empty());
    let s = submit(&["app"], &[]);
    assert_eq!(s.master, None);
    assert!(!s.app_env().contains_key("EMBER_MASTER"));
    let s = submit(&["app"], &[("EMBER_MASTER", "ember://e:1")]);
    assert_eq!(s.master.as_deref(), Some("ember://e:1"));
}

#[test]
fn cluster_mode_flags() {
    let s = submit(
        &[
            "--master=ember://a:1,b:2",
            "--deploy-mode",
            "cluster",
            "--name",
            "big",
            "--conf",
            "ember.executor.memory=2g",
            "-c",
            "ember.cores.max = 4",
            "--driver-memory",
            "512m",
            "--driver-cores",
            "2",
            "--supervise",
            "--no-wait",
            "--wait-timeout",
            "2min",
            "/bin/app",
        ],
        &[],
    );
    assert_eq!(s.deploy_mode, DeployMode::Cluster);
    assert_eq!(
        s.masters,
        [RpcAddress::new("a", 1), RpcAddress::new("b", 2)]
    );
    assert_eq!((s.driver_memory_mib, s.driver_cores), (512, 2));
    assert!(s.supervise && !s.wait);
    assert_eq!(s.wait_timeout, Some(Duration::from_secs(120)));
    assert_eq!(s.conf.get("ember.app.name"), Some("big"));
    assert_eq!(s.conf.get("ember.executor.memory"), Some("2g"));
    assert_eq!(s.conf.get("ember.cores.max"), Some("4"));
    assert_eq!(s.conf.get("ember.driver.memory"), Some("512m"));
    assert_eq!(s.conf.get("ember.driver.supervise"), Some("true"));
    let defaults = submit(
        &["--master", "ember://a:1", "--deploy-mode", "cluster", "x"],
        &[],
    );
    assert_eq!(
        (defaults.driver_memory_mib, defaults.driver_cores),
        (1024, 1)
    );
    assert!(!defaults.supervise && defaults.wait);
    assert_eq!(defaults.wait_timeout, None);
}

#[test]
fn the_properties_file_is_under_the_flags() {
    let dir = TempDir::new("props");
    std::fs::write(
        dir.path().join("ember-defaults.conf"),
        "# defaults\nember.master ember://p:7077\nember.executor.memory 1g\n\
         ember.submit.deployMode cluster\nember.driver.memory 2g\nother.key 1\n",
    )
    .expect("write");
    let conf_dir = dir.path().to_str().expect("utf-8 temp path");
    let vars = [
        ("EMBER_CONF_DIR", conf_dir),
        ("EMBER_MASTER", "ember://e:1"),
    ];
    let s = submit(&["app"], &vars);
    assert_eq!(s.master.as_deref(), Some("ember://p:7077"), "file over env");
    assert_eq!(s.deploy_mode, DeployMode::Cluster);
    assert_eq!(s.driver_memory_mib, 2048);
    assert_eq!(s.conf.get("other.key"), None, "only ember.* keys");
    let s = submit(
        &[
            "--master",
            "ember://f:1",
            "--conf",
            "ember.executor.memory=3g",
            "app",
        ],
        &vars,
    );
    assert_eq!(s.master.as_deref(), Some("ember://f:1"), "flag over file");
    assert_eq!(s.conf.get("ember.executor.memory"), Some("3g"));
    let other = dir.path().join("other.conf");
    std::fs::write(&other, "ember.executor.cores 3\n").expect("write");
    let other = other.to_str().expect("utf-8 temp path");
    let s = submit(&["--properties-file", other, "app"], &vars);
    assert_eq!(s.conf.get("ember.executor.cores"), Some("3"));
    assert_eq!(
        s.conf.get("ember.executor.memory"),
        None,
        "replaces the default file"
    );
    let e = error(&["--properties-file", "/nonexistent/e.conf", "app"], &[]);
    assert!(
        e.message().contains("/nonexistent/e.conf") && !e.show_usage(),
        "{e}"
    );
}

#[test]
fn kill_and_status() {
    let parsed = parse_with(&["--kill", "driver-1", "--master", "ember://m:1"], &[]);
    let Ok(SubmitCommand::Kill {
        masters, driver_id, ..
    }) = parsed
    else {
        panic!("a kill: {parsed:?}");
    };
    assert_eq!((masters.len(), driver_id.0.as_str()), (1, "driver-1"));
    let parsed = parse_with(
        &["--status", "driver-2"],
        &[("EMBER_MASTER", "ember://m:1")],
    );
    assert!(
        matches!(parsed, Ok(SubmitCommand::Status { ref driver_id, .. }) if driver_id.0 == "driver-2"),
        "{parsed:?}"
    );
}

#[test]
fn help() {
    for flag in ["--help", "-h"] {
        assert!(matches!(parse_with(&[flag], &[]), Ok(SubmitCommand::Help)));
    }
    assert!(SUBMIT_USAGE.starts_with("Usage: ember-submit [options] <app-binary>"));
}

/// What lexopt did and clap must keep doing: `-c` is `--conf` and they add up, a flag's value
/// may start with '-', everything from the binary on is the application's (`--` and `-h`
/// too), and a leading `--` ends the flags.
#[test]
fn the_command_line_reads_as_it_always_has() {
    let s = submit(
        &[
            "-c",
            "ember.a=1",
            "--conf=ember.b=2",
            "--name",
            "-x",
            "--name",
            "pi",
            "./pi",
            "--",
            "-h",
        ],
        &[],
    );
    assert_eq!(
        (s.conf.get("ember.a"), s.conf.get("ember.b")),
        (Some("1"), Some("2"))
    );
    assert_eq!(
        s.conf.get("ember.app.name"),
        Some("pi"),
        "the last --name wins"
    );
    assert_eq!(s.app, PathBuf::from("./pi"));
    assert_eq!(s.app_args, ["--", "-h"]);
    let s = submit(&["--", "--odd-name", "--help"], &[]);
    assert_eq!(s.app, PathBuf::from("--odd-name"));
    assert_eq!(s.app_args, ["--help"]);
    // In order: the first bad argument is the one named.
    let e = error(&["--conf", "nope", "--supervise", "app"], &[]);
    assert_eq!(e.message(), "--conf needs KEY=VALUE, not 'nope'");
    let e = error(&["--bogus", "--conf", "nope", "app"], &[]);
    assert_eq!(e.message(), "invalid option '--bogus'");
    use std::os::unix::ffi::OsStringExt;
    let not_text = OsString::from_vec(vec![0xff]);
    let e = parse_submit_args([OsString::from("--kill"), not_text], |_| None).expect_err("bytes");
    assert_eq!(e.message(), "The value of --kill is not valid UTF-8");
    let missing = crate::command_line::flags_missing_from::<Flags>(SUBMIT_USAGE);
    assert!(missing.is_empty(), "not in the usage: {missing:?}");
}

#[test]
fn bad_command_lines_name_the_problem_and_show_the_usage() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "application binary"),
        (&["--bogus", "app"], "--bogus"),
        (&["--master"], "--master"),
        (&["--deploy-mode", "remote", "app"], "'remote'"),
        (&["--deploy-mode", "cluster", "app"], "needs a master"),
        (
            &["--deploy-mode", "cluster", "--master", "local[2]", "app"],
            "'local[2]'",
        ),
        (&["--master", "ember://nope", "app"], "ember://nope"),
        (&["--conf", "novalue", "app"], "'novalue'"),
        (&["--conf", "spark.x=1", "app"], "'spark.x'"),
        (&["--conf", "ember.a=1\n2", "app"], "one line"),
        (
            &["--driver-memory", "lots", "--master", "ember://m:1", "app"],
            "lots",
        ),
        (&["--driver-cores", "0", "app"], "'0'"),
        (&["--supervise", "app"], "cluster deploy mode only"),
        (&["--no-wait", "app"], "cluster deploy mode only"),
        (
            &["--kill", "d", "--master", "local", "app"],
            "no application",
        ),
        (&["--kill", "d"], "need a master"),
        (
            &["--kill", "d", "--status", "d", "--master", "ember://m:1"],
            "not both",
        ),
    ];
    for (args, needle) in cases {
        let e = error(args, &[]);
        assert!(e.message().contains(needle), "{args:?}: {e}");
        assert!(e.show_usage(), "{args:?}");
    }
}

#[test]
fn the_driver_description_names_the_binary_absolutely() {
    let dir = TempDir::new("binary");
    let app = dir.path().join("app.sh");
    std::fs::write(&app, "#!/bin/sh\n").expect("write");
    let not_executable = dir.path().join("data.txt");
    std::fs::write(&not_executable, "x").expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let app_text = app.to_str().expect("utf-8 temp path");
    let mut s = submit(
        &[
            "--master",
            "ember://m:1",
            "--deploy-mode",
            "cluster",
            app_text,
            "a",
            "b",
        ],
        &[],
    );
    let description = s.driver_description().expect("a description");
    let program = PathBuf::from(&description.command.program);
    assert!(program.is_absolute());
    assert_eq!(program, std::fs::canonicalize(&app).expect("canonical"));
    assert_eq!(description.command.args, ["a", "b"]);
    assert_eq!(
        description
            .command
            .env
            .get("EMBER_MASTER")
            .map(String::as_str),
        Some("ember://m:1")
    );
    assert!(description.command.env["EMBER_CONF"].contains("ember.submit.deployMode=cluster\n"));
    assert_eq!((description.memory_mib, description.cores), (1024, 1));

    // The secret never goes into the description (master, recovery files, worker): the
    // worker hands the driver its own. Nor does the path of this host's secret file.
    s.conf.set(keys::AUTHENTICATE, "true");
    s.conf
        .set(keys::AUTHENTICATE_SECRET, "a-secret-value-of-enough-bytes");
    s.conf
        .set(keys::AUTHENTICATE_SECRET_FILE, "/home/me/.ember-secret");
    let description = s.driver_description().expect("a description");
    let all: String = description.command.env.values().cloned().collect();
    assert!(!all.contains("a-secret-value"), "{all}");
    assert!(!all.contains(".ember-secret"), "{all}");
    assert!(all.contains("ember.authenticate=true"), "{all}");
    assert!(!description.command.env.contains_key(keys::AUTH_SECRET_ENV));
    // In client mode the application gets it in its own variable, not in EMBER_CONF.
    let env = s.app_env();
    assert!(!env["EMBER_CONF"].contains("a-secret-value"));
    assert!(
        env["EMBER_CONF"].contains(".ember-secret"),
        "same host: the file is fine"
    );
    assert_eq!(
        env.get(keys::AUTH_SECRET_ENV).map(String::as_str),
        Some("a-secret-value-of-enough-bytes")
    );
    s.conf = RpcConf::new();

    s.app = dir.path().join("missing");
    assert!(s.driver_description().is_err());
    s.app = not_executable;
    let e = s.driver_description().expect_err("not executable");
    assert!(e.message().contains("not an executable"), "{e}");
}
