//! Progress display: bars on a terminal, plain lines otherwise.
//!
//! Stages report progress through a [`Progress`] handle. On a terminal a bar appears once the
//! stage has run for a second (short stages never flicker); when stderr is not a terminal
//! (CI logs, Slurm job logs, pipes) the executor's start/finish lines appear, and training
//! stages add one line per epoch ([`Progress::epoch`]: loss, dev metric, elapsed, ETA), so a
//! long stage is never silent for minutes.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The shortest gap between two plain epoch lines of one stage, unless the environment sets
/// `WARMSTART_PROGRESS_EVERY` (seconds; 0 = every epoch).
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

fn plain_every() -> Duration {
    std::env::var("WARMSTART_PROGRESS_EVERY")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(PLAIN_EVERY)
}

/// Owns the terminal's progress area for one command.
pub struct Reporter {
    multi: Option<MultiProgress>,
    /// Plain lines (stderr is not a terminal); false for a hidden reporter.
    plain: bool,
    every: Duration,
    /// `-q`: lines are dropped (errors reach the user through the command's result).
    quiet: bool,
}

impl Reporter {
    pub fn new() -> Reporter {
        let v = crate::verbosity::get();
        if v.quiet {
            return Reporter {
                multi: None,
                plain: false,
                every: PLAIN_EVERY,
                quiet: true,
            };
        }
        let tty = std::io::stderr().is_terminal();
        let multi = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Reporter {
            multi,
            plain: !tty,
            every: if v.verbose > 0 { Duration::ZERO } else { plain_every() },
            quiet: false,
        }
    }

    /// A reporter that never draws (tests, library use).
    pub fn hidden() -> Reporter {
        Reporter {
            multi: None,
            plain: false,
            every: PLAIN_EVERY,
            quiet: false,
        }
    }

    /// Prints one line to stderr without tearing the bars.
    pub fn line(&self, msg: &str) {
        if self.quiet {
            return;
        }
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
            plain: self.plain,
            every: self.every,
            name: name.to_string(),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                bar: None,
                len: 0,
                pos: 0,
                msg: String::new(),
                last_line: None,
                resumed: 0,
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
    plain: bool,
    every: Duration,
    name: String,
    started: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    bar: Option<ProgressBar>,
    len: u64,
    pos: u64,
    msg: String,
    /// When the last plain epoch line was printed.
    last_line: Option<Instant>,
    /// Epochs done before this process started (a resumed checkpoint), left out of the ETA.
    resumed: usize,
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

    /// One finished epoch of `of` (an upper bound when early stopping may end sooner), with
    /// what was measured (e.g. "train loss 0.41, dev accuracy 0.873"): the bar's message on a
    /// terminal; otherwise a line, at most one per [`PLAIN_EVERY`] (or
    /// `WARMSTART_PROGRESS_EVERY`) per stage, so that short
    /// stages add nothing to a log and long ones are never silent for long.
    pub fn epoch(&self, done: usize, of: usize, measured: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let here = done.saturating_sub(self.lock().resumed).max(1);
        let eta = elapsed / here as f64 * of.saturating_sub(done) as f64;
        let text = format!("epoch {done}/{of}: {measured}");
        if self.plain {
            let mut g = self.lock();
            let since = g.last_line.unwrap_or(self.started).elapsed();
            if since < self.every {
                return;
            }
            g.last_line = Some(Instant::now());
            drop(g);
            eprintln!(
                "{}: {text} [{} elapsed, ETA {}{}]",
                self.name,
                clock(elapsed),
                if done < of { "≤ " } else { "" },
                clock(eta)
            );
        } else {
            self.message(&text);
        }
    }

    /// The loop continues from a checkpoint after `epochs` completed epochs, at bar position
    /// `position`: said once (on a terminal or in the log), and the ETA counts only the
    /// epochs run here.
    pub fn resumed(&self, epochs: usize, position: u64) {
        let mut g = self.lock();
        g.resumed = epochs;
        g.pos = position;
        if let Some(b) = &g.bar {
            b.set_position(position);
        }
        drop(g);
        let line = format!("{}: resuming after epoch {epochs} (checkpoint)", self.name);
        match (&self.multi, self.plain) {
            (Some(m), _) => {
                let _ = m.println(line);
            }
            (None, true) => eprintln!("{line}"),
            (None, false) => {}
        }
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

/// `1h02m`, `3m05s`, `12s`.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}
