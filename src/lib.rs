//! pipedeck: operate and observe release pipelines from a terminal.
//!
//! The binary (`src/main.rs`) is a thin shell around this library; see
//! `ARCHITECTURE.md` for the map of modules.

pub mod api;
pub mod aws;
pub mod awsapi;
pub mod backend;
pub mod cli;
pub mod config;
pub mod control;
pub mod diagnose;
pub mod engine;
pub mod env;
pub mod logging;
pub mod model;
pub mod proc;
pub mod providers;
pub mod store;
pub mod tui;
