//! `launch check`: profiles are validated offline, and every mistake is shown
//! at its file:line:column with the offending token (README: Profiles, GPUs, exit codes).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::support::cli::{Launch, Output, Profiles, repo_root};
use serde_json::{Value, json};

/// A variable no test sets; every run removes it from the environment.
const UNSET: &str = "LAUNCH_TEST_UNSET";

/// Runs `launch check` on `paths`, with the variable no test sets unset.
fn check(paths: &[&Path]) -> Output {
    Launch::new()
        .env_remove(UNSET)
        .arg("check")
        .args(paths)
        .run()
}

fn check_json(paths: &[&Path]) -> Output {
    Launch::new()
        .env_remove(UNSET)
        .args(["check", "--json"])
        .args(paths)
        .run()
}

/// One diagnostic as printed on stderr.
#[derive(Debug)]
struct Reported {
    /// What follows ` --> `: `path:line:column`.
    location: Option<String>,
    /// The message, the label under the snippet and the help, without the
    /// quoted source lines (they would contain any token).
    text: String,
}

/// Splits rustc-style stderr into its diagnostics.
fn diagnostics(stderr: &str) -> Vec<Reported> {
    let mut out: Vec<Reported> = Vec::new();
    for line in stderr.lines() {
        if let Some(message) = line.strip_prefix("error:") {
            out.push(Reported {
                location: None,
                text: message.to_string(),
            });
            continue;
        }
        let Some(current) = out.last_mut() else {
            continue;
        };
        let trimmed = line.trim_start();
        if let Some(at) = trimmed.strip_prefix("--> ") {
            current
                .location
                .get_or_insert_with(|| at.trim().to_string());
        } else if line.starts_with("invalid:") || line.starts_with("ok:") {
            continue;
        } else if !is_source_line(trimmed) {
            current.text.push('\n');
            current.text.push_str(line);
        }
    }
    out
}

/// `3 | ports = [...]`: a quoted source line.
fn is_source_line(trimmed: &str) -> bool {
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && trimmed[digits..].starts_with(" |")
}

fn error_count(stderr: &str) -> usize {
    stderr.lines().filter(|l| l.starts_with("error:")).count()
}

// ---------------------------------------------------------------------------
// Malformed profiles, one mistake each.

/// A malformed profile: its files (the first is checked), where the error
/// must point and a token its message must contain.
struct Bad {
    name: &'static str,
    files: Vec<(&'static str, &'static str)>,
    /// `file:line:column`, the file relative to the profiles' folder.
    at: String,
    token: &'static str,
    /// How many `error:` lines the whole run prints.
    errors: usize,
}

impl Bad {
    /// One mistake should give one error, unless said otherwise.
    fn errors(mut self, n: usize) -> Self {
        self.errors = n;
        self
    }
}

/// A case in `profile.toml`; `at` is `line:column`.
fn bad(name: &'static str, toml: &'static str, at: &str, token: &'static str) -> Bad {
    bad_in(
        name,
        &[("profile.toml", toml)],
        &format!("profile.toml:{at}"),
        token,
    )
}

/// A case spread over several files; `at` is `file:line:column`.
fn bad_in(
    name: &'static str,
    files: &[(&'static str, &'static str)],
    at: &str,
    token: &'static str,
) -> Bad {
    Bad {
        name,
        files: files.to_vec(),
        at: at.to_string(),
        token,
        errors: 1,
    }
}

fn malformed_profiles() -> Vec<Bad> {
    vec![
        // TOML syntax.
        bad(
            "toml: an array that is never closed",
            "image = \"busybox\"\nports = [\"80:80\"\n",
            "2:17",
            "unclosed array",
        ),
        bad(
            "toml: a key without a value",
            "image = \"busybox\"\nname =\n",
            "2:7",
            "invalid TOML",
        ),
        bad(
            "toml: an unquoted string",
            "image = \"busybox\"\nname = web\n",
            "2:8",
            "quoted",
        ),
        bad(
            "toml: a string that is never closed",
            "image = \"busybox\"\nname = \"web\n",
            "2:12",
            "string",
        ),
        bad(
            "toml: a key given twice",
            "image = \"busybox\"\nimage = \"alpine\"\n",
            "2:1",
            "duplicate key",
        ),
        bad(
            "toml: a table given twice",
            "image = \"busybox\"\n[env]\nA = \"1\"\n[env]\nB = \"2\"\n",
            "4:2",
            "duplicate",
        ),
        bad(
            "toml: a table header that is never closed",
            "image = \"busybox\"\n[gpus\n",
            "2:6",
            "unclosed table",
        ),
        // Wrong types.
        bad(
            "type: a string for a bool",
            "image = \"busybox\"\ninteractive = \"yes\"\n",
            "2:15",
            "boolean",
        ),
        bad(
            "type: an integer for a bool",
            "image = \"busybox\"\nprivileged = 1\n",
            "2:14",
            "boolean",
        ),
        bad(
            "type: an integer for a string",
            "image = \"busybox\"\nname = 42\n",
            "2:8",
            "42",
        ),
        bad(
            "type: a table for an array",
            "image = \"busybox\"\nports = { http = \"80:80\" }\n",
            "2:9",
            "sequence",
        ),
        bad(
            "type: a string for an array",
            "image = \"busybox\"\nvolumes = \"/a:/b\"\n",
            "2:11",
            "/a:/b",
        ),
        bad(
            "type: an array for a table",
            "image = \"busybox\"\nenv = [\"A=1\"]\n",
            "2:7",
            "map",
        ),
        bad(
            "type: a string for a number of seconds",
            "image = \"busybox\"\nstop_timeout = \"30s\"\n",
            "2:16",
            "30s",
        ),
        bad(
            "type: a negative number of seconds",
            "image = \"busybox\"\nstop_timeout = -5\n",
            "2:16",
            "-5",
        ),
        bad(
            "type: an array as an env value",
            "image = \"busybox\"\nenv = { A = [1] }\n",
            "2:13",
            "a string, an integer or a boolean",
        ),
        bad(
            "type: an integer as a label value",
            "image = \"busybox\"\nlabels = { team = 1 }\n",
            "2:19",
            "string",
        ),
        bad(
            "type: a number for an entrypoint",
            "image = \"busybox\"\nentrypoint = 3\n",
            "2:14",
            "a string or an array of strings",
        ),
        bad(
            "type: a float for gpus",
            "image = \"busybox\"\ngpus = 1.5\n",
            "2:8",
            "1.5",
        ),
        bad(
            "type: a string for healthcheck retries",
            "image = \"busybox\"\nhealthcheck = { cmd = \"true\", retries = \"3\" }\n",
            "2:41",
            "\"3\"",
        ),
        // Unknown keys.
        bad(
            "unknown key: `imgae` suggests `image`",
            "name = \"web\"\nimgae = \"busybox\"\n",
            "2:1",
            "did you mean `image`?",
        )
        // Without `image` the profile also lacks its required key.
        .errors(2),
        bad(
            "unknown key: `shm-size` suggests `shm_size`",
            "image = \"busybox\"\nshm-size = \"8G\"\n",
            "2:1",
            "did you mean `shm_size`?",
        ),
        bad(
            "unknown key: far from every key",
            "image = \"busybox\"\nkubernetes = true\n",
            "2:1",
            "unknown key `kubernetes`",
        ),
        bad(
            "unknown key in a [gpus] section",
            "image = \"busybox\"\n[gpus]\ndevise = [0]\n",
            "3:1",
            "did you mean `devices`?",
        ),
        bad(
            "unknown key in an inline gpus table",
            "image = \"busybox\"\ngpus = { devise = [0] }\n",
            "2:10",
            "did you mean `devices`?",
        ),
        bad(
            "unknown key in a [healthcheck] section",
            "image = \"busybox\"\n[healthcheck]\ncmd = \"true\"\ninterval_s = \"5s\"\n",
            "4:1",
            "did you mean `interval`?",
        ),
        bad(
            "unknown key in a [recreate] section",
            "image = \"busybox\"\n[recreate]\nchanged_file = \"refuse\"\n",
            "3:1",
            "did you mean `changed_files`?",
        ),
        bad(
            "unknown key in a volume table",
            "image = \"busybox\"\nvolumes = [{ source = \"/data\", taget = \"/data\" }]\n",
            "2:32",
            "did you mean `target`?",
        ),
        bad(
            "unknown key in a ulimit table",
            "image = \"busybox\"\nulimits = { nofile = { soft = 1, hard = 2, max = 3 } }\n",
            "2:44",
            "max",
        ),
        // Container names.
        bad(
            "name: a space",
            "image = \"busybox\"\nname = \"my box\"\n",
            "2:8",
            "my box",
        ),
        bad(
            "name: a leading dash",
            "image = \"busybox\"\nname = \"-box\"\n",
            "2:8",
            "-box",
        ),
        bad_in(
            "name: a file stem that is no container name, without `name`",
            &[("my profile.toml", "image = \"busybox\"\n")],
            "my profile.toml:1:1",
            "my profile",
        ),
        // Image references.
        bad(
            "image: a space",
            "image = \"ubuntu 22.04\"\n",
            "1:9",
            "ubuntu 22.04",
        ),
        bad(
            "image: uppercase",
            "image = \"Ubuntu:22.04\"\n",
            "1:9",
            "Ubuntu",
        ),
        bad(
            "image: a bad tag",
            "image = \"ubuntu:22.04!\"\n",
            "1:9",
            "22.04!",
        ),
        bad(
            "image: a bad digest",
            "image = \"ubuntu@sha256:abc\"\n",
            "1:9",
            "sha256:abc",
        ),
        bad("image: empty", "image = \"\"\n", "1:9", "empty"),
        // Ports.
        bad(
            "port: out of range",
            "image = \"busybox\"\nports = [\"70000:80\"]\n",
            "2:10",
            "`70000`",
        ),
        bad(
            "port: zero",
            "image = \"busybox\"\nports = [\"0:80\"]\n",
            "2:10",
            "`0`",
        ),
        bad(
            "port: not a number",
            "image = \"busybox\"\nports = [\"http:80\"]\n",
            "2:10",
            "`http`",
        ),
        bad(
            "port: an unknown protocol",
            "image = \"busybox\"\nports = [\"80:80/icmp\"]\n",
            "2:10",
            "`icmp`",
        ),
        bad(
            "port: ranges of unequal length",
            "image = \"busybox\"\nports = [\"8000-8002:9000-9001\"]\n",
            "2:10",
            "8000-8002",
        ),
        bad(
            "port: a bad IP address",
            "image = \"busybox\"\nports = [\"300.1.1.1:80:80\"]\n",
            "2:10",
            "`300.1.1.1`",
        ),
        bad(
            "port: too many colons",
            "image = \"busybox\"\nports = [\"1:2:3:4\"]\n",
            "2:10",
            "1:2:3:4",
        ),
        bad(
            "port: a range that runs backwards",
            "image = \"busybox\"\nports = [\"8080:90-80\"]\n",
            "2:10",
            "`90-80`",
        ),
        bad(
            "port: one host port published twice",
            "image = \"busybox\"\nports = [\"8080:80\", \"8080:81\"]\n",
            "2:21",
            "8080",
        ),
        // Volumes.
        bad(
            "volume: a relative target",
            "image = \"busybox\"\nvolumes = [\"/data:data\"]\n",
            "2:12",
            "`data`",
        ),
        bad(
            "volume: an unknown mode",
            "image = \"busybox\"\nvolumes = [\"/data:/data:rx\"]\n",
            "2:12",
            "`rx`",
        ),
        bad(
            "volume: too many parts",
            "image = \"busybox\"\nvolumes = [\"/a:/b:ro:z\"]\n",
            "2:12",
            "/a:/b:ro:z",
        ),
        bad(
            "volume: the root as target",
            "image = \"busybox\"\nvolumes = [\"/data:/\"]\n",
            "2:12",
            "`/`",
        ),
        bad(
            "volume: a table without target",
            "image = \"busybox\"\nvolumes = [{ source = \"/data\" }]\n",
            "2:12",
            "target",
        ),
        bad(
            "volume: tmpfs with a source",
            "image = \"busybox\"\nvolumes = [{ type = \"tmpfs\", source = \"/x\", target = \"/scratch\" }]\n",
            "2:12",
            "tmpfs",
        ),
        bad(
            "volume: `create` on a named volume",
            "image = \"busybox\"\nvolumes = [{ source = \"cache\", target = \"/cache\", create = true }]\n",
            "2:12",
            "create",
        ),
        bad(
            "volume: a named volume whose source is a path",
            "image = \"busybox\"\nvolumes = [{ type = \"volume\", source = \"/data\", target = \"/d\" }]\n",
            "2:12",
            "/data",
        ),
        bad(
            "volume: a volume name with a space",
            "image = \"busybox\"\nvolumes = [\"my cache:/cache\"]\n",
            "2:12",
            "my cache",
        ),
        bad(
            "volume: an unknown type",
            "image = \"busybox\"\nvolumes = [{ type = \"nfs\", source = \"x\", target = \"/x\" }]\n",
            "2:21",
            "nfs",
        ),
        bad(
            "volume: the same target twice",
            "image = \"busybox\"\nvolumes = [\"/a:/data\", \"/b:/data/\"]\n",
            "2:24",
            "/data",
        ),
        // Devices.
        bad(
            "device: a relative path",
            "image = \"busybox\"\ndevices = [\"dev/fuse\"]\n",
            "2:12",
            "`dev/fuse`",
        ),
        bad(
            "device: unknown permissions",
            "image = \"busybox\"\ndevices = [\"/dev/fuse:/dev/fuse:rwx\"]\n",
            "2:12",
            "`rwx`",
        ),
        bad(
            "device: the same container path twice",
            "image = \"busybox\"\ndevices = [\"/dev/fuse\", \"/dev/fuse:rw\"]\n",
            "2:25",
            "/dev/fuse",
        ),
        // Sizes.
        bad(
            "size: an unknown unit",
            "image = \"busybox\"\nshm_size = \"8X\"\n",
            "2:12",
            "8X",
        ),
        bad(
            "size: negative",
            "image = \"busybox\"\nshm_size = -1\n",
            "2:12",
            "-1",
        ),
        bad(
            "size: zero",
            "image = \"busybox\"\nshm_size = 0\n",
            "2:12",
            "`0`",
        ),
        bad(
            "size: memory below Docker's 6 MiB",
            "image = \"busybox\"\nmemory = \"4M\"\n",
            "2:10",
            "4M",
        ),
        // Ulimits.
        bad(
            "ulimit: an unknown name points at the name",
            "image = \"busybox\"\n[ulimits]\nnofiles = 1024\n",
            "3:1",
            "did you mean `nofile`?",
        ),
        bad(
            "ulimit: soft above hard",
            "image = \"busybox\"\nulimits = { nofile = { soft = 2048, hard = 1024 } }\n",
            "2:22",
            "2048",
        ),
        bad(
            "ulimit: a string that is no number",
            "image = \"busybox\"\nulimits = { nofile = \"lots\" }\n",
            "2:22",
            "lots",
        ),
        bad(
            "ulimit: a hard limit that is no number",
            "image = \"busybox\"\nulimits = { nofile = \"1024:many\" }\n",
            "2:22",
            "many",
        ),
        bad(
            "ulimit: below -1",
            "image = \"busybox\"\nulimits = { memlock = -2 }\n",
            "2:23",
            "-2",
        ),
        // CPUs.
        bad(
            "cpus: zero",
            "image = \"busybox\"\ncpus = 0\n",
            "2:8",
            "cpus `0`",
        ),
        bad(
            "cpus: negative",
            "image = \"busybox\"\ncpus = -1.5\n",
            "2:8",
            "-1.5",
        ),
        bad(
            "cpus: not a number",
            "image = \"busybox\"\ncpus = \"two\"\n",
            "2:8",
            "two",
        ),
        bad(
            "cpuset: not a CPU list",
            "image = \"busybox\"\ncpuset = \"0-3,x\"\n",
            "2:10",
            "0-3,x",
        ),
        bad(
            "cpuset: a range that runs backwards",
            "image = \"busybox\"\ncpuset = \"3-1\"\n",
            "2:10",
            "3-1",
        ),
        // Restart, pull.
        bad(
            "restart: an unknown policy",
            "image = \"busybox\"\nrestart = \"sometimes\"\n",
            "2:11",
            "sometimes",
        ),
        bad(
            "restart: a typo suggests the policy",
            "image = \"busybox\"\nrestart = \"unles-stopped\"\n",
            "2:11",
            "did you mean `unless-stopped`?",
        ),
        bad(
            "restart: a retry count that is no number",
            "image = \"busybox\"\nrestart = \"on-failure:x\"\n",
            "2:11",
            "`x`",
        ),
        bad(
            "restart: a retry count on a policy without retries",
            "image = \"busybox\"\nrestart = \"always:3\"\n",
            "2:11",
            "always:3",
        ),
        bad(
            "pull: an unknown value",
            "image = \"busybox\"\npull = \"sometimes\"\n",
            "2:8",
            "sometimes",
        ),
        bad(
            "pull: a typo suggests the value",
            "image = \"busybox\"\npull = \"alway\"\n",
            "2:8",
            "did you mean `always`?",
        ),
        // Namespaces.
        bad(
            "network: not a network name",
            "image = \"busybox\"\nnetwork = \"my net\"\n",
            "2:11",
            "my net",
        ),
        bad(
            "ipc: a typo suggests the mode",
            "image = \"busybox\"\nipc = \"hots\"\n",
            "2:7",
            "did you mean `host`?",
        ),
        bad(
            "ipc: a container without a name",
            "image = \"busybox\"\nipc = \"container:\"\n",
            "2:7",
            "container:",
        ),
        bad(
            "shm_size: with the host's IPC namespace",
            "image = \"busybox\"\nshm_size = \"8G\"\nipc = \"host\"\n",
            "2:12",
            "shm_size has no effect with ipc = \"host\"",
        ),
        bad(
            "shm_size: with another container's IPC namespace",
            "image = \"busybox\"\nipc = \"container:trainer\"\nshm_size = 1073741824\n",
            "3:12",
            "container `trainer`'s /dev/shm",
        ),
        bad(
            "pid: a mode only ipc has",
            "image = \"busybox\"\npid = \"shareable\"\n",
            "2:7",
            "shareable",
        ),
        // Capabilities, security options.
        bad(
            "cap_add: a typo suggests the capability",
            "image = \"busybox\"\ncap_add = [\"SYS_PTRAC\"]\n",
            "2:12",
            "did you mean `SYS_PTRACE`?",
        ),
        bad(
            "cap_add: a typo with the CAP_ prefix suggests the capability",
            "image = \"busybox\"\ncap_add = [\"CAP_SYS_ADMN\"]\n",
            "2:12",
            "did you mean `SYS_ADMIN`?",
        ),
        bad(
            "cap_drop: an unknown capability",
            "image = \"busybox\"\ncap_drop = [\"CHOWN\", \"NET_RAWR\"]\n",
            "2:22",
            "NET_RAWR",
        ),
        bad(
            "security_opt: an unknown option",
            "image = \"busybox\"\nsecurity_opt = [\"no-new-priviliges\"]\n",
            "2:17",
            "no-new-priviliges",
        ),
        // Healthcheck, recreate.
        bad(
            "healthcheck: no cmd",
            "image = \"busybox\"\n[healthcheck]\ninterval = \"30s\"\n",
            "2:1",
            "`cmd`",
        ),
        bad(
            "healthcheck: an empty cmd",
            "image = \"busybox\"\nhealthcheck = { cmd = [] }\n",
            "2:23",
            "empty",
        ),
        bad(
            "healthcheck: a bad duration",
            "image = \"busybox\"\nhealthcheck = { cmd = \"true\", interval = \"30 parsecs\" }\n",
            "2:42",
            "30 parsecs",
        ),
        bad(
            "recreate: an unknown changed_files",
            "image = \"busybox\"\n[recreate]\nchanged_files = \"keep\"\n",
            "3:17",
            "keep",
        ),
        bad(
            "recreate: a typo in changed_files suggests the value",
            "image = \"busybox\"\nrecreate = { changed_files = \"snapshots\" }\n",
            "2:30",
            "did you mean `snapshot`?",
        ),
        bad(
            "recreate: a relative ignore path",
            "image = \"busybox\"\n[recreate]\nignore = [\"tmp\"]\n",
            "3:11",
            "`tmp`",
        ),
        // Labels, env.
        bad(
            "labels: the reserved launch. namespace points at the label",
            "image = \"busybox\"\n[labels]\n\"launch.managed\" = \"true\"\n",
            "3:1",
            "launch.managed",
        ),
        bad(
            "env: a variable name with `=` points at the name",
            "image = \"busybox\"\nenv = { \"A=B\" = \"1\" }\n",
            "2:9",
            "A=B",
        ),
        bad(
            "env_file: a file that does not exist",
            "image = \"busybox\"\nenv_file = \"missing.env\"\n",
            "2:12",
            "missing.env",
        ),
        // Other strings.
        bad(
            "workdir: a relative path",
            "image = \"busybox\"\nworkdir = \"app\"\n",
            "2:11",
            "`app`",
        ),
        bad(
            "hostname: an underscore",
            "image = \"busybox\"\nhostname = \"my_host\"\n",
            "2:12",
            "my_host",
        ),
        bad(
            "user: empty",
            "image = \"busybox\"\nuser = \"\"\n",
            "2:8",
            "user",
        ),
        bad(
            "command: an unclosed quote",
            "image = \"busybox\"\ncommand = \"bash -c 'echo hi\"\n",
            "2:11",
            "unclosed quote",
        ),
        // GPUs.
        bad(
            "gpus: an index listed twice",
            "image = \"busybox\"\ngpus = [0, 1, 0]\n",
            "2:15",
            "GPU `0`",
        ),
        bad(
            "gpus: a UUID listed twice",
            "image = \"busybox\"\ngpus = [\"GPU-8f6c\", \"GPU-8f6c\"]\n",
            "2:21",
            "GPU-8f6c",
        ),
        bad(
            "gpus: count = 0",
            "image = \"busybox\"\ngpus = { count = 0 }\n",
            "2:18",
            "count",
        ),
        bad(
            "gpus: a negative index",
            "image = \"busybox\"\ngpus = [-1]\n",
            "2:9",
            "-1",
        ),
        bad(
            "gpus: count together with devices",
            "image = \"busybox\"\ngpus = { count = 2, devices = [0] }\n",
            "2:18",
            "`devices`",
        ),
        bad(
            "gpus: neither an index nor a UUID",
            "image = \"busybox\"\ngpus = [\"gpu0\"]\n",
            "2:9",
            "gpu0",
        ),
        bad(
            "gpus: an unknown selection word",
            "image = \"busybox\"\ngpus = \"some\"\n",
            "2:8",
            "some",
        ),
        bad(
            "gpus: an unknown devices word",
            "image = \"busybox\"\ngpus = { devices = \"any\" }\n",
            "2:20",
            "any",
        ),
        bad(
            "gpus: an empty list",
            "image = \"busybox\"\ngpus = []\n",
            "2:8",
            "no GPU",
        ),
        bad(
            "gpus: a capability typo suggests the capability",
            "image = \"busybox\"\n[gpus]\ncapabilities = [\"compute\", \"graphic\"]\n",
            "3:28",
            "did you mean `graphics`?",
        ),
        bad(
            "gpus: an unknown mode",
            "image = \"busybox\"\ngpus = { mode = \"nvidia\" }\n",
            "2:17",
            "nvidia",
        ),
        bad(
            "gpus: a mode typo in a [gpus] section suggests the mode",
            "image = \"busybox\"\n[gpus]\nmode = \"toolkt\"\n",
            "3:8",
            "did you mean `toolkit`?",
        ),
        // Interpolation.
        bad(
            "interpolation: an unset variable without default",
            "image = \"busybox\"\nname = \"${LAUNCH_TEST_UNSET}\"\n",
            "2:9",
            "LAUNCH_TEST_UNSET",
        ),
        bad(
            "interpolation: an unset variable inside a volume",
            "image = \"busybox\"\nvolumes = [\"${LAUNCH_TEST_UNSET}/data:/data\"]\n",
            "2:13",
            "LAUNCH_TEST_UNSET",
        ),
        bad(
            "interpolation: an unset variable in a literal string",
            "image = \"busybox\"\nname = '${LAUNCH_TEST_UNSET}'\n",
            "2:9",
            "LAUNCH_TEST_UNSET",
        ),
        bad(
            "interpolation: `${` never closed",
            "image = \"busybox\"\nname = \"box${\"\n",
            "2:12",
            "not closed",
        ),
        bad(
            "interpolation: a name that is no variable name",
            "image = \"busybox\"\nname = \"${1X}\"\n",
            "2:9",
            "variable name",
        ),
        // Missing image.
        bad(
            "image: missing",
            "name = \"web\"\ninteractive = true\n",
            "1:1",
            "`image`",
        ),
        // extends.
        bad_in(
            "extends: a cycle of two files",
            &[
                (
                    "first.toml",
                    "extends = \"second.toml\"\nimage = \"busybox\"\n",
                ),
                ("second.toml", "extends = \"first.toml\"\n"),
            ],
            "second.toml:1:11",
            "cycle",
        ),
        bad_in(
            "extends: a profile that extends itself",
            &[(
                "self.toml",
                "extends = \"self.toml\"\nimage = \"busybox\"\n",
            )],
            "self.toml:1:11",
            "cycle",
        ),
        bad_in(
            "extends: a file that does not exist",
            &[(
                "orphan.toml",
                "extends = \"missing.toml\"\nimage = \"busybox\"\n",
            )],
            "orphan.toml:1:11",
            "missing.toml",
        ),
        bad_in(
            "extends: not a path",
            &[("number.toml", "extends = 3\nimage = \"busybox\"\n")],
            "number.toml:1:11",
            "path",
        ),
        bad_in(
            "extends: a bad value in the extended file points into it",
            &[
                ("child.toml", "extends = \"base.toml\"\nname = \"child\"\n"),
                ("base.toml", "image = \"busybox\"\nshm_size = \"8X\"\n"),
            ],
            "base.toml:2:12",
            "8X",
        ),
        bad_in(
            "extends: an unknown key in the extended file points into it",
            &[
                ("child.toml", "extends = \"base.toml\"\nname = \"child\"\n"),
                ("base.toml", "image = \"busybox\"\nshm-size = \"8G\"\n"),
            ],
            "base.toml:2:1",
            "did you mean `shm_size`?",
        ),
        bad_in(
            "extends: a TOML error in the extended file points into it",
            &[
                ("child.toml", "extends = \"base.toml\"\nname = \"child\"\n"),
                ("base.toml", "image = \"busybox\n"),
            ],
            "base.toml:1:17",
            "invalid TOML",
        ),
        bad_in(
            "extends: an unset variable in the extended file points into it",
            &[
                ("child.toml", "extends = \"base.toml\"\nname = \"child\"\n"),
                ("base.toml", "image = \"${LAUNCH_TEST_UNSET}\"\n"),
            ],
            "base.toml:1:10",
            "LAUNCH_TEST_UNSET",
        ),
        bad_in(
            "extends: a file in a subfolder, two levels up the chain",
            &[
                (
                    "child.toml",
                    "extends = \"team/mid.toml\"\nname = \"child\"\n",
                ),
                ("team/mid.toml", "extends = \"base.toml\"\n"),
                (
                    "team/base.toml",
                    "image = \"busybox\"\nports = [\"70000:80\"]\n",
                ),
            ],
            "team/base.toml:2:10",
            "70000",
        ),
        // Unattended and hostile input.
        bad(
            "stop_timeout: longer than a day, holding the container's lock",
            "image = \"busybox\"\nstop_timeout = 9223372036854775807\n",
            "2:16",
            "more than a day",
        ),
        bad(
            "cpus: below a hundredth, which would mean no limit",
            "image = \"busybox\"\ncpus = 1e-10\n",
            "2:8",
            "0.01",
        ),
        bad(
            "interpolation: a nested default that needs an unset variable",
            "image = \"busybox\"\nname = \"${LAUNCH_TEST_UNSET:-${LAUNCH_TEST_UNSET}}\"\n",
            "2:30",
            "LAUNCH_TEST_UNSET",
        ),
        bad(
            "interpolation: an operator launch does not know",
            "image = \"busybox\"\nname = \"${LAUNCH_TEST_UNSET-x}\"\n",
            "2:9",
            "${NAME:-default}",
        ),
        bad(
            "interpolation: a nested default never closed",
            "image = \"busybox\"\nname = \"${LAUNCH_TEST_UNSET:-${LAUNCH_TEST_UNSET:-x}\"\n",
            "2:9",
            "not closed",
        ),
        bad_in(
            "env_file: a line without `=`",
            &[
                (
                    "profile.toml",
                    "image = \"busybox\"\nenv_file = \"a.env\"\n",
                ),
                ("a.env", "A=1\n# comment\n  HOME\n"),
            ],
            "a.env:3:3",
            "has no `=`",
        ),
        bad_in(
            "env_file: a variable name with a space",
            &[
                (
                    "profile.toml",
                    "image = \"busybox\"\nenv_file = [\"a.env\"]\n",
                ),
                ("a.env", "export A=1\n"),
            ],
            "a.env:1:1",
            "whitespace",
        ),
        bad(
            "env_file: a folder",
            "image = \"busybox\"\nenv_file = \".\"\n",
            "2:12",
            "a folder",
        ),
        bad(
            "env_file: a device",
            "image = \"busybox\"\nenv_file = \"/dev/null\"\n",
            "2:12",
            "a device",
        ),
        bad(
            "extends: a device (not a .toml profile, so never read)",
            "extends = \"/dev/null\"\nimage = \"busybox\"\n",
            "1:11",
            "not a profile",
        ),
        bad(
            "extends: a folder (not a .toml profile, so never read)",
            "extends = [\".\"]\nimage = \"busybox\"\n",
            "1:12",
            "not a profile",
        ),
        bad(
            "volumes: one target written two ways",
            "image = \"busybox\"\nvolumes = [\"/a:/data/.\", \"/b:///data//\"]\n",
            "2:26",
            "`/data` is used twice",
        ),
        bad(
            "volumes: a target that is `/` once normalised",
            "image = \"busybox\"\nvolumes = [\"/a:/x/..\"]\n",
            "2:12",
            "is `/`",
        ),
        bad(
            "devices: a GPU device node",
            "image = \"busybox\"\ngpus = [0]\ndevices = [\"/dev/nvidia0\"]\n",
            "3:12",
            "GPU access comes from `gpus` alone",
        ),
        bad(
            "devices: a GPU's node under another name",
            "image = \"busybox\"\ndevices = [\"/dev/nvidia-caps/nvidia-cap1:/dev/cap\"]\n",
            "2:12",
            "GPU access comes from `gpus` alone",
        ),
        bad(
            "devices: a DRM node when graphics is asked",
            "image = \"busybox\"\ngpus = { devices = \"all\", capabilities = [\"graphics\"] }\ndevices = [\"/dev/dri/card0\"]\n",
            "3:12",
            "GPU access comes from `gpus` alone",
        ),
        bad(
            "volumes: a mount over the driver's files",
            "image = \"busybox\"\nvolumes = [\"/srv/lib:/usr/local/nvidia/./lib64\"]\n",
            "2:12",
            "GPU access comes from `gpus` alone",
        ),
        bad(
            "volumes: a mount over a GPU node",
            "image = \"busybox\"\nvolumes = [{ source = \"/dev/null\", target = \"/dev/nvidiactl\" }]\n",
            "2:12",
            "GPU access comes from `gpus` alone",
        ),
        bad(
            "security_opt: a seccomp profile that does not exist",
            "image = \"busybox\"\nsecurity_opt = [\"seccomp=nothere.json\"]\n",
            "2:17",
            "no such file",
        ),
        bad(
            "build: an unknown key, with the one meant",
            "image = \"busybox\"\n[build]\ncontext = \".\"\ndockerfle = \"Dockerfile\"\n",
            "4:1",
            "did you mean `dockerfile`",
        ),
        bad(
            "build: no context",
            "image = \"busybox\"\n[build]\ntarget = \"x\"\n",
            "2:1",
            "needs `context`",
        ),
        bad(
            "build: a URL for a context",
            "image = \"busybox\"\n[build]\ncontext = \"https://github.com/x/y.git\"\n",
            "3:11",
            "not a folder",
        ),
        bad(
            "build: a Dockerfile outside the context",
            "image = \"busybox\"\n[build]\ncontext = \".\"\ndockerfile = \"../Dockerfile\"\n",
            "4:14",
            "outside the build context",
        ),
        bad(
            "build: an argument that is a table",
            "image = \"busybox\"\n[build]\ncontext = \".\"\nargs = { A = { b = 1 } }\n",
            "4:14",
            "a string, an integer or a boolean",
        ),
        bad(
            "build: a digest is no tag to build",
            "image = \"busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n[build]\ncontext = \".\"\n",
            "1:9",
            "pinned by digest",
        ),
        bad_in(
            "security_opt: a seccomp profile that is not JSON",
            &[
                (
                    "profile.toml",
                    "image = \"busybox\"\nsecurity_opt = [\"no-new-privileges\", \"seccomp=p.json\"]\n",
                ),
                ("p.json", "{ not json"),
            ],
            "profile.toml:2:38",
            "not JSON",
        ),
    ]
}

/// What is wrong with launch's answer to `case`, if anything.
fn judge(case: &Bad) -> Result<(), String> {
    let profiles = Profiles::new();
    for (name, text) in &case.files {
        profiles.write(name, text);
    }
    let checked = profiles.path().join(case.files[0].0);
    let out = catch_unwind(AssertUnwindSafe(|| check(&[&checked])))
        .map_err(|_| "launch panicked (see the output above)".to_string())?;
    let shown = || format!("--- stdout\n{}--- stderr\n{}", out.stdout, out.stderr);
    if out.code != 2 {
        return Err(format!("exit code {}, expected 2\n{}", out.code, shown()));
    }
    let (file, line_col) = case.at.split_once(':').expect("file:line:col");
    let expected = format!("{}:{line_col}", profiles.path().join(file).display());
    let reported = diagnostics(&out.stderr);
    let Some(found) = reported
        .iter()
        .find(|d| d.location.as_deref() == Some(expected.as_str()))
    else {
        return Err(format!("no error at {expected}\n{}", shown()));
    };
    if !found.text.contains(case.token) {
        return Err(format!(
            "the error at {expected} does not say `{}`\n{}",
            case.token,
            shown()
        ));
    }
    if error_count(&out.stderr) != case.errors {
        return Err(format!(
            "{} errors, expected {}\n{}",
            error_count(&out.stderr),
            case.errors,
            shown()
        ));
    }
    Ok(())
}

#[test]
fn every_malformed_profile_fails_with_its_location_and_token() {
    let cases = malformed_profiles();
    assert!(cases.len() >= 45, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            judge(case)
                .err()
                .map(|why| format!("case `{}`: {why}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} malformed profiles were not reported as expected:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn an_extends_cycle_names_the_whole_chain() {
    let p = Profiles::new();
    let alpha = p.write(
        "alpha.toml",
        "extends = \"beta.toml\"\nimage = \"busybox\"\n",
    );
    p.write("beta.toml", "extends = \"alpha.toml\"\n");
    let out = check(&[&alpha]).code(2);
    let help = out
        .stderr
        .lines()
        .find(|l| l.contains("the chain is"))
        .unwrap_or_else(|| panic!("no chain in:\n{}", out.stderr));
    let a_at = help.find("alpha.toml").expect("the chain names alpha.toml");
    let b_at = help.find("beta.toml").expect("the chain names beta.toml");
    let a_again = help
        .rfind("alpha.toml")
        .expect("alpha.toml closes the chain");
    assert!(
        a_at < b_at && b_at < a_again,
        "the chain runs alpha → beta → alpha: {help}"
    );
}

#[test]
fn a_profile_that_cannot_be_read_is_an_error_not_a_panic() {
    let p = Profiles::new();
    let out = check(&[&p.path().join("nothing-here.toml")]).code(2);
    assert!(out.stderr.contains("nothing-here.toml"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// Several errors at once.

#[test]
fn every_independent_error_of_a_profile_is_reported_in_file_order() {
    let p = Profiles::new();
    let path = p.write(
        "many.toml",
        r#"image = "busybox"
imgae = "typo"
ports = ["70000:80", "8080:80/icmp"]
volumes = ["/data:/data:rx"]
shm_size = "8X"
cap_add = ["SYS_PTRAC"]
restart = "sometimes"
gpus = [0, 0]
"#,
    );
    let out = check(&[&path]).code(2);
    assert_eq!(error_count(&out.stderr), 8, "{}", out.stderr);
    let lines: Vec<usize> = diagnostics(&out.stderr)
        .iter()
        .map(|d| {
            let at = d.location.as_deref().expect("a location");
            at.rsplit(':').nth(1).unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(lines, [2, 3, 3, 4, 5, 6, 7, 8], "{}", out.stderr);
    assert!(out.stderr.contains("invalid: "), "{}", out.stderr);
    assert!(out.stderr.contains("(8 errors)"), "{}", out.stderr);
}

#[test]
fn errors_inside_sections_do_not_hide_the_other_errors() {
    let p = Profiles::new();
    let path = p.write(
        "sections.toml",
        r#"image = "busybox"
ports = ["70000:80"]

[gpus]
devise = [0]

[healthcheck]
cmd = "true"
interval_s = "5s"

[recreate]
changed_files = "keep"
"#,
    );
    let out = check(&[&path]).code(2);
    let at = |line_col: &str| format!("{}:{line_col}", path.display());
    let locations: Vec<String> = diagnostics(&out.stderr)
        .into_iter()
        .filter_map(|d| d.location)
        .collect();
    assert_eq!(
        locations,
        [at("2:10"), at("5:1"), at("9:1"), at("12:17")],
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("missing required key `image`"),
        "{}",
        out.stderr
    );
}

#[test]
fn json_report_locates_each_error() {
    let p = Profiles::new();
    let path = p.write(
        "web.toml",
        "image = \"busybox\"\nports = [\"70000:80\"]\nimgae = \"x\"\n",
    );
    let out = check_json(&[&path]).code(2);
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(report["valid"], false);
    assert_eq!(report["profile"], path.display().to_string());
    let errors = report["errors"].as_array().expect("errors");
    let found: Vec<(String, u64, u64)> = errors
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap_or_default().to_string(),
                e["line"].as_u64().unwrap_or_default(),
                e["column"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let file = path.display().to_string();
    assert_eq!(found, [(file.clone(), 2, 10), (file, 3, 1)]);
    assert!(errors[0]["message"].as_str().unwrap().contains("70000"));
    assert!(errors[1]["message"].as_str().unwrap().contains("imgae"));
}

// ---------------------------------------------------------------------------
// Valid profiles.

/// `launch check --json` on `path`, expecting it valid: the one JSON object.
fn understood(path: &Path) -> Value {
    let out = check_json(&[path]).code(0);
    let report: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{}", out.stdout));
    assert_eq!(report["valid"], true, "{report}");
    report
}

#[test]
fn a_profile_using_every_key_is_valid() {
    let p = Profiles::new();
    p.write("team.env", "TEAM=vision\n# a comment\nQUOTED=\"a b\"\n");
    p.write("more.env", "MORE=1\n");
    p.write("base.toml", "pull = \"never\"\n");
    let path = p.write(
        "full.toml",
        r#"#:schema ./launch.schema.json
extends = "base.toml"
image = "registry.example.com:5000/team/cuda:12.4.1-runtime-ubuntu22.04"
name = "full-profile"
pull = "always"
command = "python train.py --epochs 3 --name 'a b'"
entrypoint = ["/usr/bin/tini", "--"]
interactive = true
workdir = "/workspace"
user = "1000:1000"
hostname = "trainer-1.example"
env_file = ["team.env", "./more.env"]
gpus = "all"
ports = ["18307:9096", "127.0.0.1:8080:80/udp", "[::1]:8081:81", "90", "127.0.0.1::91", "8000-8002:9000-9002", "9999:9999/sctp"]
volumes = [
  "/data/dmcvcache:/root/.cache:rw",
  "/etc/localtime:/etc/localtime:ro",
  "./relative:/relative",
  "../parent:/parent",
  "~/home-data:/home-data",
  "models:/models",
  { source = "/srv/data", target = "/data", read_only = true },
  { source = "./made", target = "/made", type = "bind", create = true },
  { source = "checkpoints", target = "/checkpoints", type = "volume" },
  { type = "tmpfs", target = "/scratch" },
]
devices = ["/dev/fuse", "/dev/kvm:rw", "/dev/sda:/dev/xvda:r"]
shm_size = "8G"
network = "host"
ipc = "shareable"
pid = "host"
privileged = true
cap_add = ["SYS_PTRACE", "CAP_IPC_LOCK", "net_admin"]
cap_drop = ["MKNOD"]
security_opt = ["no-new-privileges", "seccomp=unconfined", "apparmor:unconfined", "label=disable"]
memory = "32G"
cpus = 7.5
cpuset = "0-7,16"
restart = "on-failure:3"
stop_timeout = 30

[env]
A = "x"
N = 4
FLAG = true

[labels]
"org.example.team" = "vision"
owner = "ann"

[ulimits]
memlock = -1
nofile = "65536:65536"
stack = { soft = 8388608, hard = 67108864 }
nproc = 4096
core = "0"

[healthcheck]
cmd = ["CMD", "nvidia-smi"]
interval = "30s"
timeout = "5s"
retries = 3
start_period = "1m30s"

[recreate]
changed_files = "snapshot"
ignore = ["/root/.cache", "/workspace/outputs"]
"#,
    );
    let report = understood(&path);
    assert_eq!(report["name"], "full-profile");
    assert_eq!(
        report["image"],
        "registry.example.com:5000/team/cuda:12.4.1-runtime-ubuntu22.04"
    );
    assert_eq!(report["profile"], path.display().to_string());
}

#[test]
fn the_container_name_defaults_to_the_file_stem() {
    let p = Profiles::new();
    let path = p.write("web-1.toml", "image = \"busybox\"\n");
    assert_eq!(understood(&path)["name"], "web-1");
}

#[test]
fn valid_forms_of_each_key_are_accepted() {
    // Each key's forms besides those of `a_profile_using_every_key_is_valid`.
    let forms: &[(&str, &str)] = &[
        ("image: plain", "image = \"busybox\""),
        ("image: with a tag", "image = \"busybox:1.36\""),
        (
            "image: a library path",
            "image = \"nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04\"",
        ),
        (
            "image: localhost registry",
            "image = \"localhost:5000/team/app\"",
        ),
        (
            "image: registry with port and tag",
            "image = \"10.196.3.6:5000/registry.vivo.lan/library/centos:centos7.4.1708-v1.1\"",
        ),
        (
            "image: a digest",
            "image = \"busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
        ),
        ("pull: missing", "pull = \"missing\""),
        ("pull: never", "pull = \"never\""),
        (
            "command: an array",
            "command = [\"sh\", \"-c\", \"sleep 1\"]",
        ),
        ("entrypoint: a string", "entrypoint = \"/bin/sh -c\""),
        ("extends: an array", "extends = []"),
        ("interactive: false", "interactive = false"),
        ("env_file: one string", "env_file = \"team.env\""),
        ("env: empty table", "[env]"),
        ("shm_size: bytes", "shm_size = 67108864"),
        ("shm_size: lowercase unit", "shm_size = \"512m\""),
        ("shm_size: with b", "shm_size = \"1GB\""),
        ("memory: bytes", "memory = 1073741824"),
        ("memory: exactly 6 MiB", "memory = \"6M\""),
        ("cpus: an integer", "cpus = 4"),
        ("cpus: a string", "cpus = \"2.5\""),
        ("cpuset: one CPU", "cpuset = \"3\""),
        ("network: bridge", "network = \"bridge\""),
        ("network: none", "network = \"none\""),
        ("network: a network name", "network = \"team_net-1\""),
        ("ipc: private", "ipc = \"private\""),
        ("ipc: shareable", "ipc = \"shareable\""),
        ("ipc: another container", "ipc = \"container:trainer\""),
        ("pid: private", "pid = \"private\""),
        ("pid: another container", "pid = \"container:trainer\""),
        ("privileged: false", "privileged = false"),
        ("cap_add: ALL", "cap_add = [\"ALL\"]"),
        ("security_opt: none", "security_opt = []"),
        ("ulimits: a single number", "ulimits = { nofile = 65536 }"),
        (
            "ulimits: unlimited as soft:hard",
            "ulimits = { memlock = \"-1:-1\" }",
        ),
        (
            "ulimits: soft below unlimited hard",
            "ulimits = { memlock = { soft = 1024, hard = -1 } }",
        ),
        ("restart: no", "restart = \"no\""),
        ("restart: always", "restart = \"always\""),
        ("restart: unless-stopped", "restart = \"unless-stopped\""),
        ("restart: on-failure", "restart = \"on-failure\""),
        ("stop_timeout: zero", "stop_timeout = 0"),
        (
            "healthcheck: a shell string",
            "healthcheck = { cmd = \"curl -f http://localhost/ || exit 1\" }",
        ),
        (
            "healthcheck: CMD-SHELL",
            "healthcheck = { cmd = [\"CMD-SHELL\", \"true\"] }",
        ),
        ("healthcheck: NONE", "healthcheck = { cmd = [\"NONE\"] }"),
        (
            "healthcheck: plain argv",
            "healthcheck = { cmd = [\"true\"], interval = \"1m\" }",
        ),
        ("recreate: refuse", "[recreate]\nchanged_files = \"refuse\""),
        (
            "recreate: discard",
            "[recreate]\nchanged_files = \"discard\"",
        ),
        (
            "labels: dotted names",
            "[labels]\n\"com.example.launchpad\" = \"x\"",
        ),
        (
            "ports: a port on udp and tcp",
            "ports = [\"5353:53/udp\", \"5353:53/tcp\"]",
        ),
        (
            "ports: the same host port on two IPs",
            "ports = [\"127.0.0.1:8080:80\", \"127.0.0.2:8080:80\"]",
        ),
        ("devices: permissions only", "devices = [\"/dev/fuse:rwm\"]"),
        (
            "volumes: a bind that need not exist here",
            "volumes = [\"/definitely/not/here:/data\"]",
        ),
        (
            "build: a context alone (that need not exist here)",
            "[build]\ncontext = \"./not-here-yet\"",
        ),
        (
            "build: every key",
            "[build]\ncontext = \"../images/train\"\ndockerfile = \"docker/gpu.Dockerfile\"\nargs = { CUDA = \"12.4\", JOBS = 8, DEBUG = false }\ntarget = \"runtime\"",
        ),
        (
            "build: an inline table",
            "build = { context = \"/srv/images/app\" }",
        ),
    ];
    let p = Profiles::new();
    p.write("team.env", "TEAM=vision\n");
    let failures: Vec<String> = forms
        .iter()
        .filter_map(|(name, toml)| {
            // Every form but those of `image` itself needs an image.
            let image = if toml.starts_with("image") {
                ""
            } else {
                "image = \"busybox\"\n"
            };
            let path = p.write("form.toml", &format!("{image}{toml}\n"));
            let out = check(&[&path]);
            (out.code != 0).then(|| {
                format!(
                    "form `{name}`: exit code {}\n{toml}\n{}",
                    out.code, out.stderr
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} valid forms were rejected:\n\n{}",
        failures.len(),
        forms.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_form_of_gpus_is_accepted() {
    let forms: &[(&str, &str)] = &[
        ("all", "gpus = \"all\""),
        ("indices", "gpus = [0, 3]"),
        (
            "a UUID and an index",
            "gpus = [\"GPU-8f6c1a2b-1111-2222-3333-444455556666\", 1]",
        ),
        ("a UUID prefix", "gpus = [\"GPU-8f6c\"]"),
        ("a count", "gpus = { count = 2 }"),
        (
            "long form with devices",
            "[gpus]\ndevices = [0, 1]\nmode = \"auto\"\ncapabilities = [\"compute\", \"utility\"]",
        ),
        (
            "long form, all devices, toolkit",
            "[gpus]\ndevices = \"all\"\nmode = \"toolkit\"",
        ),
        (
            "long form, a count, cdi",
            "[gpus]\ncount = 1\nmode = \"cdi\"",
        ),
        (
            "long form, devices mode only",
            "[gpus]\nmode = \"devices\"\ncapabilities = [\"all\"]",
        ),
        (
            "inline long form, every capability",
            "gpus = { devices = [\"GPU-abc\", 2], mode = \"devices\", capabilities = [\"compute\", \"compat32\", \"graphics\", \"utility\", \"video\", \"display\", \"ngx\"] }",
        ),
    ];
    let p = Profiles::new();
    let failures: Vec<String> = forms
        .iter()
        .filter_map(|(name, gpus)| {
            let path = p.write("gpu.toml", &format!("image = \"busybox\"\n{gpus}\n"));
            let out = check(&[&path]);
            (out.code != 0).then(|| {
                format!(
                    "gpus form `{name}`: exit code {}\n{gpus}\n{}",
                    out.code, out.stderr
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} gpus forms were rejected:\n\n{}",
        failures.len(),
        forms.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// `extends` merging, observed through what `check` accepts.

/// Writes `base.toml` and `child.toml` (which extends it) and checks the child.
fn check_child(base: &str, child: &str) -> (Profiles, Output) {
    let p = Profiles::new();
    p.write("base.toml", base);
    let path = p.write("child.toml", &format!("extends = \"base.toml\"\n{child}"));
    let out = check(&[&path]);
    (p, out)
}

/// Asserts an error at `base.toml:line:col` that says `token`.
fn assert_error_in_base(p: &Profiles, out: &Output, line_col: &str, token: &str) {
    let at = format!("{}:{line_col}", p.path().join("base.toml").display());
    let found = diagnostics(&out.stderr)
        .into_iter()
        .find(|d| d.location.as_deref() == Some(at.as_str()))
        .unwrap_or_else(|| panic!("no error at {at}:\n{}", out.stderr));
    assert!(found.text.contains(token), "{}", out.stderr);
}

/// Writes `base.toml` and `child.toml` (which extends it and names its
/// container `child`), renders the child and returns its merged spec.
fn merged(base: &str, child: &str) -> Value {
    let p = Profiles::new();
    p.write("base.toml", base);
    let path = p.write(
        "child.toml",
        &format!("extends = \"base.toml\"\nname = \"child\"\n{child}"),
    );
    rendered_spec(&path)
}

/// `launch render --format json PROFILE` (no GPUs, no bind mounts: it needs
/// neither an engine nor the host), which must succeed: the spec.
fn rendered_spec(path: &Path) -> Value {
    let out = Launch::new()
        .env_remove(UNSET)
        .args(["render", "--format", "json"])
        .arg(path)
        .run()
        .code(0);
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("render prints JSON ({e}):\n{}", out.stdout));
    report["spec"].clone()
}

/// The spec's ports as `(host_ip, host_port, container_port/protocol)`.
fn ports_of(spec: &Value) -> Vec<(Option<String>, Option<u64>, String)> {
    spec["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    (
                        p["host_ip"].as_str().map(str::to_string),
                        p["host_port"].as_u64(),
                        format!(
                            "{}/{}",
                            p["container_port"],
                            p["protocol"].as_str().expect("a protocol")
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_child_port_replaces_the_parent_port_with_the_same_container_port() {
    let base = "image = \"busybox\"\nports = [\"70000:80\"]\n";
    let spec = merged(base, "ports = [\"8080:80\"]\n");
    assert_eq!(ports_of(&spec), [(None, Some(8080), "80/tcp".into())]);
    let spec = merged(base, "ports = [\"127.0.0.1:8080:80/tcp\"]\n");
    assert_eq!(
        ports_of(&spec),
        [(Some("127.0.0.1".into()), Some(8080), "80/tcp".into())]
    );
}

#[test]
fn a_child_port_for_another_container_port_keeps_the_parent_port() {
    let base = "image = \"busybox\"\nports = [\"70000:80\"]\n";
    for child in ["ports = [\"8081:81\"]\n", "ports = [\"8080:80/udp\"]\n"] {
        let (p, out) = check_child(base, child);
        let out = out.code(2);
        assert_error_in_base(&p, &out, "2:10", "70000");
    }
    let spec = merged(
        "image = \"busybox\"\nports = [\"9000:80\"]\n",
        "ports = [\"8081:81\"]\n",
    );
    assert_eq!(
        ports_of(&spec),
        [
            (None, Some(9000), "80/tcp".into()),
            (None, Some(8081), "81/tcp".into())
        ]
    );
}

#[test]
fn a_child_volume_replaces_the_parent_volume_with_the_same_target() {
    let base = "image = \"busybox\"\nvolumes = [\"/data:/data:rx\"]\n";
    let mounts = |child: &str| merged(base, child)["mounts"].clone();
    assert_eq!(
        mounts("volumes = [\"models:/data\"]\n"),
        json!([{ "type": "volume", "source": "models", "target": "/data" }])
    );
    assert_eq!(
        mounts("volumes = [\"models:/data/:ro\"]\n"),
        json!([{ "type": "volume", "source": "models", "target": "/data", "read_only": true }])
    );
    assert_eq!(
        mounts("volumes = [{ source = \"models\", target = \"/data/.\" }]\n"),
        json!([{ "type": "volume", "source": "models", "target": "/data" }])
    );
}

#[test]
fn a_child_volume_for_another_target_keeps_the_parent_volume() {
    let base = "image = \"busybox\"\nvolumes = [\"/data:/data:rx\"]\n";
    let (p, out) = check_child(base, "volumes = [\"/srv:/other\"]\n");
    assert_error_in_base(&p, &out.code(2), "2:12", "rx");
    let spec = merged(
        "image = \"busybox\"\nvolumes = [\"models:/data\"]\n",
        "volumes = [{ type = \"tmpfs\", target = \"/other\" }]\n",
    );
    let targets: Vec<&str> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["/data", "/other"]);
}

#[test]
fn a_child_env_value_replaces_the_parent_value_of_the_same_key() {
    let base = "image = \"busybox\"\n[env]\nTOKEN = \"${LAUNCH_TEST_UNSET}\"\nKEEP = \"1\"\n";
    let spec = merged(base, "[env]\nTOKEN = \"from-child\"\n");
    assert_eq!(
        spec["env"],
        json!({ "TOKEN": "from-child", "KEEP": "1", "NVIDIA_VISIBLE_DEVICES": "void" })
    );
}

#[test]
fn a_child_env_of_another_key_keeps_the_parent_value() {
    let base = "image = \"busybox\"\n[env]\nTOKEN = \"${LAUNCH_TEST_UNSET}\"\n";
    let (p, out) = check_child(base, "[env]\nOTHER = \"x\"\n");
    assert_error_in_base(&p, &out.code(2), "3:10", "LAUNCH_TEST_UNSET");
    let spec = merged(
        "image = \"busybox\"\n[env]\nTOKEN = \"t\"\n",
        "[env]\nOTHER = \"x\"\n",
    );
    assert_eq!(
        spec["env"],
        json!({ "TOKEN": "t", "OTHER": "x", "NVIDIA_VISIBLE_DEVICES": "void" })
    );
}

#[test]
fn a_child_label_replaces_the_parent_label_of_the_same_key() {
    let base = "image = \"busybox\"\n[labels]\nteam = 1\n";
    let spec = merged(base, "[labels]\nteam = \"vision\"\n");
    assert_eq!(spec["labels"], json!({ "team": "vision" }));
    let (p, out) = check_child(base, "[labels]\nowner = \"ann\"\n");
    assert_error_in_base(&p, &out.code(2), "3:8", "string");
}

#[test]
fn a_child_device_replaces_the_parent_device_with_the_same_container_path() {
    // Rendered on this host, so devices every Linux host has.
    let base = "image = \"busybox\"\ndevices = [\"/dev/null:/dev/quiet:rwx\"]\n";
    let spec = merged(base, "devices = [\"/dev/zero:/dev/quiet:r\"]\n");
    assert_eq!(
        spec["devices"],
        json!([{ "host": "/dev/zero", "container": "/dev/quiet", "permissions": "r" }])
    );
    let (p, out) = check_child(base, "devices = [\"/dev/kvm\"]\n");
    assert_error_in_base(&p, &out.code(2), "2:12", "rwx");
}

#[test]
fn tables_merge_key_by_key() {
    // The child's interval replaces the parent's; the parent's cmd stays.
    let base =
        "image = \"busybox\"\n[healthcheck]\ncmd = \"true\"\ninterval = \"bogus\"\nretries = 3\n";
    let spec = merged(base, "[healthcheck]\ninterval = \"30s\"\n");
    assert_eq!(
        spec["healthcheck"],
        json!({ "test": ["CMD-SHELL", "true"], "interval_ns": 30_000_000_000_i64, "retries": 3 })
    );
}

#[test]
fn a_child_gpu_choice_replaces_the_parent_choice() {
    // What the merged choice selects is rendered in tests/it/gpu.rs (it needs a
    // GPU host); here, that a child's count is not a second choice beside the
    // parent's devices.
    let base = "image = \"busybox\"\n[gpus]\ndevices = [0]\nmode = \"devices\"\n";
    check_child(base, "gpus = { count = 2 }\n").1.code(0);
    check_child(base, "[gpus]\ncount = 2\n").1.code(0);
    check_child(
        "image = \"busybox\"\ngpus = [0, 1]\n",
        "gpus = { count = 2 }\n",
    )
    .1
    .code(0);
}

#[test]
fn child_scalars_and_plain_arrays_replace_the_parent_values() {
    let spec = merged(
        "image = \"busybox\"\nshm_size = \"8X\"\ncap_add = [\"BOGUS\"]\ncommand = [\"a\", \"b\"]\n",
        "shm_size = \"8G\"\ncap_add = [\"SYS_PTRACE\"]\ncommand = \"c\"\n",
    );
    assert_eq!(spec["shm_size"], 8_u64 << 30);
    assert_eq!(spec["cap_add"], json!(["SYS_PTRACE"]));
    assert_eq!(spec["command"], json!(["c"]));
    let (p, out) = check_child(
        "image = \"busybox\"\nshm_size = \"8G\"\n",
        "shm_size = \"8X\"\n",
    );
    let at = format!("{}:2:12", p.path().join("child.toml").display());
    assert!(
        diagnostics(&out.code(2).stderr)
            .iter()
            .any(|d| d.location.as_deref() == Some(at.as_str())),
        "the child's own error points into the child"
    );
}

#[test]
fn later_extended_profiles_win_over_earlier_ones() {
    let p = Profiles::new();
    p.write(
        "a.toml",
        "image = \"busybox\"\nshm_size = \"8X\"\nuser = \"a\"\n",
    );
    p.write("b.toml", "shm_size = \"8G\"\nhostname = \"b\"\n");
    let ab = p.write("ab.toml", "extends = [\"a.toml\", \"b.toml\"]\n");
    let ba = p.write("ba.toml", "extends = [\"b.toml\", \"a.toml\"]\n");
    let spec = rendered_spec(&ab);
    assert_eq!(
        (&spec["shm_size"], &spec["user"], &spec["hostname"]),
        (&json!(8_u64 << 30), &json!("a"), &json!("b"))
    );
    let out = check(&[&ba]).code(2);
    let at = format!("{}:2:12", p.path().join("a.toml").display());
    assert!(
        diagnostics(&out.stderr)
            .iter()
            .any(|d| d.location.as_deref() == Some(at.as_str())),
        "{}",
        out.stderr
    );
}

#[test]
fn paths_in_an_extended_profile_are_relative_to_that_profile() {
    let p = Profiles::new();
    p.write(
        "team/base.toml",
        "image = \"busybox\"\nenv_file = \"team.env\"\n",
    );
    p.write("team/team.env", "TEAM=vision\n");
    let child = p.write("child.toml", "extends = \"team/base.toml\"\n");
    check(&[&child]).code(0);

    // Next to the child instead, it is not found.
    let q = Profiles::new();
    q.write(
        "team/base.toml",
        "image = \"busybox\"\nenv_file = \"team.env\"\n",
    );
    q.write("team.env", "TEAM=vision\n");
    let child = q.write("child.toml", "extends = \"team/base.toml\"\n");
    let out = check(&[&child]).code(2);
    assert!(out.stderr.contains("team.env"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// Interpolation and paths.

#[test]
fn variables_and_defaults_are_interpolated() {
    let p = Profiles::new();
    let path = p.write(
        "vars.toml",
        "image = \"${LAUNCH_TEST_IMAGE}\"\nname = \"${LAUNCH_TEST_UNSET:-from-default}\"\n",
    );
    let out = Launch::new()
        .env_remove(UNSET)
        .env("LAUNCH_TEST_IMAGE", "busybox:1.36")
        .args(["check", "--json"])
        .arg(&path)
        .run()
        .code(0);
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(report["image"], "busybox:1.36");
    assert_eq!(report["name"], "from-default");
}

#[test]
fn an_empty_variable_takes_the_default() {
    let p = Profiles::new();
    let path = p.write(
        "vars.toml",
        "image = \"busybox\"\nname = \"${LAUNCH_TEST_EMPTY:-fallback}\"\n",
    );
    let out = Launch::new()
        .env("LAUNCH_TEST_EMPTY", "")
        .args(["check", "--json"])
        .arg(&path)
        .run()
        .code(0);
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(report["name"], "fallback");
}

#[test]
fn a_double_dollar_is_a_literal_dollar() {
    let p = Profiles::new();
    let ok = p.write(
        "ok.toml",
        "image = \"busybox\"\ncommand = \"sh -c 'echo $$HOME $PATH'\"\n",
    );
    check(&[&ok]).code(0);
    // Seen through the error it causes in a name: `$$` became one `$`.
    let bad = p.write("bad.toml", "image = \"busybox\"\nname = \"cost$$\"\n");
    let out = check(&[&bad]).code(2);
    assert!(out.stderr.contains("`cost$`"), "{}", out.stderr);
}

/// The home folder of `uid` in /etc/passwd.
fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[2] == uid.to_string())
        .map(|f| f[5].to_string())
        .expect("a passwd entry")
}

#[test]
fn a_leading_tilde_is_the_home_of_the_profile_s_owner() {
    let p = Profiles::new();
    let path = p.write(
        "home.toml",
        "image = \"busybox\"\nenv_file = \"~/launch-test-missing.env\"\nvolumes = [\"~/data:/data\", \"~:/root/home\"]\n",
    );
    // Not the home of whoever runs launch ($HOME), but of the file's owner:
    // root's own, then nobody's (a user with a passwd entry).
    let elsewhere = Profiles::new();
    for uid in [0, 65534] {
        std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
        let out = Launch::new()
            .env("HOME", elsewhere.path())
            .arg("check")
            .arg(&path)
            .run()
            .code(2);
        let expected = Path::new(&home_of(uid)).join("launch-test-missing.env");
        assert!(
            out.stderr.contains(&expected.display().to_string()),
            "the error names the owner's {}:\n{}",
            expected.display(),
            out.stderr
        );
    }
    // A uid with no passwd entry has no home: `~` is an error at its place.
    std::os::unix::fs::chown(&path, Some(4242), Some(4242)).unwrap();
    let out = check(&[&path]).code(2);
    assert!(out.stderr.contains("no passwd entry"), "{}", out.stderr);
    assert!(out.stderr.contains("home.toml:3:12"), "{}", out.stderr);
    // Found, the home's files are read.
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    let plain = p.write(
        "plain.toml",
        "image = \"busybox\"\nvolumes = [\"~/data:/data\"]\n",
    );
    check(&[&plain]).code(0);
}

#[test]
fn relative_paths_are_relative_to_the_profile_not_the_working_directory() {
    let p = Profiles::new();
    p.write("team/base.toml", "image = \"busybox\"\n");
    p.write("team/web.env", "PORT=80\n");
    let path = p.write(
        "team/web.toml",
        r#"extends = "base.toml"
env_file = "web.env"
volumes = ["./data:/data", "../shared:/shared", "./cache/../models:/models"]
"#,
    );
    let elsewhere = Profiles::new();
    // Absolute profile path, run from an unrelated folder.
    Launch::new()
        .current_dir(elsewhere.path())
        .arg("check")
        .arg(&path)
        .run()
        .code(0);
    // Relative profile path, run from its grandparent.
    Launch::new()
        .current_dir(p.path())
        .args(["check", "team/web.toml"])
        .run()
        .code(0);
    // Neither is looked for in the working directory.
    let q = Profiles::new();
    q.write("web.env", "PORT=80\n");
    q.write("base.toml", "image = \"busybox\"\n");
    let lone = q.write(
        "team/web.toml",
        "image = \"busybox\"\nenv_file = \"web.env\"\n",
    );
    let orphan = q.write("team/child.toml", "extends = \"base.toml\"\n");
    let out = Launch::new()
        .current_dir(q.path())
        .arg("check")
        .arg(&lone)
        .run()
        .code(2);
    let locations: Vec<String> = diagnostics(&out.stderr)
        .into_iter()
        .filter_map(|d| d.location)
        .collect();
    let at = |line_col: &str| format!("{}:{line_col}", lone.display());
    assert_eq!(locations, [at("2:12")], "{}", out.stderr);
    // A missing parent is the only error shown: the rest of the profile is not
    // judged without it.
    let out = Launch::new()
        .current_dir(q.path())
        .arg("check")
        .arg(&orphan)
        .run()
        .code(2);
    let locations: Vec<String> = diagnostics(&out.stderr)
        .into_iter()
        .filter_map(|d| d.location)
        .collect();
    assert_eq!(
        locations,
        [format!("{}:1:11", orphan.display())],
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// Checked-in profiles.

fn check_repo(paths: &[&str]) -> Output {
    let home = Profiles::new();
    Launch::new()
        .env("HOME", home.path())
        .env_remove("ALICE_JUPYTER_PORT")
        .current_dir(repo_root())
        .arg("check")
        .args(paths)
        .run()
}

#[test]
fn every_checked_in_profile_is_valid() {
    let out = check_repo(&["profiles/examples", "profiles/team"]).code(0);
    for file in [
        "cs-ddm.toml",
        "cs-torch.toml",
        "paddle-8gpu.toml",
        "alice.toml",
        "bob.toml",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("ok: ") && l.contains(file)),
            "{file} is reported ok:\n{}",
            out.stdout
        );
    }
    for folder in ["examples", "team"] {
        let dir = repo_root().join("profiles").join(folder);
        for entry in std::fs::read_dir(&dir).expect("profiles folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let shown = format!(
                    "profiles/{folder}/{}",
                    path.file_name().unwrap().to_string_lossy()
                );
                check_repo(&[&shown]).code(0);
            }
        }
    }
}

#[test]
fn a_team_folder_checks_the_members_not_their_base() {
    let out = check_repo(&["profiles/team"]).code(0);
    assert!(!out.stdout.contains("base.toml"), "{}", out.stdout);
    check_repo(&["profiles/team/base.toml"]).code(0);
}

#[test]
fn checked_in_team_profiles_are_understood() {
    let home = Profiles::new();
    let out = Launch::new()
        .env("HOME", home.path())
        .env_remove("ALICE_JUPYTER_PORT")
        .current_dir(repo_root())
        .args([
            "check",
            "--json",
            "profiles/team/alice.toml",
            "profiles/team/bob.toml",
        ])
        .run()
        .code(0);
    let reports: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice-dev", "bob-train"]);
    for r in &reports {
        assert_eq!(r["image"], "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04");
    }
}

// ---------------------------------------------------------------------------
// Folders.

#[test]
fn a_folder_with_one_bad_profile_fails_and_still_reports_the_good_ones() {
    let p = Profiles::new();
    p.write("good-a.toml", "image = \"busybox\"\n");
    p.write("bad.toml", "image = \"busybox\"\nports = [\"70000:80\"]\n");
    p.write("good-b.toml", "image = \"alpine\"\nname = \"second\"\n");
    p.write("notes.txt", "not a profile\n");
    let out = check(&[p.path()]).code(2);
    for good in ["good-a.toml", "good-b.toml"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("ok: ") && l.contains(good)),
            "{good} is reported ok:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("bad.toml"), "{}", out.stdout);
    assert!(!out.stdout.contains("notes.txt"), "{}", out.stdout);
    let at = format!("{}:2:10", p.path().join("bad.toml").display());
    assert!(out.stderr.contains(&at), "{}", out.stderr);

    let out = check_json(&[p.path()]).code(2);
    let valid: Vec<(String, bool)> = out
        .stdout
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).expect("one JSON object a line");
            let file = Path::new(r["profile"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (file, r["valid"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(
        valid,
        [
            ("bad.toml".to_string(), false),
            ("good-a.toml".to_string(), true),
            ("good-b.toml".to_string(), true)
        ]
    );
}

#[test]
fn a_folder_without_profiles_is_a_usage_error() {
    let p = Profiles::new();
    p.write("notes.txt", "not a profile\n");
    let out = check(&[p.path()]).code(2);
    assert!(out.stderr.contains("no *.toml"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// `launch schema`.

/// Every top-level key of the profile format (the fuzzer generates each).
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "image",
    "name",
    "extends",
    "pull",
    "command",
    "entrypoint",
    "interactive",
    "workdir",
    "user",
    "hostname",
    "env",
    "env_file",
    "labels",
    "gpus",
    "ports",
    "volumes",
    "devices",
    "shm_size",
    "network",
    "ipc",
    "pid",
    "privileged",
    "cap_add",
    "cap_drop",
    "security_opt",
    "ulimits",
    "memory",
    "cpus",
    "cpuset",
    "restart",
    "stop_timeout",
    "healthcheck",
    "recreate",
    "build",
    "init",
    "group_add",
    "sysctls",
    "extra_hosts",
    "dns",
    "device_cgroup_rules",
    "runtime",
    "read_only",
    "memory_swap",
    "platform",
    "log",
    "lease",
];

#[test]
fn schema_is_draft_07_and_closed_with_every_top_level_key() {
    let out = Launch::new().arg("schema").run().code(0);
    let schema: Value = serde_json::from_str(&out.stdout).expect("the schema is JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    let properties = schema["properties"].as_object().expect("properties");
    let missing: Vec<&&str> = TOP_LEVEL_KEYS
        .iter()
        .filter(|k| !properties.contains_key(**k))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from the schema: {missing:?}"
    );
    let extra: Vec<&String> = properties
        .keys()
        .filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str()))
        .collect();
    assert!(extra.is_empty(), "keys the design does not list: {extra:?}");
}

/// Profiles point their `#:schema` comment at profiles/launch.schema.json:
/// it must be what `launch schema` prints today.
#[test]
fn the_checked_in_schema_is_current() {
    let out = Launch::new().arg("schema").run().code(0);
    let checked_in = std::fs::read_to_string(repo_root().join("profiles/launch.schema.json"))
        .expect("schema file");
    assert_eq!(
        checked_in.trim_end(),
        out.stdout.trim_end(),
        "regenerate it: launch schema > profiles/launch.schema.json"
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Launch::new().args(["completions", shell]).run().code(0);
        for word in ["launch", "render", "--nvml-lib"] {
            assert!(out.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let out = Launch::new().args(["completions", "tcsh"]).run().code(2);
    assert!(out.stderr.contains("tcsh"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// Unattended and hostile input: limits, hangs, what a profile may grant.

/// Runs launch with `args`, killing it after `limit`: a run that does not
/// finish in time fails the test instead of hanging it. Output goes to
/// files, so a run that prints megabytes cannot block on a full pipe.
fn run_within(args: &[&std::ffi::OsStr], limit: std::time::Duration) -> Output {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_launch"))
        .env_remove("RUST_LOG")
        .env_remove(UNSET)
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("the launch binary runs");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read(&err_path).unwrap_or_default();
            let tail = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(2000)..]);
            panic!("launch {args:?} did not finish in {limit:?}; stderr ends:\n{tail}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let output = Output {
        code: status.code().unwrap_or(-1),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    assert!(
        !output.stderr.contains("panicked"),
        "launch panicked:\n{}",
        output.stderr
    );
    output
}

/// `launch check PATHS`, which must finish within 20 seconds.
fn check_within(paths: &[&Path]) -> Output {
    let mut args = vec![std::ffi::OsStr::new("check")];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    run_within(&args, std::time::Duration::from_secs(20))
}

/// The locations of a run's errors, each `line:column` in `file`.
fn error_locations(out: &Output, file: &Path) -> Vec<String> {
    let prefix = format!("{}:", file.display());
    diagnostics(&out.stderr)
        .into_iter()
        .filter_map(|d| d.location?.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn fifos_and_devices_are_refused_not_read() {
    let p = Profiles::new();
    mkfifo(&p.path().join("pipe.env"));
    mkfifo(&p.path().join("pipe.toml"));
    let env_fifo = p.write(
        "env-fifo.toml",
        "image = \"busybox\"\nenv_file = \"pipe.env\"\n",
    );
    let out = check_within(&[&env_fifo]).code(2);
    assert_eq!(error_locations(&out, &env_fifo), ["2:12"], "{}", out.stderr);
    assert!(out.stderr.contains("a FIFO"), "{}", out.stderr);

    let zero = p.write(
        "zero.toml",
        "image = \"busybox\"\nenv_file = [\"/dev/zero\"]\n",
    );
    let out = check_within(&[&zero]).code(2);
    assert_eq!(error_locations(&out, &zero), ["2:13"], "{}", out.stderr);
    assert!(out.stderr.contains("a device"), "{}", out.stderr);

    let extends_fifo = p.write(
        "extends-fifo.toml",
        "image = \"busybox\"\nextends = \"pipe.toml\"\n",
    );
    let out = check_within(&[&extends_fifo]).code(2);
    assert_eq!(
        error_locations(&out, &extends_fifo),
        ["2:11"],
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("a FIFO"), "{}", out.stderr);

    // Named directly, the profile itself.
    let out = check_within(&[&p.path().join("pipe.toml")]).code(2);
    assert!(out.stderr.contains("a FIFO"), "{}", out.stderr);
}

#[test]
fn files_over_one_mebibyte_are_refused() {
    let p = Profiles::new();
    let padding = format!("# {}\n", "x".repeat(1 << 20));
    let big = p.write("big.toml", &format!("image = \"busybox\"\n{padding}"));
    let out = check_within(&[&big]).code(2);
    assert!(out.stderr.contains("1 MiB"), "{}", out.stderr);

    p.write("big.env", &format!("A=1\n{padding}"));
    p.write("big-base.toml", &format!("image = \"busybox\"\n{padding}"));
    let names = p.write(
        "names-big.toml",
        "image = \"busybox\"\nenv_file = \"big.env\"\n",
    );
    let out = check_within(&[&names]).code(2);
    assert_eq!(error_locations(&out, &names), ["2:12"], "{}", out.stderr);
    assert!(out.stderr.contains("1 MiB"), "{}", out.stderr);
    let child = p.write("child.toml", "extends = \"big-base.toml\"\n");
    let out = check_within(&[&child]).code(2);
    assert_eq!(error_locations(&out, &child), ["1:11"], "{}", out.stderr);
    assert!(out.stderr.contains("1 MiB"), "{}", out.stderr);
}

#[test]
fn an_extends_chain_stops_at_32_levels() {
    let p = Profiles::new();
    let chain = |n: usize| {
        for i in 0..n {
            p.write(
                &format!("p{i}.toml"),
                &format!("extends = \"p{}.toml\"\n", i + 1),
            );
        }
        p.write(&format!("p{n}.toml"), "image = \"busybox\"\n");
        p.path().join("p0.toml")
    };
    // 32 steps of `extends` are fine.
    check_within(&[&chain(32)]).code(0);
    // Thousands overflowed the stack; now the 33rd step is an error.
    let root = chain(3000);
    let out = check_within(&[&root]).code(2);
    let p32 = p.path().join("p32.toml");
    assert_eq!(error_locations(&out, &p32), ["1:11"], "{}", out.stderr);
    assert!(out.stderr.contains("more than 32"), "{}", out.stderr);
    assert_eq!(error_count(&out.stderr), 1, "{}", out.stderr);
}

#[test]
fn a_profile_extended_at_every_level_twice_is_merged_once() {
    // Each level names the next twice: 2^30 merges if each were read anew.
    let p = Profiles::new();
    for i in 0..30 {
        let next = format!("l{}.toml", i + 1);
        p.write(
            &format!("l{i}.toml"),
            &format!("extends = [\"{next}\", \"{next}\"]\n[env]\nL{i} = \"{i}\"\n"),
        );
    }
    p.write("l30.toml", "image = \"busybox\"\n");
    let out = check_within(&[&p.path().join("l0.toml")]).code(0);
    assert!(out.stdout.contains("ok: "), "{}", out.stdout);
}

/// A profile of `image` and then `body` repeated `n` times (`{i}` numbered).
fn generated(
    p: &Profiles,
    name: &str,
    head: &str,
    body: &str,
    n: usize,
    tail: &str,
) -> std::path::PathBuf {
    let mut text = format!("image = \"busybox\"\n{head}");
    for i in 0..n {
        text.push_str(&body.replace("{i}", &i.to_string()));
    }
    text.push_str(tail);
    p.write(name, &text)
}

#[test]
fn ten_thousand_entries_of_anything_check_quickly() {
    let p = Profiles::new();
    let n = 10_000;
    // (profile, exit code, first error `line:column`, its token, errors)
    let cases = [
        (
            generated(&p, "keys.toml", "", "key{i} = 1\n", n, ""),
            2,
            Some(("2:1", "unknown key `key0`")),
            n,
        ),
        (
            generated(&p, "ports.toml", "ports = [\n", "\"x{i}:80\",\n", n, "]\n"),
            2,
            Some(("3:1", "`x0` is not a port")),
            n,
        ),
        (
            generated(&p, "line.toml", "ports = [", "\"x{i}:80\", ", n, "]\n"),
            2,
            Some(("2:10", "`x0` is not a port")),
            n,
        ),
        (
            generated(
                &p,
                "clash.toml",
                "ports = [\n",
                "\"8080:1{i}\",\n",
                n,
                "]\n",
            ),
            2,
            Some(("4:1", "8080/tcp is published twice")),
            n - 1,
        ),
        (
            generated(
                &p,
                "env.toml",
                "[env]\n",
                "V{i} = \"${LAUNCH_TEST_UNSET}\"\n",
                n,
                "",
            ),
            2,
            Some(("3:7", "LAUNCH_TEST_UNSET")),
            n,
        ),
        (
            generated(&p, "envok.toml", "[env]\n", "V{i} = \"x\"\n", n, ""),
            0,
            None,
            0,
        ),
        (
            generated(
                &p,
                "volumes.toml",
                "volumes = [\n",
                "\"v:/d{i}:rx\",\n",
                n,
                "]\n",
            ),
            2,
            Some(("3:1", "`rx`")),
            n,
        ),
        (
            generated(
                &p,
                "twice.toml",
                "volumes = [\n",
                "\"v{i}:/data/\",\n",
                n,
                "]\n",
            ),
            2,
            Some(("4:1", "used twice")),
            n - 1,
        ),
        (
            generated(
                &p,
                "labels.toml",
                "[labels]\n",
                "\"launch.l{i}\" = \"x\"\n",
                n,
                "",
            ),
            2,
            Some(("3:1", "reserved")),
            n,
        ),
        (
            generated(
                &p,
                "range.toml",
                "ports = [\"1-65535:1-65535\"",
                "",
                0,
                "]\n",
            ),
            0,
            None,
            0,
        ),
        (
            generated(
                &p,
                "ranges.toml",
                "ports = [\"1-65535:1-65535\", \"1-65535:1-65535\"",
                "",
                0,
                "]\n",
            ),
            2,
            Some(("2:29", "65534 more")),
            1,
        ),
    ];
    for (path, code, first, errors) in cases {
        let out = check_within(&[&path]).code(code);
        if let Some((at, token)) = first {
            let found = diagnostics(&out.stderr)
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("{}: no error", path.display()));
            assert_eq!(
                found.location.as_deref(),
                Some(format!("{}:{at}", path.display()).as_str()),
                "{}",
                found.text
            );
            assert!(
                found.text.contains(token),
                "{}: {}",
                path.display(),
                found.text
            );
        }
        assert_eq!(error_count(&out.stderr), errors, "{}", path.display());
    }
}

#[test]
fn an_env_file_is_literal_as_docker_reads_it() {
    let p = Profiles::new();
    p.write(
        "web.env",
        "# a comment\n\n  PLAIN=value\nQUOTED=\"a b\"\nHOME_REF=$HOME\nSECRET=${LAUNCH_TEST_SECRET}\nEQ=a=b\n",
    );
    let path = p.write(
        "web-env.toml",
        "image = \"busybox\"\nenv_file = \"web.env\"\n",
    );
    let out = Launch::new()
        .env("LAUNCH_TEST_SECRET", "from-launch's-environment")
        .args(["render", "--format", "json"])
        .arg(&path)
        .run()
        .code(0);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        report["spec"]["env"],
        json!({
            "PLAIN": "value",
            "QUOTED": "\"a b\"",
            "HOME_REF": "$HOME",
            "SECRET": "${LAUNCH_TEST_SECRET}",
            "EQ": "a=b",
            "NVIDIA_VISIBLE_DEVICES": "void",
        })
    );
}

#[test]
fn a_nested_default_is_interpolated() {
    let p = Profiles::new();
    let path = p.write(
        "nested.toml",
        "image = \"busybox\"\nname = \"${LAUNCH_TEST_UNSET:-${LAUNCH_TEST_NAME:-fallback}}\"\n",
    );
    let name = |value: Option<&str>| {
        let launch = Launch::new().env_remove(UNSET);
        let launch = match value {
            Some(v) => launch.env("LAUNCH_TEST_NAME", v),
            None => launch.env_remove("LAUNCH_TEST_NAME"),
        };
        let out = launch.args(["check", "--json"]).arg(&path).run().code(0);
        let report: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
        report["name"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(name(Some("inner")), "inner");
    assert_eq!(name(None), "fallback");
}

#[test]
fn mount_targets_are_normalised_in_the_spec() {
    let p = Profiles::new();
    let path = p.write(
        "mounts.toml",
        "image = \"busybox\"\nvolumes = [\"cache:/data/./sub/..//\", { type = \"tmpfs\", target = \"///scratch//\" }]\ndevices = [\"/dev/fuse:/dev//fuse/.\"]\n",
    );
    let spec = rendered_spec(&path);
    let targets: Vec<&str> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["/data", "/scratch"]);
    assert_eq!(spec["devices"][0]["container"], "/dev/fuse");
}

#[test]
fn a_seccomp_file_is_sent_as_its_json() {
    let p = Profiles::new();
    p.write(
        "policies/strict.json",
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"names\": [\"a b\"]\n}\n",
    );
    let path = p.write(
        "seccomp.toml",
        "image = \"busybox\"\nsecurity_opt = [\"seccomp=policies/strict.json\", \"apparmor=unconfined\"]\n",
    );
    let spec = rendered_spec(&path);
    assert_eq!(
        spec["security_opt"],
        json!([
            "apparmor=unconfined",
            "seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\",\"names\":[\"a b\"]}"
        ])
    );
    let unconfined = p.write(
        "unconfined.toml",
        "image = \"busybox\"\nsecurity_opt = [\"seccomp=unconfined\"]\n",
    );
    assert_eq!(
        rendered_spec(&unconfined)["security_opt"],
        json!(["seccomp=unconfined"])
    );
}

#[test]
fn two_profiles_of_a_folder_with_one_container_name_are_both_errors() {
    let p = Profiles::new();
    let web = p.write("web.toml", "image = \"busybox\"\n");
    let other = p.write("other.toml", "image = \"alpine\"\nname = \"web\"\n");
    p.write("fine.toml", "image = \"alpine\"\n");
    let out = check_within(&[p.path()]).code(2);
    assert_eq!(error_locations(&out, &other), ["2:8"], "{}", out.stderr);
    assert_eq!(error_locations(&out, &web), ["1:1"], "{}", out.stderr);
    assert_eq!(error_count(&out.stderr), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("container name `web`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("ok: ") && l.contains("fine.toml")),
        "{}",
        out.stdout
    );
    // Each alone is valid: the clash is the folder's.
    check(&[&web]).code(0);
    check(&[&other]).code(0);
}

#[test]
fn a_folder_whose_profiles_extend_each_other_reports_the_cycle() {
    let p = Profiles::new();
    let a = p.write("a.toml", "extends = \"b.toml\"\nimage = \"busybox\"\n");
    let b = p.write("b.toml", "extends = \"a.toml\"\nname = \"bee\"\n");
    let out = check_within(&[p.path()]).code(2);
    assert_eq!(error_locations(&out, &a), ["1:11"], "{}", out.stderr);
    assert_eq!(error_locations(&out, &b), ["1:11"], "{}", out.stderr);
    assert!(out.stderr.contains("forms a cycle"), "{}", out.stderr);
}

#[test]
fn paths_that_are_not_utf8_are_shown_lossily() {
    use std::os::unix::ffi::OsStrExt;
    let p = Profiles::new();
    let dir = p.path().join(std::ffi::OsStr::from_bytes(b"team-\xff"));
    std::fs::create_dir_all(&dir).expect("a folder with a non-UTF-8 name");
    let bad = dir.join("bad-one.toml");
    std::fs::write(&bad, "image = \"busybox\"\nports = [\"70000:80\"]\n").expect("write");
    std::fs::write(dir.join("good-one.toml"), "image = \"busybox\"\n").expect("write");
    let shown = bad.to_string_lossy().into_owned();
    assert!(shown.contains('\u{fffd}'));

    let out = check(&[&bad]).code(2);
    assert!(
        out.stderr.contains(&format!("{shown}:2:10")),
        "{}",
        out.stderr
    );
    for args in [vec![bad.as_path()], vec![dir.as_path()]] {
        let out = check_json(&args).code(2);
        let reports: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect();
        let report = reports
            .iter()
            .find(|r| r["valid"] == false)
            .unwrap_or_else(|| panic!("no invalid report in {}", out.stdout));
        assert_eq!(report["profile"], shown.as_str());
        assert_eq!(report["errors"][0]["file"], shown.as_str());
        assert_eq!(report["errors"][0]["line"], 2);
    }
}
