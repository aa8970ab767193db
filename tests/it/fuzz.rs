//! Fuzzing the loader: generated and mutated profiles must load, or fail with
//! diagnostics that point at a file:line:column; never panic, and load the
//! same way twice. A small share goes through the real `launch check`, which
//! must exit 0 or 2.
//!
//! `cargo test` runs a short round; `scripts/fuzz.sh` runs a long one.
//! `LAUNCH_FUZZ_CASES` sets the cases of each in-process property (the binary
//! gets a tenth of that). Failures are kept in `tests/fuzz.proptest-regressions`
//! and replayed first on every run.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::cli::Launch;
use launch::profile::{self, Diagnostics};
use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use serde_json::Value;

/// Never set by anything, so `${…}` of it takes the default or is an error.
const UNSET: &str = "LAUNCH_FUZZ_UNSET";

/// Cases per in-process property; the default keeps `cargo test` to seconds.
fn cases() -> u32 {
    std::env::var("LAUNCH_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(120)
}

// ---------------------------------------------------------------------------
// A case: the files of one folder and the profile in it to load.

#[derive(Clone)]
struct Case {
    files: Vec<(String, Vec<u8>)>,
    load: String,
}

/// Shows every file exactly (as a string literal), so a failure can be replayed by hand.
impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "load {}", self.load)?;
        for (name, bytes) in &self.files {
            match std::str::from_utf8(bytes) {
                Ok(text) => writeln!(f, "--- {name}\n{text:?}")?,
                Err(_) => writeln!(f, "--- {name} (not UTF-8)\nb\"{}\"", bytes.escape_ascii())?,
            }
        }
        Ok(())
    }
}

impl Case {
    /// Writes the files into a fresh folder, with a subfolder and a symlink
    /// to the main profile for `extends` and `env_file` to name.
    fn write(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir(dir.path().join("sub")).expect("a subfolder");
        std::os::unix::fs::symlink("profile.toml", dir.path().join("link.toml")).expect("a link");
        for (name, bytes) in &self.files {
            std::fs::write(dir.path().join(name), bytes).expect("write a file");
        }
        dir
    }
}

// ---------------------------------------------------------------------------
// The properties.

/// What one load gave, for comparing two loads of the same files.
#[derive(Debug, PartialEq)]
enum Loaded {
    Valid(String),
    Invalid(String),
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Loads in-process: no panic; an error has a location, and renders.
fn load_once(path: &Path) -> Result<Loaded, TestCaseError> {
    let loaded = catch_unwind(|| profile::load(path))
        .map_err(|p| TestCaseError::fail(format!("load panicked: {}", panic_text(&*p))))?;
    match loaded {
        Ok(profile) => Ok(Loaded::Valid(format!("{profile:?}"))),
        Err(diags) => {
            let shown = catch_unwind(AssertUnwindSafe(|| {
                let plain = diags.render(false);
                let _ = diags.render(true);
                (plain, diags.to_json())
            }))
            .map_err(|p| TestCaseError::fail(format!("rendering panicked: {}", panic_text(&*p))))?;
            located(&diags, &shown.0)?;
            let json = shown.1.as_array().map_or(0, Vec::len);
            prop_assert_eq!(
                json,
                diags.items.len(),
                "to_json has one entry a diagnostic"
            );
            Ok(Loaded::Invalid(format!("{}\n{}", shown.0, shown.1)))
        }
    }
}

/// Only an unreadable file may be reported without a place; anything else
/// must map to a file:line:column, its whole span inside that one file.
fn located(diags: &Diagnostics, rendered: &str) -> Result<(), TestCaseError> {
    for d in &diags.items {
        let Some(span) = &d.span else {
            prop_assert!(
                d.message.starts_with("cannot read profile "),
                "error without a location: {:?}\n{}",
                d.message,
                rendered
            );
            continue;
        };
        let file = diags.sources.file_at(span.start);
        let inside =
            file.is_some_and(|f| span.start <= span.end && span.end <= f.base + f.text.len());
        prop_assert!(
            inside && diags.sources.locate(span.start).is_some(),
            "span {:?} of {:?} lies in no one file\n{}",
            span,
            d.message,
            rendered
        );
    }
    Ok(())
}

/// The in-process property: both loads are clean, and the same.
fn check_in_process(case: &Case, stats: &Stats) -> Result<(), TestCaseError> {
    let dir = case.write();
    let path = dir.path().join(&case.load);
    let first = load_once(&path)?;
    let second = load_once(&path)?;
    stats.count(&first);
    prop_assert_eq!(first, second, "loading twice gave different results");
    Ok(())
}

/// The binary's property: exit 0 for a valid profile, 2 for an invalid one,
/// each error with a location, in text and in JSON.
fn check_binary(case: &Case, json: bool, stats: &Stats) -> Result<(), TestCaseError> {
    let dir = case.write();
    let path = dir.path().join(&case.load);
    let expected = load_once(&path)?;
    stats.count(&expected);
    let mut launch = Launch::new().env_remove(UNSET).arg("check");
    if json {
        launch = launch.arg("--json");
    }
    // `run` fails the case if anything printed "panicked".
    let out = launch.arg(&path).run();
    let code = if matches!(expected, Loaded::Valid(_)) {
        0
    } else {
        2
    };
    prop_assert_eq!(
        out.code,
        code,
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
    if json {
        let v: Value = serde_json::from_str(out.stdout.trim()).map_err(|e| {
            TestCaseError::fail(format!("--json printed no JSON ({e}):\n{}", out.stdout))
        })?;
        prop_assert_eq!(
            v["valid"].as_bool(),
            Some(code == 0),
            "--json `valid`: {}",
            v
        );
        for e in v["errors"].as_array().into_iter().flatten() {
            let message = e["message"].as_str().unwrap_or_default();
            prop_assert!(
                e["line"].is_u64() || message.starts_with("cannot read profile "),
                "JSON error without a line: {}",
                e
            );
        }
    } else {
        prop_assert_eq!(
            out.stderr.contains("\ninvalid: ") || out.stderr.starts_with("invalid: "),
            code == 2,
            "an invalid profile says so:\n{}",
            out.stderr
        );
        // Each `error:` must be followed by its ` --> file:line:column`
        // (at the margin when no line is quoted: an env file's secrets).
        for block in errors(&out.stderr) {
            let location = block
                .lines()
                .any(|l| l.trim_start().starts_with("--> ") && l.contains(':'));
            prop_assert!(
                location || block.starts_with("error: cannot read profile "),
                "error without a location:\n{}",
                block
            );
        }
    }
    Ok(())
}

/// The `error:` blocks of rustc-style output.
fn errors(stderr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if line.starts_with("error:") {
            out.push(String::new());
        }
        if let Some(block) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// How many profiles a property tried, and how they came out.
#[derive(Default)]
struct Stats {
    valid: AtomicU64,
    invalid: AtomicU64,
}

impl Stats {
    fn count(&self, loaded: &Loaded) {
        let n = match loaded {
            Loaded::Valid(_) => &self.valid,
            Loaded::Invalid(_) => &self.invalid,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs one property; the counts line is what `scripts/fuzz.sh` adds up.
fn run<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value, &Stats) -> Result<(), TestCaseError>,
) where
    S::Value: fmt::Debug,
{
    let config = Config {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    let stats = Stats::default();
    let result = TestRunner::new(config).run(&strategy, |case| test(case, &stats));
    let (valid, invalid) = (stats.valid.into_inner(), stats.invalid.into_inner());
    eprintln!(
        "fuzz {name}: tried {} profiles ({valid} valid, {invalid} invalid)",
        valid + invalid
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// The location check itself: it must reject what it is there to catch.
#[test]
fn unlocated_errors_are_caught() {
    use launch::profile::{Diagnostic, SourceMap};
    let mut sources = SourceMap::default();
    sources.add(Path::new("p.toml"), "image = 1\n".into());
    let diags = |d: Diagnostic| Diagnostics {
        sources: std::sync::Arc::new(SourceMap::default()),
        items: vec![d],
    };
    let nowhere = diags(Diagnostic::whole_file("something went wrong"));
    assert!(located(&nowhere, "").is_err());
    let unreadable = diags(Diagnostic::whole_file(
        "cannot read profile p.toml: it is a directory",
    ));
    assert!(located(&unreadable, "").is_ok());
    let outside = Diagnostics {
        sources: std::sync::Arc::new(sources),
        items: vec![Diagnostic::new(8..40, "past the end")],
    };
    assert!(located(&outside, "").is_err());
}

#[test]
fn generated_profiles_load_cleanly() {
    run("generated", cases(), generated(), |case, stats| {
        check_in_process(&case, stats)
    });
}

#[test]
fn mutated_profiles_load_cleanly() {
    run("mutated", cases(), mutated(), |case, stats| {
        check_in_process(&case, stats)
    });
}

/// A key added to the format without a generator here would never be
/// fuzzed: the schema `launch schema` prints is the list to cover.
#[test]
fn every_key_of_the_schema_is_generated() {
    let out = Launch::new().arg("schema").run().code(0);
    let schema: Value = serde_json::from_str(&out.stdout).expect("the schema is JSON");
    let mut in_schema: Vec<&str> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    let mut generated: Vec<&str> = keys().into_iter().chain(["image", "extends"]).collect();
    in_schema.sort_unstable();
    generated.sort_unstable();
    assert_eq!(generated, in_schema);
}

#[test]
fn launch_check_exits_0_or_2() {
    let cases = (cases() / 10).max(4);
    let case = prop_oneof![generated(), mutated()];
    run(
        "binary",
        cases,
        (case, any::<bool>()),
        |(case, json), stats| check_binary(&case, json, stats),
    );
}

/// What `check` accepts, the engine creates: tidy profiles of the fuzzer's
/// keys, made runnable here (the test's offline image, no pull, no GPUs,
/// whose NVML this host lacks), go through `check` and then `up` on the
/// real daemon. `up` may stop for a fact of the host (a bind source that is
/// not there: exit 2 at its place) or fail to start what cannot run here
/// (privileges this sandbox lacks), but the daemon's create must never
/// refuse what `check` passed. `scripts/fuzz.sh` runs many more.
#[test]
fn what_check_accepts_the_engine_creates() {
    needs_docker!();
    let scratch = crate::support::docker::Scratch::new("fuzz_create");
    // With a command of its own, as real images have.
    let image = scratch.busybox_image_with("img", &[], &["CMD [\"sleep\", \"1000\"]"]);
    let keys: Vec<&'static str> = keys()
        .into_iter()
        .filter(|&k| {
            !matches!(
                k,
                "name" | "pull" | "gpus" | "env_file" | "build" | "memory_swap" | "extends"
            )
        })
        .collect();
    let g = Gen { tidy: true };
    let strategy = entries(keys, 8, g);
    let cases = (cases() / 6).max(12);
    let n = AtomicU64::new(0);
    run("create", cases, strategy, |entries, stats| {
        let name = scratch.name(&format!("c{}", n.fetch_add(1, Ordering::SeqCst)));
        let head = format!("image = {image:?}\nname = {name:?}\npull = \"never\"\n");
        let mut text = head.into_bytes();
        text.extend(render(&entries));
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, &text).expect("write");
        let shown = String::from_utf8_lossy(&text).into_owned();
        let check = Launch::new().arg("check").arg(&path).run();
        if check.code != 0 {
            stats.invalid.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        stats.valid.fetch_add(1, Ordering::Relaxed);
        let up = Launch::new()
            .env("LAUNCH_LOCK_DIR", dir.path().join("locks"))
            .args(["--json", "up"])
            .arg(&path)
            .run();
        let _ = crate::support::docker::try_docker(&["rm", "-f", "-v", &name]);
        // The daemon's create is the call "creating container …".
        if up.stdout.contains("creating container") || up.stderr.contains("creating container") {
            return Err(TestCaseError::fail(format!(
                "check accepted, the engine's create refused:\n{shown}\n--- up\n{}\n{}",
                up.stdout, up.stderr
            )));
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Generated profiles: TOML written from a small value tree, so that values of
// every type and shape, right and wrong, reach every key.

#[derive(Clone, Debug)]
enum V {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A token written as it is: numbers TOML cannot hold, dates, odd forms.
    Raw(&'static str),
    Arr(Vec<V>),
    Table(Vec<(String, V)>),
}

impl V {
    fn toml(&self) -> String {
        match self {
            V::Str(s) => string(s),
            V::Int(i) => i.to_string(),
            V::Float(f) if f.is_nan() => "nan".into(),
            V::Float(f) if f.is_infinite() => if *f > 0.0 { "inf" } else { "-inf" }.into(),
            V::Float(f) => format!("{f:?}"),
            V::Bool(b) => b.to_string(),
            V::Raw(t) => t.to_string(),
            V::Arr(items) => {
                let items: Vec<String> = items.iter().map(V::toml).collect();
                format!("[{}]", items.join(", "))
            }
            V::Table(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{} = {}", key(k), v.toml()))
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }
        }
    }
}

/// A TOML key: bare where it can be, else quoted (so `launch.x` stays one key).
fn key(k: &str) -> String {
    let bare = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if !k.is_empty() && k.bytes().all(bare) {
        k.to_string()
    } else {
        string(k)
    }
}

/// A TOML string of exactly `s`: literal ('…') where that is possible and
/// differs, else basic ("…") with escapes.
fn string(s: &str) -> String {
    if s.contains('\\') && !s.contains(['\'', '\n']) && !s.chars().any(char::is_control) {
        return format!("'{s}'");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One top-level key; a table or an array of tables may be written as a
/// `[section]` or `[[section]]`.
#[derive(Clone, Debug)]
struct Entry {
    key: &'static str,
    value: V,
    section: bool,
}

fn render(entries: &[Entry]) -> Vec<u8> {
    let (mut top, mut sections) = (String::new(), String::new());
    let lines = |fields: &[(String, V)]| -> String {
        fields
            .iter()
            .map(|(k, v)| format!("{} = {}\n", key(k), v.toml()))
            .collect()
    };
    for e in entries {
        let k = key(e.key);
        match &e.value {
            V::Table(fields) if e.section => {
                sections.push_str(&format!("\n[{k}]\n{}", lines(fields)));
            }
            V::Arr(items)
                if e.section
                    && !items.is_empty()
                    && items.iter().all(|i| matches!(i, V::Table(_))) =>
            {
                for item in items {
                    if let V::Table(fields) = item {
                        sections.push_str(&format!("\n[[{k}]]\n{}", lines(fields)));
                    }
                }
            }
            v => top.push_str(&format!("{k} = {}\n", v.toml())),
        }
    }
    (top + &sections).into_bytes()
}

/// Pieces of strings: interpolation in every form, home, unicode, control
/// characters, separators. No device paths: `env_file` and `extends` never
/// take these (a FIFO or /dev/zero would hang the current loader).
const FRAGMENTS: &[&str] = &[
    "${HOME}",
    "${LAUNCH_FUZZ_UNSET}",
    "${LAUNCH_FUZZ_UNSET:-d}",
    "${LAUNCH_FUZZ_UNSET:-}",
    "${A:-${B:-x}}",
    "${LAUNCH_FUZZ_UNSET:-${HOME}}",
    "${LAUNCH_FUZZ_UNSET:-${LAUNCH_FUZZ_UNSET}}",
    "$$",
    "$",
    "$HOME",
    "${",
    "}",
    "${}",
    "${1X}",
    "${A-b}",
    ":-",
    "~",
    "~/",
    "~root",
    "/",
    "..",
    ".",
    ":",
    "-",
    "=",
    ",",
    " ",
    "\t",
    "\n",
    "\r",
    "\0",
    "\u{7}",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "é",
    "日本",
    "🚀",
    "\u{202e}",
    "\u{feff}",
    "\u{fffd}",
    "'",
    "\"",
    "\\",
    "GPU-",
    "0",
    "65535",
    "ro",
    "rw",
    "all",
    "/usr/local/nvidia",
    "launch.",
    "CAP_",
];

fn text() -> BoxedStrategy<String> {
    prop::collection::vec(
        prop_oneof![
            3 => select(FRAGMENTS).prop_map(String::from),
            2 => "[a-zA-Z0-9_./:-]{1,6}",
            1 => any::<char>().prop_map(String::from),
        ],
        0..4,
    )
    .prop_map(|parts| parts.concat())
    .boxed()
}

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    30,
    65535,
    65536,
    4_294_967_296,
    9_007_199_254_740_993,
    i64::MAX,
    i64::MIN,
];

fn int() -> BoxedStrategy<i64> {
    prop_oneof![select(INTS), -5i64..100, any::<i64>()].boxed()
}

const FLOATS: &[f64] = &[
    1e-10,
    0.001,
    0.005,
    0.01,
    0.5,
    2.5,
    4096.0,
    4096.5,
    -1.0,
    0.0,
    -0.0,
    1e300,
    5e-324,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

fn float() -> BoxedStrategy<f64> {
    prop_oneof![3 => select(FLOATS), 1 => any::<f64>()].boxed()
}

/// Tokens the value tree cannot make: numbers past i64, other bases, dates.
const RAWS: &[&str] = &[
    "99999999999999999999",
    "-99999999999999999999",
    "18446744073709551615",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "+1",
    "1e1000",
    "nan",
    "-nan",
    "+inf",
    "1979-05-27",
    "07:32:00",
    "1979-05-27T07:32:00Z",
    "1979-05-27T07:32:00.999999+07:00",
    "[]",
    "{}",
    "[[]]",
    "\"\"\"multi\nline\"\"\"",
];

fn scalar() -> BoxedStrategy<V> {
    prop_oneof![
        3 => text().prop_map(V::Str),
        2 => int().prop_map(V::Int),
        1 => float().prop_map(V::Float),
        1 => any::<bool>().prop_map(V::Bool),
        1 => select(RAWS).prop_map(V::Raw),
    ]
    .boxed()
}

/// Any value at all, nested a little.
fn any_value() -> BoxedStrategy<V> {
    scalar()
        .prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(V::Arr),
                prop::collection::vec((text(), inner), 0..3).prop_map(V::Table),
            ]
        })
        .boxed()
}

/// A wrong value for a key that names files: anything but free text.
fn not_text() -> BoxedStrategy<V> {
    let item = prop_oneof![
        int().prop_map(V::Int),
        any::<bool>().prop_map(V::Bool),
        select(EXTENDS).prop_map(|s| V::Str(s.into())),
    ];
    prop_oneof![
        int().prop_map(V::Int),
        float().prop_map(V::Float),
        any::<bool>().prop_map(V::Bool),
        select(RAWS).prop_map(V::Raw),
        prop::collection::vec(item, 0..4).prop_map(V::Arr),
        prop::collection::vec(
            (
                select(EXTENDS).prop_map(String::from),
                int().prop_map(V::Int)
            ),
            0..3
        )
        .prop_map(V::Table),
    ]
    .boxed()
}

fn s(options: &'static [&'static str]) -> BoxedStrategy<V> {
    select(options).prop_map(|s| V::Str(s.into())).boxed()
}

fn list(item: BoxedStrategy<V>, max: usize) -> BoxedStrategy<V> {
    prop::collection::vec(item, 0..=max)
        .prop_map(V::Arr)
        .boxed()
}

/// Values for the keys. A tidy generator writes only values that are valid
/// (so the path to a loaded profile is fuzzed too); an untidy one mixes in
/// invalid values, free text, wrong types and unknown fields.
#[derive(Clone, Copy)]
struct Gen {
    tidy: bool,
}

impl Gen {
    /// One of `good`; when untidy, also one of `bad` or free text.
    fn pick(self, good: &'static [&'static str], bad: &'static [&'static str]) -> BoxedStrategy<V> {
        if self.tidy {
            return s(good);
        }
        if bad.is_empty() {
            return prop_oneof![3 => s(good), 1 => text().prop_map(V::Str)].boxed();
        }
        prop_oneof![3 => s(good), 2 => s(bad), 1 => text().prop_map(V::Str)].boxed()
    }

    /// An array of up to `max` strings; a tidy one repeats none.
    fn list_of(
        self,
        good: &'static [&'static str],
        bad: &'static [&'static str],
        max: usize,
    ) -> BoxedStrategy<V> {
        if self.tidy {
            return subsequence(good, 0..=max.min(good.len()))
                .prop_shuffle()
                .prop_map(|items| V::Arr(items.into_iter().map(|s| V::Str(s.into())).collect()))
                .boxed();
        }
        list(self.pick(good, bad), max)
    }

    /// `right`; when untidy, sometimes a value of any type instead.
    fn or_any(self, right: BoxedStrategy<V>) -> BoxedStrategy<V> {
        if self.tidy {
            return right;
        }
        prop_oneof![4 => right, 1 => any_value()].boxed()
    }

    /// A number in `good`; when untidy, any number.
    fn int(self, good: std::ops::Range<i64>) -> BoxedStrategy<V> {
        if self.tidy {
            return good.prop_map(V::Int).boxed();
        }
        prop_oneof![good.prop_map(V::Int), int().prop_map(V::Int)].boxed()
    }

    fn bool(self) -> BoxedStrategy<V> {
        self.or_any(any::<bool>().prop_map(V::Bool).boxed())
    }

    /// A table of any subset of the fields, in any order; untidy, with an unknown one.
    fn table_of(self, mut fields: Vec<(&'static str, BoxedStrategy<V>)>) -> BoxedStrategy<V> {
        if !self.tidy {
            fields.push(("bogus", any_value()));
        }
        fields
            .into_iter()
            .map(|(k, v)| prop::option::weighted(0.5, v.prop_map(move |v| (k.to_string(), v))))
            .collect::<Vec<_>>()
            .prop_shuffle()
            .prop_map(|fields| V::Table(fields.into_iter().flatten().collect()))
            .boxed()
    }

    /// A table with keys from `good` (untidy: also `bad` and free text).
    fn map_of(
        self,
        good: &'static [&'static str],
        bad: &'static [&'static str],
        value: BoxedStrategy<V>,
        max: usize,
    ) -> BoxedStrategy<V> {
        if self.tidy {
            return subsequence(good, 0..=max.min(good.len()))
                .prop_flat_map(move |keys| {
                    keys.into_iter()
                        .map(|k| (Just(k.to_string()), value.clone()))
                        .collect::<Vec<_>>()
                })
                .prop_map(V::Table)
                .boxed();
        }
        let key = self.pick(good, bad).prop_map(|k| match k {
            V::Str(k) => k,
            _ => unreachable!("pick gives strings"),
        });
        prop::collection::vec((key, value), 0..=max)
            .prop_map(V::Table)
            .boxed()
    }
}

/// Paths `extends` names: the folder's profiles (cycles and self included),
/// a symlink to the main one, missing files, a folder, odd forms.
const EXTENDS: &[&str] = &[
    "p1.toml",
    "p2.toml",
    "profile.toml",
    "./p1.toml",
    "sub/../p2.toml",
    "link.toml",
    "missing.toml",
    "sub",
    "",
    ".",
    "e1.env",
    "~/launch-fuzz-missing.toml",
    "/nonexistent/launch-fuzz.toml",
    "${LAUNCH_FUZZ_UNSET}.toml",
    "${LAUNCH_FUZZ_UNSET:-p1}.toml",
    "${LAUNCH_FUZZ_UNSET:-${LAUNCH_FUZZ_UNSET:-p2}}.toml",
    "p\u{0}1.toml",
    "P1.TOML",
];

/// Paths `env_file` names; never a device or a FIFO (see FRAGMENTS).
const ENV_FILES: &[&str] = &[
    "e1.env",
    "e2.env",
    "./e1.env",
    "sub/../e2.env",
    "missing.env",
    "sub",
    "",
    "profile.toml",
    "~/launch-fuzz-missing.env",
    "${LAUNCH_FUZZ_UNSET:-e1}.env",
    "${LAUNCH_FUZZ_UNSET}.env",
    "e\u{0}1.env",
];

const ENV_LINES: &[&str] = &[
    "A=1",
    "export B=two",
    "C='single $A'",
    "D=\"double ${A}\"",
    "E=${LAUNCH_FUZZ_UNSET}",
    "F=${LAUNCH_FUZZ_UNSET:-${A:-x}}",
    "G=\"multi\nline\"",
    "# a comment",
    "",
    "   ",
    "H",
    "=nokey",
    "I=\"unclosed",
    "J='unclosed",
    "K=a\\",
    "L=é日本",
    "M=\u{1}",
    "N=a # comment",
    "O= spaced ",
    "export",
    "P=$$",
];

fn env_file_text() -> BoxedStrategy<Vec<u8>> {
    let key = select(&["A", "B", "PATH", "_x", "1X", "é", "export Q", ""][..]);
    let line = prop_oneof![
        3 => select(ENV_LINES).prop_map(String::from),
        1 => (key, text()).prop_map(|(k, v)| format!("{k}={v}")),
    ];
    prop::collection::vec(line, 0..5)
        .prop_map(|lines| lines.join("\n").into_bytes())
        .boxed()
}

/// Valid ports, none publishing the same host port twice.
const PORTS: &[&str] = &[
    "8080",
    "80:8080",
    "127.0.0.1:80:80/tcp",
    "[::1]:8080:80",
    "8000-8010:9000-9010",
    "53:53/udp",
    "${LAUNCH_FUZZ_UNSET:-8080}:80",
];

/// The port forms of docker, right and wrong, and generated ones: mostly
/// short ranges, now and then one of thousands of ports.
fn port(g: Gen) -> BoxedStrategy<V> {
    const BAD: &[&str] = &[
        "8000-8010:9000",
        "8000-8002:9000-9010",
        "0:80",
        "65536:80",
        "1:2:3:4",
        "80/quic",
        ":80",
        "80:",
        "::1:80:80",
        "[::1:80:80",
        "9-1:9-1",
        "-",
        "${HOME}:80",
    ];
    if g.tidy {
        return g.pick(PORTS, BAD);
    }
    let width = prop_oneof![9 => 0u32..20, 1 => 1000u32..66000];
    let range = (0u32..70000, prop::option::of(width)).prop_map(|(a, w)| match w {
        Some(w) => format!("{a}-{}", a + w),
        None => a.to_string(),
    });
    let ip = select(&["127.0.0.1", "0.0.0.0", "[::1]", "::1", "999.1.1.1", ""][..]);
    let proto = select(&["tcp", "udp", "sctp", "", "TCP"][..]);
    let made = (
        prop::option::of(ip),
        prop::option::of(range.clone()),
        range,
        prop::option::of(proto),
    )
        .prop_map(|(ip, host, container, proto)| {
            let mut p = String::new();
            if let Some(ip) = ip {
                p += &format!("{ip}:");
            }
            if let Some(host) = host {
                p += &format!("{host}:");
            }
            p += &container;
            if let Some(proto) = proto {
                p += &format!("/{proto}");
            }
            V::Str(p)
        });
    prop_oneof![2 => g.pick(PORTS, BAD), 2 => made].boxed()
}

/// A `volumes` array.
fn volumes(g: Gen) -> BoxedStrategy<V> {
    const SOURCES: &[&str] = &[
        "/data",
        "./rel",
        "~/x",
        "vol",
        "vol.1",
        "${HOME}",
        "${LAUNCH_FUZZ_UNSET:-/data}",
        "/a/../b",
    ];
    const BAD_SOURCES: &[&str] = &["", "rel", "C:\\x", "/dev/nvidia0", "é", "-v"];
    const TARGETS: &[&str] = &["/data", "/data/", "/srv/a", "/x/.", "//y"];
    const BAD_TARGETS: &[&str] = &[
        "/",
        "rel",
        "",
        "/usr/local/nvidia/lib",
        "/dev/nvidia0",
        "/dev/nvidia-caps/nvidia-cap1",
        "/dev/dri/card0",
        "/x/..",
        "/data/.",
    ];
    let modes: &'static [&'static str] = if g.tidy {
        &["", "ro", "rw"]
    } else {
        &["", "", "ro", "rw", "z", "ro,z", "RO"]
    };
    let sources = [SOURCES, BAD_SOURCES].concat();
    let targets = [TARGETS, BAD_TARGETS].concat();
    let write = |(s, t, m): (&str, &str, &str)| {
        V::Str(if m.is_empty() {
            format!("{s}:{t}")
        } else {
            format!("{s}:{t}:{m}")
        })
    };
    if g.tidy {
        // One mount a target, or it is a duplicate.
        return subsequence(&["/data", "/srv/a", "/x/.", "//y"][..], 0..=4)
            .prop_flat_map(move |targets| {
                targets
                    .into_iter()
                    .map(|t| (select(SOURCES), Just(t), select(modes)).prop_map(write))
                    .collect::<Vec<_>>()
            })
            .prop_map(V::Arr)
            .boxed();
    }
    let short = (select(sources), select(targets), select(modes)).prop_map(write);
    let long = g.table_of(vec![
        ("source", g.pick(SOURCES, BAD_SOURCES)),
        ("target", g.pick(TARGETS, BAD_TARGETS)),
        ("read_only", g.bool()),
        (
            "type",
            g.pick(&["bind", "volume"], &["tmpfs", "Bind", "npipe"]),
        ),
        ("create", g.bool()),
    ]);
    list(
        prop_oneof![3 => short, 1 => text().prop_map(V::Str), 2 => long].boxed(),
        4,
    )
}

fn gpus(g: Gen) -> BoxedStrategy<V> {
    let id = if g.tidy {
        (0i64..8).prop_map(V::Int).boxed()
    } else {
        prop_oneof![
            select(&[0i64, 1, 7, -1, 4_294_967_296, i64::MAX][..]).prop_map(V::Int),
            g.pick(&["GPU-8f6c", "0"], &["GPU-", "MIG-x", "gpu0", "all"]),
            any::<bool>().prop_map(V::Bool),
        ]
        .boxed()
    };
    let table = g.table_of(vec![
        (
            "devices",
            prop_oneof![g.pick(&["all"], &["none", ""]), list(id.clone(), 3)].boxed(),
        ),
        ("count", g.int(1..4)),
        (
            "mode",
            g.pick(&["auto", "toolkit", "cdi", "devices"], &["Auto", "legacy"]),
        ),
        (
            "capabilities",
            g.or_any(list(
                g.pick(&["compute", "utility", "graphics", "all"], &["bogus", ""]),
                3,
            )),
        ),
    ]);
    prop_oneof![
        g.pick(&["all"], &["none", "2", "", "ALL", "0,1"]),
        list(id, 4),
        table,
    ]
    .boxed()
}

/// A value for `key`: mostly of the right type (right or wrong in meaning),
/// sometimes of any type. Keys naming files never get free text.
fn value_for(key: &'static str, g: Gen) -> BoxedStrategy<V> {
    if g.tidy {
        return right(key, g);
    }
    let wrong = match key {
        "extends" | "env_file" | "security_opt" => not_text(),
        _ => any_value(),
    };
    prop_oneof![4 => right(key, g), 1 => wrong].boxed()
}

fn right(key: &str, g: Gen) -> BoxedStrategy<V> {
    let size = || {
        prop_oneof![
            g.pick(
                &["8G", "512m", "1.5g", "1k", "64M", "1073741824"],
                &[
                    "0",
                    "-1",
                    "1e3",
                    "",
                    "8 GiB",
                    "99999999999999999999T",
                    "6m",
                    "5m"
                ]
            ),
            g.int(8 << 20..1 << 40),
        ]
        .boxed()
    };
    let argv = || {
        prop_oneof![
            g.pick(
                &["/bin/bash", "sh -c 'echo $HOME'", "\"\""],
                &["echo 'unclosed", "a \\", ""]
            ),
            list(g.pick(&["sh", "-c", "echo ${HOME}", ""], &[]), 3),
        ]
        .boxed()
    };
    let duration = || {
        g.pick(
            &["30s", "1m30s", "0s", "1ms", "1h"],
            &["-1s", "bogus", "", "99999999999h", "1.5s", "1ns", "500us"],
        )
    };
    match key {
        "image" => g.pick(
            &[
                "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
                "busybox",
                "localhost:5000/team/img:v1",
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "${LAUNCH_FUZZ_UNSET:-busybox}",
            ],
            &[
                "busybox@sha256:xyz",
                "${HOME}",
                "Busybox",
                "",
                "x:",
                ":tag",
                "a//b",
                "img:${LAUNCH_FUZZ_UNSET}",
            ],
        ),
        "extends" => prop_oneof![3 => s(EXTENDS), 1 => list(s(EXTENDS), 3)].boxed(),
        "env_file" => prop_oneof![3 => s(ENV_FILES), 1 => list(s(ENV_FILES), 3)].boxed(),
        "name" => g.pick(
            &["dev", "a1", "x.y_z-1", "${LAUNCH_FUZZ_UNSET:-n1}"],
            &["-x", "a b", "é", "a"],
        ),
        "pull" => g.pick(&["missing", "always", "never"], &["sometimes", "Always"]),
        "command" | "entrypoint" => argv(),
        "interactive" | "privileged" => g.bool(),
        "workdir" => g.pick(&["/w", "/", "/a/../b"], &["rel", "", "~"]),
        "user" => g.pick(&["root", "1000:1000", "${USER:-nobody}"], &[""]),
        "hostname" => g.pick(
            &["box", "a.b"],
            &[
                "-bad",
                "x_y",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ],
        ),
        "env" => g.map_of(
            &["A", "PATH", "é", "a b", "launch.x"],
            &["", "A=B"],
            prop_oneof![
                3 => text().prop_map(V::Str),
                1 => int().prop_map(V::Int),
                1 => any::<bool>().prop_map(V::Bool),
                1 => g.or_any(float().prop_map(V::Float).boxed()),
            ]
            .boxed(),
            4,
        ),
        "labels" => g.map_of(
            &["a", "com.example.x"],
            &["launch.x", "launch.", "", "a b"],
            g.pick(&["v", ""], &[]),
            3,
        ),
        "gpus" => gpus(g),
        "ports" if g.tidy => g.list_of(PORTS, &[], 4),
        "ports" => list(port(g), 4),
        "volumes" => volumes(g),
        "devices" => g.list_of(
            &[
                "/dev/fuse",
                "/dev/net/tun:/dev/net/tun",
                "/dev/kvm:/dev/kvm:rwm",
            ],
            &[
                "/dev/fuse:/dev/f:q",
                "/dev/nvidia0",
                "/dev/x:/dev/nvidia-caps/nvidia-cap1",
                "/dev/x:/usr/local/nvidia/x",
                "/dev/x:rel",
                "rel",
                "",
                "/a:/b:c:d",
            ],
            3,
        ),
        "shm_size" | "memory" => size(),
        "network" => g.pick(
            &[
                "bridge",
                "host",
                "none",
                "default",
                "container:abc",
                "my-net",
            ],
            &["container:", "", "bad name!"],
        ),
        "ipc" => g.pick(
            &["host", "private", "shareable", "none", "container:abc"],
            &["container:", "container:-x", "bogus"],
        ),
        "pid" => g.pick(
            &["host", "private", "container:abc"],
            &["shareable", "container:", "bogus"],
        ),
        "cap_add" | "cap_drop" => g.list_of(
            &["SYS_ADMIN", "cap_net_admin", "ALL"],
            &["bogus", "SYS_PTRAC", ""],
            3,
        ),
        "security_opt" => g.list_of(
            &[
                "no-new-privileges",
                "no-new-privileges:true",
                "apparmor=unconfined",
                "label=disable",
            ],
            &[
                "label:disable",
                "bogus",
                "",
                "seccomp=unconfined",
                "seccomp=missing.json",
            ],
            3,
        ),
        "ulimits" => g.map_of(
            &["memlock", "nofile", "stack", "core"],
            &["bogus", "NOFILE", ""],
            prop_oneof![
                g.int(-1..100),
                g.pick(
                    &["65536:65536", "-1", "1:2"],
                    &["1:2:3", "a:b", "2:1", "-1:5", "5:-1", "", " 3 : 4 "]
                ),
                g.table_of(vec![("soft", g.int(0..10)), ("hard", g.int(10..20))]),
            ]
            .boxed(),
            3,
        ),
        "cpus" => prop_oneof![
            if g.tidy {
                select(&[0.5, 2.5, 4096.0][..]).prop_map(V::Float).boxed()
            } else {
                float().prop_map(V::Float).boxed()
            },
            g.int(1..64),
            g.pick(
                &["2.5", " 4 "],
                &["0.005", "abc", "", "1e-10", "NaN", "inf"]
            ),
        ]
        .boxed(),
        "cpuset" => g.pick(
            &["0-7,16", "0-4294967295"],
            &["7-0", "a", "", "0-4294967296", "1,,2", "-"],
        ),
        "restart" => g.pick(
            &[
                "no",
                "always",
                "unless-stopped",
                "on-failure",
                "on-failure:3",
            ],
            &[
                "on-failure:-1",
                "on-failure:99999999999",
                "on-failure:",
                "bogus",
                "no:1",
            ],
        ),
        "stop_timeout" => g.int(0..100),
        "healthcheck" => g.table_of(vec![
            (
                "cmd",
                g.or_any(
                    prop_oneof![
                        g.pick(&["curl -f http://localhost/", "exit 1"], &[""]),
                        list(g.pick(&["CMD", "CMD-SHELL", "NONE", "curl", "-f"], &[]), 3),
                    ]
                    .boxed(),
                ),
            ),
            ("interval", g.or_any(duration())),
            ("timeout", g.or_any(duration())),
            ("retries", g.int(0..10)),
            ("start_period", g.or_any(duration())),
        ]),
        "recreate" => g.table_of(vec![
            (
                "changed_files",
                g.or_any(g.pick(&["refuse", "snapshot", "discard"], &["bogus", ""])),
            ),
            (
                "ignore",
                g.or_any(list(g.pick(&["/tmp", "/x/..", "/data/."], &["rel", ""]), 3)),
            ),
        ]),
        "lease" => g.table_of(vec![
            (
                "until",
                g.or_any(g.pick(
                    &["72h", "2026-12-20T18:00:00Z", "1d 12h"],
                    &["0s", "next week", "", "2026-13-01T00:00:00Z"],
                )),
            ),
            (
                "idle_after",
                g.or_any(g.pick(&["2h", "30m"], &["0m", "-1h", "1 fortnight"])),
            ),
            ("grace", g.or_any(g.pick(&["30m", "0s"], &["soon"]))),
            (
                "on_reclaim",
                g.or_any(g.pick(&["stop", "snapshot", "remove"], &["kill", ""])),
            ),
            ("warn_before", g.or_any(g.pick(&["15m"], &["x"]))),
            ("idle_below", g.or_any(g.int(0..150))),
        ]),
        "init" | "read_only" => g.bool(),
        "group_add" => prop_oneof![
            g.list_of(&["1000", "44"], &["owner", "", "-1", "0x10"], 3),
            list(g.int(1..70000), 2),
        ]
        .boxed(),
        "dns" => g.list_of(
            &["10.0.0.2", "1.1.1.1", "fd00::53"],
            &["dns.example", "", "300.1.1.1"],
            3,
        ),
        "extra_hosts" => g.list_of(
            &[
                "db:10.0.0.5",
                "host.docker.internal:host-gateway",
                "v6:fd00::1",
            ],
            &["db", ":1.2.3.4", "a:b:c"],
            3,
        ),
        "device_cgroup_rules" => g.list_of(
            &["c 195:* rwm", "c 10:200 rwm", "b 8:* r"],
            &["x 1:1 rwm", "c 195 rwm", "c a:b rwm", ""],
            2,
        ),
        "sysctls" => g.map_of(
            &[
                "net.core.somaxconn",
                "net.ipv4.ip_forward",
                "kernel.shm_rmid_forced",
            ],
            &["vm.swappiness", "", "net..x"],
            prop_oneof![g.int(0..4096), g.pick(&["1", "0"], &[""])].boxed(),
            3,
        ),
        "runtime" => g.pick(&["runc", "nvidia"], &["", "run c"]),
        "platform" => g.pick(
            &["linux/amd64", "linux/arm64/v8"],
            &["amd64", "windows/amd64", ""],
        ),
        "memory_swap" => prop_oneof![size(), g.int(-1..0)].boxed(),
        "log" => g.table_of(vec![
            (
                "driver",
                g.pick(
                    &["json-file", "local", "journald", "none"],
                    &["", "syslog!"],
                ),
            ),
            (
                "options",
                g.map_of(
                    &["max-size", "max-file", "tag"],
                    &["", "max size"],
                    g.pick(&["100m", "3", "{{.Name}}"], &[""]),
                    2,
                ),
            ),
        ]),
        // A tidy profile names no files, which its folder would not have.
        "build" => g.table_of(vec![
            ("context", g.pick(&["."], &["missing", "/", ""])),
            (
                "dockerfile",
                g.pick(&["Dockerfile"], &["../Dockerfile", ""]),
            ),
            (
                "args",
                g.map_of(
                    &["CUDA", "PY"],
                    &["", "1X"],
                    prop_oneof![g.pick(&["12.4", "3.11"], &[]), g.int(0..10)].boxed(),
                    2,
                ),
            ),
            ("target", g.pick(&["runtime", "dev"], &["", "a b"])),
        ]),
        other => unreachable!("no generator for `{other}`"),
    }
}

/// Every key but `image` and `extends`, which `profile` adds on its own:
/// the profile's keys as `check`'s schema test lists them.
fn keys() -> Vec<&'static str> {
    crate::check::TOP_LEVEL_KEYS
        .iter()
        .copied()
        .filter(|k| !matches!(*k, "image" | "extends"))
        .collect()
}

/// Keys that are not in the format, some a typo away from one.
const UNKNOWN: &[&str] = &["imgae", "volume", "gpu", "Image", "launch", "x-custom", ""];

/// One untidy profile: `image` with the given chance, often `extends`, a few
/// other keys, now and then an unknown one.
fn profile(image: f64) -> BoxedStrategy<Vec<Entry>> {
    let g = Gen { tidy: false };
    (
        prop::option::weighted(0.4, entry("extends", g)),
        prop::option::weighted(image, entry("image", g)),
        entries(keys(), 6, g),
        prop::option::weighted(0.1, (select(UNKNOWN), any_value())),
    )
        .prop_map(|(extends, image, others, unknown)| {
            let unknown = unknown.map(|(key, value)| Entry {
                key,
                value,
                section: false,
            });
            extends
                .into_iter()
                .chain(image)
                .chain(others)
                .chain(unknown)
                .collect()
        })
        .boxed()
}

/// A tidy profile: an image and a few keys, all valid, no files named.
fn tidy_profile() -> BoxedStrategy<Vec<Entry>> {
    let g = Gen { tidy: true };
    // A tidy profile names no files, which its folder would not have.
    let keys: Vec<&str> = keys()
        .into_iter()
        // Nor `memory_swap`, which needs `memory`.
        .filter(|&k| !matches!(k, "env_file" | "build" | "memory_swap"))
        .collect();
    (entry("image", g), entries(keys, 8, g))
        .prop_map(|(image, others)| std::iter::once(image).chain(others).collect())
        .boxed()
}

fn entry(key: &'static str, g: Gen) -> impl Strategy<Value = Entry> {
    (value_for(key, g), prop::bool::weighted(0.5)).prop_map(move |(value, section)| Entry {
        key,
        value,
        section,
    })
}

/// Up to `max` of `keys`, in any order.
fn entries(keys: Vec<&'static str>, max: usize, g: Gen) -> impl Strategy<Value = Vec<Entry>> {
    subsequence(keys, 0..=max)
        .prop_flat_map(move |keys| keys.into_iter().map(|k| entry(k, g)).collect::<Vec<_>>())
        .prop_shuffle()
}

/// profile.toml (loaded, or through link.toml), up to two profiles it may
/// extend (p1.toml, p2.toml) and up to two env files (e1.env, e2.env);
/// or a tidy profile.toml alone.
fn generated() -> BoxedStrategy<Case> {
    let untidy = (
        profile(0.85),
        prop::collection::vec(profile(0.5), 0..=2),
        prop::collection::vec(env_file_text(), 0..=2),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(main, parents, envs, via_link)| {
            let mut files = vec![("profile.toml".to_string(), render(&main))];
            for (i, p) in parents.iter().enumerate() {
                files.push((format!("p{}.toml", i + 1), render(p)));
            }
            for (i, e) in envs.into_iter().enumerate() {
                files.push((format!("e{}.env", i + 1), e));
            }
            let load = if via_link {
                "link.toml"
            } else {
                "profile.toml"
            };
            Case {
                files,
                load: load.into(),
            }
        });
    let tidy = tidy_profile().prop_map(|main| Case {
        files: vec![("profile.toml".to_string(), render(&main))],
        load: "profile.toml".into(),
    });
    prop_oneof![3 => untidy, 1 => tidy].boxed()
}

// ---------------------------------------------------------------------------
// Mutated profiles: the checked-in ones with bytes flipped, lines duplicated
// or dropped, brackets and quotes inserted, the end cut off.

/// The first three extend each other (alice and bob extend base).
const SEEDS: &[(&str, &str)] = &[
    ("base.toml", include_str!("../../profiles/team/base.toml")),
    ("alice.toml", include_str!("../../profiles/team/alice.toml")),
    ("bob.toml", include_str!("../../profiles/team/bob.toml")),
    (
        "cs-ddm.toml",
        include_str!("../../profiles/examples/cs-ddm.toml"),
    ),
    (
        "cs-torch.toml",
        include_str!("../../profiles/examples/cs-torch.toml"),
    ),
    (
        "paddle-8gpu.toml",
        include_str!("../../profiles/examples/paddle-8gpu.toml"),
    ),
    (
        "gpu-demo.toml",
        include_str!("../../profiles/demo/gpu-demo.toml"),
    ),
];
const TEAM: usize = 3;

const INSERTS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "{",
    "}",
    "=",
    ",",
    "\n",
    "#",
    "\\",
    "${",
    "$$",
    "~",
    "\0",
    "\u{feff}",
    "é",
    "\r",
    "\t",
    "[env]\n",
    "[gpus]\n",
    "[[volumes]]\n",
    // Dotted keys and sections that clash with what the file says elsewhere.
    "[gpus.devices]\n",
    "gpus.count = 2\n",
    "[[env]]\n",
    "[volumes]\n",
    "[recreate.ignore]\n",
    "env.A.B = 1\n",
    "extends = \"base.toml\"\n",
    "extends = \"alice.toml\"\n",
    "extends = [\"bob.toml\", \"base.toml\"]\n",
    "env_file = \"missing.env\"\n",
    "image = 1\n",
    "1e-10",
    "-1",
    "99999999999999999999",
    "${LAUNCH_FUZZ_UNSET}",
    "${A:-${B:-x}}",
    "inf",
    "nan",
    "true",
];

#[derive(Clone, Debug)]
enum Mutation {
    /// XOR a byte with the mask (below 0x80 keeps ASCII ASCII).
    Flip(Index, u8),
    Truncate(Index),
    DuplicateLine(Index),
    DeleteLine(Index),
    Insert(Index, &'static str),
    Delete(Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            any::<Index>(),
            prop_oneof![4 => 1u8..0x80, 1 => 0x80u8..=0xff]
        )
            .prop_map(|(i, m)| Mutation::Flip(i, m)),
        any::<Index>().prop_map(Mutation::Truncate),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        any::<Index>().prop_map(Mutation::DeleteLine),
        (any::<Index>(), select(INSERTS)).prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    match m {
        Mutation::Flip(i, mask) if len > 0 => bytes[i.index(len)] ^= mask,
        Mutation::Truncate(i) => bytes.truncate(i.index(len + 1)),
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let n = i.index(lines.len());
            lines.insert(n, lines[n].clone());
            *bytes = lines.concat();
        }
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i.index(lines.len()));
            *bytes = lines.concat();
        }
        Mutation::Insert(i, text) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, text.bytes());
        }
        Mutation::Delete(i, n) => {
            let at = i.index(len + 1);
            bytes.drain(at..(at + n).min(len));
        }
        _ => {}
    }
}

/// One checked-in profile mutated; for the team, base.toml is sometimes
/// mutated too, under alice and bob.
fn mutated() -> BoxedStrategy<Case> {
    (
        0..SEEDS.len(),
        prop::collection::vec(mutation(), 1..4),
        prop::collection::vec(mutation(), 0..3),
    )
        .prop_map(|(target, own, base)| {
            let family = if target < TEAM {
                0..TEAM
            } else {
                target..target + 1
            };
            let files = family
                .map(|i| {
                    let (name, text) = SEEDS[i];
                    let mut bytes = text.as_bytes().to_vec();
                    let mutations = if i == target {
                        &own
                    } else if i == 0 {
                        &base
                    } else {
                        &Vec::new()
                    };
                    for m in mutations {
                        apply(&mut bytes, m);
                    }
                    (name.to_string(), bytes)
                })
                .collect();
            Case {
                files,
                load: SEEDS[target].0.into(),
            }
        })
        .boxed()
}
