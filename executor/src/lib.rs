//! Ember's executor: the task thread pool and the executor backend process.
//!
//! This crate is filled by a later issue; for now it holds only this comment.
