//! Environments: where Deploy actions land. Every kind implements one
//! interface ([`iface::Environment`]: summary, deploy with a progress
//! stream, rollback, logs, shutdown); [`manager::Environments`] holds a
//! workspace's by name. The `local` kind is [`local`]: supervised replica
//! processes behind the traffic-shifting [`router`], with CodeDeploy's
//! deployment configurations as traffic steps ([`strategy`]). The
//! `kubernetes` kind is [`kubernetes`]: a Deployment or a blue/green pair
//! in a kubeconfig context, watched through kube-rs.

pub mod http;
pub mod iface;
pub mod kubernetes;
pub mod local;
pub mod manager;
pub mod router;
pub mod stats;
pub mod strategy;
