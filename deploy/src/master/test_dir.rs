//! A scratch directory for the master's unit tests, removed on drop: ember-test-support's.

pub(crate) use ember_test_support::TempDir as TestDir;
