//! Errors in a profile, shown rustc-style: file:line:column, the snippet, a label.

use std::fmt;

use annotate_snippets::{AnnotationKind, Element, Group, Level, Origin, Renderer, Snippet};

use super::source::{SourceMap, Span};

/// Source longer than this (in bytes) is not quoted under a diagnostic.
const MAX_QUOTED: usize = 4096;

/// One problem in a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Where it is; `None` for problems of a whole file (it cannot be read).
    pub span: Option<Span>,
    /// Short text under the snippet, when it adds to the message.
    pub label: Option<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span: Some(span),
            label: None,
            help: None,
        }
    }

    pub fn whole_file(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span: None,
            label: None,
            help: None,
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// All problems found while loading one profile, with the sources to show them.
#[derive(Debug)]
pub struct Diagnostics {
    pub sources: std::sync::Arc<SourceMap>,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Renders every diagnostic; `color` for a terminal.
    pub fn render(&self, color: bool) -> String {
        self.render_at(color, Level::ERROR)
    }

    /// Renders every diagnostic as a warning (lints).
    pub fn render_warnings(&self, color: bool) -> String {
        self.render_at(color, Level::WARNING)
    }

    fn render_at(&self, color: bool, level: Level<'static>) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut out = String::new();
        for d in &self.items {
            out.push_str(&renderer.render(&self.report(d, level.clone())));
            out.push('\n');
        }
        out
    }

    /// Machine-readable form for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let items = self.items.iter().map(|d| {
            let at = d.span.as_ref().and_then(|s| self.sources.locate(s.start));
            serde_json::json!({
                "message": d.message,
                "file": at.as_ref().map(|l| l.file.path.display().to_string()),
                "line": at.as_ref().map(|l| l.line),
                "column": at.as_ref().map(|l| l.column),
                "help": d.help,
            })
        });
        serde_json::Value::Array(items.collect())
    }

    fn report<'a>(&'a self, d: &'a Diagnostic, level: Level<'a>) -> Vec<Group<'a>> {
        let title = level.primary_title(d.message.as_str());
        let mut label_shown = true;
        let located = d.span.as_ref().and_then(|span| {
            let file = self.sources.file_at(span.start)?;
            let start = span.start - file.base;
            let end = (span.end.saturating_sub(file.base))
                .min(file.text.len())
                .max(start);
            // Only the lines the span covers: the renderer reads all the
            // source it is given, once per diagnostic.
            let (first, from) = file.line_of(start);
            let (last, _) = file.line_of(end.saturating_sub(1).max(start));
            let to = file.line_end(last);
            let path = file.path.to_string_lossy();
            if to - from > MAX_QUOTED || file.secret {
                // A line this long (a generated profile), or one of a file
                // of secrets (an env file), is located, not quoted.
                let at = self.sources.locate(span.start)?;
                label_shown = false;
                return Some(Element::from(
                    Origin::path(path).line(at.line).char_column(at.column),
                ));
            }
            let text = file.text.get(from..to)?;
            Some(Element::from(
                Snippet::source(text)
                    .line_start(first)
                    .path(path)
                    .annotation(
                        AnnotationKind::Primary
                            .span(start - from..end - from)
                            .label(d.label.as_deref()),
                    ),
            ))
        });
        let mut groups = vec![match located {
            Some(element) => title.element(element),
            None => Group::with_title(title),
        }];
        if let Some(label) = d.label.as_ref().filter(|_| !label_shown) {
            groups.push(Group::with_title(
                Level::NOTE.secondary_title(label.as_str()),
            ));
        }
        if let Some(help) = &d.help {
            groups.push(Group::with_title(
                Level::HELP.secondary_title(help.as_str()),
            ));
        }
        groups
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// Turns a serde error from the profile's deserialization into a diagnostic,
/// with a "did you mean" for unknown keys and values close to a known one.
pub fn from_serde(message: &str, span: Span) -> Diagnostic {
    let message = message.trim_end();
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    for (prefix, what) in [("unknown field", "key"), ("unknown variant", "value")] {
        if let (true, Some((given, expected))) = (message.starts_with(prefix), quoted.split_first())
        {
            return unknown_name(what, given, expected, span);
        }
    }
    Diagnostic::new(span, message)
}

/// "unknown key `given`", with the closest of `expected` and the list of them.
pub fn unknown_key(given: &str, expected: &[&str], span: Span) -> Diagnostic {
    unknown_name("key", given, expected, span)
}

fn unknown_name(what: &str, given: &str, expected: &[&str], span: Span) -> Diagnostic {
    let d = Diagnostic::new(span, format!("unknown {what} `{given}`"));
    match did_you_mean(given, expected.iter().copied()) {
        Some(near) => d
            .label(format!("did you mean `{near}`?"))
            .help(expected_list(expected)),
        None => d.help(expected_list(expected)),
    }
}

fn expected_list(expected: &[&str]) -> String {
    match expected {
        [] => "nothing is allowed here".to_string(),
        [one] => format!("expected `{one}`"),
        _ => format!(
            "expected one of {}",
            expected
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The known name closest to `given`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_lowercase();
    let len = given.chars().count();
    known
        .into_iter()
        .filter_map(|k| {
            let limit = 2.max(k.len() / 3);
            // Lengths further apart than the limit cannot be close enough.
            (len.abs_diff(k.chars().count()) <= limit)
                .then(|| (edit_distance(&given, &k.to_lowercase()), k))
                .filter(|&(d, _)| d <= limit)
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// "unknown X `v`", with the closest known value or the list.
pub fn unknown(what: &str, value: &str, known: &[&str]) -> String {
    match did_you_mean(value, known.iter().copied()) {
        Some(near) => format!("unknown {what} `{value}`: did you mean `{near}`?"),
        None if known.len() <= 8 => format!(
            "unknown {what} `{value}`: expected one of {}",
            known.join(", ")
        ),
        None => format!("unknown {what} `{value}`"),
    }
}

/// Levenshtein distance; a handful of lines, so no crate for it.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["image", "name", "shm_size", "volumes"];
        assert_eq!(did_you_mean("imgae", keys), Some("image"));
        assert_eq!(did_you_mean("shm-size", keys), Some("shm_size"));
        assert_eq!(did_you_mean("volume", keys), Some("volumes"));
        assert_eq!(did_you_mean("kubernetes", keys), None);
    }

    #[test]
    fn unknown_field_becomes_a_key_error_with_a_suggestion() {
        let d = from_serde(
            "unknown field `imgae`, expected one of `image`, `name`",
            3..8,
        );
        assert_eq!(d.message, "unknown key `imgae`");
        assert_eq!(d.label.as_deref(), Some("did you mean `image`?"));
        assert_eq!(d.span, Some(3..8));
    }
}
