//! Leader election: which of several masters leads (Spark's `LeaderElectionAgent`).
//!
//! The master polls its [`LeaderElection`] while it stands by (at start, then every
//! `ember.deploy.leaderPollInterval`) and takes the lead the first time a poll says so.
//! Three agents:
//!
//! - [`SingleNodeLeader`] (recovery mode NONE): always the leader, as Spark's
//!   `MonarchyLeaderAgent`;
//! - [`FileLockLeader`] (FILESYSTEM): the master holding an exclusive `flock` on
//!   `<recoveryDirectory>/leader.lock` (mode `0600`; a link, FIFO or other non-regular file
//!   there is an error, not followed or waited on) leads. The lock belongs to the open file, so the
//!   operating system releases it when the leader's process dies, however it dies, and a
//!   standby's next poll takes it;
//! - [`NeverLeader`] (`MasterConfig::standby`): stands by for ever, for tests and tools.
//!
//! An agent backed by a coordination service (ZooKeeper, as Spark uses) fits the same
//! trait: `try_acquire` reports whether its latch is held. Such an agent can also lose the
//! lead, which these three never do; the master will then need a revocation path (Spark
//! exits), which is why polling goes through one method a later agent can extend.

use std::fmt;
use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::recovery_files;

/// The lock file's name in the recovery directory.
pub(crate) const LEADER_LOCK_FILE: &str = "leader.lock";

/// Decides whether this master leads.
pub(crate) trait LeaderElection: Send + fmt::Debug {
    /// Tries to become the leader without blocking. `Ok(true)` means this master leads
    /// (and keeps leading); `Ok(false)` that another one does, for now. An error is a
    /// failure to find out (an unreadable directory, say): the master stays standing by
    /// and polls again.
    fn try_acquire(&mut self) -> io::Result<bool>;

    /// Gives the lead up, so that a standby can take it: called when the master stops.
    /// Dropping the agent does the same.
    fn release(&mut self) {}
}

/// Recovery mode NONE: the only master, leader from the start.
#[derive(Debug, Default)]
pub(crate) struct SingleNodeLeader;

impl LeaderElection for SingleNodeLeader {
    fn try_acquire(&mut self) -> io::Result<bool> {
        Ok(true)
    }
}

/// A master started with `MasterConfig::standby`: it never leads.
#[derive(Debug, Default)]
pub(crate) struct NeverLeader;

impl LeaderElection for NeverLeader {
    fn try_acquire(&mut self) -> io::Result<bool> {
        Ok(false)
    }
}

/// Recovery mode FILESYSTEM: the master holding an exclusive `flock` on the lock file in
/// the recovery directory leads; the lock is held until [`release`](Self::release), the
/// agent's drop, or the process's death.
///
/// The lock belongs to the file, not to its name: deleting `leader.lock` (or the
/// directory) under a running leader would let a standby lock a new file and lead too.
/// Operators must leave the directory alone while masters run.
pub(crate) struct FileLockLeader {
    path: PathBuf,
    /// Written into the lock file once held, so an operator can see who leads.
    owner: String,
    lock: Option<Flock<File>>,
}

impl FileLockLeader {
    /// An agent for `<directory>/leader.lock`; it takes nothing until polled. `owner`
    /// (the master's URL, say) is written into the file when the lock is taken.
    pub(crate) fn new(directory: &Path, owner: impl Into<String>) -> FileLockLeader {
        FileLockLeader {
            path: directory.join(LEADER_LOCK_FILE),
            owner: owner.into(),
            lock: None,
        }
    }

    /// Whether this agent holds the lock.
    #[cfg(test)]
    pub(crate) fn holds(&self) -> bool {
        self.lock.is_some()
    }
}

impl LeaderElection for FileLockLeader {
    fn try_acquire(&mut self) -> io::Result<bool> {
        if self.lock.is_some() {
            return Ok(true);
        }
        // The directory is created when the master starts (by its store), not here: one
        // removed under a running cluster must not be silently recreated, since a new
        // lock file there would not be the one the leader holds.
        // Not truncated on open: the file is the current leader's until we hold the lock.
        // Mode 0600, not through a symbolic link, never blocking on a FIFO, and only a
        // regular file: the directory's other files are no business of anyone else.
        let file = recovery_files::open_private_rw(&self.path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                // Only a courtesy for operators: failing to write it does not cost the lead.
                let _ = write_owner(&mut lock, &self.owner);
                self.lock = Some(lock);
                Ok(true)
            }
            Err((_, Errno::EWOULDBLOCK)) => Ok(false),
            Err((_, errno)) => Err(io::Error::from(errno)),
        }
    }

    fn release(&mut self) {
        // Dropping the `Flock` unlocks it, and closing the file would anyway.
        self.lock = None;
    }
}

impl fmt::Debug for FileLockLeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLockLeader")
            .field("path", &self.path)
            .field("held", &self.lock.is_some())
            .finish()
    }
}

fn write_owner(file: &mut File, owner: &str) -> io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{owner} (pid {})", std::process::id())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::test_dir::TestDir;
    use std::fs;

    #[test]
    fn the_first_agent_leads_until_it_lets_go() {
        let dir = TestDir::new("leader");
        let mut first = FileLockLeader::new(dir.path(), "first");
        let mut second = FileLockLeader::new(dir.path(), "second");
        assert!(first.try_acquire().expect("polls"), "the first one leads");
        assert!(!second.try_acquire().expect("polls"), "the second waits");
        assert!(first.try_acquire().expect("polls"), "still leading");
        assert!(!second.try_acquire().expect("polls"), "still waiting");
        let owner = fs::read_to_string(dir.path().join(LEADER_LOCK_FILE)).expect("lock file");
        assert!(owner.starts_with("first (pid "), "{owner}");

        drop(first);
        assert!(
            second.try_acquire().expect("polls"),
            "taken on the next poll"
        );
        assert!(second.holds());
        let owner = fs::read_to_string(dir.path().join(LEADER_LOCK_FILE)).expect("lock file");
        assert!(owner.starts_with("second (pid "), "{owner}");

        second.release();
        assert!(!second.holds());
        let mut third = FileLockLeader::new(dir.path(), "third");
        assert!(third.try_acquire().expect("polls"), "released explicitly");
    }

    #[test]
    fn a_missing_or_unusable_directory_is_an_error_not_a_panic() {
        let dir = TestDir::new("leader-bad");
        let missing = dir.path().join("a").join("b");
        let mut agent = FileLockLeader::new(&missing, "me");
        assert!(agent.try_acquire().is_err());
        assert!(!missing.exists(), "not created by polling");
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").expect("write");
        let mut agent = FileLockLeader::new(&file, "me");
        assert!(agent.try_acquire().is_err());
    }

    #[test]
    fn the_simple_agents() {
        assert!(SingleNodeLeader.try_acquire().expect("infallible"));
        assert!(!NeverLeader.try_acquire().expect("infallible"));
    }
}
