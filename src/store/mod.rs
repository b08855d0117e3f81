//! The workspace's durable state: SQLite (executions, approvals, audit
//! trail), append-only log files with a line index, and the
//! content-addressed artifact store.

pub mod artifacts;
pub mod logs;
