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

/// Every `docker run` of `text`, in order. A line continues after a
/// backslash, and, as in the shell, while a quote is open.
pub fn run_lines(text: &str) -> Vec<Result<RunLine, LineError>> {
    let mut found = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    let mut batch = false;
    for (i, raw) in text.lines().enumerate() {
        // A script saved with CRLF line ends reads as with LF.
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if logical.is_empty() {
            start = i + 1;
        }
        if let Some(head) = raw
            .strip_suffix('\\')
            .filter(|_| !quote_open(&logical, raw))
        {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        // A Windows batch file's `^` continuation (Docker Desktop scripts):
        // read as the shell would read the same line.
        if let Some(head) = raw.strip_suffix(" ^").or_else(|| raw.strip_suffix("\t^")) {
            logical.push_str(&from_batch(head));
            logical.push(' ');
            batch = true;
            continue;
        }
        let raw = if batch {
            from_batch(raw)
        } else {
            raw.to_string()
        };
        let raw = raw.as_str();
        batch = false;
        logical.push_str(raw);
        if quote_open(&logical, "") {
            // `bash -c 'cd /x &&` on one line, `python train.py'` on the next.
            logical.push('\n');
            continue;
        }
        found.extend(parse_line(&logical, start));
        logical.clear();
    }
    if !logical.is_empty() {
        if quote_open(&logical, "") && logical.contains('\n') {
            // A quote the file never closes: the shell would fail here;
            // say so at its line, and read the lines after it on their own.
            let rest: Vec<&str> = text.lines().skip(start).collect();
            found.push(Err(LineError {
                line: start,
                message: "a quote is not closed".into(),
            }));
            found.extend(run_lines(&rest.join("\n")).into_iter().map(|r| match r {
                Ok(mut run) => {
                    run.line += start;
                    Ok(run)
                }
                Err(mut e) => {
                    e.line += start;
                    Err(e)
                }
            }));
        } else {
            found.extend(parse_line(&logical, start));
        }
    }
    found
}

/// A line of a Windows batch file as shell text: `%NAME%` is `${NAME}`, a
/// `\` separates path parts.
fn from_batch(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('%') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('%') {
            Some(close)
                if close > 0
                    && after[..close]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                out.push_str(&format!("${{{}}}", &after[..close]));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace('\\', "/")
}

/// Whether a quote of `before` + `line` is still open at its end, as the
/// shell reads it: `'…'` takes everything literally, `"…"` and bare text
/// honour backslashes, and an unquoted `#` at a word's start is a comment.
fn quote_open(before: &str, line: &str) -> bool {
    let mut single = false;
    let mut double = false;
    let mut prev = ' ';
    let mut chars = before.chars().chain(line.chars());
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => {
                chars.next();
            }
            '#' if !single && !double && prev.is_whitespace() => {
                // The rest of this physical line is a comment.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
        prev = c;
    }
    single || double
}

/// Stands for `$PWD`, `$(pwd)` and `` `pwd` ``, the folder the script ran
/// in, until the flag it is in says which side it is on (see
/// `flags::here`): the profile's folder `.` on the host, its absolute path
/// in the container.
pub const HERE: char = '\u{2}';

/// Stands for a `$` in single quotes, which the shell does not expand:
/// the profile's `$$`.
const LITERAL_DOLLAR: char = '\u{3}';

/// The placeholder that stands for a command substitution while the line is
/// split into words; `\u{1}` cannot appear in a script line a shell reads.
const MARK: char = '\u{1}';

/// The `docker run`s of one logical line: each command of a list
/// (`a; docker run …`, `… && docker run …`), and those inside a command
/// substitution (`pid=$(nvidia-docker run …)`).
fn parse_line(text: &str, line: usize) -> Vec<Result<RunLine, LineError>> {
    if !text.contains("docker") && !text.contains("podman") && !text.contains("NV_GPU") {
        return Vec::new();
    }
    let (masked, substitutions) = match mask_substitutions(text) {
        Ok(m) => m,
        Err(message) => return vec![Err(LineError { line, message })],
    };
    let words = match shell_words::split(&masked) {
        Ok(w) => w,
        Err(_) if !looks_like_run(&masked) => return Vec::new(),
        Err(_) => {
            return vec![Err(LineError {
                line,
                message: "a quote is not closed".into(),
            })];
        }
    };
    let mut found = Vec::new();
    for command in commands(words) {
        // `CMDSTR="docker run …"`, run later by `eval $CMDSTR`.
        if command.iter().all(|w| assignment(w).is_some()) {
            for w in &command {
                if let Some((_, value)) = assignment(w).filter(|(_, v)| v.contains(" run ")) {
                    found.extend(parse_line(&value, line));
                }
            }
            continue;
        }
        found.extend(from_words(command, Some(&substitutions), line).map(Ok));
    }
    for sub in &substitutions {
        let inner = sub
            .strip_prefix("$(")
            .and_then(|s| s.strip_suffix(')'))
            .or_else(|| sub.strip_prefix('`').and_then(|s| s.strip_suffix('`')));
        if let Some(inner) = inner.filter(|i| i.contains(" run ")) {
            found.extend(parse_line(inner, line));
        }
    }
    found
}

/// The commands of a list: words split at `;`, `&&`, `||`, `|` and `&`
/// (alone, or ending a word: `cmd;`).
fn commands(words: Vec<String>) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for w in words {
        if matches!(w.as_str(), "&&" | "||" | ";" | "|" | "&" | ";;") {
            out.push(Vec::new());
            continue;
        }
        match w.strip_suffix(';').filter(|head| !head.is_empty()) {
            Some(head) => {
                if let Some(last) = out.last_mut() {
                    last.push(head.to_string());
                }
                out.push(Vec::new());
            }
            None => {
                if let Some(last) = out.last_mut() {
                    last.push(w);
                }
            }
        }
    }
    out.retain(|c| !c.is_empty());
    out
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
    // `${cmd} run …` with `NV_GPU=` in front: the script's choice between
    // docker and nvidia-docker.
    let chosen = program.starts_with('$')
        && words.peek().is_some_and(|w| w == "run")
        && assignments.iter().any(|(n, _)| n == "NV_GPU");
    let nvidia_docker = program == "nvidia-docker" || chosen;
    if !chosen && !matches!(program.as_str(), "docker" | "nvidia-docker" | "podman") {
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
    let mut in_double = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' && !in_double {
            in_single = !in_single;
        }
        if c == '"' && !in_single {
            in_double = !in_double;
        }
        let opens = !in_single && (c == '`' || (c == '$' && chars.get(i + 1) == Some(&'(')));
        if c == '$' && in_single {
            // `'… $x …'`: the shell passes `$x` on as it is.
            out.push(LITERAL_DOLLAR);
            i += 1;
            continue;
        }
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
        // `$(IMAGE)`, `$(tag_name)`: make's variables in a Makefile recipe
        // (or a script copied from one), not commands to run.
        let make_variable = c == '$'
            && !inner.is_empty()
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && inner.chars().any(|c| c.is_ascii_uppercase() || c == '_')
            && !inner.starts_with(|c: char| c.is_ascii_digit());
        if inner.trim() == "pwd" {
            out.push_str("$PWD");
        } else if make_variable {
            out.push_str(&format!("${{{inner}}}"));
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
/// [`HERE`], any other `$` is escaped as `$$`.
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
                shown.push_str(&part.replace(LITERAL_DOLLAR, "$"));
            }
            inside = !inside;
        }
        return Word::Substitution(shown);
    }
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == LITERAL_DOLLAR {
            out.push_str("$$");
            i += 1;
            continue;
        }
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
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            out.push_str("$$");
            i += 1;
            continue;
        }
        if name == "PWD" && rest.is_empty() {
            out.push(HERE);
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
                "\u{2}/data:/data",
                "-v",
                "\u{2}:/w",
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
