//! Ember: a Rust re-creation of the core of Apache Spark's standalone cluster.
//!
//! This root crate is what a user imports. For now it re-exports the RPC environment;
//! `Context`, master URLs and the application entry arrive with the driver-side issue.

pub use rpc_env;
