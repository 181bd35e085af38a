//! The master's driver handlers (cluster deploy mode): submit, kill, status, state
//! changes, launch, relaunch.

use std::time::SystemTime;

use rpc_env::EndpointError;

use crate::ids::{DriverId, WorkerId};
use crate::messages::{
    DriverDescription, DriverState, DriverStatusResponse, KillDriverResponse, SubmitDriverResponse,
    WorkerMessage, PROGRAM_STORE_FILE_BASE,
};

use super::drivers::DriverInfo;
use super::effects::Effects;
use super::endpoint::Master;
use super::stored::driver_key;

/// Spark's `BACKUP_STANDALONE_MASTER_PREFIX`: how refusals of a master that does not lead
/// begin.
const NOT_ALIVE: &str = "Current state is not alive";

/// `RequestSubmitDriver` to a master that does not lead.
pub(super) fn refuse_submit(phase: &str) -> SubmitDriverResponse {
    SubmitDriverResponse {
        success: false,
        driver_id: None,
        message: format!(
            "{NOT_ALIVE}: {phase}. Can only accept driver submissions in ALIVE state."
        ),
    }
}

/// `RequestKillDriver` to a master that does not lead.
pub(super) fn refuse_kill(phase: &str, driver_id: DriverId) -> KillDriverResponse {
    KillDriverResponse {
        driver_id,
        success: false,
        message: format!("{NOT_ALIVE}: {phase}. Can only kill drivers in ALIVE state."),
    }
}

/// `RequestDriverStatus` to a master that does not lead.
pub(super) fn refuse_status(phase: &str) -> DriverStatusResponse {
    DriverStatusResponse {
        found: false,
        state: None,
        worker_id: None,
        worker_web_ui_url: None,
        exception: Some(format!(
            "{NOT_ALIVE}: {phase}. Can only request driver status in ALIVE state."
        )),
    }
}

impl Master {
    /// `RequestSubmitDriver` while ALIVE: store it, queue it and try to place it now. The
    /// answer says it was accepted, not that it runs ("fire and forget", as in Spark).
    pub(super) fn submit_driver(
        &mut self,
        description: DriverDescription,
    ) -> (SubmitDriverResponse, Effects) {
        log::info!("Driver submitted {}", description.command.program);
        if let Some(refused) = self.refuse_unstored_program(&description) {
            return (refused, Effects::none());
        }
        self.pin_program(&description);
        let now = SystemTime::now();
        let id = self.ids.next_driver_id(now);
        self.drivers
            .insert(DriverInfo::new(id.clone(), description));
        self.persist_driver(&id);
        let response = SubmitDriverResponse {
            success: true,
            message: format!("Driver successfully submitted as {id}"),
            driver_id: Some(id),
        };
        (response, self.schedule())
    }

    /// A submission whose uploaded program this master does not hold: refused, so that no
    /// worker is sent to fetch what nobody serves.
    fn refuse_unstored_program(
        &self,
        description: &DriverDescription,
    ) -> Option<SubmitDriverResponse> {
        let digest = description.program_digest.as_ref()?;
        let held = self
            .programs
            .as_ref()
            .is_some_and(|store| store.lock().holds(digest));
        if held {
            return None;
        }
        let message = format!(
            "Refused the driver: its program ({} bytes, SHA-256 {:?}) is not in this master's \
             program store; upload it first",
            digest.size, digest.sha256
        );
        log::warn!("{message}");
        Some(SubmitDriverResponse {
            success: false,
            driver_id: None,
            message,
        })
    }

    /// The master is ALIVE: its program store takes uploads from now on.
    pub(super) fn accept_uploads(&self) {
        if let Some(store) = &self.programs {
            if let Err(e) = store.lock().start_accepting() {
                log::error!("The program store cannot be read: {e}");
            }
        }
    }

    /// A driver needing `description`'s uploaded program is known: keep the program.
    pub(super) fn pin_program(&self, description: &DriverDescription) {
        if let (Some(store), Some(digest)) = (&self.programs, &description.program_digest) {
            store.lock().pin(&digest.sha256);
        }
    }

    /// A driver that needed `description`'s uploaded program is gone.
    fn unpin_program(&self, description: &DriverDescription) {
        if let (Some(store), Some(digest)) = (&self.programs, &description.program_digest) {
            store.lock().unpin(&digest.sha256);
        }
    }

    /// `RequestKillDriver` while ALIVE: a waiting driver ends KILLED at once; a running one
    /// is killed by its worker, which reports the end with `DriverStateChanged`.
    pub(super) fn kill_driver(&mut self, driver_id: DriverId) -> (KillDriverResponse, Effects) {
        log::info!("Asked to kill driver {driver_id}");
        let mut out = Effects::none();
        let Some(driver) = self.drivers.get(&driver_id) else {
            let message = format!("Driver {driver_id} has already finished or does not exist");
            log::warn!("{message}");
            let response = KillDriverResponse {
                driver_id,
                success: false,
                message,
            };
            return (response, out);
        };
        if self.drivers.is_waiting(&driver_id) {
            self.drivers.dequeue(&driver_id);
            self.remove_driver(&driver_id, DriverState::Killed, None);
            out.append(self.schedule());
        } else if let Some(worker) = driver.worker().and_then(|w| self.workers.alive(w)) {
            out.tell_worker(
                worker.endpoint(),
                WorkerMessage::KillDriver {
                    driver_id: driver_id.clone(),
                },
            );
        }
        let message = format!("Kill request for {driver_id} submitted");
        log::info!("{message}");
        let response = KillDriverResponse {
            driver_id,
            success: true,
            message,
        };
        (response, out)
    }

    /// `RequestDriverStatus` while ALIVE: active and finished drivers are found.
    pub(super) fn driver_status(&self, driver_id: &DriverId) -> DriverStatusResponse {
        match self.drivers.find(driver_id) {
            Some(d) => DriverStatusResponse {
                found: true,
                state: Some(d.state()),
                worker_id: d.worker().cloned(),
                worker_web_ui_url: d
                    .worker()
                    .and_then(|w| self.workers.get(w))
                    .map(|w| w.web_ui_url().to_string())
                    .filter(|url| !url.is_empty()),
                exception: d.exception().map(str::to_string),
            },
            None => DriverStatusResponse {
                found: false,
                state: None,
                worker_id: None,
                worker_web_ui_url: None,
                exception: None,
            },
        }
    }

    /// `DriverStateChanged`: a driver that ended is removed; any other state is an error
    /// (Spark throws inside its loop; here the handler fails and the loop logs it).
    pub(super) fn driver_state_changed(
        &mut self,
        driver_id: &DriverId,
        state: DriverState,
        exception: Option<String>,
    ) -> Result<Effects, EndpointError> {
        if !state.is_finished() {
            return Err(EndpointError::msg(format!(
                "Received unexpected state update for driver {driver_id}: {}",
                state.as_str()
            )));
        }
        self.remove_driver(driver_id, state, exception);
        Ok(self.schedule())
    }

    /// Launches a placed driver: account it to the worker and send `LaunchDriver`.
    pub(super) fn launch_driver(&mut self, driver_id: &DriverId, worker_id: &WorkerId) -> Effects {
        let mut out = Effects::none();
        let (Some(driver), Some(worker)) = (
            self.drivers.get(driver_id),
            self.workers.alive_mut(worker_id),
        ) else {
            return out;
        };
        let mut description = driver.description().clone();
        if let Some(digest) = &mut description.program_digest {
            // This master serves it now, whichever master it was submitted to.
            digest.uri = format!("{}/{PROGRAM_STORE_FILE_BASE}/{}", self.url, digest.sha256);
        }
        log::info!("Launching driver {driver_id} on worker {worker_id}");
        worker.add_driver(driver_id.clone(), description.cores, description.memory_mib);
        let launch = WorkerMessage::LaunchDriver {
            driver_id: driver_id.clone(),
            description,
        };
        out.tell_worker(worker.endpoint(), launch);
        self.drivers.launch(driver_id, worker_id.clone());
        out
    }

    /// Spark's `removeDriver` without its `schedule()`: the driver ends in `state` and its
    /// worker's resources are freed.
    pub(super) fn remove_driver(
        &mut self,
        driver_id: &DriverId,
        state: DriverState,
        exception: Option<String>,
    ) {
        let Some(driver) = self.drivers.remove(driver_id, state, exception) else {
            rpc_env::limited_log!(
                log::Level::Warn,
                "Asked to remove unknown driver: {driver_id}"
            );
            return;
        };
        log::info!("Removing driver: {driver_id} ({})", state.as_str());
        self.unpin_program(driver.description());
        self.unpersist(&driver_key(driver_id));
        if let Some(worker) = driver.worker().and_then(|w| self.workers.alive_mut(w)) {
            worker.remove_driver(driver_id);
        }
    }

    /// Relaunches a supervised driver whose worker was lost, under a new id: the old
    /// process may still run behind a partition, and a late `DriverStateChanged` from it
    /// must not end the new one (SPARK-19900). The old id ends as RELAUNCHING.
    pub(super) fn relaunch_driver(&mut self, driver_id: &DriverId) {
        let Some(description) = self.drivers.get(driver_id).map(|d| d.description().clone()) else {
            return;
        };
        self.remove_driver(driver_id, DriverState::Relaunching, None);
        let now = SystemTime::now();
        let id = self.ids.next_driver_id(now);
        log::info!("Driver {driver_id} relaunched as {id}");
        self.pin_program(&description);
        self.drivers
            .insert(DriverInfo::new(id.clone(), description));
        self.persist_driver(&id);
    }
}
