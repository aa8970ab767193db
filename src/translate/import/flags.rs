//! The `docker run` flag table: which flags take a value, and the profile
//! key each one maps to.

use toml::Value;

use super::HostView;
use super::gpus::{self, GpuFacts};
use super::script::HERE;
use super::script::{RunLine, Word};
use crate::translate::draft::Draft;

/// Boolean flags of `docker run` (they never take the next word).
const BOOL_FLAGS: &[&str] = &[
    "detach",
    "interactive",
    "tty",
    "rm",
    "privileged",
    "init",
    "read-only",
    "publish-all",
    "no-healthcheck",
    "oom-kill-disable",
    "sig-proxy",
    "disable-content-trust",
    "quiet",
    "help",
    "use-api-socket",
];

/// `docker run` flags that take a value and have no profile key.
const VALUE_FLAGS: &[&str] = &[
    "annotation",
    "attach",
    "blkio-weight",
    "blkio-weight-device",
    "cgroup-parent",
    "cgroupns",
    "cidfile",
    "cpu-period",
    "cpu-quota",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpu-shares",
    "cpuset-mems",
    "detach-keys",
    "device-read-bps",
    "device-read-iops",
    "device-write-bps",
    "device-write-iops",
    "dns-option",
    "dns-search",
    "domainname",
    "expose",
    "ip",
    "ip6",
    "isolation",
    "kernel-memory",
    "label-file",
    "link",
    "link-local-ip",
    "mac-address",
    "memory-reservation",
    "memory-swappiness",
    "network-alias",
    "oom-score-adj",
    "pids-limit",
    "stop-signal",
    "storage-opt",
    "userns",
    "uts",
    "volume-driver",
    "volumes-from",
];

/// Flags with a profile key (all take a value).
const MAPPED: &[&str] = &[
    "name",
    "env",
    "env-file",
    "label",
    "publish",
    "volume",
    "mount",
    "tmpfs",
    "device",
    "shm-size",
    "network",
    "net",
    "ipc",
    "pid",
    "cap-add",
    "cap-drop",
    "security-opt",
    "ulimit",
    "memory",
    "cpus",
    "cpuset-cpus",
    "restart",
    "stop-timeout",
    "workdir",
    "user",
    "hostname",
    "entrypoint",
    "pull",
    "gpus",
    "runtime",
    "health-cmd",
    "health-interval",
    "health-timeout",
    "health-retries",
    "health-start-period",
    "add-host",
    "device-cgroup-rule",
    "dns",
    "group-add",
    "log-driver",
    "log-opt",
    "memory-swap",
    "platform",
    "sysctl",
];

/// Short flags and the long name they stand for.
fn long_of(short: char) -> Option<&'static str> {
    Some(match short {
        'd' => "detach",
        'i' => "interactive",
        't' => "tty",
        'P' => "publish-all",
        'q' => "quiet",
        'e' => "env",
        'l' => "label",
        'p' => "publish",
        'v' => "volume",
        'm' => "memory",
        'w' => "workdir",
        'u' => "user",
        'h' => "hostname",
        'a' => "attach",
        'c' => "cpu-shares",
        _ => return None,
    })
}

/// One flag as read: its long name, how it was written, and its value.
struct Flag {
    name: String,
    written: String,
    value: Option<String>,
}

/// The value of a flag that was a command substitution: never imported.
const SUBSTITUTED: &str = "\u{1}";

impl Flag {
    fn shown(&self) -> String {
        match &self.value {
            Some(v) => shell_words::join([self.written.as_str(), v.as_str()]),
            None => self.written.clone(),
        }
    }
}

/// Translates one `docker run` line into a profile draft.
/// `facts`: what is known of the GPUs before the flags are read.
pub fn translate(run: &RunLine, host: &HostView<'_>, mut facts: GpuFacts) -> Result<Draft, String> {
    let mut draft = Draft::default();
    facts.nvidia_docker |= run.nvidia_docker;
    for (name, value) in &run.assignments {
        if name == "NV_GPU" {
            facts.nv_gpu = Some(value.clone());
        } else {
            draft.not_imported(format!(
                "{name}={value} (a variable of the shell, not of the container)"
            ));
        }
    }
    let mut words = run.args.iter().peekable();
    let (mut tty, mut stdin) = (false, false);
    let mut rest: Vec<String> = Vec::new();
    let mut flags: Vec<Flag> = Vec::new();
    let mut image: Option<String> = None;
    while let Some(word) = words.next() {
        let text = match word {
            Word::Text(t) => t.clone(),
            // nvidia-docker 1.0's plugin (`curl …:3476/docker/cli`), the
            // driver volume script, or `ls /dev/nvidia*`: the GPUs' devices
            // and the driver, which is `gpus` in devices mode.
            Word::Substitution(s)
                if s.contains(":3476/docker/cli")
                    || s.contains("nvidia_driver_docker_volume")
                    || s.contains("/dev/nvidia")
                    || s.contains("libcuda") =>
            {
                facts.nvidia_docker = true;
                facts.driver_volume = true;
                draft.note(format!(
                    "{s} gave the container the GPUs' devices and the driver (nvidia-docker 1.0):\nthat is `gpus` in devices mode."
                ));
                continue;
            }
            Word::Substitution(s) if image.is_none() && !s.starts_with('-') => {
                return Err(format!(
                    "the image `{s}` is a command substitution, which import does not run"
                ));
            }
            Word::Substitution(s) => {
                draft.not_imported(format!(
                    "{s} (a command substitution, which import does not run)"
                ));
                continue;
            }
        };
        if image.is_some() {
            // `"$@"`, `${@:2}`: the script's own arguments.
            if matches!(text.as_str(), "$$@" | "$$*") || text.starts_with("$${@") {
                draft.not_imported(format!(
                    "{} (the script's arguments: a profile takes none; write the command here)",
                    text.replace("$$", "$")
                ));
                continue;
            }
            rest.push(text);
            continue;
        }
        // `docker run --device=/dev/nvidia0 ...... image`: a README's
        // elision of options, not an image.
        if image.is_none() && text.len() >= 3 && text.chars().all(|c| c == '.' || c == '…') {
            draft.not_imported(format!(
                "{text} (options left out where the line was written)"
            ));
            continue;
        }
        if text == "--" || !text.starts_with('-') || text == "-" {
            let text = if text == "--" {
                match words.next() {
                    Some(Word::Text(t)) => t.clone(),
                    _ => return Err("no image after `--`".into()),
                }
            } else {
                text
            };
            image = Some(text);
            continue;
        }
        let next_value =
            |words: &mut std::iter::Peekable<std::slice::Iter<'_, Word>>| match words.next() {
                Some(Word::Text(t)) => Some(t.clone()),
                Some(Word::Substitution(s)) => Some(format!("{SUBSTITUTED}{s}")),
                None => None,
            };
        if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            };
            let known_value =
                MAPPED.contains(&name.as_str()) || VALUE_FLAGS.contains(&name.as_str());
            let value = if inline.is_some() || BOOL_FLAGS.contains(&name.as_str()) {
                inline
            } else if known_value {
                Some(next_value(&mut words).ok_or(format!("`--{name}` needs a value"))?)
            } else {
                // Unknown: the next word is its value unless it is an option.
                match words.peek() {
                    Some(Word::Text(t)) if !t.starts_with('-') => next_value(&mut words),
                    _ => None,
                }
            };
            flags.push(Flag {
                written: format!("--{name}"),
                name,
                value,
            });
            continue;
        }
        // Short flags: `-it`, `-e A=b`, `-eA=b`, `-p8080:80`.
        let shorts: Vec<char> = text[1..].chars().collect();
        let mut i = 0;
        while i < shorts.len() {
            let c = shorts[i];
            let Some(long) = long_of(c) else {
                let value = if i + 1 < shorts.len() {
                    Some(shorts[i + 1..].iter().collect())
                } else {
                    match words.peek() {
                        Some(Word::Text(t)) if !t.starts_with('-') => next_value(&mut words),
                        _ => None,
                    }
                };
                flags.push(Flag {
                    name: format!("?{c}"),
                    written: format!("-{c}"),
                    value,
                });
                break;
            };
            if BOOL_FLAGS.contains(&long) {
                flags.push(Flag {
                    name: long.into(),
                    written: format!("-{c}"),
                    value: None,
                });
                i += 1;
                continue;
            }
            let value = if i + 1 < shorts.len() {
                let v: String = shorts[i + 1..].iter().collect();
                v.strip_prefix('=').map(str::to_string).unwrap_or(v)
            } else {
                next_value(&mut words).ok_or(format!("`-{c}` needs a value"))?
            };
            flags.push(Flag {
                name: long.into(),
                written: format!("-{c}"),
                value: Some(value),
            });
            break;
        }
    }
    let image = image.ok_or("no image: `docker run` needs one after its options")?;
    let image = here(&image, host, &mut draft);
    draft.set("image", image);
    if !rest.is_empty() {
        let rest: Vec<String> = rest.iter().map(|w| here(w, host, &mut draft)).collect();
        draft.set("command", command_value(&rest));
    }
    for mut flag in flags {
        // A bind's host side is the profile's folder; every other `$PWD`
        // is a path in the container.
        if !matches!(flag.name.as_str(), "volume" | "mount") {
            flag.value = flag.value.map(|v| here(&v, host, &mut draft));
        }
        apply(flag, &mut draft, &mut facts, host, &mut tty, &mut stdin);
    }
    drop_gpu_devices(&facts, &mut draft);
    match (tty, stdin) {
        (true, true) => draft.set("interactive", true),
        (false, false) => {}
        (t, _) => draft.not_imported(format!(
            "{} (`interactive` sets both -i and -t)",
            if t { "-t" } else { "-i" }
        )),
    }
    gpus::apply(facts, host, &mut draft);
    drop_unused_shm(&mut draft);
    Ok(draft)
}

/// `--shm-size` beside `--ipc=host` (NVIDIA's own examples write both):
/// Docker ignores the size, and `check` refuses a profile with both.
pub fn drop_unused_shm(draft: &mut Draft) {
    let ipc = draft
        .get("ipc")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if (ipc == "host" || ipc == "none" || ipc.starts_with("container:"))
        && let Some(size) = draft.remove("shm_size")
    {
        let size = size
            .as_str()
            .map_or_else(|| size.to_string(), str::to_string);
        draft.not_imported(format!(
            "--shm-size {size} (with --ipc={ipc} the container has no /dev/shm of its own to size)"
        ));
    }
}

/// The note an imported `$PWD` in the container gets, once.
const HERE_NOTE: &str = "`$PWD` (or `$(pwd)`) was the folder the script ran in: on the host it is this\nprofile's folder (`.`); in the container it is written as that folder's path\n(change it if the script ran elsewhere).";

/// `text` with [`HERE`] as a path in the container: the profile's folder.
fn here(text: &str, host: &HostView<'_>, draft: &mut Draft) -> String {
    if !text.contains(HERE) {
        return text.to_string();
    }
    if !draft.notes.iter().any(|n| n == HERE_NOTE) {
        draft.note(HERE_NOTE);
    }
    text.replace(HERE, &host.folder.to_string_lossy())
}

/// `text` with [`HERE`] as the host side of a bind: the profile's folder.
fn here_on_host(text: &str) -> String {
    text.replace(HERE, ".")
}

/// Devices `gpus` gives (GPU nodes, and `/dev/dri` with graphics) are not
/// kept: `check` refuses them, and `gpus` brings them.
fn drop_gpu_devices(facts: &GpuFacts, draft: &mut Draft) {
    let graphics = facts.capabilities.as_deref().is_some_and(|c| {
        c.split(',')
            .any(|c| matches!(c.trim(), "graphics" | "display" | "all"))
    });
    let Some(Value::Array(list)) = draft.remove("devices") else {
        return;
    };
    let mut kept = Vec::new();
    for d in list {
        let path = d.as_str().and_then(|s| s.split(':').next()).unwrap_or("");
        if crate::profile::is_gpu_path(path, graphics) {
            draft.not_imported(format!(
                "--device {} (a GPU's device: GPU access comes from `gpus`)",
                d.as_str().unwrap_or("")
            ));
        } else {
            kept.push(d);
        }
    }
    if !kept.is_empty() {
        draft.set("devices", Value::Array(kept));
    }
}

/// A command as a string when the shell splits it back into the same
/// words, else as an array.
pub fn command_value(words: &[String]) -> Value {
    let joined = shell_words::join(words);
    if words.len() == 1 && !words[0].contains([' ', '\'', '"', '\\']) {
        Value::String(words[0].clone())
    } else if shell_words::split(&joined).ok().as_deref() == Some(words)
        && words
            .iter()
            .all(|w| !w.is_empty() && !w.contains(['\'', '"', '\\', '\n']))
    {
        Value::String(joined)
    } else {
        Value::Array(words.iter().cloned().map(Value::String).collect())
    }
}

fn truthy(value: &Option<String>) -> Option<bool> {
    match value.as_deref() {
        None | Some("true") | Some("1") => Some(true),
        Some("false") | Some("0") => Some(false),
        _ => None,
    }
}

/// Trailing slashes of a host path, as Docker cleans it.
fn clean_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        path.to_string()
    } else {
        trimmed.to_string()
    }
}

fn apply(
    flag: Flag,
    draft: &mut Draft,
    facts: &mut GpuFacts,
    host: &HostView<'_>,
    tty: &mut bool,
    stdin: &mut bool,
) {
    // `-u $(id -u):$(id -g)`: the caller's uid and group, which is what
    // `user = "owner"` gives (the profile owner's).
    if flag.name == "user"
        && let Some(s) = flag
            .value
            .as_deref()
            .and_then(|v| v.strip_prefix(SUBSTITUTED))
    {
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if matches!(
            compact.as_str(),
            "$(id-u):$(id-g)"
                | "`id-u`:`id-g`"
                | "$(id-u)"
                | "`id-u`"
                | "$(id-u$USER):$(id-g$USER)"
        ) {
            draft.set("user", "owner");
            draft.note(format!(
                "`{} {s}` ran the container as the caller; `user = \"owner\"` runs it as\nthe profile's owner (uid:gid and groups), whoever applies it.",
                flag.written
            ));
            return;
        }
    }
    if let Some(s) = flag
        .value
        .as_deref()
        .and_then(|v| v.strip_prefix(SUBSTITUTED))
    {
        draft.not_imported(format!(
            "{} {s} (a command substitution, which import does not run)",
            flag.written
        ));
        return;
    }
    let shown = flag.shown();
    let value = flag.value.clone().unwrap_or_default();
    let mut skip = |draft: &mut Draft, why: &str| {
        if why.is_empty() {
            draft.not_imported(shown.clone());
        } else {
            draft.not_imported(format!("{shown} ({why})"));
        }
    };
    match flag.name.as_str() {
        "detach" => {}
        "tty" => *tty = truthy(&flag.value).unwrap_or(true),
        "interactive" => *stdin = truthy(&flag.value).unwrap_or(true),
        "rm" => skip(
            draft,
            "launch keeps a managed container; `launch down` removes it",
        ),
        "privileged" => match truthy(&flag.value) {
            Some(true) => draft.set("privileged", true),
            Some(false) => {}
            None => skip(draft, "not true or false"),
        },
        "name" => draft.set("name", value),
        "env" => match value.split_once('=') {
            // `-e $VAR`, `-e ${A}=b`: the name is the script's to say.
            _ if value.starts_with('$') => skip(
                draft,
                "the variable's name is the script's to say: write it here as NAME = \"value\"",
            ),
            Some(("NVIDIA_VISIBLE_DEVICES", v)) => facts.visible = Some(v.to_string()),
            Some(("NVIDIA_DRIVER_CAPABILITIES", v)) => facts.capabilities = Some(v.to_string()),
            Some((k, v)) => draft.insert("env", k, v),
            // `-e NAME` passes the caller's NAME when it has one; a profile
            // passes it, or empty, and loads either way (cron has none).
            None => {
                draft.insert("env", value.clone(), format!("${{{value}:-}}"));
                draft.note(format!(
                    "`-e {value}` passed the caller's {value} when it was set; here {value} is\nempty when it is not (cron sets almost nothing)."
                ));
            }
        },
        "env-file" => draft.push("env_file", value),
        "label" => match value.split_once('=') {
            Some((k, _)) if crate::spec::label::is_launchs(k) => {
                skip(draft, "the `launch.` labels are launch's own")
            }
            Some((k, v)) => draft.insert("labels", k, v),
            None => draft.insert("labels", value.clone(), ""),
        },
        "publish" => draft.push("ports", value),
        "volume" => volume(&value, draft, facts, host, &mut skip),
        "mount" => match mount(&value, host, draft) {
            Some(v) => draft.push("volumes", v),
            None => skip(
                draft,
                "only type, source, target and readonly have profile keys",
            ),
        },
        "tmpfs" if !value.contains(':') => {
            let mut t = toml::map::Map::new();
            t.insert("type".into(), "tmpfs".into());
            t.insert("target".into(), value.into());
            draft.push("volumes", Value::Table(t));
        }
        "device" => device(&value, draft, facts, host),
        "shm-size" => draft.set("shm_size", value),
        "network" | "net" => draft.set("network", value),
        "ipc" => draft.set("ipc", value),
        "pid" => draft.set("pid", value),
        "cap-add" => draft.push("cap_add", value),
        "cap-drop" => draft.push("cap_drop", value),
        "security-opt" => draft.push("security_opt", value),
        "ulimit" => match value.split_once('=') {
            Some((name, limits)) => {
                let v = match limits.parse::<i64>() {
                    Ok(n) => Value::Integer(n),
                    Err(_) => Value::String(limits.to_string()),
                };
                draft.insert("ulimits", name, v);
            }
            None => skip(draft, "expected name=soft[:hard]"),
        },
        "memory" => draft.set("memory", value),
        "cpus" => draft.set("cpus", value),
        "cpuset-cpus" => draft.set("cpuset", value),
        "restart" => draft.set("restart", value),
        "stop-timeout" => match value.parse::<i64>() {
            Ok(n) if n >= 0 => draft.set("stop_timeout", n),
            _ => skip(draft, "not a number of seconds"),
        },
        "workdir" => draft.set("workdir", value),
        "user" => draft.set("user", value),
        "hostname" => draft.set("hostname", value),
        "entrypoint" => draft.set("entrypoint", value),
        "pull" => draft.set("pull", value),
        "gpus" => facts.gpus_flag = Some(value),
        "runtime" if value == "nvidia" => facts.runtime_nvidia = true,
        "runtime" if value.contains("nvidia") => skip(draft, "GPUs come from `gpus`"),
        "runtime" => draft.set("runtime", value),
        "init" => match truthy(&flag.value) {
            Some(on) => {
                if on {
                    draft.set("init", true);
                }
            }
            None => skip(draft, "not true or false"),
        },
        "read-only" => match truthy(&flag.value) {
            Some(on) => {
                if on {
                    draft.set("read_only", true);
                }
            }
            None => skip(draft, "not true or false"),
        },
        "group-add" => draft.push("group_add", value),
        "add-host" => draft.push("extra_hosts", value),
        "dns" => draft.push("dns", value),
        "device-cgroup-rule" => {
            if crate::profile::rule_reaches_gpus(&value) {
                skip(
                    draft,
                    "it reaches the NVIDIA devices; GPUs come from `gpus`",
                )
            } else {
                draft.push("device_cgroup_rules", value)
            }
        }
        "platform" => draft.set("platform", value),
        "memory-swap" => match value.parse::<i64>() {
            Ok(n) => draft.set("memory_swap", n),
            Err(_) => draft.set("memory_swap", value),
        },
        "sysctl" => match value.split_once('=') {
            Some((k, v)) => draft.insert("sysctls", k, v),
            None => skip(draft, "expected name=value"),
        },
        "log-driver" => draft.insert("log", "driver", value),
        "log-opt" => match value.split_once('=') {
            Some((k, v)) => {
                let options = draft
                    .table_mut("log")
                    .entry("options".to_string())
                    .or_insert_with(|| Value::Table(toml::map::Map::new()));
                if let Value::Table(t) = options {
                    t.insert(k.to_string(), Value::String(v.to_string()));
                }
            }
            None => skip(draft, "expected key=value"),
        },
        "health-cmd" => draft.insert("healthcheck", "cmd", value),
        "health-interval" => draft.insert("healthcheck", "interval", value),
        "health-timeout" => draft.insert("healthcheck", "timeout", value),
        "health-start-period" => draft.insert("healthcheck", "start_period", value),
        "health-retries" => match value.parse::<i64>() {
            Ok(n) if n >= 0 => draft.insert("healthcheck", "retries", n),
            _ => skip(draft, "not a number"),
        },
        "no-healthcheck" => draft.insert("healthcheck", "cmd", Value::Array(vec!["NONE".into()])),
        name if name.starts_with('?')
            || !(BOOL_FLAGS.contains(&name)
                || VALUE_FLAGS.contains(&name)
                || MAPPED.contains(&name)) =>
        {
            skip(draft, "unknown flag")
        }
        _ => skip(draft, ""),
    }
}

/// `-v SRC:DST[:OPTS]`.
fn volume(
    value: &str,
    draft: &mut Draft,
    facts: &mut GpuFacts,
    host: &HostView<'_>,
    skip: &mut impl FnMut(&mut Draft, &str),
) {
    let parts: Vec<String> = value.split(':').map(str::to_string).collect();
    let parts: Vec<String> = match &parts[..] {
        [s, rest @ ..] if !rest.is_empty() => std::iter::once(here_on_host(s))
            .chain(rest.first().map(|t| here(t, host, draft)))
            .chain(rest.iter().skip(1).cloned())
            .collect(),
        other => other.iter().map(|t| here(t, host, draft)).collect(),
    };
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (source, target, mode) = match parts[..] {
        [s, t] => (s, t, None),
        [s, t, m] => (s, t, Some(m)),
        [t] => {
            // An anonymous volume: a name is needed to keep it across recreates.
            return skip(
                draft,
                &format!("anonymous volume at {t}: give it a name, e.g. `data:{t}`"),
            );
        }
        _ => return skip(draft, "expected source:target[:ro|rw]"),
    };
    if source.contains("nvidia_driver") && clean_path(target) == "/usr/local/nvidia" {
        facts.driver_volume = true;
        return;
    }
    if clean_path(source) == "/dev" && clean_path(target) == "/dev" {
        facts.all_dev = true;
        return;
    }
    if let Some(m) = mode.filter(|m| !matches!(*m, "ro" | "rw")) {
        return skip(
            draft,
            &format!("mount options `{m}`: only ro and rw have a key"),
        );
    }
    let source = match source.strip_prefix("${HOME}") {
        Some(rest) => format!("~{rest}"),
        None => source.to_string(),
    };
    let mut entry = format!("{}:{}", clean_path(&source), target);
    if let Some(m) = mode {
        entry = format!("{entry}:{m}");
    }
    draft.push("volumes", entry);
}

/// `--mount type=…,source=…,target=…[,readonly]` as a volume table.
fn mount(value: &str, host: &HostView<'_>, draft: &mut Draft) -> Option<Value> {
    let mut t = toml::map::Map::new();
    for field in value.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, "true"));
        match k {
            "type" if matches!(v, "bind" | "volume" | "tmpfs") => {
                t.insert("type".into(), v.into());
            }
            "source" | "src" => {
                t.insert("source".into(), here_on_host(v).into());
            }
            "target" | "destination" | "dst" => {
                t.insert("target".into(), here(v, host, draft).into());
            }
            "readonly" | "ro" => {
                t.insert("read_only".into(), (v == "true" || v == "1").into());
            }
            _ => return None,
        }
    }
    t.contains_key("target").then_some(Value::Table(t))
}

/// `--device HOST[:CONTAINER[:PERMS]]`: a GPU, a shared node, a CDI name or
/// a plain device.
fn device(value: &str, draft: &mut Draft, facts: &mut GpuFacts, host: &HostView<'_>) {
    if let Some(id) = value.strip_prefix("nvidia.com/gpu=") {
        facts.cdi.push(id.to_string());
        return;
    }
    let host_path = value.split(':').next().unwrap_or(value);
    if let Some(minor) = gpus::gpu_minor(host_path, host) {
        facts.minors.push((minor, value.to_string()));
    } else if gpus::is_shared_node(host_path, host) {
        facts.shared.push(value.to_string());
    } else {
        draft.push("devices", value);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{HostView, import_script};
    use toml::Value;

    fn import(line: &str) -> crate::translate::draft::Draft {
        let host = HostView {
            gpus: Err("no NVML here".into()),
            dev_root: Path::new("/"),
            folder: Path::new("/srv/team"),
        };
        let mut results = import_script(line, &host);
        assert_eq!(results.len(), 1, "{line}");
        results.remove(0).expect("imported").draft
    }

    #[test]
    fn short_flags_combine_and_take_attached_values() {
        let d = import("docker run -itd -p127.0.0.1:8080:80 -eA=b -v/x:/y --name=ab busybox");
        assert_eq!(d.get("interactive"), Some(&Value::Boolean(true)));
        assert_eq!(
            d.get("ports"),
            Some(&Value::Array(vec!["127.0.0.1:8080:80".into()]))
        );
        assert_eq!(d.get("volumes"), Some(&Value::Array(vec!["/x:/y".into()])));
        assert_eq!(
            d.table("env").and_then(|e| e.get("A")),
            Some(&Value::String("b".into()))
        );
        assert!(d.not_imported.is_empty(), "{:?}", d.not_imported);
    }

    #[test]
    fn booleans_written_false_are_not_set() {
        let d = import("docker run --privileged=false --init=false busybox");
        assert_eq!(d.get("privileged"), None);
        assert_eq!(d.get("init"), None);
    }

    #[test]
    fn a_gpu_node_without_nvml_is_a_comment_not_a_guessed_index() {
        let d = import("docker run --device /dev/nvidia3 busybox");
        assert_eq!(d.get("gpus"), None);
        assert_eq!(d.get("devices"), None);
        assert!(
            d.not_imported[0].contains("needs NVML"),
            "{:?}",
            d.not_imported
        );
    }

    #[test]
    fn volume_options_without_a_key_are_not_dropped_silently() {
        let d = import("docker run -v /a:/b:ro,z -v /c/:/d busybox");
        assert_eq!(d.get("volumes"), Some(&Value::Array(vec!["/c:/d".into()])));
        assert!(
            d.not_imported[0].starts_with("-v /a:/b:ro,z"),
            "{:?}",
            d.not_imported
        );
    }
}

#[cfg(test)]
mod fuzz {
    use std::path::Path;

    use proptest::prelude::*;

    use super::super::{HostView, import_script};

    /// Words a `docker run` line is made of, quotes and expansions included.
    fn word() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "-it",
            "-d",
            "-e",
            "A=b=c",
            "-p",
            "8080:80",
            "-v",
            "/a:/b:ro",
            "--gpus",
            "'\"device=0,2\"'",
            "2",
            "--device",
            "/dev/nvidia0",
            "nvidia.com/gpu=all",
            "--runtime=nvidia",
            "--frob",
            "x",
            "'a b'",
            "\"$HOME\"",
            "$(pwd)/d:/d",
            "`date`",
            "${X:-y}",
            "\\",
            "'",
            "\"",
            "&&",
            ";",
            "|",
            "--name",
            "ab",
            "--",
            "busybox",
            "sh",
            "-c",
            "=",
            ":",
            "-",
            "--log-opt",
            "k=v",
            "--mount",
            "type=bind,src=/a,dst=/b",
            "--tmpfs",
            "/t",
            "sudo",
            "NV_GPU=1",
            "$",
            "${",
            "$(",
            "--ulimit",
        ])
        .prop_map(str::to_string)
    }

    proptest! {
        /// Whatever the words, import ends with profiles that are valid TOML
        /// or with line errors: never a panic.
        #[test]
        fn any_docker_run_line_imports_or_fails_cleanly(words in prop::collection::vec(word(), 0..24)) {
            let host = HostView { gpus: Err("none".into()), dev_root: Path::new("/"), folder: Path::new("/srv") };
            let line = format!("docker run {}\n", words.join(" "));
            for imported in import_script(&line, &host).into_iter().flatten() {
                let text = imported.draft.to_toml(&[]);
                prop_assert!(text.parse::<toml::Table>().is_ok(), "{}\n{}", line, text);
            }
        }
    }
}
