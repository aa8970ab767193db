//! A real browser for the board: Debian's headless Chromium loads a page
//! from a file, and the tests read what it made of it: the DOM after
//! layout, the console, and a screenshot's pixels.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Declares that a test needs Chromium, as its first line; evaluates to
/// its path. Without it the test fails, unless the run allows skips
/// (`LAUNCH_ALLOW_SKIPS=1`): then it is skipped and counted.
#[allow(unused_macros)]
macro_rules! needs_browser {
    () => {
        match $crate::support::validators::find(
            "chromium",
            &$crate::support::docker::current_test(),
        ) {
            Some(path) => $crate::support::browser::Browser { path },
            None => return,
        }
    };
}

pub struct Browser {
    pub path: PathBuf,
}

/// What the browser made of a page.
pub struct Seen {
    /// The DOM after the page loaded.
    pub dom: String,
    /// The console's messages (a CSP violation, an error) of either load.
    pub console: Vec<String>,
    /// The screenshot: width, height and RGBA pixels.
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Browser {
    fn run(&self, page: &Path, what: &[String]) -> (String, Vec<String>) {
        let profile = tempfile::tempdir().expect("a temp dir");
        let out = Command::new(&self.path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1100,1800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(what)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "chromium failed:\n{stderr}");
        let console = stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .map(str::to_string)
            .collect();
        (String::from_utf8_lossy(&out.stdout).into_owned(), console)
    }

    /// Loads `page` twice: once for its DOM, once for a screenshot (kept
    /// at `png`).
    pub fn see(&self, page: &Path, png: &Path) -> Seen {
        let (dom, mut console) = self.run(page, &["--dump-dom".to_string()]);
        let (_, more) = self.run(page, &[format!("--screenshot={}", png.display())]);
        console.extend(more);
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(png).expect("the screenshot"),
        ));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).expect("a frame");
        pixels.truncate(info.buffer_size());
        let rgba = match info.color_type {
            png::ColorType::Rgba => pixels,
            png::ColorType::Rgb => pixels
                .chunks(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            other => panic!("a screenshot in {other:?}"),
        };
        Seen {
            dom,
            console,
            width: info.width,
            height: info.height,
            pixels: rgba,
        }
    }
}

impl Seen {
    /// How many pixels are exactly `#rrggbb`.
    pub fn pixels_of(&self, hex: &str) -> usize {
        let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("a #rrggbb colour");
        let (r, g, b) = (c(1), c(3), c(5));
        self.pixels
            .chunks(4)
            .filter(|p| p[0] == r && p[1] == g && p[2] == b)
            .count()
    }
}
