//! Helpers for the worker's unit tests (scratch directories, waiting on conditions, whether a
//! process runs): ember-test-support's.

pub(crate) use ember_test_support::{is_alive, wait_until, TempDir, DEADLINE};
