//! Progress for long jobs: a bar on a terminal, plain lines (every 10%) otherwise, so that CI
//! logs and pipes stay readable.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    label: String,
    total: u64,
    bar: Option<ProgressBar>,
    done: AtomicU64,
    last_decile: AtomicU64,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_owned());
            bar
        });
        Progress {
            label: label.to_owned(),
            total,
            bar,
            done: AtomicU64::new(0),
            last_decile: AtomicU64::new(0),
        }
    }

    pub fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let decile = (done * 10).checked_div(self.total).unwrap_or(10);
        let previous = self.last_decile.fetch_max(decile, Ordering::Relaxed);
        if decile > previous {
            eprintln!("{}: {done}/{} ({}%)", self.label, self.total, decile * 10);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
