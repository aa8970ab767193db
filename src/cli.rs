//! Command-line definitions (clap). Each subcommand's work is in `commands/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Turn a checked-in TOML profile into a running NVIDIA GPU container, and keep it that way.
///
/// A profile names an image, GPUs, mounts, ports and shm size. `launch PROFILE`
/// resolves the GPUs against the host's driver and makes the container match:
/// it creates, starts, or recreates it only when something changed, so a cron
/// job can run it every minute.
#[derive(Debug, Parser)]
#[command(name = "launch", version)]
#[command(
    after_help = "Exit codes: 0 done, 1 runtime error, 2 invalid profile or usage, \
3 refused, 4 `plan` found changes.\n\nRun `launch schema > launch.schema.json` and add \
`#:schema ./launch.schema.json` at the top of a profile for editor completion."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Profiles or folders of profiles; the same as `launch up`.
    #[arg(value_name = "PROFILE|DIR")]
    pub profiles: Vec<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Print results as JSON, one object per profile.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print less: errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log more (-v: debug, -vv: trace). RUST_LOG works too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Docker engine address: unix:///path, tcp://host:port or ssh://user@host.
    /// Default: $DOCKER_HOST, else unix:///var/run/docker.sock.
    #[arg(long, global = true, value_name = "URL")]
    pub host: Option<String>,

    /// NVML library to load (nvidia-ctk's --nvml-lib).
    #[arg(
        long,
        global = true,
        env = "LAUNCH_NVML_LIB",
        value_name = "PATH",
        default_value = "libnvidia-ml.so.1"
    )]
    pub nvml_lib: PathBuf,

    /// Root holding the device nodes: <DIR>/dev/nvidia* (nvidia-ctk's --dev-root).
    #[arg(
        long,
        global = true,
        env = "LAUNCH_DEV_ROOT",
        value_name = "DIR",
        default_value = "/"
    )]
    pub dev_root: PathBuf,

    /// Root holding the driver's files: its etc/ld.so.cache and library folders
    /// (nvidia-ctk's --driver-root).
    #[arg(
        long,
        global = true,
        env = "LAUNCH_DRIVER_ROOT",
        value_name = "DIR",
        default_value = "/"
    )]
    pub driver_root: PathBuf,

    /// A folder of CDI specs, as nvidia-ctk's --spec-dir; repeat it for
    /// more. `auto` mode looks for an `nvidia.com/gpu` spec there, and
    /// `doctor` checks that the specs name the GPUs NVML sees.
    /// LAUNCH_CDI_SPEC_DIRS takes a colon-separated list.
    #[arg(
        long = "cdi-spec-dir",
        global = true,
        env = "LAUNCH_CDI_SPEC_DIRS",
        value_name = "DIR",
        value_delimiter = ':',
        default_values = ["/etc/cdi", "/var/run/cdi"]
    )]
    pub cdi_spec_dirs: Vec<PathBuf>,

    /// The host's policy: what profiles of owners who are not its admins may
    /// use (images, bind sources, privileges, GPUs). Read by check, plan,
    /// render, up and build; it must be owned by root and not writable by
    /// group or others. Default: /etc/launch/policy.toml when it exists.
    #[arg(long, global = true, env = "LAUNCH_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Seconds to wait for the engine to answer when connecting. Pulls,
    /// stops and builds are not cut short by it.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10.0,
          value_parser = positive_seconds)]
    pub timeout: f64,

    /// The folder of launch's state store: which containers, images and
    /// snapshots it made, and for whom. Only the user running launch may
    /// write it. Default: /var/lib/launch for root, else
    /// $XDG_STATE_HOME/launch (~/.local/state/launch).
    #[arg(long, global = true, env = "LAUNCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Seconds the whole run may take (0: no limit). Past it, launch stops
    /// cleanly where it is (exit 1 for what was not done), as a killed run
    /// would, and the next run picks up from there. Default: 300 when not
    /// on a terminal (cron, systemd), no limit on a terminal.
    #[arg(long, global = true, value_name = "SECONDS", env = "LAUNCH_DEADLINE",
          value_parser = seconds_or_none)]
    pub deadline: Option<f64>,

    /// Seconds to wait for another launch run working on the same container
    /// before giving up (exit 1, naming that run's pid).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 60.0,
          value_parser = positive_seconds)]
    pub lock_timeout: f64,
}

/// A cron run's bound: long enough for a recreate with a slow stop and a
/// snapshot, short enough not to pile up behind the next minutes' runs.
const DEFAULT_DEADLINE: f64 = 300.0;

fn seconds_or_none(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v == 0.0 => Ok(v),
        _ => positive_seconds(s),
    }
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

impl Global {
    /// Where the GPU host is: the library's plain options, no clap inside.
    pub fn roots(&self) -> launch::host::Roots {
        launch::host::Roots {
            nvml_lib: self.nvml_lib.clone(),
            dev_root: self.dev_root.clone(),
            driver_root: self.driver_root.clone(),
            cdi_spec_dirs: self.cdi_spec_dirs.clone(),
        }
    }

    pub fn locks(&self) -> launch::reconcile::Locks {
        launch::reconcile::Locks {
            dir: launch::reconcile::Locks::default_dir(),
            timeout: Duration::from_secs_f64(self.lock_timeout),
        }
    }

    /// The run's policy (exit 2 when it cannot be trusted or read), read
    /// before any engine call.
    pub fn policy(&self) -> launch::Result<Option<launch::policy::Policy>> {
        launch::policy::load(&match &self.policy {
            Some(path) => launch::policy::Source::Named(path.clone()),
            None => launch::policy::Source::Default,
        })
    }

    pub fn engine_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    /// The run's deadline: `--deadline`, else 5 minutes off a terminal.
    pub fn deadline(&self) -> Option<launch::session::Deadline> {
        let seconds = self.deadline.unwrap_or_else(|| {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                0.0
            } else {
                DEFAULT_DEADLINE
            }
        });
        (seconds > 0.0 && seconds.is_finite())
            .then(|| launch::session::Deadline::after(Duration::from_secs_f64(seconds)))
    }

    /// The library's plain options for a run. The policy's admins are
    /// trusted writers of profiles; a policy that cannot be read trusts no
    /// one but root (the commands that judge by it say why it cannot).
    pub fn settings(&self) -> launch::session::Settings {
        let admins = self
            .policy()
            .ok()
            .flatten()
            .map(|p| p.admins)
            .unwrap_or_default();
        launch::session::Settings {
            host: self.host.clone(),
            timeout: self.engine_timeout(),
            roots: self.roots(),
            state_dir: self
                .state_dir
                .clone()
                .unwrap_or_else(launch::state::default_dir),
            trust: launch::owner::Trust::new(admins),
        }
    }
}

#[derive(Debug, Args, Default)]
pub struct UpArgs {
    /// Profiles or folders of profiles (every *.toml in a folder, applied concurrently).
    #[arg(value_name = "PROFILE|DIR", required = true)]
    pub profiles: Vec<PathBuf>,
    /// Override the profiles' `pull` policy.
    #[arg(long, value_enum)]
    pub pull: Option<PullArg>,
    /// Never recreate: only create, start or unpause.
    #[arg(long, conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Recreate even when nothing changed.
    #[arg(long)]
    pub force_recreate: bool,
    /// Wait until each container runs (and has stayed up for a second), and is
    /// healthy if it has a healthcheck (at most --wait-timeout seconds); a
    /// container that does not get there is an error (exit 1).
    #[arg(long)]
    pub wait: bool,
    /// Seconds --wait waits per container.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, requires = "wait")]
    pub wait_timeout: u64,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A profile (its container) or a container's name.
    #[arg(value_name = "PROFILE|NAME")]
    pub target: String,
    /// Keep printing new lines as the container writes them (Ctrl-C ends).
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<u64>,
    /// Only lines since T: a duration back from now (`10m`, `1h30m`), an
    /// RFC 3339 time (`2026-11-27T18:00:00Z`) or Unix seconds (`1764266400`).
    #[arg(long, value_name = "T", value_parser = since)]
    pub since: Option<i64>,
    /// Prefix each line with the time the engine received it.
    #[arg(short, long)]
    pub timestamps: bool,
}

/// `--since` in Docker's forms, as Unix seconds.
fn since(s: &str) -> Result<i64, String> {
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    };
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(secs as i64);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(unix(t));
    }
    if let Ok(ago) = humantime::parse_duration(s) {
        let now = std::time::SystemTime::now();
        return Ok(unix(now.checked_sub(ago).unwrap_or(std::time::UNIX_EPOCH)));
    }
    Err(format!(
        "`{s}` is not a time: give a duration back from now (10m, 1h30m), \
         an RFC 3339 time (2026-11-27T18:00:00Z) or Unix seconds"
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ByArg {
    Owner,
    Container,
    Gpu,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PullArg {
    Missing,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A shell script whose `docker run` lines become profiles, one each.
    #[arg(value_name = "SCRIPT", conflicts_with = "container")]
    pub script: Option<PathBuf>,

    /// Import this container (name or id) through the engine.
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,

    /// Write to FILE (one profile) or into DIR as `DIR/<name>.toml`, instead
    /// of stdout. Existing files are never overwritten.
    #[arg(short = 'o', long, value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,

    /// What the `#:schema` comment points at: save `launch schema` there for
    /// editor completion.
    #[arg(long, value_name = "PATH|URL", default_value = "launch.schema.json")]
    pub schema: String,

    /// The `docker run …` command line, after `--`.
    #[arg(last = true, value_name = "DOCKER RUN …")]
    pub line: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RenderFormat {
    DockerRun,
    Json,
    Kubernetes,
    Slurm,
    Compose,
    Systemd,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make the containers match the profiles: create, start, or recreate
    /// only what changed. Safe to run every minute from cron.
    ///
    /// A container of the same name that launch did not create is never
    /// touched (exit 3). A recreate first checks the old container for changed
    /// files ([recreate] changed_files), and rolls back if the new one fails.
    Up(UpArgs),

    /// Show what `up` would do, with a field-by-field diff. Exits 4 when it
    /// would change something, 0 when all is up to date.
    Plan {
        #[arg(value_name = "PROFILE|DIR", required = true)]
        profiles: Vec<PathBuf>,
    },

    /// Stop and remove the containers of profiles (or containers by name).
    /// Named volumes are kept unless --volumes.
    Down {
        #[arg(value_name = "PROFILE|DIR|NAME", required = true)]
        targets: Vec<String>,
        /// Also remove the named volumes the containers use.
        #[arg(long)]
        volumes: bool,
    },

    /// List launch-managed containers: state, GPUs, image, profile, drift.
    Status {
        /// Only these profiles' containers.
        #[arg(value_name = "PROFILE|DIR")]
        profiles: Vec<PathBuf>,
    },

    /// Validate profiles offline: no engine, no NVIDIA driver needed.
    ///
    /// Checks syntax, keys, values and `extends`, and prints every problem with
    /// its file, line and column; judges them against the policy (--policy)
    /// as written (exit 3 when one breaks it), and warns of likely mistakes. Whether bind sources exist is a fact of the
    /// host, checked by `up`, `plan` and `render` instead. Exits 2 when a
    /// profile is invalid.
    Check {
        /// Profiles or folders of profiles (every *.toml in the folder).
        #[arg(value_name = "PROFILE|DIR", required = true)]
        profiles: Vec<PathBuf>,
        /// Treat warnings as errors (exit 2). Warnings: a GPU profile with
        /// Docker's 64 MiB /dev/shm, `privileged` with `gpus`, memlock not
        /// raised for a GPU profile, ${HOME} or ${USER} in a team profile.
        #[arg(long)]
        deny_warnings: bool,
    },

    /// Run a command, or a shell, in a running container.
    ///
    /// Without a command: `bash`, or `sh` where bash cannot run. On a terminal
    /// it gets a TTY (raw mode, window size followed); on pipes its stdin,
    /// stdout and stderr are plain streams. Launch exits with the command's
    /// exit code; a stopped or missing container is exit 1 (`launch up`
    /// starts it; exec never does). E.g. `launch exec train.toml`,
    /// `launch exec train -- nvidia-smi -L`.
    Exec {
        /// A profile (its container) or a container's name.
        #[arg(value_name = "PROFILE|NAME")]
        target: String,
        /// The command and its arguments, after `--`.
        #[arg(
            value_name = "CMD",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        command: Vec<String>,
    },

    /// Print a container's log: what it wrote to stdout on stdout, to stderr
    /// on stderr, as `docker logs` does.
    ///
    /// Takes a profile (a path: its container) or a container's name, e.g.
    /// `launch logs train.toml -f --since 10m`.
    Logs(LogsArgs),

    /// Commit a container launch made to an image, to keep work done inside it.
    ///
    /// The image is `launch-snapshots/<name>:<UTC time>` (e.g.
    /// `20261127T183224Z`, then `-2`, `-3`… within one second), or
    /// `launch-snapshots/<name>:T` with --tag. It holds the container's own
    /// filesystem, not its bind mounts and volumes: the output lists those.
    /// `launch prune` keeps the newest timestamped snapshots and never removes
    /// one tagged with --tag.
    Snapshot {
        /// A profile (its container) or a container's name.
        #[arg(value_name = "PROFILE|NAME")]
        target: String,
        /// The tag to give the image instead of the time.
        #[arg(long, value_name = "T")]
        tag: Option<String>,
    },

    /// Bring back a container its lease reclaimed, or give one more time
    /// before it is.
    ///
    /// The lease begins again from now, as an edit of the profile would
    /// begin it: idle time and a duration `until` count from now, and the
    /// next `launch up` (your cron line) starts the container. --for or
    /// --until set a new end, which the policy's `[lease] max_until` judges
    /// like the profile's (exit 3 past it); a lease that ended at a fixed
    /// time needs one. Only the container's owner, root or a policy admin
    /// renews it.
    ///
    /// Examples: `launch renew train`, `launch renew train --for 2d`,
    /// `launch renew train --until 2026-12-24T18:00:00Z`.
    Renew {
        /// A profile (its container) or a container's name.
        #[arg(value_name = "PROFILE|NAME")]
        target: String,
        /// The lease ends no sooner than this time (RFC 3339).
        #[arg(long, value_name = "TIME", conflicts_with = "for_")]
        until: Option<String>,
        /// The lease ends no sooner than this long from now (`8h`, `2d`).
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
    },

    /// GPU-hours on this host: held and busy, the idle share, and reclaims.
    ///
    /// From the samples `launch up` takes for leased profiles (at most one a
    /// minute per host) and keeps in the state store: every holder of a GPU
    /// is counted, launch's containers under their owner, other containers
    /// and processes under the user they run as. A GPU-minute is busy when
    /// its holder's processes used the SMs above 5 %. Samples are kept two
    /// weeks, hourly sums a year.
    Usage {
        /// How far back: a duration (`7d`, `12h`) or an RFC 3339 time.
        #[arg(long, value_name = "WHEN", default_value = "7d")]
        since: String,
        /// One row per owner, container or GPU.
        #[arg(long, value_enum, default_value = "owner")]
        by: ByArg,
    },

    /// The lab's board: who holds which GPU now, and who used how much.
    ///
    /// From the state store's samples (see `launch usage`): each GPU now
    /// (holder, owner, utilization, memory, lease), a time line of the last
    /// day and week per GPU (who held it, how busy), GPU-hours per owner and
    /// the lease events since --since. Run on the host, it first takes this
    /// minute's sample if no run has. With -o DIR it writes `index.html` (a
    /// static page: inline SVG, no script, nothing fetched), `usage.json`
    /// and `report.txt`, for cron to keep in a web root:
    ///
    ///     * * * * * root launch report -q -o /var/www/html/gpus
    ///
    /// Without -o it prints --format (text, json or html). --db FILE reads
    /// another host's store (a copy of its /var/lib/launch/state.db), and
    /// may be given again: one page for several servers.
    Report {
        /// Write index.html, usage.json and report.txt into DIR.
        #[arg(short = 'o', long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// What to print when there is no -o.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Totals since: a duration (`7d`) or an RFC 3339 time.
        #[arg(long, value_name = "WHEN", default_value = "7d")]
        since: String,
        /// A store file to read instead of this host's (repeatable).
        #[arg(long = "db", value_name = "FILE")]
        dbs: Vec<PathBuf>,
    },

    /// Remove old snapshots and the leftovers of interrupted recreates; only
    /// ever what launch made.
    ///
    /// Keeps the newest --keep timestamped snapshots of each container name
    /// (a snapshot tagged with `snapshot --tag` is never removed, nor one a
    /// container still uses). A leftover renamed-aside container
    /// (`<name>-launch-old-<id>`) goes when it is stopped and nothing in it
    /// would be lost; one whose name has no container is left for `launch up`
    /// to rename back. Lists what it removed; --dry-run lists what it would.
    Prune {
        /// Only these profiles' or names' snapshots and leftovers (default: all).
        #[arg(value_name = "PROFILE|NAME")]
        targets: Vec<String>,
        /// Timestamped snapshots to keep per name.
        #[arg(long, value_name = "N", default_value_t = 3)]
        keep: usize,
        /// Only list what would go.
        #[arg(long)]
        dry_run: bool,
    },

    /// Build the images of profiles with [build], and label them with their
    /// context's hash; no container is created or recreated (`up` does that).
    ///
    /// Always builds (the engine's layer cache still applies). Profiles
    /// without [build] are skipped. Progress shows on a terminal; a failed
    /// build is exit 1 with the builder's own lines.
    Build {
        #[arg(value_name = "PROFILE|DIR", required = true)]
        profiles: Vec<PathBuf>,
    },

    /// Check the GPU host's health: one line per check, `ok`, `warn` or
    /// `fail`, with the fix to apply. Exits 1 when a check fails.
    ///
    /// Checks that NVML loads and matches the kernel module (else a reboot
    /// is pending), the device nodes and their majors, persistence mode, the
    /// NVIDIA Container Toolkit and CDI specs (stale after a driver or MIG
    /// change), the engine's cgroup driver against /dev/char links (GPUs lost
    /// after `systemctl daemon-reload`), and each launch container's GPUs and
    /// driver. With profiles, only their containers are judged. Works without
    /// an engine (its checks say "unknown") and says so when there is no driver.
    Doctor {
        /// Judge only these profiles' containers (default: every container
        /// launch made).
        #[arg(value_name = "PROFILE|DIR")]
        profiles: Vec<PathBuf>,
    },

    /// List the host's GPUs and who holds each.
    ///
    /// Reads NVML (see --nvml-lib). Holders: launch containers (name and
    /// owner), other containers (an NVML process traced through
    /// /proc/<pid>/cgroup to its container) and host processes (pid, user,
    /// command). Without an engine, holders are incomplete: `--json` says
    /// so with `holders_complete: false`.
    Gpus {
        /// Where the host's /proc is (NVML reports host pids): tests give a
        /// fake one.
        #[arg(
            long,
            env = "LAUNCH_PROC_ROOT",
            value_name = "DIR",
            default_value = "/proc"
        )]
        proc_root: PathBuf,
    },

    /// Show what a profile resolves to on this host, without running it.
    ///
    /// `--format json` prints the container spec, its hash and the GPU mode
    /// chosen (and why); `--format docker-run` prints an equivalent
    /// `docker run` command, quoted for a POSIX shell.
    ///
    /// For other engines: `kubernetes` (a Pod, Deployment or Job by
    /// `restart`, a Service for the ports, DRA claims for GPUs by UUID),
    /// `slurm` (an sbatch script for pyxis/enroot), `compose`, and `systemd`
    /// (a service running `launch up PROFILE` and a timer running it every
    /// minute). A key the target cannot express is exit 2 naming every such
    /// key at its line, unless --lossy.
    Render {
        #[arg(value_name = "PROFILE")]
        profile: PathBuf,
        /// What to print: for this host's engine (`docker-run`, `json`), or
        /// files for another engine.
        #[arg(long, value_enum, default_value = "docker-run")]
        format: RenderFormat,
        /// Drop what the target cannot express, with a comment in the output
        /// for each dropped key, instead of failing.
        #[arg(long)]
        lossy: bool,
        /// Write the files into DIR (e.g. the systemd units into
        /// /etc/systemd/system) instead of stdout. Existing files are never
        /// overwritten.
        #[arg(short = 'o', long, value_name = "DIR")]
        output: Option<PathBuf>,
    },

    /// Write profiles from `docker run` lines or from a container.
    ///
    /// `launch import -- docker run …` imports one command line;
    /// `launch import SCRIPT` each `docker run` line of a shell script (`sudo`,
    /// `VAR=…`, `nohup … &` and `nvidia-docker run` are understood);
    /// `launch import --container NAME` a container, without what came from its
    /// image. Every flag with a profile key maps to it; the others become
    /// `# not imported:` comments and warnings. GPUs in any form become `gpus`
    /// (device minors through NVML). A line that cannot be read exits 2 at its
    /// line; the other lines are still imported.
    Import(ImportArgs),

    /// Print the JSON Schema (draft-07) of the profile format.
    ///
    /// Save it and point a `#:schema` comment at it for completion and checks in
    /// editors that use Taplo (e.g. Even Better TOML).
    Schema,

    /// Print a shell completion script, e.g. `launch completions bash`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}
