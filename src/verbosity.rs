//! How chatty and how colourful a command is: `-q` / `-v` / `--color`, set once per process
//! from the command line, following cargo's conventions.
//!
//! | flag            | stderr while running                                  | stdout          |
//! |-----------------|-------------------------------------------------------|-----------------|
//! | `-q`            | nothing but errors                                    | results only    |
//! | (none)          | stage start/finish lines; bars or epoch lines (≥ 5 s) | results         |
//! | `-v`            | the same, and an epoch line for every epoch           | results         |
//!
//! `--color auto` (the default) colours status words when stdout is a terminal and `NO_COLOR`
//! is unset; `always` and `never` force it.

use std::io::IsTerminal;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Color {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Verbosity {
    pub quiet: bool,
    pub verbose: u8,
    pub color: Color,
}

static CHOSEN: OnceLock<Verbosity> = OnceLock::new();

/// Records the command line's choice (the first call wins).
pub fn set(v: Verbosity) {
    let _ = CHOSEN.set(v);
}

/// The process's choice (defaults when `set` was never called, e.g. in library use).
pub fn get() -> Verbosity {
    CHOSEN.get().copied().unwrap_or_default()
}

/// Whether to write ANSI colours to stdout.
pub fn colour_stdout() -> bool {
    match get().color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// `text` in ANSI colour `code` (e.g. 32 green, 31 red) when colours are on.
pub fn paint(text: &str, code: u8) -> String {
    if colour_stdout() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}
