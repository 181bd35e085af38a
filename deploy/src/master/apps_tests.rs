//! The application registry's tests.

use super::*;
use crate::messages::Command;
use rpc_env::{RpcEnv, RpcEnvConfig};

fn description(max_cores: Option<u32>) -> ApplicationDescription {
    ApplicationDescription {
        name: "test".into(),
        max_cores,
        memory_per_executor_mib: 512,
        cores_per_executor: None,
        command: Command {
            program: "true".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
        },
        user: "me".into(),
        program_digest: None,
    }
}

fn app(env: &RpcEnv, n: u16) -> AppInfo {
    AppInfo::new(
        AppId(format!("app-{n}")),
        description(Some(10)),
        env.local_ref("AppClient"),
        RpcAddress::new("driver", n),
        None,
    )
}

#[test]
fn indexes_agree_through_insert_and_remove() {
    let env = RpcEnv::create(RpcEnvConfig::client("apps-test")).expect("env");
    let mut apps = Apps::new(200);
    for n in 0..5 {
        apps.insert(app(&env, n)).expect("new");
        apps.check_indexes().expect("after insert");
    }
    let a2 = AppId("app-2".into());
    apps.get_mut(&a2)
        .expect("active")
        .add_executor(WorkerId("w".into()), 4, 512);
    apps.check_indexes().expect("after executor");
    let removed = apps.remove(&a2, AppStatus::Killed).expect("active");
    assert_eq!(removed.executors.len(), 1);
    assert_eq!(removed.executors[0].1.state, ExecutorState::Killed);
    apps.check_indexes().expect("after remove");
    assert!(apps.at(&RpcAddress::new("driver", 2)).is_none());
    let order: Vec<&str> = apps.in_order().map(|a| a.id().0.as_str()).collect();
    assert_eq!(order, ["app-0", "app-1", "app-3", "app-4"]);
    assert_eq!(
        apps.completed().next().map(|a| a.status()),
        Some(AppStatus::Killed)
    );
    assert!(
        apps.remove(&a2, AppStatus::Killed).is_none(),
        "removed once"
    );
    env.shutdown();
}

#[test]
fn one_application_per_driver_address() {
    let env = RpcEnv::create(RpcEnvConfig::client("apps-test")).expect("env");
    let mut apps = Apps::new(200);
    apps.insert(app(&env, 1)).expect("new");
    let mut again = app(&env, 1);
    again.id = AppId("app-9".into());
    assert_eq!(apps.insert(again), Err(AppId("app-1".into())));
    apps.check_indexes().expect("unchanged");
    env.shutdown();
}

#[test]
fn completed_apps_are_capped_like_sparks() {
    let env = RpcEnv::create(RpcEnvConfig::client("apps-test")).expect("env");
    let mut apps = Apps::new(20);
    for n in 0..25 {
        apps.insert(app(&env, n)).expect("new");
        apps.remove(&AppId(format!("app-{n}")), AppStatus::Finished)
            .expect("active");
        apps.check_indexes().expect("within the cap");
    }
    // Full at 20: the 21st drops the two oldest (a tenth), and so on.
    let kept: Vec<&str> = apps.completed().map(|a| a.id().0.as_str()).collect();
    assert_eq!(kept.len(), 19);
    assert_eq!(kept.first(), Some(&"app-6"));
    env.shutdown();
}

#[test]
fn recovered_apps_keep_their_executor_ids() {
    let env = RpcEnv::create(RpcEnvConfig::client("apps-test")).expect("env");
    let mut a = app(&env, 1).recovered(42, 2);
    assert_eq!((a.status(), a.submitted_ms()), (AppStatus::Unknown, 42));
    let exec = |cores| ExecutorInfo {
        registered: true,
        worker: WorkerId("w".into()),
        cores,
        memory_mib: 512,
        state: ExecutorState::Running,
    };
    assert!(a.add_recovered_executor(5, exec(3)));
    assert!(!a.add_recovered_executor(5, exec(3)), "id taken");
    assert_eq!(a.status(), AppStatus::Unknown, "status untouched");
    assert_eq!((a.next_executor_id(), a.cores_left()), (6, 7));
    assert!(a.recovery_step(AppStatus::Unknown, AppStatus::Waiting));
    assert!(!a.recovery_step(AppStatus::Unknown, AppStatus::Waiting));
    assert_eq!(a.add_executor(WorkerId("w".into()), 1, 512), 6);
    env.shutdown();
}

/// A killed executor's last report is expected once; a removed application is known as
/// completed; the driver is told a waiting reason only when it changes.
#[test]
fn what_the_master_expects_after_removing() {
    let env = RpcEnv::create(RpcEnvConfig::client("apps-test")).expect("env");
    let mut apps = Apps::new(20);
    apps.insert(app(&env, 1)).expect("new");
    let id = AppId("app-1".into());
    let a = apps.get_mut(&id).expect("active");
    let e0 = a.add_executor(WorkerId("w".into()), 4, 512);
    let e1 = a.add_executor(WorkerId("w".into()), 4, 512);
    assert!(a.kill_executor(e0).is_some());
    assert!(a.remove_executor(e1).is_some());
    assert!(
        a.take_killed(e0, false),
        "a state from before the kill is expected"
    );
    assert!(a.take_killed(e0, true), "so is its end");
    assert!(!a.take_killed(e0, true), "once");
    assert!(!a.take_killed(e1, true), "removed, not killed");
    assert_eq!(a.waiting_because(Some("x".into())), Some("x".into()));
    assert_eq!(a.waiting_because(Some("x".into())), None, "told already");
    assert_eq!(a.waiting_because(None), None);
    assert_eq!(a.waiting_because(Some("x".into())), Some("x".into()));
    assert!(!apps.is_completed(&id));
    apps.remove(&id, AppStatus::Finished).expect("active");
    assert!(apps.is_completed(&id));
    env.shutdown();
}

#[test]
fn cores_left_and_retries() {
    let env = RpcEnv::create(RpcEnvConfig::client("apps-test")).expect("env");
    let mut a = app(&env, 1);
    assert_eq!((a.cores_left(), a.status()), (10, AppStatus::Waiting));
    let e0 = a.add_executor(WorkerId("w".into()), 4, 512);
    let e1 = a.add_executor(WorkerId("w".into()), 4, 512);
    assert_eq!((e0, e1), (0, 1), "executor ids count from 0");
    assert_eq!((a.cores_left(), a.status()), (2, AppStatus::Running));
    assert_eq!(
        a.set_executor_state(e0, ExecutorState::Running),
        Some(ExecutorState::Launching)
    );
    assert!(a.has_running_executor());
    a.remove_executor(e0);
    assert_eq!(a.cores_left(), 6);
    assert_eq!(
        (a.increment_retry_count(), a.increment_retry_count()),
        (1, 2)
    );
    a.reset_retry_count();
    assert_eq!(a.increment_retry_count(), 1);
    let unlimited = AppInfo::new(
        AppId("x".into()),
        description(None),
        env.local_ref("AppClient"),
        RpcAddress::new("d", 1),
        Some(3),
    );
    assert_eq!(
        unlimited.cores_left(),
        3,
        "ember.deploy.defaultCores applies"
    );
    env.shutdown();
}
