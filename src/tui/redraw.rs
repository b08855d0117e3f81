//! Redraw on change: what `update` marks dirty, and what on screen moves
//! with the clock alone.
//!
//! `App::update` sets `needs_redraw` when a message changed something
//! visible (a key, a new snapshot that differs, a page of the log on
//! screen, a toast…); the loop draws when it is set and clears it
//! ([`App::take_redraw`]). A tick only marks the frame dirty when the text
//! derived from the clock changed (a running execution's elapsed time, how
//! long an approval waits, a countdown), a toast expired, or a visible
//! spinner turned. [`App::animating`] tells the loop whether anything on
//! screen will move with the next tick; [`App::spinning`] whether the fast
//! spinner tick is worth arming.
//!
//! The header clock (`HH:MM:SS`) is deliberately left out: counting it
//! would make every screen animating. It is brought up to date by every
//! other redraw.

use std::time::{Duration, SystemTime};

use crate::api::EngineEvent;
use crate::api::types::ActionStatus;
use crate::tui::app::widgets::{between, parse_time, short_duration};
use crate::tui::app::{App, Msg, Screen};

impl App {
    /// Whether the frame is out of date; clears the flag. The loop calls
    /// this after a batch of messages and draws when it returns true.
    pub fn take_redraw(&mut self) -> bool {
        std::mem::take(&mut self.needs_redraw)
    }

    /// Whether something on screen changes with time alone within the next
    /// second: an elapsed time or a countdown shown to the second, a toast
    /// (it expires), a spinner.
    pub fn animating(&self) -> bool {
        self.spinning()
            || !self.toasts.is_empty()
            || self.clock_texts(self.now) != self.clock_texts(self.now + Duration::from_secs(1))
    }

    /// Whether a spinner is on screen: an action that runs (not an approval
    /// waiting) in the graph, or the one whose log is shown.
    pub fn spinning(&self) -> bool {
        let runs = |d: &crate::api::ActionExecutionDetail| {
            d.status == ActionStatus::InProgress && d.token.is_none()
        };
        match self.screen {
            Screen::Pipeline => self.state().is_some_and(|st| {
                st.stage_states.iter().enumerate().any(|(i, s)| {
                    (0..s.action_states.len())
                        .any(|j| self.action_detail(i, j).as_ref().is_some_and(runs))
                })
            }),
            Screen::Logs => self.logs.detail.as_ref().is_some_and(runs),
            _ => false,
        }
    }

    /// Whether a message changes what is on screen (ticks are judged by
    /// [`App::tick`]).
    pub(crate) fn changes_view(&self, msg: &Msg) -> bool {
        match msg {
            Msg::Tick => false,
            Msg::LogPage { aeid, .. } | Msg::Matches { aeid, .. } => *aeid == self.logs.aeid,
            Msg::Engine(Some(EngineEvent::LogAppended {
                action_execution_id,
                ..
            })) => self.screen == Screen::Logs && *action_execution_id == self.logs.aeid,
            Msg::Engine(Some(EngineEvent::ActionChanged { action })) => {
                action.action_execution_id == self.logs.aeid
            }
            Msg::Engine(Some(EngineEvent::BackendStatus { description, note })) => {
                *description != self.engine || *note != self.backend_note
            }
            // Other events ask for a refresh; the snapshot brings the change.
            Msg::Engine(_) => false,
            // Metrics feed the sparklines: each sample moves them.
            Msg::Snapshot(s) => *s != self.snap || s.envs.iter().any(|e| e.metrics.is_some()),
            Msg::Pipeline {
                name,
                state,
                executions,
            } => {
                self.snap.states.get(name) != Some(state)
                    || self.snap.executions.get(name) != Some(executions)
            }
            Msg::Environments(envs) => {
                *envs != self.snap.envs || envs.iter().any(|e| e.metrics.is_some())
            }
            _ => true,
        }
    }

    /// The clock moved: new durations, expired toasts, a turn of the
    /// spinner (`spin`). Marks the frame dirty if any of it shows.
    pub(crate) fn tick(&mut self, spin: bool) {
        let before = self.clock_texts(self.now);
        let toasts = self.toasts.len();
        self.now = SystemTime::now();
        if spin {
            self.spinner = self.spinner.wrapping_add(1);
        }
        let now = self.now;
        self.toasts.retain(|t| t.until > now);
        if self.toasts.len() != toasts
            || (spin && self.spinning())
            || before != self.clock_texts(now)
        {
            self.needs_redraw = true;
        }
    }

    /// The text on the current screen that is derived from the clock, as it
    /// reads at `now` (the same helpers as the screens' drawing).
    fn clock_texts(&self, now: SystemTime) -> Vec<String> {
        let mut out = Vec::new();
        match self.screen {
            Screen::Pipelines => {
                for e in self
                    .visible_pipelines()
                    .iter()
                    .filter_map(|p| p.latest_execution.as_ref())
                {
                    if let Some(t) = parse_time(&e.start_time) {
                        out.push(short_duration(now.duration_since(t).unwrap_or_default()));
                    }
                    if !e.status.is_terminal() {
                        out.push(between(&e.start_time, None, now));
                    }
                }
            }
            Screen::Pipeline => {
                if let Some(st) = self.state() {
                    for (i, s) in st.stage_states.iter().enumerate() {
                        for j in 0..s.action_states.len() {
                            if let Some(d) = self.action_detail(i, j)
                                && d.status == ActionStatus::InProgress
                            {
                                out.push(between(&d.start_time, None, now));
                            }
                        }
                    }
                    for e in self.executions().iter().filter(|e| !e.status.is_terminal()) {
                        out.push(between(&e.start_time, None, now));
                    }
                }
            }
            Screen::Approvals => {
                for a in self.pending_approvals() {
                    out.push(between(&a.action.start_time, None, now));
                }
            }
            Screen::Environments => {
                for d in self.snap.envs.iter().filter_map(|e| e.deployment.as_ref()) {
                    if let Some(left) = d.next_step_at.and_then(|n| n.duration_since(now).ok()) {
                        out.push(short_duration(left));
                    }
                }
            }
            Screen::Logs | Screen::Audit | Screen::Diagnosis => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tui::app::{Effect, Snapshot};
    use crate::tui::keymap::Keymap;
    use crate::tui::theme::Theme;

    fn rfc3339(t: SystemTime) -> String {
        humantime::format_rfc3339_millis(t).to_string()
    }

    fn app_with(status: Option<&str>, started: SystemTime) -> App {
        let mut app = App::new(
            "demo".into(),
            "engine".into(),
            true,
            Theme::builtin("default").expect("theme"),
            Keymap::default(),
        );
        let latest = status.map(|s| {
            json!({
                "pipelineExecutionId": "e1000000-0000", "pipelineName": "web", "pipelineVersion": 1,
                "status": s, "statusSummary": null, "startTime": rfc3339(started),
                "lastUpdateTime": rfc3339(started + Duration::from_secs(30)),
                "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "alice"},
                "executionMode": "SUPERSEDED", "executionType": "STANDARD", "rollbackTarget": null,
                "sourceRevisions": [], "variables": {}, "stopReason": null, "currentStage": null
            })
        });
        let summary = serde_json::from_value(json!({
            "name": "web", "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
            "latestExecution": latest, "pendingApprovals": 0
        }))
        .expect("summary");
        app.update(Msg::Snapshot(Snapshot {
            pipelines: vec![summary],
            ..Snapshot::default()
        }));
        app
    }

    #[test]
    fn an_idle_app_is_not_animating_and_a_tick_does_not_redraw() {
        // Nothing ran yet.
        let mut a = app_with(None, SystemTime::now());
        assert!(a.take_redraw(), "the first frame is drawn");
        assert!(!a.animating());
        a.update(Msg::Tick);
        assert!(!a.take_redraw());
        // The last execution ended two days ago: its age shows in hours.
        let two_days = SystemTime::now() - Duration::from_secs(2 * 86_400 + 600);
        let mut a = app_with(Some("Succeeded"), two_days);
        a.now = two_days + Duration::from_secs(2 * 86_400 + 900);
        assert!(!a.animating());
        // The same snapshot again changes nothing on screen.
        let snap = a.snap.clone();
        a.take_redraw();
        a.update(Msg::Snapshot(snap));
        assert!(!a.take_redraw());
    }

    #[test]
    fn a_running_execution_animates_and_its_ticks_redraw() {
        let mut a = app_with(
            Some("InProgress"),
            SystemTime::now() - Duration::from_secs(5),
        );
        a.now = SystemTime::now();
        assert!(a.animating());
        a.take_redraw();
        // The last tick was two seconds ago.
        a.now = SystemTime::now() - Duration::from_secs(2);
        a.update(Msg::Tick);
        assert!(a.take_redraw(), "the elapsed time moved");
    }

    #[test]
    fn toasts_animate_until_they_expire_and_keys_redraw() {
        let mut a = app_with(None, SystemTime::now());
        a.take_redraw();
        a.update(Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('j'),
            crossterm::event::KeyModifiers::NONE,
        )));
        assert!(a.take_redraw());
        a.toast("hello", false);
        assert!(a.animating());
        a.toasts[0].until = SystemTime::now() - Duration::from_secs(1);
        a.update(Msg::Tick);
        assert!(a.take_redraw(), "the expired toast goes away");
        assert!(!a.animating());
        // A page of a log that is not on screen changes nothing.
        let fx = a.update(Msg::LogPage {
            aeid: "elsewhere".into(),
            total: 1,
            start: 0,
            lines: vec!["x".into()],
            times: vec![None],
        });
        assert_eq!(fx, Vec::<Effect>::new());
        assert!(!a.take_redraw());
    }

    /// One stage, one action: running (a spinner) or an approval waiting.
    fn state(approval: bool) -> crate::api::PipelineState {
        let started = rfc3339(SystemTime::now() - Duration::from_secs(5));
        serde_json::from_value(json!({
            "pipelineName": "web", "pipelineVersion": 1,
            "stageStates": [{"stageName": "Build", "inboundExecutions": [],
                "inboundTransitionState": {"enabled": true, "lastChangedBy": null, "lastChangedAt": null, "disabledReason": null},
                "latestExecution": {"pipelineExecutionId": "e1000000-0000", "status": "InProgress", "type": "STANDARD"},
                "actionStates": [{"actionName": "Unit", "latestExecution": {
                    "actionExecutionId": "ae-1", "pipelineExecutionId": "e1000000-0000",
                    "stageName": "Build", "actionName": "Unit", "attempt": 1, "status": "InProgress",
                    "summary": null, "startTime": started, "lastStatusChange": started,
                    "token": if approval { json!("tok") } else { json!(null) },
                    "externalExecutionId": null, "errorDetails": null, "resolvedConfiguration": {},
                    "inputArtifacts": [], "outputArtifacts": [], "outputVariables": {},
                    "testReport": null, "approval": null, "logLines": 0}}],
                "retryStageMetadata": {"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 0, "latestRetryTrigger": null},
                "condition": null}]
        }))
        .expect("state")
    }

    #[test]
    fn the_spinner_turns_for_a_running_action_not_for_a_waiting_approval() {
        for approval in [false, true] {
            let mut a = app_with(
                Some("InProgress"),
                SystemTime::now() - Duration::from_secs(5),
            );
            let mut snap = a.snap.clone();
            snap.states.insert("web".into(), state(approval));
            a.update(Msg::Snapshot(snap));
            assert!(!a.spinning(), "no spinner on the Pipelines screen");
            a.screen = Screen::Pipeline;
            assert_eq!(a.spinning(), !approval);
            // Either way the elapsed times move.
            assert!(a.animating());
        }
    }

    /// Drives an App with keys, ticks and refreshes; whenever `update` did
    /// not mark the frame dirty, the frame drawn is the previous one (the
    /// header clock aside).
    #[test]
    fn a_frame_not_marked_dirty_is_the_frame_already_drawn() {
        use ratatui::Terminal;
        use ratatui::backend::TestBackend;
        use ratatui::buffer::Buffer;
        let keys = "jkhlgG\t/?:Aeq\x1b\rLwfTnd";
        let clockless = |b: &Buffer| {
            let mut b = b.clone();
            let w = b.area.width;
            for x in w.saturating_sub(10)..w {
                b[(x, 0)].set_symbol(" ");
            }
            b
        };
        let mut skipped = 0;
        for seed in 0..6u64 {
            let mut r = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
            let mut next = move || {
                r = r
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (r >> 33) as usize
            };
            let old = SystemTime::now() - Duration::from_secs(2 * 86_400 + 600);
            let mut a = app_with(Some("Succeeded"), old);
            let mut snap = a.snap.clone();
            snap.states.insert("web".into(), state(seed % 2 == 0));
            let snaps = [a.snap.clone(), snap];
            let mut prev: Option<Buffer> = None;
            for _ in 0..80 {
                let msg = match next() % 10 {
                    0..=4 => {
                        let c = keys
                            .chars()
                            .nth(next() % keys.chars().count())
                            .unwrap_or('j');
                        let code = match c {
                            '\t' => crossterm::event::KeyCode::Tab,
                            '\x1b' => crossterm::event::KeyCode::Esc,
                            '\r' => crossterm::event::KeyCode::Enter,
                            c => crossterm::event::KeyCode::Char(c),
                        };
                        Msg::Key(crossterm::event::KeyEvent::new(
                            code,
                            crossterm::event::KeyModifiers::NONE,
                        ))
                    }
                    5..=7 => Msg::Tick,
                    8 => Msg::Snapshot(snaps[next() % 2].clone()),
                    _ => Msg::LogPage {
                        aeid: if next() % 2 == 0 {
                            a.logs.aeid.clone()
                        } else {
                            "x".into()
                        },
                        total: 3,
                        start: 0,
                        lines: vec!["a".into(), "b".into(), "c".into()],
                        times: vec![None; 3],
                    },
                };
                a.update(msg);
                if a.quit {
                    break;
                }
                let dirty = a.take_redraw();
                let mut t = Terminal::new(TestBackend::new(100, 30)).expect("terminal");
                t.draw(|f| crate::tui::view::draw(f, &mut a)).expect("draw");
                let buf = t.backend().buffer().clone();
                if !dirty && let Some(p) = &prev {
                    skipped += 1;
                    assert_eq!(
                        clockless(p),
                        clockless(&buf),
                        "seed {seed}: a change not marked"
                    );
                }
                prev = Some(buf);
            }
        }
        assert!(skipped > 0, "some messages changed nothing");
    }
}
