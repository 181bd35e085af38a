//! A whole cluster with `ember.authenticate=true`: the master, two workers, a driver and the
//! executor processes the workers start (this test binary) all share one secret, and run a
//! job; the secret reaches the executors in their environment only, never on a command line
//! or in the settings the driver hands out; a peer without the secret, or with another one,
//! gets nothing from the master.

use std::time::Duration;

use ember::testing::TestCluster;
use ember::{RpcConf, TaskContext, TaskError, TaskRegistry};
use ember_deploy::messages::{
    AppClientProtocol, ApplicationDescription, Command, DriverDescription, MasterAsk,
    MasterMessage, MasterProtocol, MASTER_ENDPOINT_NAME,
};
use rpc_env::{keys, NoMessage, Protocol, RpcEnv, RpcEnvConfig, RpcError};

const SECRET: &str = "authenticated-cluster-test-secret-0123456789";

fn square(_: &TaskContext, x: u64) -> Result<u64, TaskError> {
    Ok(x * x)
}

/// Every task function of the application, for the driver and the executors alike.
fn tasks() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("square", square);
    registry
}

ember::executor_entry!(tasks);

/// Any protocol: the lookup fails before it matters.
struct Anything;

impl Protocol for Anything {
    type Message = NoMessage;
    type Ask = NoMessage;
    type Control = NoMessage;
}

fn authenticated_cluster() -> Result<TestCluster, ember::Error> {
    test_cluster()
        .workers(2)
        .cores_per_worker(1)
        .memory_mib_per_worker(1024)
        .conf(keys::AUTHENTICATE, "true")
        .conf(keys::AUTHENTICATE_SECRET, SECRET)
        .start()
}

#[test]
fn a_job_runs_on_an_authenticated_cluster_and_the_secret_stays_out_of_sight() {
    let cluster = authenticated_cluster().expect("the cluster starts");
    let ctx = cluster.context("squares").expect("a context");
    cluster
        .wait_for_executors(&ctx, 2, Duration::from_secs(60))
        .expect("both executors register");
    let squares: Vec<u64> = ctx.run_job("square", (0..100u64).collect()).unwrap();
    assert_eq!(squares, (0..100u64).map(|x| x * x).collect::<Vec<_>>());

    let executors = cluster.executor_pids();
    assert_eq!(executors.len(), 2);
    for pid in executors {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(SECRET),
            "the secret is not on executor {pid}'s command line"
        );
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let environ = String::from_utf8_lossy(&environ);
        assert!(
            environ.contains(&format!("{}={SECRET}", keys::AUTH_SECRET_ENV)),
            "the worker hands executor {pid} the secret in its environment"
        );
    }
    cluster.stop().unwrap();
}

#[test]
fn a_peer_without_the_secret_gets_nothing_from_the_master() {
    let cluster = authenticated_cluster().expect("the cluster starts");
    let master = cluster.master().address();
    let outsider = RpcEnv::create(RpcEnvConfig::client("outsider")).unwrap();
    let e = outsider
        .setup_endpoint_ref::<Anything>(&master, "Master")
        .unwrap_err();
    assert!(
        matches!(e, RpcError::ConnectionClosed { .. }),
        "the master hangs up on a peer that does not authenticate: {e}"
    );
    outsider.shutdown();

    let wrong = RpcConf::new().with(keys::AUTHENTICATE, "true").with(
        keys::AUTHENTICATE_SECRET,
        "a-different-secret-of-enough-bytes",
    );
    let impostor = RpcEnv::create(RpcEnvConfig::client("impostor").with_conf(wrong)).unwrap();
    let e = impostor
        .setup_endpoint_ref::<Anything>(&master, "Master")
        .unwrap_err();
    assert!(matches!(e, RpcError::AuthenticationFailed { .. }), "{e}");
    impostor.shutdown();

    // A well-formed application registration whose executors would run a command of the
    // attacker's, then a well-formed cluster-mode submission, sent straight at the master's
    // endpoint (no lookup) over one connection by a peer without the secret (its frames go
    // out bare, as a raw socket's would): neither reaches a handler.
    let attacker = RpcEnv::create(RpcEnvConfig::client("attacker")).unwrap();
    let master_ref = attacker.endpoint_ref_at::<MasterProtocol>(&master, MASTER_ENDPOINT_NAME);
    let owned = || Command {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "touch /tmp/ember-owned".into()],
        env: Default::default(),
    };
    master_ref
        .send(MasterMessage::RegisterApplication {
            description: ApplicationDescription {
                name: "owned".into(),
                max_cores: Some(64),
                memory_per_executor_mib: 64,
                cores_per_executor: Some(1),
                command: owned(),
                user: "attacker".into(),
                program_digest: None,
            },
            driver: attacker.endpoint_ref_at::<AppClientProtocol>(&master, "AppClient"),
        })
        .expect("queued");
    let description = DriverDescription {
        memory_mib: 64,
        cores: 1,
        supervise: false,
        command: owned(),
        program_digest: None,
    };
    let submitted = master_ref
        .ask(|reply| MasterAsk::RequestSubmitDriver { description, reply })
        .wait();
    assert!(submitted.is_err(), "{submitted:?}");
    attacker.shutdown();

    // The submission failed with its connection, after the registration ahead of it on the
    // same connection had reached the master's socket. The cluster is untouched: still
    // exactly its two workers, no application, no driver.
    let state = cluster.state().unwrap();
    assert_eq!(state.workers.len(), 2);
    assert!(state.active_apps.is_empty() && state.completed_apps.is_empty());
    assert!(state.active_drivers.is_empty() && state.completed_drivers.is_empty());
    cluster.stop().unwrap();
}

#[test]
fn a_test_cluster_authenticates_by_default_and_may_opt_out() {
    // No security settings: a fresh random secret, shared by its members only.
    let cluster = test_cluster()
        .workers(1)
        .cores_per_worker(1)
        .memory_mib_per_worker(1024)
        .start()
        .unwrap();
    assert_eq!(cluster.conf().get(keys::AUTHENTICATE), Some("true"));
    let ctx = cluster.context("default-auth").unwrap();
    let squares: Vec<u64> = ctx.run_job("square", vec![7u64]).unwrap();
    assert_eq!(squares, vec![49]);
    let outsider = RpcEnv::create(RpcEnvConfig::client("local-user")).unwrap();
    let e = outsider
        .setup_endpoint_ref::<Anything>(&cluster.master().address(), "Master")
        .unwrap_err();
    assert!(matches!(e, RpcError::ConnectionClosed { .. }), "{e}");
    outsider.shutdown();
    cluster.stop().unwrap();

    // Explicitly off: an env without a secret reaches the master.
    let open = test_cluster()
        .workers(1)
        .cores_per_worker(1)
        .memory_mib_per_worker(1024)
        .conf(keys::AUTHENTICATE, "false")
        .start()
        .unwrap();
    let neighbour = RpcEnv::create(RpcEnvConfig::client("neighbour")).unwrap();
    neighbour
        .setup_endpoint_ref::<Anything>(&open.master().address(), "Master")
        .expect("an unauthenticated cluster answers anyone");
    neighbour.shutdown();
    open.stop().unwrap();
}
