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
//! The loop wakes for the clock only when something on screen will read
//! differently: [`App::next_change`] says when the next clock text changes
//! at the precision it is shown (`3m05s` each second, `1h02m` each minute)
//! or a toast expires; `None` arms no timer at all. The spinner's 200 ms
//! tick runs only while [`App::spinning`], the one-second tick only on the
//! screens that read by the clock ([`App::polls`]).
//!
//! The header clock (`HH:MM:SS`) is deliberately left out: counting it
//! would make every screen animating. It is brought up to date by every
//! other redraw ([`App::catch_up`] before each batch of messages).

use std::time::{Duration, SystemTime};

use crate::api::EngineEvent;
use crate::api::types::ActionStatus;
use crate::tui::app::widgets::{parse_time, short_duration};
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
        self.clocks()
            .into_iter()
            .filter_map(|c| c.text(now))
            .collect()
    }

    /// How long from `now` until something on screen changes with time
    /// alone: a clock text (at the precision it is shown: `3m05s` each
    /// second, `1h02m` each minute, `2d03h` each hour) or a toast's expiry.
    /// `None`: nothing on screen moves with the clock. The spinner and the
    /// screens that poll by the clock ([`App::polls`]) have their own
    /// timers in the loop.
    pub fn next_change(&self, now: SystemTime) -> Option<Duration> {
        let toasts = self
            .toasts
            .iter()
            .map(|t| t.until.duration_since(now).unwrap_or_default());
        self.clocks()
            .into_iter()
            .filter_map(|c| c.next_change(now))
            .chain(toasts)
            .min()
    }

    /// Whether the current screen reads from the backend by the clock (a
    /// tick a second): the environments (their metrics and countdowns), a
    /// replica's output followed (it has no log events).
    pub fn polls(&self) -> bool {
        self.screen == Screen::Environments
            || (self.screen == Screen::Logs
                && self.logs.aeid.starts_with("env/")
                && self.logs.follow)
    }

    /// Brings `now` up to the clock before a batch of messages (after a
    /// quiet spell with no tick, a key must draw the current time and a
    /// toast must live its full time); marks the frame dirty if a clock
    /// text changed or a toast expired meanwhile.
    pub fn catch_up(&mut self) {
        self.tick(false);
    }

    /// What on the current screen is derived from the clock: the instants
    /// its durations count from or down to (the same values the screens
    /// draw).
    fn clocks(&self) -> Vec<Clock> {
        let mut out = Vec::new();
        match self.screen {
            Screen::Pipelines => {
                for e in self
                    .visible_pipelines()
                    .iter()
                    .filter_map(|p| p.latest_execution.as_ref())
                {
                    // Its age (and while it runs, its duration: the same
                    // clock).
                    out.extend(parse_time(&e.start_time).map(Clock::Since));
                }
            }
            Screen::Pipeline => {
                if let Some(st) = self.state() {
                    for (i, s) in st.stage_states.iter().enumerate() {
                        for j in 0..s.action_states.len() {
                            if let Some(d) = self.action_detail(i, j)
                                && d.status == ActionStatus::InProgress
                            {
                                out.extend(parse_time(&d.start_time).map(Clock::Since));
                            }
                        }
                    }
                    for e in self.executions().iter().filter(|e| !e.status.is_terminal()) {
                        out.extend(parse_time(&e.start_time).map(Clock::Since));
                    }
                }
            }
            Screen::Approvals => {
                for a in self.pending_approvals() {
                    out.extend(parse_time(&a.action.start_time).map(Clock::Since));
                }
            }
            Screen::Environments => {
                for d in self.snap.envs.iter().filter_map(|e| e.deployment.as_ref()) {
                    out.extend(d.next_step_at.map(Clock::Until));
                }
            }
            Screen::Logs | Screen::Audit | Screen::Diagnosis => {}
        }
        out
    }
}

/// A duration on screen that moves with the clock, shown by
/// [`short_duration`].
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// The time since this instant (an elapsed time, an age).
    Since(SystemTime),
    /// The time left until this instant (a countdown; gone once passed).
    Until(SystemTime),
}

impl Clock {
    fn text(self, now: SystemTime) -> Option<String> {
        match self {
            Clock::Since(t) => Some(short_duration(now.duration_since(t).unwrap_or_default())),
            Clock::Until(t) => t.duration_since(now).ok().map(short_duration),
        }
    }

    /// How long from `now` until [`Clock::text`] reads differently.
    fn next_change(self, now: SystemTime) -> Option<Duration> {
        match self {
            Clock::Since(t) => {
                let Ok(d) = now.duration_since(t) else {
                    // Not yet begun: it reads `0s` until `t`, then counts.
                    return t
                        .duration_since(now)
                        .ok()
                        .map(|w| w + Duration::from_secs(1));
                };
                let unit = precision(d);
                Some(unit - rem(d, unit))
            }
            // A countdown's text changes when the time left drops below
            // the shown unit (just after the remainder runs out).
            Clock::Until(t) => {
                let left = t.duration_since(now).ok()?;
                Some(rem(left, precision(left)) + Duration::from_millis(1))
            }
        }
    }
}

/// The unit [`short_duration`] shows `d` to.
fn precision(d: Duration) -> Duration {
    match d.as_secs() {
        0..3600 => Duration::from_secs(1),
        3600..86_400 => Duration::from_secs(60),
        _ => Duration::from_secs(3600),
    }
}

fn rem(d: Duration, unit: Duration) -> Duration {
    let n = d.as_nanos() % unit.as_nanos();
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
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

    #[test]
    fn a_clock_text_wakes_the_loop_when_its_shown_precision_changes() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let cases = [
            // (elapsed, expected wait)
            (Duration::from_millis(12_300), Duration::from_millis(700)),
            (Duration::from_secs(3 * 60 + 5), Duration::from_secs(1)),
            (Duration::from_secs(3599), Duration::from_secs(1)),
            (Duration::from_secs(3600), Duration::from_secs(60)),
            (Duration::from_secs(2 * 3600 + 15), Duration::from_secs(45)),
            (
                Duration::from_secs(86_400 + 61),
                Duration::from_secs(3600 - 61),
            ),
        ];
        for (elapsed, wait) in cases {
            let c = Clock::Since(t);
            let now = t + elapsed;
            assert_eq!(c.next_change(now), Some(wait), "{elapsed:?}");
            let soon = now + wait - Duration::from_millis(1);
            assert_eq!(
                c.text(now),
                c.text(soon),
                "{elapsed:?}: nothing shows before"
            );
            assert_ne!(
                c.text(now),
                c.text(now + wait),
                "{elapsed:?}: it changes then"
            );
        }
        // A countdown: its text changes just after the remainder runs out.
        for left in [
            Duration::from_millis(5_250),
            Duration::from_secs(3600) + Duration::from_millis(500),
            Duration::from_secs(2 * 3600 + 30),
            Duration::from_secs(90_000),
        ] {
            let c = Clock::Until(t + left);
            let wait = c.next_change(t).expect("a countdown not over");
            let before = t + wait - Duration::from_millis(2);
            assert_eq!(c.text(t), c.text(before), "{left:?}");
            assert_ne!(c.text(t), c.text(t + wait), "{left:?}");
        }
        assert_eq!(
            Clock::Until(t).next_change(t + Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn with_an_approval_pending_and_nothing_running_nothing_is_scheduled_for_a_minute() {
        // The execution has waited at the approval for two hours: its
        // durations show minutes, so the loop wakes once a minute.
        let started = SystemTime::now() - Duration::from_secs(2 * 3600 + 10);
        let mut a = app_with(Some("InProgress"), started);
        let mut snap = a.snap.clone();
        let mut st = state(true);
        if let Some(d) = st.stage_states[0].action_states[0]
            .latest_execution
            .as_mut()
        {
            d.start_time = rfc3339(started);
        }
        snap.states.insert("web".into(), st);
        a.update(Msg::Snapshot(snap));
        a.pipeline = Some("web".into());
        let now = started + Duration::from_secs(2 * 3600 + 20);
        for screen in [Screen::Pipelines, Screen::Pipeline, Screen::Approvals] {
            a.screen = screen;
            assert!(
                !a.clock_texts(now).is_empty(),
                "{screen:?} shows a duration"
            );
            assert!(
                !a.spinning(),
                "{screen:?}: no spinner for a waiting approval"
            );
            assert!(!a.polls(), "{screen:?}");
            // The wake-ups over the next ten minutes: one a minute.
            let (mut t, mut wakes) = (now, 0);
            while t < now + Duration::from_secs(600) {
                let d = a.next_change(t).expect("a duration on screen");
                assert_ne!(
                    a.clock_texts(t),
                    a.clock_texts(t + d),
                    "{screen:?}: a wake-up that changes nothing"
                );
                t += d;
                wakes += 1;
            }
            assert!(wakes <= 11, "{screen:?}: {wakes} wake-ups in 10 minutes");
        }
        // The Audit screen shows no clock: no wake-up at all.
        a.screen = Screen::Audit;
        assert_eq!(a.next_change(now), None);
        // A toast is one, when it expires.
        a.now = now;
        a.toast("approved", false);
        assert_eq!(a.next_change(now), Some(Duration::from_secs(4)));
    }
}
