//! Steps: what the engine does on one of its own messages (an action
//! ended, an approval timed out, a condition was evaluated) is written to
//! the store in one transaction at the step's end, and only then
//! announced. An action's end, its stage's end, the next stage's entry and
//! its first action's start were four to six transactions before.
//!
//! Requests are not steps: their answer says whether the store took what
//! they changed, so they write as they go.

use super::Engine;
use crate::api::{ActionExecutionDetail, EngineEvent};

/// What the step in progress changed.
#[derive(Default)]
pub(super) struct Step {
    /// The executions it changed, in the order first changed.
    dirty: Vec<String>,
    /// Action rows to write (an action's row is written with its stage's).
    pub(super) actions: Vec<ActionExecutionDetail>,
    /// The actions that ended in this step: (execution, stage, action,
    /// action execution id).
    pub(super) ended: Vec<(String, usize, usize, String)>,
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
            }
            Err(cause) => {
                // An end the store did not take is not an end: the action
                // is running again for `store_failed`, which fails it with
                // the cause (its stage with it), as outside a step.
                for (id, i, j, aeid) in &step.ended {
                    if let Some(e) = self.execs.get_mut(id)
                        && let Some(Some(a)) =
                            e.stages.get_mut(*i).and_then(|s| s.actions.get_mut(*j))
                        && &a.action_execution_id == aeid
                    {
                        a.status = crate::api::types::ActionStatus::InProgress;
                    }
                }
                for id in &step.dirty {
                    self.store_failed(id, &cause);
                }
            }
        }
    }
}
