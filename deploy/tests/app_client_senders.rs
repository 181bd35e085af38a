//! Who may tell a real app client what: a peer that is not the master the application
//! registered with cannot end it (`ApplicationRemoved`) or feed it executors; the refusals
//! are counted and nothing reaches the listener, while the master's own removal does.

pub mod master_support;
pub mod worker_util;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember_deploy::client::{AppClient, AppClientConfig, AppClientListener};
use ember_deploy::messages::{
    AppClientMessage, AppClientProtocol, MasterAsk, APP_CLIENT_ENDPOINT_NAME,
};
use ember_deploy::{AppId, WorkerId};
use master_support::*;

#[derive(Default)]
struct Seen {
    connected: Option<AppId>,
    dead: Option<String>,
    executors_added: usize,
}

struct Listener(Arc<Mutex<Seen>>);

impl Listener {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AppClientListener for Listener {
    fn connected(&mut self, app_id: &AppId) {
        self.seen().connected = Some(app_id.clone());
    }
    fn disconnected(&mut self) {}
    fn dead(&mut self, reason: &str) {
        self.seen().dead = Some(reason.to_string());
    }
    fn executor_added(&mut self, _: u32, _: &WorkerId, _: &str, _: u32) {
        self.seen().executors_added += 1;
    }
    fn executor_removed(&mut self, _: u32, _: &str, _: Option<i32>, _: Option<&str>) {}
    fn worker_removed(&mut self, _: &WorkerId, _: &str, _: &str) {}
}

#[test]
fn only_its_master_may_end_the_application_or_add_executors() {
    let master = master_with(&[]);
    let driver_env = server_env_with("driver", small_conf());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let client = AppClient::new(
        AppClientConfig {
            masters: vec![master.address()],
            description: worker_util::shell_app("exec sleep 60"),
            registration_timeout: Duration::from_secs(5),
            registration_retries: 3,
            starvation_timeout: Duration::ZERO,
        },
        Box::new(Listener(Arc::clone(&seen))),
    );
    let refused = client.refused_messages();
    driver_env
        .setup_endpoint(APP_CLIENT_ENDPOINT_NAME, client)
        .expect("app client");
    let lock = || seen.lock().unwrap_or_else(|e| e.into_inner());
    worker_util::wait_until("the application registers", DEADLINE, || {
        lock().connected.is_some()
    });
    let app_id = lock().connected.clone().expect("registered");

    let intruder = server_env_with("intruder", small_conf());
    let driver_address = driver_env.address().cloned().expect("an address");
    let app_client =
        intruder.endpoint_ref_at::<AppClientProtocol>(&driver_address, APP_CLIENT_ENDPOINT_NAME);
    app_client
        .send(AppClientMessage::ExecutorAdded {
            id: 0,
            worker_id: WorkerId("worker-intruder".to_string()),
            host_port: "10.0.0.66:1".to_string(),
            cores: 64,
            memory_mib: 1 << 18,
        })
        .expect("sent");
    app_client
        .send(AppClientMessage::ApplicationRemoved {
            message: "from an intruder".to_string(),
        })
        .expect("sent");
    worker_util::wait_until("both are refused", DEADLINE, || {
        refused.load(Ordering::Relaxed) == 2
    });
    assert!(lock().dead.is_none(), "the intruder did not end it");
    assert_eq!(lock().executors_added, 0);

    // The master's own removal is obeyed.
    let killed = master
        .master_ref()
        .ask_sync(|reply| MasterAsk::RequestKillApplication {
            app_id: app_id.clone(),
            reply,
        })
        .expect("answered");
    assert!(killed);
    worker_util::wait_until("the master's removal ends it", DEADLINE, || {
        lock().dead.is_some()
    });
    let dead = lock().dead.clone().expect("dead");
    assert!(!dead.contains("intruder"), "{dead}");
    driver_env.shutdown();
    intruder.shutdown();
    master.shutdown();
}
