//! The terminal UI. Only this module imports ratatui and crossterm.

pub mod theme;
