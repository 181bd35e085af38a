//! The daemons' open-file limit: raised from its soft value to its hard one at start, as Go
//! does for every program. Each connection takes a descriptor, and the common soft default
//! of 1,024 is below `ember.rpc.io.maxConnections` (4,096): a master at the soft limit
//! would stop accepting (then back off and recover, `rpc-env/src/io_loop/listener.rs`)
//! long before its connection cap.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises this process's soft limit on open files to its hard limit; logs what it did. A
/// failure is logged and ignored: the daemon runs with the limit it has.
pub fn raise_open_file_limit() {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => log::info!("Raised the open-file limit from {soft} to {hard}"),
            Err(e) => log::warn!("Could not raise the open-file limit from {soft}: {e}"),
        },
        Ok(_) => {}
        Err(e) => log::warn!("Could not read the open-file limit: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        raise_open_file_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
        assert_eq!(soft, hard);
    }
}
