//! The master's durable records: what of a worker, an application and a driver is
//! persisted (Spark's serialized `WorkerInfo`, `ApplicationInfo`, `DriverInfo`), their
//! keys, and their encoding.
//!
//! Only what a restarted master cannot learn again is stored. Endpoint refs cannot be
//! stored: their addresses are, and refs are rebuilt from them. Runtime fields (state,
//! executors, cores used, heartbeats, a driver's worker) are not: recovery starts every
//! stored worker and application UNKNOWN and every driver SUBMITTED, and learns the rest
//! from the answers to `MasterChanged`.
//!
//! A record is one format-version byte followed by the record's [`rpc_env::Encode`]
//! encoding, so that a later format is recognised as such instead of misread.

use bytes::{BufMut, Bytes, BytesMut};
use rpc_env::{decode_from, message, Decode, Encode, EndpointAddress, RpcAddress};

use crate::ids::{AppId, DriverId, WorkerId};
use crate::messages::{ApplicationDescription, DriverDescription};

/// The format version this master writes and reads.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// The key prefix of workers.
pub(crate) const WORKER_PREFIX: &str = "worker_";
/// The key prefix of applications.
pub(crate) const APP_PREFIX: &str = "app_";
/// The key prefix of drivers.
pub(crate) const DRIVER_PREFIX: &str = "driver_";

/// The key a worker is stored under.
pub(crate) fn worker_key(id: &WorkerId) -> String {
    format!("{WORKER_PREFIX}{id}")
}

/// The key an application is stored under.
pub(crate) fn app_key(id: &AppId) -> String {
    format!("{APP_PREFIX}{id}")
}

/// The key a driver is stored under.
pub(crate) fn driver_key(id: &DriverId) -> String {
    format!("{DRIVER_PREFIX}{id}")
}

message! {
    /// A registered worker.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct StoredWorker {
        /// Its id.
        pub(crate) id: WorkerId,
        /// The host it registered with.
        pub(crate) host: String,
        /// The port it registered with.
        pub(crate) port: u16,
        /// Its endpoint: where `MasterChanged` goes.
        pub(crate) endpoint: EndpointAddress,
        /// The address the master keys it by (its env's).
        pub(crate) address: RpcAddress,
        /// Its cores.
        pub(crate) cores: u32,
        /// Its memory in MiB.
        pub(crate) memory_mib: u32,
    }
}

message! {
    /// A registered application.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct StoredApp {
        /// Its id.
        pub(crate) id: AppId,
        /// What it asked for.
        pub(crate) description: ApplicationDescription,
        /// Its driver's app client endpoint: where `MasterChanged` goes.
        pub(crate) driver: EndpointAddress,
        /// The address the master keys it by (its driver env's).
        pub(crate) address: RpcAddress,
        /// When it registered, in milliseconds since the Unix epoch.
        pub(crate) submitted_ms: u64,
        /// The id its next executor gets.
        pub(crate) next_executor_id: u32,
    }
}

message! {
    /// A driver submitted in cluster mode.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct StoredDriver {
        /// Its id.
        pub(crate) id: DriverId,
        /// What to run.
        pub(crate) description: DriverDescription,
        /// When it was submitted, in milliseconds since the Unix epoch.
        pub(crate) submitted_ms: u64,
    }
}

/// A record's bytes: the format version, then the record.
pub(crate) fn encode_record<T: Encode>(record: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_u8(FORMAT_VERSION);
    record.encode(&mut buf);
    buf.to_vec()
}

/// A record read back, or why the bytes are not one this master can read.
pub(crate) fn decode_record<T: Decode>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        None => Err("empty record".to_string()),
        Some((&FORMAT_VERSION, body)) => {
            decode_from(Bytes::copy_from_slice(body)).map_err(|e| format!("undecodable: {e}"))
        }
        Some((&version, _)) => Err(format!(
            "format version {version}; this master reads version {FORMAT_VERSION}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Command;
    use std::collections::BTreeMap;

    fn command() -> Command {
        Command {
            program: "run".into(),
            args: vec!["--x".into()],
            env: BTreeMap::from([("K".to_string(), "V".to_string())]),
        }
    }

    fn worker() -> StoredWorker {
        StoredWorker {
            id: WorkerId("worker-20240101000000-10.0.0.1-7078".into()),
            host: "10.0.0.1".into(),
            port: 7078,
            endpoint: EndpointAddress::new(Some(RpcAddress::new("10.0.0.1", 7078)), "Worker"),
            address: RpcAddress::new("10.0.0.1", 7078),
            cores: 16,
            memory_mib: 8192,
        }
    }

    /// PersistenceEngineSuite: a stored worker reads back equal.
    #[test]
    fn records_round_trip() {
        let w = worker();
        assert_eq!(decode_record::<StoredWorker>(&encode_record(&w)), Ok(w));
        let app = StoredApp {
            id: AppId("app-20240101000000-0000".into()),
            description: ApplicationDescription {
                name: "pi".into(),
                max_cores: Some(4),
                memory_per_executor_mib: 1024,
                cores_per_executor: None,
                command: command(),
                user: "me".into(),
                program_digest: None,
            },
            driver: EndpointAddress::new(Some(RpcAddress::new("d", 1)), "AppClient"),
            address: RpcAddress::new("d", 1),
            submitted_ms: 1_700_000_000_000,
            next_executor_id: 3,
        };
        assert_eq!(decode_record::<StoredApp>(&encode_record(&app)), Ok(app));
        let driver = StoredDriver {
            id: DriverId("driver-20240101000000-0000".into()),
            description: DriverDescription {
                memory_mib: 1024,
                cores: 1,
                supervise: true,
                command: command(),
                program_digest: None,
            },
            submitted_ms: 5,
        };
        assert_eq!(
            decode_record::<StoredDriver>(&encode_record(&driver)),
            Ok(driver)
        );
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        let mut bytes = encode_record(&worker());
        bytes[0] = 2;
        let err = decode_record::<StoredWorker>(&bytes).expect_err("version 2");
        assert!(err.contains("format version 2"), "{err}");
        assert!(decode_record::<StoredWorker>(&[]).is_err());
        let mut bytes = encode_record(&worker());
        bytes.truncate(bytes.len() - 1);
        assert!(decode_record::<StoredWorker>(&bytes).is_err());
        assert!(decode_record::<StoredApp>(&encode_record(&worker())).is_err());
    }
}
