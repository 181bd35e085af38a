//! `ember-submit`: runs an application binary against a master.
//!
//! ```text
//! ember-submit --master ember://host:port [--deploy-mode client|cluster] [--name NAME]
//!              [--conf KEY=VALUE]... [--driver-memory 1g] [--driver-cores 1] [--supervise]
//!              <app-binary> [app arguments...]
//! ember-submit --kill <driver-id> --master ember://host:port
//! ember-submit --status <driver-id> --master ember://host:port
//! ```
//!
//! Client mode becomes the application (exec) with `EMBER_MASTER` and `EMBER_CONF` set, so
//! its exit code is the application's. Cluster mode submits it to the master as a driver,
//! prints `Driver successfully submitted as <id>` and each `State of driver <id> is
//! <STATE>`, and exits 0 when the driver FINISHED, 1 otherwise. Bad flags print the usage
//! and exit 1. See `ember_deploy::submit`.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;
use std::time::Duration;

use ember_deploy::messages::{DriverState, DriverStatusResponse};
use ember_deploy::submit::{
    parse_submit_args, DeployMode, MasterClient, SubmitArgs, SubmitCommand, SubmitError,
    SUBMIT_USAGE,
};
use ember_deploy::DriverId;

/// How often cluster mode asks for the driver's state.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,rpc_env=error"),
    )
    .init();
    let command = match parse_submit_args(std::env::args_os().skip(1), |k| std::env::var(k).ok()) {
        Ok(command) => command,
        Err(e) => return fail(&e),
    };
    let outcome = match command {
        SubmitCommand::Help => {
            print!("{SUBMIT_USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        SubmitCommand::Submit(args) => match args.deploy_mode {
            DeployMode::Client => Err(run_client(&args)),
            DeployMode::Cluster => run_cluster(&args),
        },
        SubmitCommand::Kill {
            masters,
            driver_id,
            conf,
        } => MasterClient::new(&masters, &conf).and_then(|client| {
            let response = client.kill(&driver_id)?;
            println!("{}", response.message);
            Ok(exit_code(response.success))
        }),
        SubmitCommand::Status {
            masters,
            driver_id,
            conf,
        } => MasterClient::new(&masters, &conf).and_then(|client| {
            let status = client.status(&driver_id)?;
            if !status.found {
                return Err(SubmitError::new(format!(
                    "ERROR: Cluster master did not recognize {driver_id}"
                )));
            }
            report(&driver_id, &status);
            Ok(ExitCode::SUCCESS)
        }),
    };
    outcome.unwrap_or_else(|e| fail(&e))
}

/// Prints the error (as `Error: ...` and the usage for a bad command line); exit code 1.
fn fail(error: &SubmitError) -> ExitCode {
    if error.show_usage() {
        eprintln!("Error: {error}");
        eprint!("{SUBMIT_USAGE}");
    } else {
        eprintln!("{error}");
    }
    ExitCode::from(1)
}

fn exit_code(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Becomes the application; returns only if it cannot be started.
fn run_client(args: &SubmitArgs) -> SubmitError {
    let error = args.client_command().exec();
    SubmitError::new(format!(
        "Cannot run program {}: {error}",
        args.app.display()
    ))
}

fn run_cluster(args: &SubmitArgs) -> Result<ExitCode, SubmitError> {
    let description = args.driver_description()?;
    let client = MasterClient::new(&args.masters, &args.conf)?;
    let response = client.submit(&description)?;
    let driver_id = match response.driver_id {
        Some(id) if response.success => id,
        _ => return Err(SubmitError::new(response.message)),
    };
    println!("{}", response.message);
    if !args.wait {
        report(&driver_id, &client.status(&driver_id)?);
        return Ok(ExitCode::SUCCESS);
    }
    let last = client.wait_for_driver(&driver_id, POLL_INTERVAL, args.wait_timeout, |status| {
        report(&driver_id, status)
    })?;
    Ok(exit_code(last.state == Some(DriverState::Finished)))
}

/// Spark's `deploy.Client` report of a driver's state.
fn report(driver_id: &DriverId, status: &DriverStatusResponse) {
    let state = status.state.map_or("UNKNOWN", DriverState::as_str);
    println!("State of driver {driver_id} is {state}");
    if let (Some(DriverState::Running), Some(worker)) = (status.state, &status.worker_id) {
        println!("Driver running on worker {worker}");
        // Its output is in the worker's work dir, `<work>/<driver-id>/stdout` and `stderr`,
        // which the worker's status page serves.
        match &status.worker_web_ui_url {
            Some(ui) => println!(
                "Driver output: {ui}/logPage/?driverId={driver_id}&logType=stdout \
                 (and logType=stderr)"
            ),
            None => println!("Driver output: work/{driver_id}/stdout and stderr on that worker"),
        }
    }
    if let Some(exception) = &status.exception {
        println!("Exception from cluster was: {exception}");
    }
}
