//! A real worker on loopback against a fake master: registration, heartbeats, retries,
//! standby masters, reconnection and master loss.

pub mod worker_util;

use ember_deploy::messages::WorkerMessage;
use ember_deploy::WorkerExit;
use rpc_env::RpcAddress;
use worker_util::{wait_until, Answer, Event, FakeMaster, RefusingPort, TestWorker, DEADLINE};

fn is_register(e: &Event) -> bool {
    matches!(e, Event::Register { .. })
}

fn is_latest_state(e: &Event) -> bool {
    matches!(e, Event::LatestState { .. })
}

fn is_heartbeat(e: &Event) -> bool {
    matches!(e, Event::Heartbeat { .. })
}

#[test]
fn registers_sends_its_latest_state_and_heartbeats() {
    let master = FakeMaster::start();
    let worker = TestWorker::start(vec![master.address()], &[]);
    let Event::Register {
        id,
        cores,
        memory_mib,
        master_address,
    } = master.wait_for("registration", is_register)
    else {
        unreachable!()
    };
    assert_eq!(&id, worker.handle.id());
    assert_eq!((cores, memory_mib), (4, 4096));
    assert_eq!(master_address, master.address(), "the address it dialled");
    let port = worker.handle.address().port();
    let (prefix, rest) = id.0.split_at("worker-".len());
    assert_eq!(prefix, "worker-");
    let (stamp, host_port) = rest.split_at(14);
    assert!(stamp.chars().all(|c| c.is_ascii_digit()), "{id}");
    assert_eq!(host_port, format!("-127.0.0.1-{port}"));
    master.wait_for("the worker's latest state", |e| {
        matches!(e, Event::LatestState { executors, driver_ids }
            if executors.is_empty() && driver_ids.is_empty())
    });
    // Heartbeats every 100 ms; three of them show they repeat.
    match master.wait_for_nth(3, "three heartbeats", is_heartbeat) {
        Event::Heartbeat { worker_id } => assert_eq!(&worker_id, worker.handle.id()),
        other => panic!("{other:?}"),
    }
    let state = worker.handle.state().expect("state");
    assert_eq!(state.master_url, Some(master.url()));
    assert_eq!(
        worker.handle.url(),
        format!("ember://Worker@127.0.0.1:{port}")
    );
    // Retries may cross the answer on a slow machine, but none follows the registration:
    // every registration precedes the first heartbeat (one connection, FIFO).
    let events = master.events();
    let first_heartbeat = events.iter().position(is_heartbeat).unwrap_or(0);
    assert!(
        !events[first_heartbeat..].iter().any(is_register),
        "no retries once registered: {events:?}"
    );
}

#[test]
fn retries_while_the_master_is_down_and_registers_once_it_is_up() {
    let mut down = RefusingPort::start();
    let port = down.port();
    let worker = TestWorker::start(vec![RpcAddress::new("127.0.0.1", port)], &[]);
    // Two connections mean the first try and at least one retry reached the port.
    wait_until("two registration attempts", DEADLINE, || {
        down.accepted() >= 2
    });
    down.close();
    let master = FakeMaster::start_on(port);
    master.wait_for("registration", is_register);
    wait_until("the worker to know its master", DEADLINE, || {
        worker.handle.state().map(|s| s.master_url) == Ok(Some(master.url()))
    });
    master.wait_for("a heartbeat", is_heartbeat);
}

#[test]
fn a_standby_master_is_retried_until_it_accepts() {
    let master = FakeMaster::start();
    master.answer(Answer::Standby);
    let worker = TestWorker::start(vec![master.address()], &[]);
    master.wait_for_nth(3, "three tries", is_register);
    assert_eq!(worker.handle.state().expect("state").master_url, None);
    assert_eq!(
        master.count(is_heartbeat),
        0,
        "no heartbeats before registration"
    );
    master.answer(Answer::Accept);
    master.wait_for("a heartbeat", is_heartbeat);
    assert_eq!(
        worker.handle.state().expect("state").master_url,
        Some(master.url())
    );
}

#[test]
fn reconnect_worker_makes_it_register_again() {
    let master = FakeMaster::start();
    let worker = TestWorker::start(vec![master.address()], &[]);
    // The latest state follows the registration: the worker is registered by then (a
    // ReconnectWorker during an attempt is ignored, as in Spark).
    master.wait_for("registration", is_latest_state);
    master.tell_worker(WorkerMessage::ReconnectWorker {
        master_url: master.url(),
    });
    master.wait_for_nth(2, "a second registration", is_register);
    master.wait_for_nth(2, "a second latest state", is_latest_state);
    let heartbeats = master.count(is_heartbeat);
    master.wait_for_nth(
        heartbeats + 2,
        "heartbeats after re-registering",
        is_heartbeat,
    );
    assert_eq!(
        worker.handle.state().expect("state").master_url,
        Some(master.url())
    );
}

#[test]
fn a_refused_registration_stops_the_worker_with_a_failure() {
    let master = FakeMaster::start();
    master.answer(Answer::Refuse(
        "Attempted to re-register worker at same address: 127.0.0.1:1".to_string(),
    ));
    let worker = TestWorker::start(vec![master.address()], &[]);
    let exit = worker.handle.await_termination();
    assert_eq!(
        exit,
        WorkerExit::Failed(
            "Worker registration failed: Attempted to re-register worker at same address: \
             127.0.0.1:1"
                .to_string()
        )
    );
    assert_eq!(exit.code(), 1);
}

#[test]
fn a_lost_master_is_registered_with_again_when_it_comes_back() {
    let first = FakeMaster::start();
    let address = first.address();
    let worker = TestWorker::start(vec![address.clone()], &[]);
    first.wait_for("registration", is_register);
    first.wait_for("a heartbeat", is_heartbeat);
    first.stop();
    // The same master comes back on the same port (a restart).
    let second = FakeMaster::start_on(address.port());
    second.wait_for("re-registration", is_register);
    second.wait_for("heartbeats to the new one", is_heartbeat);
    assert_eq!(
        worker.handle.state().expect("state").master_url,
        Some(address.to_ember_url())
    );
}

#[test]
fn a_master_change_is_followed_and_answered_with_the_worker_state() {
    let old = FakeMaster::start();
    let new = FakeMaster::start();
    let worker = TestWorker::start(vec![old.address()], &[]);
    old.wait_for("registration", is_latest_state);
    // The new master reaches the worker through a ref it looks up, as after a failover.
    new.connect_to_worker(&worker.handle.url());
    new.tell_worker(WorkerMessage::MasterChanged {
        master: new.master_ref(),
        master_web_ui_url: "http://127.0.0.1:8080".to_string(),
    });
    new.wait_for(
        "the scheduler state",
        |e| matches!(e, Event::SchedulerState { executors } if executors.is_empty()),
    );
    assert_eq!(
        worker.handle.state().expect("state").master_url,
        Some(new.url())
    );
    new.wait_for("heartbeats to the new master", is_heartbeat);
}
