//! Drawing: state in, frame out. No I/O, no state changes. The frame is
//! the header and footer ([`chrome`]), the focused screen's body (each
//! screen draws itself, in `screens/`), toasts, and the open modal.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::widgets::{Paragraph, Wrap};

pub use super::app::widgets::{short_duration, strip_ansi};
use super::app::{App, Screen, chrome, modals, screens};

pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 15;

pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    if area.width < MIN_W || area.height < MIN_H {
        let msg = format!(
            "The terminal is too small for pipedeck: {}×{}, it needs at least {MIN_W}×{MIN_H}.\nEnlarge the window (q quits).",
            area.width, area.height
        );
        f.render_widget(
            Paragraph::new(msg)
                .style(app.theme.base)
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    chrome::draw_header(f, app, header);
    match app.screen {
        Screen::Pipelines => screens::pipelines::draw(f, app, body),
        Screen::Pipeline => screens::pipeline::draw(f, app, body),
        Screen::Logs => screens::logs::draw(f, app, body),
        Screen::Approvals => screens::approvals::draw(f, app, body),
        Screen::Audit => screens::audit::draw(f, app, body),
        Screen::Environments => screens::environments::draw(f, app, body),
        Screen::Diagnosis => screens::diagnosis::draw(f, app, body),
    }
    chrome::draw_footer(f, app, footer);
    chrome::draw_toasts(f, app, body);
    if let Some(m) = app.modal.clone() {
        modals::draw(f, app, &m, body);
    }
}
