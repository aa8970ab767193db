//! `${VAR}`, `${VAR:-default}` and `$$` in string values, as docker compose reads them.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${NAME}` with `NAME` unset and no default. `at` is the byte offset of the `$`.
    Unset { name: String, at: usize, len: usize },
    /// `${` without a closing `}`, or a name that is not a variable name.
    Malformed {
        at: usize,
        len: usize,
        reason: &'static str,
    },
}

/// How deep `${A:-${B:-…}}` may nest.
const MAX_NESTING: usize = 32;

/// Replaces variables in `text`, looking them up with `lookup`.
///
/// A bare `$` not followed by `{` or `$` is kept as it is, so shell snippets in
/// `command` such as `echo $HOME` reach the container untouched. A default is
/// itself interpolated, as in compose: `${A:-${B:-x}}`.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let parser = Parser {
        text,
        lookup: &lookup,
    };
    parser.expand(0, None, true, 0).map(|(out, _)| out)
}

struct Parser<'a> {
    text: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Parser<'_> {
    /// Expands from `pos` to the end of the text, or, inside the default of
    /// the reference at `open`, to the `}` that closes it. Returns the text
    /// and the position after it. Without `evaluate` the text is only checked
    /// (a default that is not used must still be well formed).
    fn expand(
        &self,
        mut pos: usize,
        open: Option<usize>,
        evaluate: bool,
        depth: usize,
    ) -> Result<(String, usize), InterpolationError> {
        let text = self.text;
        let mut out = String::new();
        loop {
            let next = text[pos..].find(|c| c == '$' || (open.is_some() && c == '}'));
            let Some(i) = next else {
                if let Some(at) = open {
                    return Err(not_closed(text, at));
                }
                out.push_str(&text[pos..]);
                return Ok((out, text.len()));
            };
            let at = pos + i;
            out.push_str(&text[pos..at]);
            let after = &text[at + 1..];
            if text[at..].starts_with('}') {
                return Ok((out, at + 1));
            } else if after.starts_with('$') {
                out.push('$');
                pos = at + 2;
            } else if after.starts_with('{') {
                let (value, end) = self.reference(at, evaluate, depth)?;
                out.push_str(&value);
                pos = end;
            } else {
                out.push('$');
                pos = at + 1;
            }
        }
    }

    /// The `${…}` starting at `at`: its value and the position after it.
    fn reference(
        &self,
        at: usize,
        evaluate: bool,
        depth: usize,
    ) -> Result<(String, usize), InterpolationError> {
        let text = self.text;
        let start = at + 2;
        let body = &text[start..];
        let name_len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let (name, rest) = body.split_at(name_len);
        let malformed = |reason| {
            let len = text[at..].find('}').map_or(text.len() - at, |i| i + 1);
            InterpolationError::Malformed { at, len, reason }
        };
        if !rest.starts_with('}') && !rest.starts_with(":-") {
            return Err(if !text[at..].contains('}') {
                not_closed(text, at)
            } else if is_variable_name(name) && rest.starts_with([':', '-', '?', '+']) {
                malformed("launch knows `${NAME}` and `${NAME:-default}`, nothing else")
            } else {
                malformed(BAD_NAME)
            });
        }
        if !is_variable_name(name) {
            return Err(malformed(BAD_NAME));
        }
        let value = evaluate.then(|| (self.lookup)(name)).flatten();
        if rest.starts_with('}') {
            let end = start + name_len + 1;
            return match value {
                Some(value) => Ok((value, end)),
                None if !evaluate => Ok((String::new(), end)),
                None => Err(InterpolationError::Unset {
                    name: name.to_string(),
                    at,
                    len: end - at,
                }),
            };
        }
        if depth >= MAX_NESTING {
            return Err(malformed("`${…}` nests too deep"));
        }
        let value = value.filter(|v| !v.is_empty());
        let use_default = evaluate && value.is_none();
        let (default, end) = self.expand(start + name_len + 2, Some(at), use_default, depth + 1)?;
        Ok((value.unwrap_or(default), end))
    }
}

const BAD_NAME: &str = "a variable name is letters, digits and `_`, not starting with a digit";

fn not_closed(text: &str, at: usize) -> InterpolationError {
    InterpolationError::Malformed {
        at,
        len: text.len() - at,
        reason: "`${` is not closed by `}`",
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/ann".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_and_defaults() {
        assert_eq!(interpolate("${HOME}/data", env).unwrap(), "/home/ann/data");
        assert_eq!(interpolate("${NOPE:-/srv}", env).unwrap(), "/srv");
        assert_eq!(interpolate("${EMPTY:-x}", env).unwrap(), "x");
        assert_eq!(interpolate("a$$b", env).unwrap(), "a$b");
        assert_eq!(interpolate("echo $HOME", env).unwrap(), "echo $HOME");
    }

    #[test]
    fn unset_variable_is_named_with_its_position() {
        assert_eq!(
            interpolate("x ${DATA_DIR}/y", env),
            Err(InterpolationError::Unset {
                name: "DATA_DIR".into(),
                at: 2,
                len: 11
            })
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(matches!(
            interpolate("${HOME", env),
            Err(InterpolationError::Malformed { at: 0, .. })
        ));
        assert!(matches!(
            interpolate("${1X}", env),
            Err(InterpolationError::Malformed { .. })
        ));
        assert!(matches!(
            interpolate("${A:-${B:-x}", env),
            Err(InterpolationError::Malformed { at: 0, .. })
        ));
        assert!(matches!(
            interpolate("${NOPE-x}", env),
            Err(InterpolationError::Malformed { at: 0, len: 9, .. })
        ));
        // An unused default must still be well formed.
        assert!(matches!(
            interpolate("${HOME:-${1}}", env),
            Err(InterpolationError::Malformed { at: 8, .. })
        ));
        let deep = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
        assert!(matches!(
            interpolate(&deep, env),
            Err(InterpolationError::Malformed { .. })
        ));
    }

    #[test]
    fn defaults_nest_as_in_compose() {
        assert_eq!(interpolate("${NOPE:-${ALSO_NOPE:-x}}", env).unwrap(), "x");
        assert_eq!(
            interpolate("${NOPE:-${HOME}/y}z", env).unwrap(),
            "/home/ann/yz"
        );
        assert_eq!(interpolate("${HOME:-${NOPE}}", env).unwrap(), "/home/ann");
        assert_eq!(interpolate("${EMPTY:-a$$b}", env).unwrap(), "a$b");
        assert_eq!(interpolate("${NOPE:-}", env).unwrap(), "");
        assert_eq!(
            interpolate("a ${NOPE:-${UNSET_TOO}}", env),
            Err(InterpolationError::Unset {
                name: "UNSET_TOO".into(),
                at: 10,
                len: 12
            })
        );
    }
}
