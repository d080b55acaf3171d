//! What pack shows while it works. On a terminal: a line per phase, a
//! spinner with what pip is doing, a bar for compiling and for writing the
//! archive (indicatif), cleared when the phase ends. When stderr is not a
//! terminal: nothing. With `-v`: no bars (pip's full output goes to
//! stderr), and each phase's time when it ends.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    bars: MultiProgress,
    shown: bool,
    verbose: bool,
}

impl Progress {
    pub fn new(verbose: bool) -> Progress {
        let shown = !verbose && std::io::stderr().is_terminal();
        let target = match shown {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::hidden(),
        };
        Progress {
            bars: MultiProgress::with_draw_target(target),
            shown,
            verbose,
        }
    }

    /// Whether bars are drawn (pip's output is then read for them).
    pub fn is_shown(&self) -> bool {
        self.shown
    }

    /// `-v`: pip's full output, and each phase's time.
    pub fn is_verbose(&self) -> bool {
        self.verbose
    }

    /// A phase of unknown length: a spinner, its name and a message.
    pub fn phase(&self, name: &str) -> Phase {
        let style = ProgressStyle::with_template("{spinner} {prefix}: {wide_msg} {elapsed}")
            .expect("valid template");
        self.start(ProgressBar::new_spinner().with_style(style), name)
    }

    /// A phase of `len` steps: a bar with counts.
    pub fn counted(&self, name: &str, len: usize) -> Phase {
        let style = ProgressStyle::with_template("  {prefix}: [{bar:30}] {pos}/{len} {wide_msg}")
            .expect("valid template")
            .progress_chars("=> ");
        self.start(ProgressBar::new(len as u64).with_style(style), name)
    }

    fn start(&self, bar: ProgressBar, name: &str) -> Phase {
        let bar = self.bars.add(bar.with_prefix(name.to_owned()));
        if self.shown {
            bar.enable_steady_tick(Duration::from_millis(100));
        }
        Phase {
            bar,
            name: name.to_owned(),
            started: Instant::now(),
            verbose: self.verbose,
        }
    }
}

/// One phase on the screen; cleared when dropped.
pub struct Phase {
    bar: ProgressBar,
    name: String,
    started: Instant,
    verbose: bool,
}

impl Phase {
    /// What the phase is doing now (one line, cut to the terminal).
    pub fn message(&self, text: &str) {
        self.bar.set_message(text.trim().to_owned());
    }

    /// One step of a counted phase done.
    pub fn step(&self) {
        self.bar.inc(1);
    }

    /// A counted phase's steps, once they are known better than when it
    /// started.
    pub fn set_len(&self, len: usize) {
        self.bar.set_length(len as u64);
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        if self.verbose {
            let seconds = self.started.elapsed().as_secs_f64();
            eprintln!("pyferry: {}: {seconds:.2} s", self.name);
        }
    }
}
