//! An idle TUI writes nothing: a frame drawn again unchanged sends no byte
//! to the terminal (the real crossterm backend, into a buffer).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use pipedeck::tui::app::{App, Msg, Snapshot};
use pipedeck::tui::keymap::Keymap;
use pipedeck::tui::term::Quiet;
use pipedeck::tui::theme::Theme;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use serde_json::json;

/// The Pipelines screen with one pipeline waiting at an approval.
fn app() -> App {
    let mut app = App::new(
        "demo".into(),
        "engine".into(),
        true,
        Theme::builtin("default").unwrap(),
        Keymap::default(),
    );
    let summary = serde_json::from_value(json!({
        "name": "web", "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
        "latestExecution": {
            "pipelineExecutionId": "e1000000-0000", "pipelineName": "web", "pipelineVersion": 1,
            "status": "InProgress", "statusSummary": null, "startTime": "2026-11-26T10:00:00.000Z",
            "lastUpdateTime": "2026-11-26T10:00:30.000Z",
            "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "alice"},
            "executionMode": "SUPERSEDED", "executionType": "STANDARD", "rollbackTarget": null,
            "sourceRevisions": [], "variables": {}, "stopReason": null, "currentStage": "Approve"
        },
        "pendingApprovals": 1
    }))
    .unwrap();
    app.update(Msg::Snapshot(Snapshot {
        pipelines: vec![summary],
        ..Snapshot::default()
    }));
    app.now = humantime::parse_rfc3339("2026-11-26T12:00:05Z").unwrap();
    app
}

/// The terminal's bytes, kept for the test to read.
#[derive(Clone, Default)]
struct Tty(Arc<Mutex<Vec<u8>>>);

impl Write for Tty {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Tty {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

type Term = Terminal<Quiet<CrosstermBackend<Tty>>>;

/// Bytes the next frame of `app` writes.
fn frame(t: &mut Term, tty: &Tty, app: &mut App) -> usize {
    let before = tty.len();
    t.draw(|f| pipedeck::tui::view::draw(f, app)).unwrap();
    tty.len() - before
}

#[test]
fn a_frame_drawn_again_unchanged_writes_no_bytes() {
    let tty = Tty::default();
    let mut t = Terminal::with_options(
        Quiet::new(CrosstermBackend::new(tty.clone())),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, 120, 30)),
        },
    )
    .unwrap();
    let mut a = app();
    let first = frame(&mut t, &tty, &mut a);
    assert!(
        first > 1000,
        "the first frame paints the screen: {first} bytes"
    );
    let text = String::from_utf8_lossy(&tty.0.lock().unwrap()).into_owned();
    assert!(text.contains("web"), "{text}");
    for _ in 0..3 {
        assert_eq!(
            frame(&mut t, &tty, &mut a),
            0,
            "an unchanged frame writes nothing"
        );
    }
    // A change is written, and only the change: the header clock.
    a.now += std::time::Duration::from_secs(1);
    let changed = frame(&mut t, &tty, &mut a);
    assert!(
        changed > 0 && changed < 100,
        "{changed} bytes for one second"
    );
    assert_eq!(frame(&mut t, &tty, &mut a), 0);
}
