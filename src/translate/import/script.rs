//! A shell script's `docker run` lines: continuations joined, the shell's
//! word rules applied (shell-words), wrappers (`sudo`, `VAR=…`, `nohup … &`,
//! `nvidia-docker`) understood, and expansions translated, never run.

/// One `docker run` found in a script.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    /// 1-based line where the command starts.
    pub line: usize,
    /// The words after `run`, expansions translated (see [`translate_word`]).
    pub args: Vec<Word>,
    /// `VAR=value` words in front of the command (e.g. `NV_GPU=0,1`).
    pub assignments: Vec<(String, String)>,
    /// `nvidia-docker run`: nvidia-docker 1.0 gave every GPU unless `NV_GPU` said.
    pub nvidia_docker: bool,
}

/// A word of the command line: its profile text, or the reason it has none.
#[derive(Debug, Clone, PartialEq)]
pub enum Word {
    Text(String),
    /// A command substitution other than `pwd`: it cannot be known offline.
    Substitution(String),
}

/// A line that looks like `docker run` but cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Every `docker run` of `text`, in order.
pub fn run_lines(text: &str) -> Vec<Result<RunLine, LineError>> {
    let mut found = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        // A script saved with CRLF line ends reads as with LF.
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if logical.is_empty() {
            start = i + 1;
        }
        match raw.strip_suffix('\\') {
            Some(head) => {
                logical.push_str(head);
                logical.push(' ');
            }
            None => {
                logical.push_str(raw);
                if let Some(run) = parse_line(&logical, start) {
                    found.push(run);
                }
                logical.clear();
            }
        }
    }
    if !logical.is_empty()
        && let Some(run) = parse_line(&logical, start)
    {
        found.push(run);
    }
    found
}

/// The placeholder that stands for a command substitution while the line is
/// split into words; `\u{1}` cannot appear in a script line a shell reads.
const MARK: char = '\u{1}';

fn parse_line(text: &str, line: usize) -> Option<Result<RunLine, LineError>> {
    if !text.contains("docker") && !text.contains("podman") {
        return None;
    }
    let (masked, substitutions) = match mask_substitutions(text) {
        Ok(m) => m,
        Err(message) => return Some(Err(LineError { line, message })),
    };
    let words = match shell_words::split(&masked) {
        Ok(w) => w,
        Err(_) if !looks_like_run(&masked) => return None,
        Err(_) => {
            return Some(Err(LineError {
                line,
                message: "a quote is not closed".into(),
            }));
        }
    };
    from_words(words, Some(&substitutions), line).map(Ok)
}

/// A command line already split into words: `None` when it is not a
/// `docker run`. `substitutions`: the words are a script's, still to be
/// expanded (see [`translate_word`]); `None`: the caller's shell expanded
/// them (`launch import -- docker run …`), so a `$` is literal.
pub fn from_words(
    words: Vec<String>,
    substitutions: Option<&[String]>,
    line: usize,
) -> Option<RunLine> {
    let mut words = words.into_iter().peekable();
    let mut assignments = Vec::new();
    // Wrappers in front of the command.
    loop {
        let w = words.peek()?;
        if let Some((name, value)) = assignment(w) {
            assignments.push((name, value));
        } else if w == "sudo" {
            words.next();
            while let Some(opt) = words.peek().filter(|o| o.starts_with('-')) {
                let takes_value = matches!(opt.as_str(), "-u" | "-g" | "-C" | "-h" | "-p");
                words.next();
                if takes_value {
                    words.next();
                }
            }
            continue;
        } else if !matches!(w.as_str(), "nohup" | "exec" | "env" | "time" | "command") {
            break;
        }
        words.next();
    }
    let program = words.next()?;
    let program = program.rsplit('/').next().unwrap_or(&program).to_string();
    let nvidia_docker = program == "nvidia-docker";
    if !matches!(program.as_str(), "docker" | "nvidia-docker" | "podman") {
        return None;
    }
    match words.next().as_deref() {
        Some("run") => {}
        Some("container") if words.next().as_deref() == Some("run") => {}
        _ => return None,
    }
    let mut args = Vec::new();
    for w in words {
        // The command ends at a control operator or redirection.
        if matches!(w.as_str(), "&&" | "||" | ";" | "|" | "&" | ";;")
            || w.starts_with(['>', '<'])
            || w.starts_with("2>")
            || w.starts_with("1>")
            || w.starts_with("&>")
        {
            break;
        }
        let (w, last) = match w.strip_suffix(';') {
            Some(head) if !head.is_empty() => (head.to_string(), true),
            _ => (w, false),
        };
        args.push(match substitutions {
            Some(subs) => translate_word(&w, subs),
            None => Word::Text(w.replace('$', "$$")),
        });
        if last {
            break;
        }
    }
    Some(RunLine {
        line,
        args,
        assignments,
        nvidia_docker,
    })
}

fn looks_like_run(text: &str) -> bool {
    text.split_whitespace()
        .any(|w| w == "run" || w.ends_with("docker"))
}

fn assignment(word: &str) -> Option<(String, String)> {
    let (name, value) = word.split_once('=')?;
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_string(), value.to_string()))
}

/// Replaces each `$(…)` and `` `…` `` with a placeholder, so the words are
/// split as the shell splits them (a substitution is one word part).
fn mask_substitutions(text: &str) -> Result<(String, Vec<String>), String> {
    let mut out = String::new();
    let mut subs = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut in_single = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_single = !in_single;
        }
        let opens = !in_single && (c == '`' || (c == '$' && chars.get(i + 1) == Some(&'(')));
        if !opens {
            if c == '\\' && !in_single && i + 1 < chars.len() {
                out.push(c);
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            out.push(c);
            i += 1;
            continue;
        }
        let (end, inner) = if c == '`' {
            let close = chars[i + 1..]
                .iter()
                .position(|&x| x == '`')
                .ok_or("a backquote is not closed")?;
            (
                i + 1 + close,
                chars[i + 1..i + 1 + close].iter().collect::<String>(),
            )
        } else {
            let mut depth = 0;
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    Some('(') => depth += 1,
                    Some(')') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Some(_) => {}
                    None => return Err("a `$(` is not closed".into()),
                }
                j += 1;
            }
            (j, chars[i + 2..j].iter().collect::<String>())
        };
        let original: String = chars[i..=end].iter().collect();
        if inner.trim() == "pwd" {
            out.push_str("$PWD");
        } else {
            out.push(MARK);
            out.push_str(&subs.len().to_string());
            out.push(MARK);
            subs.push(original);
        }
        i = end + 1;
    }
    Ok((out, subs))
}

/// A word as profile text: `$VAR` and `${VAR}` become `${VAR}` (read from
/// the environment when the profile is loaded), `$PWD` and `$(pwd)` become
/// `.` (the profile's folder), any other `$` is escaped as `$$`.
pub fn translate_word(word: &str, substitutions: &[String]) -> Word {
    if word.contains(MARK) {
        let mut shown = String::new();
        let mut parts = word.split(MARK);
        let mut inside = false;
        for part in parts.by_ref() {
            if inside {
                let i: usize = part.parse().unwrap_or(usize::MAX);
                shown.push_str(substitutions.get(i).map_or("$(…)", String::as_str));
            } else {
                shown.push_str(part);
            }
            inside = !inside;
        }
        return Word::Substitution(shown);
    }
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let (name, rest, next) = if chars.get(i + 1) == Some(&'{') {
            match chars[i + 2..].iter().position(|&c| c == '}') {
                Some(close) => {
                    let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                    let split = inner.find([':', '-']).unwrap_or(inner.len());
                    (
                        inner[..split].to_string(),
                        inner[split..].to_string(),
                        i + 3 + close,
                    )
                }
                None => (String::new(), String::new(), i + 1),
            }
        } else {
            let len = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            (
                chars[i + 1..i + 1 + len].iter().collect(),
                String::new(),
                i + 1 + len,
            )
        };
        let valid = !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            out.push_str("$$");
            i += 1;
            continue;
        }
        if name == "PWD" && rest.is_empty() {
            out.push('.');
        } else {
            out.push_str(&format!("${{{name}{rest}}}"));
        }
        i = next;
    }
    Word::Text(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(run: &RunLine) -> Vec<String> {
        run.args
            .iter()
            .map(|w| match w {
                Word::Text(t) => t.clone(),
                Word::Substitution(s) => format!("SUBST {s}"),
            })
            .collect()
    }

    #[test]
    fn wrappers_continuations_and_operators_are_understood() {
        let script = "# start it\nset -e\nsudo -E NV_GPU=0,1 nohup nvidia-docker run -d \\\n  --name x busybox sh -c 'a b' > log 2>&1 &\necho done\n";
        let runs = run_lines(script);
        assert_eq!(runs.len(), 1);
        let run = runs[0].clone().unwrap();
        assert_eq!(run.line, 3);
        assert!(run.nvidia_docker);
        assert_eq!(run.assignments, vec![("NV_GPU".into(), "0,1".into())]);
        assert_eq!(
            texts(&run),
            ["-d", "--name", "x", "busybox", "sh", "-c", "a b"]
        );
    }

    #[test]
    fn expansions_are_translated_not_run() {
        let runs = run_lines(
            "docker run -v $(pwd)/data:/data -v `pwd`:/w -v $HOME/x:/x -e A=${B:-c} -e P='5$' img $(hostname)\n",
        );
        let run = runs[0].clone().unwrap();
        assert_eq!(
            texts(&run),
            [
                "-v",
                "./data:/data",
                "-v",
                ".:/w",
                "-v",
                "${HOME}/x:/x",
                "-e",
                "A=${B:-c}",
                "-e",
                "P=5$$",
                "img",
                "SUBST $(hostname)"
            ]
        );
    }

    #[test]
    fn crlf_line_ends_continue_lines_as_lf_does() {
        let runs = run_lines("docker run \\\r\n  --name ab busybox\r\n");
        let run = runs[0].clone().expect("a run line");
        assert_eq!(texts(&run), ["--name", "ab", "busybox"]);
    }

    #[test]
    fn an_unclosed_quote_is_an_error_at_its_line() {
        let runs = run_lines("\n\ndocker run -e 'A=b busybox\n");
        assert_eq!(
            runs,
            vec![Err(LineError {
                line: 3,
                message: "a quote is not closed".into()
            })]
        );
    }
}
