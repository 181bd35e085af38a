//! The worker registry's unit tests: its indexes agree through every mutation.

use super::*;
use rpc_env::{RpcEnv, RpcEnvConfig};

fn env() -> RpcEnv {
    RpcEnv::create(RpcEnvConfig::client("workers-test")).expect("client env")
}

fn new_worker(env: &RpcEnv, id: &str, host: &str, port: u16) -> NewWorker {
    NewWorker {
        id: WorkerId(id.into()),
        host: host.into(),
        port,
        address: RpcAddress::new(host, port),
        endpoint: env.local_ref(id),
        cores: 8,
        memory_mib: 1024,
        web_ui_url: String::new(),
    }
}

fn key(app: &str, exec_id: u32) -> ExecutorKey {
    ExecutorKey {
        app: AppId(app.into()),
        exec_id,
    }
}

#[test]
fn indexes_agree_through_insert_death_and_cull() {
    let env = env();
    let now = Instant::now();
    let mut workers = Workers::default();
    for (i, id) in ["w1", "w2", "w3"].into_iter().enumerate() {
        let port = 7000 + u16::try_from(i).expect("small");
        workers
            .insert(new_worker(&env, id, "h", port), now)
            .expect("new");
        workers.check_indexes().expect("after insert");
    }
    let w2 = WorkerId("w2".into());
    workers
        .alive_mut(&w2)
        .expect("alive")
        .add_executor(key("a", 0), 2, 100);
    workers
        .alive_mut(&w2)
        .expect("alive")
        .add_driver(DriverId("d".into()), 1, 10);
    workers.check_indexes().expect("after accounting");

    let lost = workers.mark_dead(&w2).expect("was alive");
    assert_eq!(lost.executors, [key("a", 0)]);
    assert_eq!(lost.drivers, [DriverId("d".into())]);
    workers.check_indexes().expect("after death");
    assert!(workers.live_at(&RpcAddress::new("h", 7001)).is_none());
    assert_eq!(
        workers.get(&w2).map(|w| w.status()),
        Some(WorkerStatus::Dead)
    );
    assert!(workers.mark_dead(&w2).is_none(), "dies once");

    assert!(workers.cull(&w2));
    assert!(
        !workers.cull(&WorkerId("w1".into())),
        "live workers are not culled"
    );
    workers.check_indexes().expect("after cull");
    assert_eq!(workers.iter().count(), 2);
}

#[test]
fn duplicates_are_refused() {
    let env = env();
    let now = Instant::now();
    let mut workers = Workers::default();
    workers
        .insert(new_worker(&env, "w1", "h", 1), now)
        .expect("new");
    assert_eq!(
        workers.insert(new_worker(&env, "w1", "h", 2), now),
        Err(InsertError::DuplicateId)
    );
    assert_eq!(
        workers.insert(new_worker(&env, "w2", "h", 1), now),
        Err(InsertError::DuplicateAddress(RpcAddress::new("h", 1)))
    );
    workers.check_indexes().expect("unchanged");
}

#[test]
fn a_restarted_worker_replaces_its_dead_self() {
    let env = env();
    let now = Instant::now();
    let mut workers = Workers::default();
    workers
        .insert(new_worker(&env, "old", "h", 1), now)
        .expect("new");
    workers.mark_dead(&WorkerId("old".into())).expect("alive");
    workers
        .insert(new_worker(&env, "new", "h", 1), now)
        .expect("address is free");
    let ids: Vec<&str> = workers.iter().map(|w| w.id().0.as_str()).collect();
    assert_eq!(
        ids,
        ["new"],
        "the dead entry on the same host:port is dropped"
    );
    workers.mark_dead(&WorkerId("new".into())).expect("alive");
    workers
        .insert(new_worker(&env, "new", "h", 2), now)
        .expect("same id, dead");
    assert_eq!(workers.iter().count(), 1);
    workers.check_indexes().expect("agree");
}

#[test]
fn unknown_workers_hold_their_address_until_known_or_dead() {
    let env = env();
    let now = Instant::now();
    let mut workers = Workers::default();
    workers
        .insert_unknown(new_worker(&env, "w1", "h", 1), now)
        .expect("stored");
    workers.check_indexes().expect("after insert_unknown");
    let w1 = WorkerId("w1".into());
    assert!(workers.alive(&w1).is_none(), "gets no work");
    assert!(workers.live_at(&RpcAddress::new("h", 1)).is_some());
    assert_eq!(
        workers.insert(new_worker(&env, "w2", "h", 1), now),
        Err(InsertError::DuplicateAddress(RpcAddress::new("h", 1)))
    );
    assert!(!workers.cull(&w1), "unknown workers are not culled");
    assert!(workers.mark_known(&w1, now));
    assert!(!workers.mark_known(&w1, now), "known once");
    assert!(workers.alive(&w1).is_some());
    workers.check_indexes().expect("after mark_known");

    workers
        .insert_unknown(new_worker(&env, "w3", "h", 3), now)
        .expect("stored");
    workers
        .mark_dead(&WorkerId("w3".into()))
        .expect("unknown is live");
    workers
        .check_indexes()
        .expect("after an unknown worker died");
    assert!(workers.live_at(&RpcAddress::new("h", 3)).is_none());
}

#[test]
fn usage_follows_executors_and_drivers() {
    let env = env();
    let mut workers = Workers::default();
    workers
        .insert(new_worker(&env, "w1", "h", 1), Instant::now())
        .expect("new");
    let w = workers.alive_mut(&WorkerId("w1".into())).expect("alive");
    w.add_executor(key("a", 0), 3, 300);
    w.add_executor(key("a", 0), 3, 300);
    assert_eq!(
        (w.cores_free(), w.memory_free_mib()),
        (5, 724),
        "added once"
    );
    assert!(w.remove_executor(&key("a", 0)));
    assert!(!w.remove_executor(&key("a", 0)));
    assert_eq!((w.cores_free(), w.memory_free_mib()), (8, 1024));
    assert!(w.is_idle());
}
