//! The terminal backend the TUI draws through: ratatui's crossterm
//! backend, minus the bytes an unchanged frame would write.
//!
//! ratatui diffs each frame against the last and hands the backend only
//! the cells that changed, but the crossterm backend still ends every
//! `draw` with colour and attribute resets, and the terminal hides the
//! cursor after every frame. [`Quiet`] skips a `draw` with no cells and a
//! cursor change to the state the cursor is already in, so a frame
//! identical to the one on screen writes nothing.

use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};

/// A [`Backend`] that writes nothing for an unchanged frame.
pub struct Quiet<B> {
    inner: B,
    /// Whether the cursor is shown, once this backend has set it.
    cursor_shown: Option<bool>,
}

impl<B> Quiet<B> {
    pub fn new(inner: B) -> Quiet<B> {
        Quiet {
            inner,
            cursor_shown: None,
        }
    }
}

/// The TUI's terminal: stdout through [`Quiet`].
pub type Term = ratatui::Terminal<Quiet<CrosstermBackend<std::io::Stdout>>>;

/// Raw mode, the alternate screen and the panic hook that restores them
/// (as [`ratatui::init`] sets them up), drawing through [`Quiet`].
pub fn init() -> Term {
    // `init` sets the terminal up; its own Terminal (which holds nothing
    // but a handle on stdout) is dropped for ours.
    drop(ratatui::init());
    match ratatui::Terminal::new(Quiet::new(CrosstermBackend::new(std::io::stdout()))) {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            panic!("failed to initialize terminal: {e}");
        }
    }
}

impl<B: Backend> Backend for Quiet<B> {
    type Error = B::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let mut content = content.peekable();
        if content.peek().is_none() {
            return Ok(());
        }
        self.inner.draw(content)
    }

    fn append_lines(&mut self, n: u16) -> Result<(), Self::Error> {
        self.inner.append_lines(n)
    }

    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        if self.cursor_shown == Some(false) {
            return Ok(());
        }
        self.inner.hide_cursor()?;
        self.cursor_shown = Some(false);
        Ok(())
    }

    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        if self.cursor_shown == Some(true) {
            return Ok(());
        }
        self.inner.show_cursor()?;
        self.cursor_shown = Some(true);
        Ok(())
    }

    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }

    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }

    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}
