//! Progress on standard error while a scan runs: targets done out of the total, and the
//! family that started last with its target (`indicatif`); during a port sweep, its
//! (address, port) pairs swept and found open so far; during a load run, its phase, rate,
//! p95 and errors. Drawn only on a terminal unless
//! `--progress always`, never with `--quiet`, and cleared before the report is written.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::When;

/// A handle the stages report to; a hidden one costs nothing.
#[derive(Clone, Debug, Default)]
pub struct Progress(Option<Arc<ProgressBar>>);

impl Progress {
    /// No progress.
    pub fn hidden() -> Progress {
        Progress(None)
    }

    /// Progress as `--progress` and `--quiet` ask.
    pub fn new(when: When, quiet: bool) -> Progress {
        use std::io::IsTerminal;
        let draw = match when {
            When::Never => false,
            When::Always => true,
            When::Auto => std::io::stderr().is_terminal(),
        };
        if quiet || !draw {
            return Progress::hidden();
        }
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::stderr()), 10);
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let style =
            ProgressStyle::with_template("{spinner} targets {pos}/{len} · {elapsed} · {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("connecting");
        // Keep the spinner and the clock moving through long families (bursts, sweeps).
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        Progress(Some(Arc::new(bar)))
    }

    /// The number of targets the scan will run jobs on.
    pub fn targets(&self, total: usize) {
        if let Some(b) = &self.0 {
            b.set_length(total as u64);
            b.tick();
        }
    }

    /// `family` started on `target`.
    pub fn family(&self, target: &str, family: &str) {
        if let Some(b) = &self.0 {
            b.set_message(format!("{family} on {target}"));
        }
    }

    /// Whether anything is drawn (callers may skip gathering what it would show).
    pub fn is_shown(&self) -> bool {
        self.0.is_some()
    }

    /// A port sweep of `target` is under way: `done` of `total` (address, port) pairs settled,
    /// `open` of them open.
    pub fn sweep(&self, target: &str, done: u64, total: u64, open: u64) {
        if let Some(b) = &self.0 {
            b.set_message(sweep_message(target, done, total, open));
        }
    }

    /// A family's own live line (the load family: its phase, rate, p95 and errors).
    pub fn message(&self, message: String) {
        if let Some(b) = &self.0 {
            b.set_message(message);
        }
    }

    /// A target's jobs are all done.
    pub fn target_done(&self) {
        if let Some(b) = &self.0 {
            b.inc(1);
        }
    }

    /// The scan is over: clear the line, so the report starts on a clean terminal.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// The progress message of a sweep: `ports on HOST: 412/1000 swept, 3 open`.
pub fn sweep_message(target: &str, done: u64, total: u64, open: u64) -> String {
    format!(
        "ports on {target}: {}/{total} swept, {open} open",
        done.min(total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_shows_ports_done_and_open() {
        assert_eq!(
            sweep_message("db.example.com", 412, 1000, 3),
            "ports on db.example.com: 412/1000 swept, 3 open"
        );
        // Counters read while threads settle never show more than the total.
        assert_eq!(
            sweep_message("h", 1001, 1000, 0),
            "ports on h: 1000/1000 swept, 0 open"
        );
        // Hidden progress draws nothing and costs nothing.
        let hidden = Progress::hidden();
        assert!(!hidden.is_shown());
        hidden.sweep("h", 1, 2, 0);
        assert!(!Progress::new(When::Never, false).is_shown());
        assert!(!Progress::new(When::Always, true).is_shown(), "--quiet");
    }
}
