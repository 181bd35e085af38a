//! `ember-submit`'s questions to the master about cluster-mode drivers (Spark's
//! `deploy.Client`): submit, kill, status, and following a driver until it ends.

use std::path::Path;
use std::time::{Duration, Instant};

use rpc_env::{EndpointRef, RpcAddress, RpcConf, RpcEnv, RpcEnvConfig, RpcError};

use crate::messages::{
    DriverDescription, DriverState, DriverStatusResponse, KillDriverResponse, MasterAsk,
    MasterProtocol, SubmitDriverResponse, MASTER_ENDPOINT_NAME, PROGRAM_STORE_ENDPOINT_NAME,
};
use crate::DriverId;

use super::upload::{upload_program, UploadError};
use super::SubmitError;

/// How a master that does not lead begins its refusals.
pub(super) const NOT_ALIVE: &str = "Current state is not alive";

/// Status asks in a row that may fail while following a driver before giving up.
const MAX_STATUS_FAILURES: u32 = 3;

/// A client-mode RPC environment with refs to the masters. Each request goes to the
/// masters in turn until one that leads answers; standbys' refusals are skipped, as
/// Spark's `deploy.Client` ignores them. Dropping it shuts the environment down.
pub struct MasterClient {
    env: RpcEnv,
    masters: Vec<(RpcAddress, EndpointRef<MasterProtocol>)>,
}

impl std::fmt::Debug for MasterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masters: Vec<String> = self.masters.iter().map(|(a, _)| a.to_string()).collect();
        f.debug_struct("MasterClient")
            .field("masters", &masters)
            .finish()
    }
}

impl MasterClient {
    /// A client of `masters`, its RPC environment built with `conf` (`ember.rpc.*`).
    ///
    /// # Errors
    ///
    /// No masters, or the environment cannot start (a bad setting, no threads).
    pub fn new(masters: &[RpcAddress], conf: &RpcConf) -> Result<MasterClient, SubmitError> {
        if masters.is_empty() {
            return Err(SubmitError::usage("No master given"));
        }
        let env = RpcEnv::create(RpcEnvConfig::client("ember-submit").with_conf(conf.clone()))
            .map_err(|e| SubmitError::new(format!("Cannot start the RPC client: {e}")))?;
        let masters = masters
            .iter()
            .map(|a| (a.clone(), env.endpoint_ref_at(a, MASTER_ENDPOINT_NAME)))
            .collect();
        Ok(MasterClient { env, masters })
    }

    /// Asks the masters in turn until one answers without `refused`; the last refusal when
    /// all refuse, or an error naming each master when none answers.
    fn ask_leader<T>(
        &self,
        ask: impl Fn(&EndpointRef<MasterProtocol>) -> Result<T, RpcError>,
        refused: impl Fn(&T) -> bool,
    ) -> Result<T, SubmitError> {
        let mut refusal = None;
        let mut errors = Vec::new();
        for (address, master) in &self.masters {
            match ask(master) {
                Ok(answer) if refused(&answer) => refusal = Some(answer),
                Ok(answer) => return Ok(answer),
                Err(e) => errors.push(format!("{}: {e}", address.to_ember_url())),
            }
        }
        refusal.ok_or_else(|| none_available(&errors))
    }

    /// `RequestSubmitDriver`: queue a driver. When the description has a program digest,
    /// the program (at the command's path) is first uploaded to the master asked, unless
    /// its store already holds it.
    ///
    /// # Errors
    ///
    /// No master answered, a master's program store refused the upload, or the program
    /// cannot be read.
    pub fn submit(
        &self,
        description: &DriverDescription,
    ) -> Result<SubmitDriverResponse, SubmitError> {
        let Some(digest) = &description.program_digest else {
            return self.ask_leader(
                |m| Self::ask_submit(m, description),
                |r: &SubmitDriverResponse| !r.success && r.message.starts_with(NOT_ALIVE),
            );
        };
        let program = Path::new(&description.command.program);
        let mut refusal = None;
        let mut errors = Vec::new();
        for (address, master) in &self.masters {
            let store = self
                .env
                .endpoint_ref_at(address, PROGRAM_STORE_ENDPOINT_NAME);
            match upload_program(&store, program, digest) {
                Ok(()) => {}
                Err(UploadError::Refused(why)) | Err(UploadError::Local(why)) => {
                    return Err(SubmitError::new(format!(
                        "Cannot upload {} to {}: {why}",
                        program.display(),
                        address.to_ember_url()
                    )));
                }
                Err(UploadError::Unreachable(e)) => {
                    errors.push(format!("{}: {e}", address.to_ember_url()));
                    continue;
                }
                Err(UploadError::NotLeading(message)) => {
                    // As a standby's refusal of the submission itself would read.
                    refusal = Some(SubmitDriverResponse {
                        success: false,
                        driver_id: None,
                        message,
                    });
                    continue;
                }
            }
            match Self::ask_submit(master, description) {
                Ok(r) if !r.success && r.message.starts_with(NOT_ALIVE) => refusal = Some(r),
                Ok(r) => return Ok(r),
                Err(e) => errors.push(format!("{}: {e}", address.to_ember_url())),
            }
        }
        refusal.ok_or_else(|| none_available(&errors))
    }

    fn ask_submit(
        master: &EndpointRef<MasterProtocol>,
        description: &DriverDescription,
    ) -> Result<SubmitDriverResponse, RpcError> {
        master.ask_sync(|reply| MasterAsk::RequestSubmitDriver {
            description: description.clone(),
            reply,
        })
    }

    /// `RequestKillDriver`.
    ///
    /// # Errors
    ///
    /// No master answered.
    pub fn kill(&self, driver_id: &DriverId) -> Result<KillDriverResponse, SubmitError> {
        self.ask_leader(
            |m| {
                m.ask_sync(|reply| MasterAsk::RequestKillDriver {
                    driver_id: driver_id.clone(),
                    reply,
                })
            },
            |r: &KillDriverResponse| !r.success && r.message.starts_with(NOT_ALIVE),
        )
    }

    /// `RequestDriverStatus`.
    ///
    /// # Errors
    ///
    /// No master answered.
    pub fn status(&self, driver_id: &DriverId) -> Result<DriverStatusResponse, SubmitError> {
        self.ask_leader(
            |m| {
                m.ask_sync(|reply| MasterAsk::RequestDriverStatus {
                    driver_id: driver_id.clone(),
                    reply,
                })
            },
            |r: &DriverStatusResponse| {
                !r.found
                    && r.exception
                        .as_deref()
                        .is_some_and(|e| e.starts_with(NOT_ALIVE))
            },
        )
    }

    /// Asks for the driver's status every `poll` until it has ended, calling `changed` with
    /// each new state; returns the last status.
    ///
    /// # Errors
    ///
    /// The master does not know the driver (`ERROR: Cluster master did not recognize
    /// <id>`), no master answered three times in a row, or `timeout`
    /// passed first.
    pub fn wait_for_driver(
        &self,
        driver_id: &DriverId,
        poll: Duration,
        timeout: Option<Duration>,
        mut changed: impl FnMut(&DriverStatusResponse),
    ) -> Result<DriverStatusResponse, SubmitError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut last_state = None;
        let mut failures = 0;
        loop {
            match self.status(driver_id) {
                Ok(status) if !status.found => {
                    return Err(SubmitError::new(format!(
                        "ERROR: Cluster master did not recognize {driver_id}"
                    )));
                }
                Ok(status) => {
                    failures = 0;
                    if status.state != last_state {
                        last_state = status.state;
                        changed(&status);
                    }
                    if status.state.is_some_and(DriverState::is_finished) {
                        return Ok(status);
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures >= MAX_STATUS_FAILURES {
                        return Err(e);
                    }
                }
            }
            if let (Some(deadline), Some(timeout)) = (deadline, timeout) {
                if Instant::now() >= deadline {
                    let state = last_state.map_or("unknown", DriverState::as_str);
                    return Err(SubmitError::new(format!(
                        "Gave up waiting for driver {driver_id} after {timeout:?}; \
                         its state is {state}"
                    )));
                }
            }
            std::thread::sleep(poll);
        }
    }
}

/// The error when no master answered: each master's URL and its error.
fn none_available(errors: &[String]) -> SubmitError {
    SubmitError::new(format!(
        "No master is available ({}), exiting.",
        errors.join("; ")
    ))
}

impl Drop for MasterClient {
    fn drop(&mut self) {
        self.env.shutdown();
    }
}
