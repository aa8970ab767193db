//! Progress on a terminal only: per-layer bars for image pulls, steps for builds.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use bollard::models::CreateImageInfo;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--quiet`: no bars, terminal or not.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once by the binary from `--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether progress is drawn: on a terminal, unless `--quiet`.
fn shown() -> bool {
    std::io::stderr().is_terminal() && !QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

pub struct Pull {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Pull {
    pub fn new(image: &str) -> Pull {
        let multi = shown().then(|| {
            let m = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let _ = m.println(format!("pulling {image}"));
            m
        });
        Pull {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn update(&self, info: &CreateImageInfo) {
        let (Some(multi), Some(layer)) = (&self.multi, &info.id) else {
            if let Some(status) = &info.status {
                tracing::debug!("pull: {status}");
            }
            return;
        };
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(layer.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {wide_msg} {bytes}/{total_bytes} [{bar:30}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(layer.clone());
            bar
        });
        if let Some(status) = &info.status {
            bar.set_message(status.clone());
        }
        if let Some(d) = &info.progress_detail {
            if let Some(total) = d.total.and_then(|t| u64::try_from(t).ok()) {
                bar.set_length(total);
            }
            if let Some(current) = d.current.and_then(|c| u64::try_from(c).ok()) {
                bar.set_position(current);
            }
        }
    }

    pub fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}

/// A build's progress on a terminal: each step printed as it starts, the
/// step's latest output line on a spinner below. Nothing on a pipe: the
/// output of a failed step comes with the error.
pub struct Build {
    bar: Option<ProgressBar>,
}

impl Build {
    pub fn new(image: &str) -> Build {
        let bar = shown().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar.println(format!("building {image}"));
            bar
        });
        Build { bar }
    }

    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) if line.starts_with("Step ") => bar.println(line),
            Some(bar) => bar.set_message(line.to_string()),
            None => tracing::debug!("build: {line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
