//! Environments: where Deploy actions land. This module holds the parts
//! that do not depend on where a workload runs: the traffic-shifting
//! router with its per-target-group statistics, and CodeDeploy's
//! deployment configurations as traffic steps. (Environments declared in
//! the workspace, supervised replicas, health checks and the deploy
//! provider build on these.)

pub mod http;
pub mod local;
pub mod manager;
pub mod router;
pub mod stats;
pub mod strategy;
