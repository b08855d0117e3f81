//! Log files.
