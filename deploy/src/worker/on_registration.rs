//! The worker's side of registration: performing what the registration machine
//! (`registration.rs`) asks for, and the master's answers. Each registration is checked
//! beside it (`RpcEnv::check_endpoint`), so a worker pointed at a port where no master
//! answers says so instead of retrying in silence.

use rpc_env::{EndpointRef, RpcAddress, RpcError};

use crate::messages::{
    MasterMessage, MasterProtocol, WorkerControl, WorkerRegistration, MASTER_ENDPOINT_NAME,
};

use super::registration::{Action, Targets};
use super::{Ctx, Worker};

impl Worker {
    /// Performs what the registration machine asked for.
    pub(super) fn perform(&mut self, ctx: &Ctx<'_>, actions: Vec<Action>, give_up_reason: &str) {
        for action in actions {
            match action {
                Action::Register(Targets::All) => {
                    for master in self.who.masters.clone() {
                        self.send_register(ctx, &master);
                    }
                }
                Action::Register(Targets::Known(master)) => self.send_register(ctx, &master),
                Action::ArmRetryTimer(interval) => {
                    self.retry_timer =
                        self.ticker(ctx, "worker-registration-retry", interval, || {
                            WorkerControl::ReregisterWithMaster
                        });
                }
                Action::CancelRetryTimer => self.retry_timer = None,
                Action::StartTimers => self.start_timers(ctx),
                Action::SendLatestState => {
                    let msg = MasterMessage::WorkerLatestState {
                        id: self.who.id.clone(),
                        executors: self.executor_descriptions(),
                        driver_ids: self.drivers.keys().cloned().collect(),
                    };
                    self.send_to_master(msg);
                }
                Action::GiveUp => self.give_up(ctx, give_up_reason),
            }
        }
    }

    pub(super) fn send_register(&self, ctx: &Ctx<'_>, master: &RpcAddress) {
        log::info!("Connecting to master {}...", master.host_port());
        let master_ref: EndpointRef<MasterProtocol> =
            ctx.env().endpoint_ref_at(master, MASTER_ENDPOINT_NAME);
        let registration = WorkerRegistration {
            id: self.who.id.clone(),
            host: self.who.address.host().to_string(),
            port: self.who.address.port(),
            worker: ctx.self_ref().clone(),
            cores: self.who.cores,
            memory_mib: self.who.memory_mib,
            web_ui_url: self.who.web_ui_url.clone(),
            master_address: master.clone(),
        };
        let sent = master_ref.send(MasterMessage::RegisterWorker { registration });
        if let Err(e) = sent {
            log::warn!("Failed to connect to master {}: {e}", master.host_port());
        }
        // A registration is one-way: whether anything answers as a master there is asked
        // beside it, so that a wrong port is said instead of retried in silence.
        let me = ctx.control_ref();
        let checked = master.clone();
        ctx.env()
            .check_endpoint(master, MASTER_ENDPOINT_NAME)
            .on_complete(move |answer| {
                // A worker that is stopping has nothing to say about its masters.
                if !matches!(answer, Err(RpcError::EnvStopped)) {
                    let _ = me.send(WorkerControl::MasterChecked {
                        master: checked,
                        answer: answer.map_err(|e| e.to_string()),
                    });
                }
            });
    }

    /// `MasterChecked`: what the env at a master's address said to the check beside a
    /// registration. Said only while this worker is not registered with it.
    pub(super) fn master_checked(&self, master: &RpcAddress, answer: Result<bool, String>) {
        if self.registration.master() == Some(master) {
            return;
        }
        let url = master.to_ember_url();
        match answer {
            Ok(true) => {}
            Ok(false) => log::warn!(
                "{url} is an Ember process but not a master (no {MASTER_ENDPOINT_NAME} \
                 endpoint): is it a worker's or a driver's port? Still trying to register"
            ),
            Err(reason) => log::warn!(
                "{url} does not answer as an Ember master ({reason}): is the master up, and \
                 is that its port? Still trying to register"
            ),
        }
    }

    pub(super) fn registered_worker(
        &mut self,
        ctx: &Ctx<'_>,
        master: EndpointRef<MasterProtocol>,
        master_address: RpcAddress,
        duplicate: bool,
    ) {
        let address = master
            .rpc_address()
            .cloned()
            .unwrap_or(master_address.clone());
        log::info!(
            "Successfully registered with master {}",
            address.to_ember_url()
        );
        if duplicate {
            log::warn!("Duplicate registration at master {master_address}");
        }
        self.master = Some(master);
        let actions = self.registration.registered(address);
        self.perform(ctx, actions, "");
    }

    pub(super) fn register_worker_failed(&mut self, ctx: &Ctx<'_>, message: &str) {
        let actions = self.registration.register_failed();
        if actions.is_empty() {
            log::info!("Ignoring a registration failure ({message}): already registered");
        }
        self.perform(
            ctx,
            actions,
            &format!("Worker registration failed: {message}"),
        );
    }

    pub(super) fn reconnect_worker(&mut self, ctx: &Ctx<'_>, master_url: &str) {
        log::info!("Master with url {master_url} requested this worker to reconnect.");
        let actions = self.registration.register();
        self.perform(ctx, actions, "");
    }

    pub(super) fn master_changed(
        &mut self,
        ctx: &Ctx<'_>,
        master: EndpointRef<MasterProtocol>,
        web_ui_url: &str,
    ) {
        let Some(address) = master.rpc_address().cloned() else {
            log::warn!("Ignoring a master change to {master}, which has no address");
            return;
        };
        log::info!(
            "Master has changed, new master is at {} ({web_ui_url})",
            address.to_ember_url()
        );
        self.master = Some(master);
        let actions = self.registration.master_changed(address);
        self.perform(ctx, actions, "");
        self.send_to_master(MasterMessage::WorkerSchedulerStateResponse {
            id: self.who.id.clone(),
            executors: self.executor_descriptions(),
            driver_ids: self.drivers.keys().cloned().collect(),
        });
    }
}
