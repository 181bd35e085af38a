//! The driver side of Ember: task scheduler, task-set managers, pools and scheduler backends.
//!
//! This crate is filled by a later issue; for now it holds only this comment.
