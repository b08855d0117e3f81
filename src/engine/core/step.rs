//! Steps: what the engine does on one of its own messages (an action
//! ended, an approval timed out, a condition was evaluated) is written to
//! the store in one transaction at the step's end, and only then
//! announced. An action's end, its stage's end, the next stage's entry and
//! its first action's start were four to six transactions before.
//!
//! Requests are not steps: their answer says whether the store took what
//! they changed, so they write as they go.

use std::future::Future;
use std::pin::Pin;

use super::Engine;
use crate::api::{ActionExecutionDetail, EngineEvent};

/// Work a step starts (an action's job, a condition's rules): started once
/// the step is committed, so nothing runs that the store does not know of.
pub(super) type Launch = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What the step in progress changed.
#[derive(Default)]
pub(super) struct Step {
    /// The executions it changed, in the order first changed.
    dirty: Vec<String>,
    /// Action rows to write (an action's row is written with its stage's).
    pub(super) actions: Vec<ActionExecutionDetail>,
    /// The actions that ended in this step: (execution, stage, action,
    /// their detail before the step).
    pub(super) ended: Vec<(String, usize, usize, ActionExecutionDetail)>,
    /// What it starts once committed.
    launches: Vec<Launch>,
    /// What it announces once the store has it, in order.
    events: Vec<EngineEvent>,
}

impl Step {
    /// Execution `id` changed in this step.
    pub(super) fn touch(&mut self, id: &str) {
        if !self.dirty.iter().any(|d| d == id) {
            self.dirty.push(id.to_owned());
        }
    }
}

impl Engine {
    /// Announces `ev`: at once, or within a step at its end, once the
    /// store has what it announces.
    pub(super) fn publish(&mut self, ev: EngineEvent) {
        match &mut self.step {
            Some(step) => step.events.push(ev),
            None => {
                let _ = self.events.send(ev);
            }
        }
    }

    /// Starts `work`: at once, or within a step once the step is
    /// committed.
    pub(super) fn launch(&mut self, work: Launch) {
        match &mut self.step {
            Some(step) => step.launches.push(work),
            None => {
                tokio::spawn(work);
            }
        }
    }

    /// Runs `f` as one step: its writes land together or not at all. When
    /// the store refuses them, nothing of the step is announced and each
    /// execution it changed fails with the cause (`store_failed`), as a
    /// refused write does outside a step.
    pub(super) fn step(&mut self, f: impl FnOnce(&mut Engine)) {
        if self.step.is_some() {
            f(self);
            return;
        }
        self.step = Some(Step::default());
        f(self);
        let Some(step) = self.step.take() else {
            return;
        };
        let ids: Vec<&str> = step.dirty.iter().map(String::as_str).collect();
        match self.save_many(&ids, false, &step.actions) {
            Ok(()) => {
                for ev in step.events {
                    let _ = self.events.send(ev);
                }
                for work in step.launches {
                    tokio::spawn(work);
                }
            }
            Err(cause) => {
                // Nothing the step would have started runs: its actions
                // stay InProgress for `store_failed`, which fails them.
                // `running` lets go of the jobs that never started (their
                // stop signal has no receiver left).
                drop(step.launches);
                self.running.retain(|_, r| !r.stop.is_closed());
                // An end the store did not take is not an end: the action
                // is as it was (running) for `store_failed`, which fails
                // it with the cause (its stage with it), as outside a step.
                for (id, i, j, before) in step.ended {
                    if let Some(e) = self.execs.get_mut(&id)
                        && let Some(slot) = e.stages.get_mut(i).and_then(|s| s.actions.get_mut(j))
                        && slot
                            .as_ref()
                            .is_some_and(|a| a.action_execution_id == before.action_execution_id)
                    {
                        *slot = Some(before);
                    }
                }
                for id in &step.dirty {
                    self.store_failed(id, &cause);
                }
            }
        }
    }
}
