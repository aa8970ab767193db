//! Reading profile files: TOML with spans, `${VAR}` interpolation, `extends`
//! merging, and the typed deserialization that reports every key it can.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, Deserializer};


use super::diagnostic::Diagnostic;
use super::interpolate::{InterpolationError, interpolate};
use super::diagnostic;
use super::extends::merge;
use super::raw::RawProfile;
use super::source::{SourceMap, Span};

type Table = DeTable<'static>;
type Value = Spanned<DeValue<'static>>;

/// What `read` produces: the merged raw profile and everything seen on the way.
pub struct Read {
    pub raw: RawProfile,
    /// Span of the whole top-level file, for errors that belong to no key.
    pub whole: Span,
}

/// Reads `path` and the profiles it extends, and deserializes the merged result.
///
/// Problems are pushed to `diags`; `None` means nothing usable was read.
pub fn read(path: &Path, sources: &mut SourceMap, diags: &mut Vec<Diagnostic>) -> Option<Read> {
    let mut stack = Vec::new();
    let (table, whole) = read_tree(path, sources, diags, &mut stack)?;
    let raw = deserialize_all(table, whole.clone(), diags);
    Some(Read { raw, whole })
}

/// One file and, recursively, its `extends`: the merged TOML tree.
fn read_tree(
    path: &Path,
    sources: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
    stack: &mut Vec<PathBuf>,
) -> Option<(Table, Span)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            diags.push(Diagnostic::whole_file(format!(
                "cannot read profile {}: {}",
                path.display(),
                super::io_reason(&e)
            )));
            return None;
        }
    };
    let base = sources.add(path, text);
    let file = sources.file_at(base)?;
    let (tree, errors) = DeTable::parse_recoverable(file.text);
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            diags.push(Diagnostic::new(
                span.start + base..span.end + base,
                format!("invalid TOML: {}", e.message().trim_end()),
            ));
        }
        return None;
    }
    let whole = base..base + file.text.len();
    let mut table = match shift(&DeValue::Table(tree.into_inner()), base, sources, diags) {
        DeValue::Table(t) => t,
        _ => return None,
    };

    let Some(extends) = table.remove("extends") else {
        return Some((table, whole));
    };
    let own = canonical(path);
    stack.push(own);
    let mut merged: Option<Table> = None;
    for parent in extends_paths(&extends, diags) {
        let parent_path = resolve_relative(path, parent.get_ref());
        let canon = canonical(&parent_path);
        if let Some(i) = stack.iter().position(|p| *p == canon) {
            let mut chain: Vec<String> = stack[i..].iter().map(|p| p.display().to_string()).collect();
            chain.push(canon.display().to_string());
            diags.push(
                Diagnostic::new(parent.span(), "`extends` forms a cycle")
                    .label("this profile is already being extended")
                    .help(format!("the chain is {}", chain.join(" → "))),
            );
            continue;
        }
        if !parent_path.is_file() {
            diags.push(
                Diagnostic::new(
                    parent.span(),
                    format!("extended profile {} does not exist", parent_path.display()),
                )
                .help("`extends` paths are relative to the profile that names them"),
            );
            continue;
        }
        if let Some((parent_table, _)) = read_tree(&parent_path, sources, diags, stack) {
            merged = Some(match merged {
                Some(earlier) => merge(earlier, parent_table),
                None => parent_table,
            });
        }
    }
    stack.pop();
    let table = match merged {
        Some(parent) => merge(parent, table),
        None => table,
    };
    Some((table, whole))
}

/// `extends = "a.toml"` or `extends = ["a.toml", "b.toml"]`.
fn extends_paths(value: &Value, diags: &mut Vec<Diagnostic>) -> Vec<Spanned<String>> {
    let as_path = |v: &Value| v.get_ref().as_str().map(|s| Spanned::new(v.span(), s.to_string()));
    let paths: Option<Vec<_>> = match value.get_ref() {
        DeValue::Array(items) => items.iter().map(as_path).collect(),
        _ => as_path(value).map(|p| vec![p]),
    };
    paths.unwrap_or_else(|| {
        diags.push(Diagnostic::new(
            value.span(),
            "`extends` must be a path or an array of paths",
        ));
        Vec::new()
    })
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A path named in `profile`, relative to the profile's folder.
pub fn resolve_relative(profile: &Path, named: &str) -> PathBuf {
    let named = super::expand_home(named);
    match profile.parent() {
        Some(dir) if named.is_relative() => dir.join(named),
        _ => named,
    }
}

/// Copies a parsed tree into global positions (see `source`) and interpolates
/// `${VAR}` in every string value on the way.
fn shift(
    value: &DeValue<'static>,
    base: usize,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> DeValue<'static> {
    let at = |s: Span| s.start + base..s.end + base;
    match value {
        DeValue::Table(t) => DeValue::Table(
            t.iter()
                .map(|(k, v)| {
                    let key = Spanned::new(at(k.span()), k.get_ref().clone());
                    let span = at(v.span());
                    let value = match v.get_ref() {
                        DeValue::String(s) => expand(s, span.clone(), sources, diags),
                        other => shift(other, base, sources, diags),
                    };
                    (key, Spanned::new(span, value))
                })
                .collect(),
        ),
        DeValue::Array(items) => {
            let mut out = DeArray::new();
            for v in items.iter() {
                let span = at(v.span());
                let value = match v.get_ref() {
                    DeValue::String(s) => expand(s, span.clone(), sources, diags),
                    other => shift(other, base, sources, diags),
                };
                out.push(Spanned::new(span, value));
            }
            DeValue::Array(out)
        }
        other => other.clone(),
    }
}

fn expand(
    text: &str,
    span: Span,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> DeValue<'static> {
    let lookup = |name: &str| std::env::var(name).ok();
    match interpolate(text, lookup) {
        Ok(s) => DeValue::String(s.into()),
        Err(e) => {
            let (at, len) = match &e {
                InterpolationError::Unset { at, len, .. } => (*at, *len),
                InterpolationError::Malformed { at, len, .. } => (*at, *len),
            };
            // Point at the `${…}` itself when the literal is written plainly.
            let precise = sources.snippet(&span).and_then(|raw| {
                let inner = raw.get(1..raw.len().checked_sub(1)?)?;
                (inner == text).then(|| span.start + 1 + at..span.start + 1 + at + len)
            });
            let d = match e {
                InterpolationError::Unset { name, .. } => Diagnostic::new(
                    precise.unwrap_or(span),
                    format!("environment variable `{name}` is not set"),
                )
                .help(format!(
                    "set {name}, or give a default: ${{{name}:-value}}; write $$ for a literal $"
                )),
                InterpolationError::Malformed { reason, .. } => {
                    Diagnostic::new(precise.unwrap_or(span), "invalid `${…}` reference")
                        .label(reason)
                        .help("write $$ for a literal $")
                }
            };
            diags.push(d);
            DeValue::String(text.to_string().into())
        }
    }
}

/// Deserializes the merged table; on an error, reports it, drops the key it
/// belongs to and tries again, so one run shows every bad key, not just the first.
fn deserialize_all(mut table: Table, whole: Span, diags: &mut Vec<Diagnostic>) -> RawProfile {
    let mut seen = HashSet::new();
    loop {
        let de = Deserializer::from(Spanned::new(whole.clone(), table.clone()));
        let error = match RawProfile::deserialize(de) {
            Ok(raw) => return raw,
            Err(e) => e,
        };
        let span = error.span().unwrap_or(whole.clone());
        diags.push(diagnostic::from_serde(error.message(), span.clone()));
        // The top-level key whose key or value holds the error.
        let culprit = table
            .iter()
            .find(|(k, v)| {
                let (k, v) = (k.span(), v.span());
                (k.start <= span.start && span.end <= k.end) || (v.start <= span.start && span.end <= v.end)
            })
            .map(|(k, _)| k.get_ref().to_string());
        match culprit {
            Some(key) if seen.insert(key.clone()) => {
                table.remove(key.as_str());
            }
            _ => return RawProfile::default(),
        }
    }
}
