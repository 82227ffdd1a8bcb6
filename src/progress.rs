//! Progress display: bars on a terminal, plain lines otherwise.
//!
//! Stages report progress through a [`Progress`] handle. On a terminal a bar appears once the
//! stage has run for a second (short stages never flicker); when stderr is not a terminal
//! (CI, pipes) nothing but the start/finish lines printed by the executor appears.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Owns the terminal's progress area for one command.
pub struct Reporter {
    multi: Option<MultiProgress>,
}

impl Reporter {
    pub fn new() -> Reporter {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Reporter { multi }
    }

    /// A reporter that never draws (tests, library use).
    pub fn hidden() -> Reporter {
        Reporter { multi: None }
    }

    /// Prints one line to stderr without tearing the bars.
    pub fn line(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => eprintln!("{msg}"),
        }
    }

    pub fn stage(&self, name: &str) -> Progress {
        Progress {
            multi: self.multi.clone(),
            name: name.to_string(),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                bar: None,
                len: 0,
                pos: 0,
                msg: String::new(),
            }),
        }
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::new()
    }
}

/// A stage's progress handle; cheap to call from rayon workers.
pub struct Progress {
    multi: Option<MultiProgress>,
    name: String,
    started: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    bar: Option<ProgressBar>,
    len: u64,
    pos: u64,
    msg: String,
}

impl Progress {
    pub fn set_length(&self, len: u64) {
        let mut g = self.lock();
        g.len = len;
        g.pos = 0;
        if let Some(b) = &g.bar {
            b.set_length(len);
            b.set_position(0);
        }
        drop(g);
        self.maybe_show();
    }

    pub fn inc(&self, n: u64) {
        let mut g = self.lock();
        g.pos += n;
        if let Some(b) = &g.bar {
            b.inc(n);
        }
        drop(g);
        self.maybe_show();
    }

    pub fn message(&self, msg: &str) {
        let mut g = self.lock();
        g.msg = msg.to_string();
        if let Some(b) = &g.bar {
            b.set_message(msg.to_string());
        }
        drop(g);
        self.maybe_show();
    }

    /// Removes the bar (called by the executor when the stage ends).
    pub fn finish(&self) {
        if let Some(b) = self.lock().bar.take() {
            b.finish_and_clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn maybe_show(&self) {
        let Some(multi) = &self.multi else { return };
        if self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let mut g = self.lock();
        if g.bar.is_some() {
            return;
        }
        let bar = multi.add(ProgressBar::new(g.len));
        let style = ProgressStyle::with_template("{prefix:>12} {bar:30} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(self.name.clone());
        bar.set_position(g.pos);
        bar.set_message(g.msg.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        g.bar = Some(bar);
    }
}
