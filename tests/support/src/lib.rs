//! # ember-test-support: what every Ember crate's tests need
//!
//! A dev-dependency of every crate in the workspace, and of nothing else (`publish = false`).
//! It depends on nothing from the workspace, so any crate's unit tests can use it, rpc-env's
//! included.
//!
//! - [`wait_until`]: waiting on a condition with a deadline instead of sleeping and hoping;
//!   [`wait_for`] when the failure should show what was seen instead.
//!   One deadline policy, [`DEADLINE`]: long, because only a failing test waits that long and
//!   the machine may be loaded (two cores, other builds running).
//! - [`TempDir`]: a scratch directory of the test's own, removed when dropped.
//! - [`write_secret_file`]: a random cluster secret in a 0600 file.
//! - [`refused_port`]: a TCP port nobody listens on nor will be given, for "nobody listens".
//! - [`free_port`], [`free_port_on`]: a TCP port nothing listens on, for a daemon that must be
//!   told its port before it starts.
//! - [`http_get`], [`http_request`]: one HTTP/1.0 request to a status UI.
//! - [`declared_keys`]: the `ember.*` keys a keys file declares, to check a crate's list of
//!   them.
//! - [`is_alive`], [`processes_under`]: whether a process runs, and which processes work under
//!   a directory (how a test finds the daemons, executors and drivers it caused, and checks
//!   that none was left behind).

mod dirs;
mod http;
mod keys;
mod net;
mod procs;
mod secret;
mod wait;

pub use dirs::TempDir;
pub use http::{http_get, http_request, HttpResponse};
pub use keys::declared_keys;
pub use net::{free_port, free_port_on, refused_port};
pub use procs::{exited_within, is_alive, processes_under, thread_asleep, Process};
pub use secret::write_secret_file;
pub use wait::{wait_for, wait_until, DEADLINE};
