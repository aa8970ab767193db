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

/// Replaces variables in `text`, looking them up with `lookup`.
///
/// A bare `$` not followed by `{` or `$` is kept as it is, so shell snippets in
/// `command` such as `echo $HOME` reach the container untouched.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolationError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let at = text.len() - rest.len() + i;
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                return Err(InterpolationError::Malformed {
                    at,
                    len: text.len() - at,
                    reason: "`${` is not closed by `}`",
                });
            };
            let expr = &body[..close];
            let len = close + 3;
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            if !is_variable_name(name) {
                return Err(InterpolationError::Malformed {
                    at,
                    len,
                    reason: "a variable name is letters, digits and `_`, not starting with a digit",
                });
            }
            match (lookup(name), default) {
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(InterpolationError::Unset {
                        name: name.to_string(),
                        at,
                        len,
                    });
                }
            }
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
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
    }
}
