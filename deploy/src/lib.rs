//! Ember's standalone deploy mode: master and worker daemons, app client, local-cluster.
//!
//! This crate is filled by a later issue; for now it holds only this comment.
