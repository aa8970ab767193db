//! Per-layer progress bars for image pulls, on a terminal only.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use bollard::models::CreateImageInfo;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Pull {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Pull {
    pub fn new(image: &str) -> Pull {
        let multi = std::io::stderr().is_terminal().then(|| {
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
