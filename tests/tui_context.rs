//! Keeping the operator's context: the graph follows the activity (markers for
//! stages out of view, compact mode, the whole failure reason), logs walk every
//! error line and filter to the matches, the palette completes, remembers and
//! runs actions. Graph snapshots; the real TUI loop over the fake backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pipedeck::api::Request;
use pipedeck::backend::Backend;
use pipedeck::backend::fake::{Fake, FakeState};
use pipedeck::tui::Loop;
use pipedeck::tui::app::{App, Msg, Screen, Snapshot};
use pipedeck::tui::keymap::Keymap;
use pipedeck::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const T0: &str = "2026-11-26T10:00:00.000Z";
const T1: &str = "2026-11-26T10:01:05.000Z";

const TEST_REASON: &str = "unittest tests.test_greet.GreetTest.test_default failed: AssertionError: 'Hello' != 'Hello, Ada!'";
const REJECT_REASON: &str = "Approval rejected by alice: the canary's 5xx rate doubled, hold the release until the cache fix lands";

fn action(exec: &str, stage: &str, name: &str, status: &str, summary: Option<&str>) -> Value {
    let waiting = status == "Waiting";
    json!({
        "actionExecutionId": format!("ae-{name}"), "pipelineExecutionId": exec,
        "stageName": stage, "actionName": name, "attempt": 1,
        "status": if waiting { "InProgress" } else { status },
        "summary": summary, "startTime": T0, "lastStatusChange": T1,
        "token": if waiting { json!("tok-1") } else { json!(null) },
        "externalExecutionId": null, "errorDetails": null, "resolvedConfiguration": {},
        "inputArtifacts": [], "outputArtifacts": [], "outputVariables": {},
        "testReport": null,
        "approval": if waiting { json!({"customData": "Ship it?", "externalEntityLink": null,
            "expires": "2026-12-03T10:00:00.000Z", "result": null}) } else { json!(null) },
        "logLines": 3
    })
}

fn stage(name: &str, latest: Option<(&str, &str)>, actions: Vec<(String, Value)>) -> Value {
    json!({"stageName": name, "inboundExecutions": [],
        "inboundTransitionState": {"enabled": true, "lastChangedBy": null, "lastChangedAt": null, "disabledReason": null},
        "latestExecution": latest.map(|(e, s)| json!({"pipelineExecutionId": e, "status": s, "type": "STANDARD"})),
        "actionStates": actions.into_iter().map(|(n, l)| json!({"actionName": n, "latestExecution": l})).collect::<Vec<_>>(),
        "retryStageMetadata": {"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 0, "latestRetryTrigger": null},
        "condition": null})
}

fn exec(id: &str, status: &str) -> Value {
    json!({
        "pipelineExecutionId": id, "pipelineName": "web", "pipelineVersion": 1,
        "status": status, "statusSummary": null, "startTime": T0, "lastUpdateTime": T1,
        "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "alice"},
        "executionMode": "SUPERSEDED", "executionType": "STANDARD", "rollbackTarget": null,
        "sourceRevisions": [], "variables": {}, "stopReason": null, "currentStage": null
    })
}

/// Seven stages, three executions in them (SUPERSEDED): e0 was rejected at
/// Approve, e1 failed in Test, e2 builds.
fn seven_stage_app() -> App {
    let one = |e: &str, st: &str, a: &str, status: &str, sum: Option<&str>| {
        vec![(a.to_owned(), action(e, st, a, status, sum))]
    };
    let stages = vec![
        stage(
            "Source",
            Some(("e2", "Succeeded")),
            one("e2", "Source", "Checkout", "Succeeded", None),
        ),
        stage(
            "Build",
            Some(("e2", "InProgress")),
            one("e2", "Build", "Compile", "InProgress", None),
        ),
        stage(
            "Test",
            Some(("e1", "Failed")),
            one("e1", "Test", "UnitTests", "Failed", Some(TEST_REASON)),
        ),
        stage(
            "Package",
            Some(("e0", "Succeeded")),
            one("e0", "Package", "Bundle", "Succeeded", None),
        ),
        stage(
            "Staging",
            Some(("e0", "Succeeded")),
            one("e0", "Staging", "Deploy", "Succeeded", None),
        ),
        stage(
            "Approve",
            Some(("e0", "Failed")),
            one("e0", "Approve", "Release", "Failed", Some(REJECT_REASON)),
        ),
        stage("Prod", None, vec![("Deploy".into(), Value::Null)]),
    ];
    let mut app = App::new(
        "demo".into(),
        "engine hosted here (pid 4242)".into(),
        false,
        Theme::builtin("default").unwrap(),
        Keymap::default(),
    );
    app.now = humantime::parse_rfc3339("2026-11-26T10:05:00Z").unwrap();
    let mut snap = Snapshot {
        pipelines: vec![
            serde_json::from_value(json!({
                "name": "web", "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
                "latestExecution": exec("e2", "InProgress"), "pendingApprovals": 0
            }))
            .unwrap(),
        ],
        ..Snapshot::default()
    };
    snap.states.insert(
        "web".into(),
        serde_json::from_value(
            json!({"pipelineName": "web", "pipelineVersion": 1, "stageStates": stages}),
        )
        .unwrap(),
    );
    snap.executions.insert(
        "web".into(),
        ["e2", "e1", "e0"]
            .iter()
            .zip(["InProgress", "Failed", "Failed"])
            .map(|(e, s)| serde_json::from_value(exec(e, s)).unwrap())
            .collect(),
    );
    app.update(Msg::Snapshot(snap));
    app.screen = Screen::Pipeline;
    app
}

fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    app.size = (w, h);
    t.draw(|f| pipedeck::tui::view::draw(f, app)).unwrap();
    format!("{}", t.backend())
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(k: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(k, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

#[test]
fn the_graph_opens_on_the_failure_and_marks_the_stages_out_of_view() {
    let mut a = seven_stage_app();
    // The first failed stage is selected: Test, its failed action.
    assert_eq!((a.sel_stage, a.sel_action), (2, 0));
    // 200 columns: five boxes, the two stages beyond marked on the right
    // with their status; the whole reason under the boxes.
    let screen = render(&mut a, 200, 30);
    assert!(screen.contains(TEST_REASON), "{screen}");
    insta::assert_snapshot!("graph_200_follows_the_failure", screen);
    // `n`: the next failed or waiting stage, Approve; the graph scrolls,
    // Source is now marked on the left; its rejection can be read whole.
    a.update(key('n'));
    assert_eq!(a.sel_stage, 5);
    let screen = render(&mut a, 200, 30);
    assert!(screen.contains(REJECT_REASON), "{screen}");
    insta::assert_snapshot!("graph_200_next_failed_stage", screen);
    // `N` goes back to Test; nothing failed or waits before it.
    a.update(key('N'));
    assert_eq!(a.sel_stage, 2);
    a.update(key('N'));
    assert_eq!(a.sel_stage, 2);
    let screen = render(&mut a, 200, 30);
    assert!(
        screen.contains("no failed or waiting stage before Test"),
        "{screen}"
    );
}

#[test]
fn compact_mode_fits_seven_stages_in_200_columns() {
    let mut a = seven_stage_app();
    a.update(key('c'));
    let screen = render(&mut a, 200, 30);
    for s in [
        "Source", "Build", "Test", "Package", "Staging", "Approve", "Prod",
    ] {
        assert!(screen.contains(s), "{s} missing:\n{screen}");
    }
    assert!(!screen.contains("◀"), "{screen}");
    insta::assert_snapshot!("graph_200_compact", screen);
}

#[test]
fn at_60x15_markers_on_both_sides_and_the_border_stays_whole() {
    let mut a = seven_stage_app();
    let screen = render(&mut a, 60, 15);
    insta::assert_snapshot!("graph_60x15", &screen);
    // The graph's bottom border is a whole line (no hint written over it).
    let lines: Vec<&str> = screen.lines().collect();
    let bottom = lines
        .iter()
        .find(|l| l.contains('└') && l.contains('┘') && !l.contains('│'))
        .expect("the graph's bottom border");
    assert!(!bottom.contains("stages"), "{bottom}");
    // Which stages are in view is said in the title instead.
    assert!(screen.contains("stages 3–3 of 7"), "{screen}");
}

/// The log of Build/UnitTests: FAIL lines at 11, 17, 22 and 29, the
/// summary at 40, and lines that name failures without any.
fn unit_test_log() -> Vec<String> {
    (1..=45)
        .map(|n| match n {
            5 => "lint: 0 failed, errors: 0".to_owned(),
            11 => "FAIL: test_a (tests.test_a.ATest)".to_owned(),
            17 => "FAIL: test_b (tests.test_b.BTest)".to_owned(),
            22 => "FAIL: test_c (tests.test_c.CTest)".to_owned(),
            29 => "FAIL: test_g (tests.test_g.GreetTest) test_g again".to_owned(),
            33 => "coverage: no failures recorded by the plugin".to_owned(),
            40 => "FAILED (failures=4)".to_owned(),
            n => format!("test_{n:02} ok"),
        })
        .collect()
}

/// The demo pipeline as `web`: everything before the approval ran, the
/// approval waits; an environment `prod` (protected).
fn fake_state() -> FakeState {
    let mut def = pipedeck::model::load::load_bytes(
        "p.json",
        pipedeck::cli::demo::DEMO_PIPELINE.as_bytes(),
        &Default::default(),
    )
    .pipelines[0]
        .pipeline
        .clone();
    def.name = "web".into();
    let approval_at = def
        .stages
        .iter()
        .position(|s| {
            s.actions
                .iter()
                .any(|a| a.action_type_id.category == "Approval")
        })
        .unwrap();
    let stages: Vec<Value> = def
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let acts = s
                .actions
                .iter()
                .map(|a| {
                    let l = match i.cmp(&approval_at) {
                        std::cmp::Ordering::Less => {
                            action("e2000000-0000", &s.name, &a.name, "Succeeded", None)
                        }
                        std::cmp::Ordering::Equal => {
                            action("e2000000-0000", &s.name, &a.name, "Waiting", None)
                        }
                        std::cmp::Ordering::Greater => Value::Null,
                    };
                    (a.name.clone(), l)
                })
                .collect();
            let status = match i.cmp(&approval_at) {
                std::cmp::Ordering::Less => Some(("e2000000-0000", "Succeeded")),
                std::cmp::Ordering::Equal => Some(("e2000000-0000", "InProgress")),
                std::cmp::Ordering::Greater => None,
            };
            stage(&s.name, status, acts)
        })
        .collect();
    let e = exec("e2000000-0000", "InProgress");
    let mut s = FakeState {
        pipelines: vec![
            serde_json::from_value(json!({
                "name": "web", "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
                "latestExecution": e, "pendingApprovals": 1
            }))
            .unwrap(),
        ],
        ..FakeState::default()
    };
    s.states.insert(
        "web".into(),
        serde_json::from_value(
            json!({"pipelineName": "web", "pipelineVersion": 1, "stageStates": stages}),
        )
        .unwrap(),
    );
    s.executions
        .insert("web".into(), vec![serde_json::from_value(e).unwrap()]);
    s.definitions.insert("web".into(), def);
    s.logs.insert("ae-UnitTests".into(), unit_test_log());
    s.environments = vec![
        serde_json::from_value(json!({
            "name": "prod", "kind": "local", "location": "http://127.0.0.1:8081",
            "url": "http://127.0.0.1:8081", "strategy": "CodeDeployDefault.ECSAllAtOnce",
            "protected": true, "live": "blue", "variants": [{"label": "blue", "ready": 2,
            "revision": "0123456789ab", "total": 2, "restarts": 0, "weightPercent": 100}],
            "release": {"id": "d-1", "revision": "0123456789ab"}, "events": [],
            "rollbackTarget": {"id": "d-0", "revision": "fedcba987654"}
        }))
        .unwrap(),
    ];
    s
}

/// A TestBackend whose last flushed frame can be read while the loop runs.
struct Peek {
    inner: TestBackend,
    shot: Arc<std::sync::Mutex<String>>,
}

type PeekError = <TestBackend as ratatui::backend::Backend>::Error;

impl ratatui::backend::Backend for Peek {
    type Error = PeekError;
    fn draw<'a, I>(&mut self, content: I) -> Result<(), PeekError>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), PeekError> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), PeekError> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<ratatui::layout::Position, PeekError> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        p: P,
    ) -> Result<(), PeekError> {
        self.inner.set_cursor_position(p)
    }
    fn clear(&mut self) -> Result<(), PeekError> {
        self.inner.clear()
    }
    fn clear_region(&mut self, t: ratatui::backend::ClearType) -> Result<(), PeekError> {
        self.inner.clear_region(t)
    }
    fn size(&self) -> Result<ratatui::layout::Size, PeekError> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<ratatui::backend::WindowSize, PeekError> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), PeekError> {
        self.inner.flush()?;
        *self.shot.lock().unwrap() = format!("{}", self.inner);
        Ok(())
    }
}

struct Running {
    tx: mpsc::UnboundedSender<Msg>,
    done: tokio::task::JoinHandle<()>,
    shot: Arc<std::sync::Mutex<String>>,
}

fn start(fake: Arc<Fake>) -> Running {
    let mut app = App::new(
        "demo".into(),
        fake.describe(),
        false,
        Theme::builtin("default").unwrap(),
        Keymap::default(),
    );
    app.size = (120, 30);
    let (tx, rx) = mpsc::unbounded_channel();
    let backend: pipedeck::backend::Shared = fake;
    let l = Loop {
        backend: Arc::new(std::sync::RwLock::new(backend)),
        catalogue: Arc::new(pipedeck::diagnose::Catalogue::builtin()),
        reopen: None,
        start_first: None,
        reconnecting: Default::default(),
        out: None,
    };
    let tx2 = tx.clone();
    let shot = Arc::new(std::sync::Mutex::new(String::new()));
    let peek = Peek {
        inner: TestBackend::new(120, 30),
        shot: shot.clone(),
    };
    let done = tokio::spawn(async move {
        let mut t = Terminal::new(peek).unwrap();
        let (r, _) = l.run(&mut t, app, tx2, rx).await;
        r.unwrap();
    });
    Running { tx, done, shot }
}

impl Running {
    fn send(&self, m: Msg) {
        self.tx.send(m).unwrap();
    }

    /// Types `text` into the palette (opened with `:`).
    fn palette(&self, text: &str) {
        self.send(key(':'));
        for c in text.chars() {
            self.send(key(c));
        }
    }

    /// The last frame drawn.
    fn screen(&self) -> String {
        self.shot.lock().unwrap().clone()
    }

    /// Quits (closing what is open, confirming if asked).
    async fn quit(self) {
        self.send(code(KeyCode::Esc));
        self.send(key('q'));
        self.send(key('y'));
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("the loop ends on q")
            .unwrap();
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn until(fake: &Fake, what: &str, pred: impl Fn(&[&'static str]) -> bool) {
    for _ in 0..150 {
        if pred(&fake.call_names()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: calls were {:?}", fake.call_names());
}

/// The loop on the fake, the log of Build/UnitTests open (through the
/// palette, the same code as `L`).
async fn on_the_unit_test_log() -> (Arc<Fake>, Running) {
    on_the_log_of(fake_state()).await
}

async fn on_the_log_of(st: FakeState) -> (Arc<Fake>, Running) {
    let fake = Arc::new(Fake::new(st));
    let r = start(fake.clone());
    until(&fake, "first refresh", |c| {
        c.contains(&"ListEnvironments") && c.contains(&"GetPipeline")
    })
    .await;
    settle().await;
    r.palette("logs Build/UnitTests");
    r.send(code(KeyCode::Enter));
    until(&fake, "the log read", |c| c.contains(&"GetLogEvents")).await;
    settle().await;
    (fake, r)
}

fn status_line(screen: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains("lines ") && l.contains(" of 45"))
        .unwrap_or_default()
        .to_owned()
}

/// Sends a key and gives the screen once the loop has answered it: the
/// body changed (the header's clock aside), then stayed for a moment.
async fn press(r: &Running, m: Msg) -> String {
    let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    let before = body(&r.screen());
    r.send(m);
    for _ in 0..250 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if body(&r.screen()) != before {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.screen()
}

#[tokio::test]
async fn e_walks_every_error_line_and_back_and_says_when_there_is_no_more() {
    let (fake, r) = on_the_unit_test_log().await;
    // From the tail, E starts at the top: every FAIL line, then the
    // summary; `0 failed, errors: 0` (5) and `no failures` (33) are not
    // errors.
    for want in [11, 17, 22, 29, 40] {
        let screen = press(&r, key('E')).await;
        assert!(
            status_line(&screen).contains(&format!(" · at {want} · ")),
            "want {want}:\n{screen}"
        );
    }
    // One scan of the log for all of that.
    assert_eq!(
        fake.call_names()
            .iter()
            .filter(|n| **n == "FilterLogEvents")
            .count(),
        1
    );
    let screen = press(&r, key('E')).await;
    assert!(status_line(&screen).contains(" · at 40 · "), "{screen}");
    assert!(
        screen.contains("no more errors below line 40 (5 error line(s) in all)"),
        "{screen}"
    );
    // The reverse key walks back.
    for want in [29, 22, 17, 11] {
        let screen = press(&r, ctrl('e')).await;
        assert!(
            status_line(&screen).contains(&format!(" · at {want} · ")),
            "want {want}:\n{screen}"
        );
    }
    let screen = press(&r, ctrl('e')).await;
    assert!(screen.contains("no more errors above line 11"), "{screen}");
    // The cursor line is marked in the gutter.
    assert!(screen.contains("11▶FAIL: test_a"), "{screen}");
    r.quit().await;
}

#[tokio::test]
async fn e_in_a_log_without_errors_says_so() {
    let mut st = fake_state();
    st.logs.insert(
        "ae-UnitTests".into(),
        vec!["Ran 3 tests: 3 passed, 0 failed".into(), "errors: 0".into()],
    );
    let (_fake, r) = on_the_log_of(st).await;
    let screen = press(&r, key('E')).await;
    assert!(screen.contains("no error lines in this log"), "{screen}");
    r.quit().await;
}

#[test]
fn zero_counts_are_painted_like_ordinary_lines() {
    let mut a = seven_stage_app();
    a.screen = Screen::Logs;
    a.logs.aeid = "ae-UnitTests".into();
    a.logs.total = 3;
    a.logs.cache = vec![
        "lint: 0 failed, errors: 0".into(),
        "FAIL: test_a".into(),
        "test_ok".into(),
    ];
    let mut t = Terminal::new(TestBackend::new(80, 15)).unwrap();
    a.size = (80, 15);
    t.draw(|f| pipedeck::tui::view::draw(f, &mut a)).unwrap();
    let buf = t.backend().buffer().clone();
    let row_of = |text: &str| {
        (0..buf.area.height)
            .find(|&y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
                    .contains(text)
            })
            .unwrap()
    };
    let fg = |y: u16| buf[(10, y)].fg;
    let theme = Theme::builtin("default").unwrap();
    assert_eq!(fg(row_of("FAIL: test_a")), theme.log_error.fg.unwrap());
    assert_ne!(fg(row_of("0 failed")), theme.log_error.fg.unwrap());
    assert_eq!(fg(row_of("0 failed")), fg(row_of("test_ok")));
}

#[test]
fn every_highlight_is_counted() {
    let mut a = seven_stage_app();
    a.screen = Screen::Logs;
    a.logs.aeid = "ae-UnitTests".into();
    a.logs.total = 3;
    a.logs.cache = vec![
        "FAIL: test_a FAIL again".into(),
        "ok".into(),
        "\u{1b}[31mFAIL\u{1b}[0m: coloured".into(),
    ];
    a.logs.search = Some("FAIL".into());
    let lines = a
        .logs
        .cache
        .iter()
        .enumerate()
        .map(|(i, t)| (i as u64, t.clone()))
        .filter(|(_, t)| t.contains("FAIL"))
        .collect();
    a.update(Msg::Matches {
        aeid: "ae-UnitTests".into(),
        scan: pipedeck::tui::app::LogScan::Search("FAIL".into()),
        total: 3,
        lines,
        truncated: false,
    });
    let mut t = Terminal::new(TestBackend::new(120, 15)).unwrap();
    a.size = (120, 15);
    t.draw(|f| pipedeck::tui::view::draw(f, &mut a)).unwrap();
    let buf = t.backend().buffer().clone();
    let theme = Theme::builtin("default").unwrap();
    let lit: Vec<_> = [theme.search_match.bg, theme.search_current.bg]
        .into_iter()
        .flatten()
        .collect();
    let cells = (0..buf.area.height)
        .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
        .filter(|&p| buf[p].symbol() != " " && lit.contains(&buf[p].bg))
        .count();
    // Three occurrences of a 4-letter word, three counted.
    assert_eq!(cells, 3 * 4, "{}", t.backend());
    assert!(
        format!("{}", t.backend()).contains("match 1/3 on 2 line(s)"),
        "{}",
        t.backend()
    );
}

#[tokio::test]
async fn the_match_counter_counts_what_is_highlighted_and_the_filter_shows_only_matches() {
    let (fake, r) = on_the_unit_test_log().await;
    // `test_`: once in each of the 38 `test_NN ok` lines, twice in three
    // FAIL lines (`test_a (tests.test_a…`), three times on line 29.
    r.send(key('/'));
    for c in "test_".chars() {
        r.send(key(c));
    }
    r.send(code(KeyCode::Enter));
    until(&fake, "search", |c| c.contains(&"FilterLogEvents")).await;
    settle().await;
    let screen = r.screen();
    assert!(screen.contains("match 1/47 on 42 line(s)"), "{screen}");
    press(&r, key('n')).await;
    let screen = press(&r, key('n')).await;
    assert!(screen.contains("match 3/47 on 42 line(s)"), "{screen}");
    // F: only the matching lines.
    let screen = press(&r, key('F')).await;
    assert!(
        screen.contains("only lines with /test_: 42 of 45 lines"),
        "{screen}"
    );
    assert!(screen.contains("11 FAIL: test_a"), "{screen}");
    assert!(!screen.contains("lint: 0 failed"), "{screen}");
    // Enter: back to the whole log, on the selected line (the third).
    let screen = press(&r, code(KeyCode::Enter)).await;
    assert!(status_line(&screen).contains(" · at 3 · "), "{screen}");
    assert!(screen.contains("lint: 0 failed"), "{screen}");
    r.quit().await;
}

#[tokio::test]
async fn f_without_a_search_asks_for_one_and_shows_only_its_lines() {
    let (fake, r) = on_the_unit_test_log().await;
    let screen = press(&r, key('F')).await;
    assert!(screen.contains("show only lines with:"), "{screen}");
    for c in "FAIL".chars() {
        r.send(key(c));
    }
    r.send(code(KeyCode::Enter));
    until(&fake, "search", |c| c.contains(&"FilterLogEvents")).await;
    settle().await;
    let screen = r.screen();
    assert!(
        screen.contains("only lines with /FAIL: 5 of 45 lines"),
        "{screen}"
    );
    for l in ["FAIL: test_a", "FAIL: test_g", "FAILED (failures=4)"] {
        assert!(screen.contains(l), "{l}:\n{screen}");
    }
    assert!(!screen.contains("test_01 ok"), "{screen}");
    assert!(screen.contains("match 1/5 on 5 line(s)"), "{screen}");
    // Esc leaves the filter mode, the search stays.
    let screen = press(&r, code(KeyCode::Esc)).await;
    assert!(
        screen.contains("test_01 ok") || screen.contains("test_0"),
        "{screen}"
    );
    assert!(screen.contains("/FAIL: match 1/5"), "{screen}");
    r.quit().await;
}

/// The loop on the fake after its first refresh.
async fn started() -> (Arc<Fake>, Running) {
    let fake = Arc::new(Fake::new(fake_state()));
    let r = start(fake.clone());
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    (fake, r)
}

#[tokio::test]
async fn the_palette_matches_by_prefix_and_fuzzily_completes_and_remembers() {
    let (fake, r) = started().await;
    // Suggestions as you type: prefix matches first.
    r.palette("ap");
    let screen = press(&r, code(KeyCode::Tab)).await;
    assert!(
        screen.contains(":approve ▏"),
        "Tab took the best:\n{screen}"
    );
    assert!(screen.contains(":approvals"), "{screen}");
    // Tab again: the next one.
    let screen = press(&r, code(KeyCode::Tab)).await;
    assert!(screen.contains(":approvals▏"), "{screen}");
    r.send(code(KeyCode::Esc));
    // `:env` finds `:envs`.
    r.palette("env");
    let screen = press(&r, code(KeyCode::Enter)).await;
    assert!(screen.contains("http://127.0.0.1:8081"), "{screen}");
    // `:adt` (fuzzy) runs `audit`.
    r.palette("adt");
    r.send(code(KeyCode::Enter));
    until(&fake, "audit", |c| c.contains(&"LookupEvents")).await;
    // History: Up is `adt`, Up again `env`; Down comes back.
    r.send(key(':'));
    let screen = press(&r, code(KeyCode::Up)).await;
    assert!(screen.contains(":adt▏"), "{screen}");
    let screen = press(&r, code(KeyCode::Up)).await;
    assert!(screen.contains(":env▏"), "{screen}");
    let screen = press(&r, code(KeyCode::Down)).await;
    assert!(screen.contains(":adt▏"), "{screen}");
    r.send(code(KeyCode::Enter));
    until(&fake, "audit again", |c| {
        c.iter().filter(|n| **n == "LookupEvents").count() == 2
    })
    .await;
    // Unknown: said.
    r.palette("zzz");
    let screen = press(&r, code(KeyCode::Enter)).await;
    assert!(screen.contains("unknown command `:zzz`"), "{screen}");
    r.quit().await;
}

#[tokio::test]
async fn palette_actions_run_what_the_keys_run() {
    let (fake, r) = started().await;
    // `:approve` opens the approval modal `a` opens; y approves.
    r.palette("approve");
    let screen = press(&r, code(KeyCode::Enter)).await;
    assert!(
        screen.contains("Approve Approve/Release of web"),
        "{screen}"
    );
    r.send(key('y'));
    until(&fake, "approval", |c| c.contains(&"PutApprovalResult")).await;
    // `:rol` Tab `pr` Tab: `rollback prod`; the protected environment's
    // name is typed, as for `b`.
    r.palette("rol");
    r.send(code(KeyCode::Tab));
    r.send(key('p'));
    r.send(key('r'));
    r.send(code(KeyCode::Tab));
    let screen = press(&r, code(KeyCode::Enter)).await;
    assert!(screen.contains("prod to release fedcba987654"), "{screen}");
    r.send(code(KeyCode::Enter));
    settle().await;
    assert!(
        !fake.call_names().contains(&"RollbackEnvironment"),
        "a protected environment needs its name typed"
    );
    for c in "prod".chars() {
        r.send(key(c));
    }
    r.send(code(KeyCode::Enter));
    until(&fake, "rollback", |c| c.contains(&"RollbackEnvironment")).await;
    let calls = fake.with(|s| s.calls.clone());
    assert!(calls.iter().any(|c| matches!(c,
        Request::RollbackEnvironment { environment_name } if environment_name == "prod")));
    assert!(calls.iter().any(|c| matches!(c,
        Request::PutApprovalResult { status, .. } if status == "Approved")));
    // `:logs Build/UnitTests` opens that log.
    r.palette("logs build/unittests");
    r.send(code(KeyCode::Enter));
    until(&fake, "log read", |c| c.contains(&"GetLogEvents")).await;
    settle().await;
    assert!(
        r.screen().contains("web / Build / UnitTests"),
        "{}",
        r.screen()
    );
    r.quit().await;
}
