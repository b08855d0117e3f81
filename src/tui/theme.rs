//! Themes: semantic style slots (filled in by the themes change).
