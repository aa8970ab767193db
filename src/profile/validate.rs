//! What the values of a profile mean: from the raw TOML shapes to a checked
//! [`Profile`], collecting every problem rather than stopping at the first.
//! Each concept has its own file; this one runs them in order.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ImageRef;
use super::diagnostic::{Diagnostic, unknown};
use super::load::Read;
use super::loader::Loader;
use super::names::{container_name, hostname};
use super::namespaces::{Ipc, Network, Pid};
use super::raw::{self, OneOrMany, Sp};
use super::source::Span;
use super::user::User;
use super::{
    Healthcheck, Profile, PullPolicy, RecreatePolicy, RestartPolicy, build, devices, env, gpus,
    ports, resources, security, volumes,
};

/// Collects the problems of one profile while its values are checked.
pub struct Checker<'a> {
    pub diags: &'a mut Vec<Diagnostic>,
    /// Reads the files values name (env files, seccomp profiles) and knows
    /// every file read.
    pub loader: &'a mut Loader,
}

impl Checker<'_> {
    /// The folder of the file a value was written in: relative paths in an
    /// extended profile are relative to that profile, not to the one extending it.
    pub fn dir_of(&mut self, span: &Span) -> PathBuf {
        let file = self
            .loader
            .sources
            .file_at(span.start)
            .map_or_else(|| PathBuf::from("."), |f| f.path.clone());
        let path = self.loader.absolute(&file);
        path.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message));
    }

    /// Runs `check` on a present value; an `Err` becomes a diagnostic at its span.
    pub fn map<T, U>(
        &mut self,
        value: &Option<Sp<T>>,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        let value = value.as_ref()?;
        match check(value.get()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(value.span(), message);
                None
            }
        }
    }

    /// Like `map` for each entry of a list.
    pub fn each<T, U>(
        &mut self,
        list: &Option<Vec<Sp<T>>>,
        mut check: impl FnMut(&T) -> Result<U, String>,
    ) -> Vec<U> {
        let mut out = Vec::new();
        for item in list.iter().flatten() {
            match check(item.get()) {
                Ok(v) => out.push(v),
                Err(message) => self.error(item.span(), message),
            }
        }
        out
    }
}

const MAX_STOP_TIMEOUT: u64 = 86_400;

pub fn validate(
    path: &Path,
    read: Read,
    loader: &mut Loader,
    diags: &mut Vec<Diagnostic>,
) -> Option<Profile> {
    let absolute = loader.absolute(path);
    let raw = read.raw;
    let keys = read.keys;
    let mut c = Checker { diags, loader };
    let start = read.whole.start..read.whole.start;

    let image = match &raw.image {
        Some(image) => c.map(&Some(image.clone()), |i| {
            ImageRef::parse(i).map(|_| i.clone())
        }),
        None => {
            c.diags.push(
                Diagnostic::new(start.clone(), "missing required key `image`")
                    .help("add e.g. image = \"nvidia/cuda:12.4.1-runtime-ubuntu22.04\""),
            );
            None
        }
    };
    let name = match &raw.name {
        Some(_) => c.map(&raw.name, |n| container_name(n).map(|_| n.clone())),
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match container_name(&stem) {
                Ok(()) => Some(stem),
                Err(e) => {
                    c.diags.push(
                        Diagnostic::new(
                            start.clone(),
                            format!("the file name gives no valid container name: {e}"),
                        )
                        .help("set `name` in the profile"),
                    );
                    None
                }
            }
        }
    };
    let command = c.map(&raw.command, argv);
    let entrypoint = c.map(&raw.entrypoint, argv);
    // An entrypoint set in the profile drops the image's command too (as
    // `docker run --entrypoint` does): an empty one leaves nothing to run.
    if let (Some(e), Some(written), None) = (&entrypoint, &raw.entrypoint, &raw.command)
        && e.iter().all(String::is_empty)
    {
        c.error(
            written.span(),
            "an empty entrypoint clears the image's entrypoint and its command, which leaves nothing to run; add `command`",
        );
    }
    let workdir = c.map(&raw.workdir, |w| absolute_container_path(w, "workdir"));
    let hostname = c.map(&raw.hostname, |h| hostname(h).map(|_| h.clone()));
    let user = c.map(&raw.user, |u| User::parse(u));

    let env = env::env(&mut c, &raw);
    let labels = labels(&mut c, &raw.labels);
    let gpus = raw.gpus.as_ref().and_then(|g| gpus::gpus(&mut c, g));

    // `/dev/dri` is a GPU's when the profile asks for graphics.
    let graphics = gpus.as_ref().is_some_and(|g| {
        g.capabilities
            .iter()
            .any(|c| matches!(c.as_str(), "graphics" | "display" | "all"))
    });
    let ports = ports(&mut c, &raw.ports);
    let volumes = mounts(&mut c, &raw.volumes, graphics);
    let devices = devices(&mut c, &raw.devices, graphics);

    let shm_size = c.map(&raw.shm_size, |s| resources::size(s, "shm_size", 1));
    let memory = c.map(&raw.memory, |s| {
        resources::size(s, "memory", resources::MIN_MEMORY)
    });
    let nano_cpus = c.map(&raw.cpus, resources::cpus);
    let cpuset = c.map(&raw.cpuset, |s| resources::cpuset(s).map(|_| s.clone()));
    let network = c.map(&raw.network, |n| Network::parse(n));
    // Another container's network is that container's: Docker refuses a
    // port or a hostname of this one's.
    if let (Some(Network::Container(_)), Some(written)) = (&network, &raw.network) {
        for (key, present) in [
            ("ports", raw.ports.as_ref().is_some_and(|p| !p.is_empty())),
            ("hostname", raw.hostname.is_some()),
            ("dns", raw.dns.as_ref().is_some_and(|d| !d.is_empty())),
            (
                "extra_hosts",
                raw.extra_hosts.as_ref().is_some_and(|h| !h.is_empty()),
            ),
        ] {
            if present {
                c.error(
                    written.span(),
                    format!(
                        "network = \"{}\" shares another container's network, so this one cannot set `{key}`",
                        written.get()
                    ),
                );
            }
        }
    }
    let ipc = c.map(&raw.ipc, |v| Ipc::parse(v));
    // Outside its own IPC namespace a container has no /dev/shm of its own
    // to size: Docker drops shm_size without a word, Podman refuses it.
    if let (Some(size), Some(mode @ (Ipc::Host | Ipc::None | Ipc::Container(_)))) =
        (&raw.shm_size, &ipc)
    {
        let whose = match mode {
            Ipc::Host => "the host's /dev/shm".to_string(),
            Ipc::Container(name) => format!("container `{name}`'s /dev/shm"),
            _ => "no /dev/shm at all".to_string(),
        };
        c.error(
            size.span(),
            format!("shm_size has no effect with ipc = \"{mode}\": the container uses {whose}; remove one of them"),
        );
    }
    let pid = c.map(&raw.pid, |v| Pid::parse(v));
    let cap_add = c.each(&raw.cap_add, security::capability);
    let cap_drop = c.each(&raw.cap_drop, security::capability);
    let security_opt = security::security_opts(&mut c, &raw.security_opt);
    let ulimits = resources::ulimits(&mut c, &raw.ulimits);
    let restart = c.map(&raw.restart, |r| restart(r));
    let healthcheck = raw
        .healthcheck
        .as_ref()
        .and_then(|h| healthcheck(&mut c, h));
    let recreate = recreate(&mut c, &raw.recreate);
    let run = super::run_options::run_options(&mut c, &raw, raw.memory.as_ref().map(|_| memory));
    let build = raw.build.as_ref().and_then(|b| build::build(&mut c, b));
    let lease = raw
        .lease
        .as_ref()
        .and_then(|l| super::lease::lease(&mut c, l, raw.gpus.is_some()));
    // A built image is known by its tag; a digest names an image that
    // already exists, so it cannot also be built.
    if let (Some(_), Some(written), Some(image)) = (&raw.build, &raw.image, &image)
        && ImageRef::parse(image).is_ok_and(|r| r.digest().is_some())
    {
        c.error(
            written.span(),
            format!("image `{image}` is pinned by digest; with [build] it is the tag to build, e.g. \"train:dev\""),
        );
    }
    // Where launch keeps snapshots, which prune and restore trust.
    if let (Some(_), Some(written), Some(image)) = (&raw.build, &raw.image, &image)
        && image.starts_with(crate::engine::gate::SNAPSHOTS)
    {
        c.error(
            written.span(),
            format!(
                "image `{image}` is under {}, where launch keeps its snapshots; a [build] never tags there",
                crate::engine::gate::SNAPSHOTS
            ),
        );
    }

    // A stop waits this long while holding the container's lock; a day is
    // more than any job needs to save its work.
    let stop_timeout = c.map(&raw.stop_timeout, |t| {
        if *t <= MAX_STOP_TIMEOUT {
            Ok(*t)
        } else {
            Err(format!(
                "stop_timeout {t} is more than a day ({MAX_STOP_TIMEOUT} seconds)"
            ))
        }
    });
    let mut places = super::Places {
        start: start.clone(),
        names: keys,
        ..Default::default()
    };
    places.set("image", &raw.image);
    places.set("user", &raw.user);
    places.set("privileged", &raw.privileged);
    places.set("network", &raw.network);
    places.set("ipc", &raw.ipc);
    places.set("pid", &raw.pid);
    places.set("gpus", &raw.gpus);
    places.set("shm_size", &raw.shm_size);
    places.set_items("cap_add", &raw.cap_add);
    places.set_items("security_opt", &raw.security_opt);
    places.set_items("device_cgroup_rules", &raw.device_cgroup_rules);
    places.set_items("group_add", &raw.group_add);
    if let Some((key, _)) = raw.ulimits.iter().flatten().next() {
        places.set_span("ulimits", key.span());
    }
    let owner = c.loader.owner.clone().unwrap_or_else(|| {
        c.diags.push(Diagnostic::whole_file(format!(
            "cannot tell who owns {}",
            absolute.display()
        )));
        crate::owner::Owner::default()
    });
    Some(Profile {
        owner,
        writers: Vec::new(),
        places,
        extends: Vec::new(),
        path: absolute.clone(),
        name: name?,
        image: image?,
        pull: raw.pull.as_ref().map_or(PullPolicy::Missing, |p| *p.get()),
        command,
        entrypoint,
        interactive: raw.interactive.as_ref().is_some_and(|i| *i.get()),
        workdir,
        user,
        hostname,
        env,
        labels,
        gpus,
        ports,
        volumes,
        devices,
        shm_size,
        network,
        ipc,
        pid,
        privileged: raw.privileged.as_ref().is_some_and(|p| *p.get()),
        cap_add,
        cap_drop,
        security_opt,
        ulimits,
        memory,
        nano_cpus,
        cpuset,
        restart,
        stop_timeout,
        healthcheck,
        recreate,
        build,
        lease,
        run,
        sources: Arc::default(),
    })
}

fn argv(value: &OneOrMany) -> Result<Vec<String>, String> {
    let words = match value {
        OneOrMany::One(line) => {
            shell_words::split(line).map_err(|_| format!("`{line}` has an unclosed quote"))?
        }
        OneOrMany::Many(items) => items.iter().map(|s| s.get().clone()).collect(),
    };
    // Arguments are NUL-terminated strings: the engine refuses one.
    if words.iter().any(|w| w.contains('\0')) {
        return Err("an argument holds a NUL byte".into());
    }
    Ok(words)
}

fn absolute_container_path(path: &str, key: &str) -> Result<String, String> {
    if path.starts_with('/') {
        Ok(path.to_string())
    } else {
        Err(format!(
            "{key} `{path}` must be an absolute path in the container"
        ))
    }
}

fn labels(
    c: &mut Checker,
    labels: &Option<BTreeMap<Sp<String>, Sp<String>>>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in labels.iter().flatten() {
        let (span, key) = (key.span(), key.get());
        if crate::spec::label::is_launchs(key) {
            c.error(
                span,
                format!("label `{key}` is in the reserved `launch.` namespace; launch writes those itself"),
            );
        } else if key.is_empty() {
            c.error(span, "a label name may not be empty");
        } else {
            out.insert(key.clone(), value.get().clone());
        }
    }
    out
}

/// Every port of tcp, udp and sctp: more bindings than that must repeat one,
/// and expanding them all would take minutes.
const MAX_PORT_BINDINGS: usize = 3 * 65535;

fn ports(c: &mut Checker, list: &Option<Vec<Sp<String>>>) -> Vec<ports::PortBinding> {
    let mut out: Vec<ports::PortBinding> = Vec::new();
    let mut published = HashSet::new();
    for item in list.iter().flatten() {
        let bindings = match ports::parse(item.get()) {
            Ok(bindings) => bindings,
            Err(message) => {
                c.error(item.span(), message);
                continue;
            }
        };
        if out.len() + bindings.len() > MAX_PORT_BINDINGS {
            c.error(
                item.span(),
                format!("a profile publishes at most {MAX_PORT_BINDINGS} ports (every port of tcp, udp and sctp); this entry goes past that"),
            );
            break;
        }
        let mut twice = Vec::new();
        for b in bindings {
            if let Some(host) = b.host_port
                && !published.insert((b.host_ip, host, b.protocol))
            {
                twice.push(format!("{host}/{}", b.protocol));
                continue;
            }
            out.push(b);
        }
        match &twice[..] {
            [] => {}
            [one] => c.error(item.span(), format!("host port {one} is published twice")),
            [first, rest @ ..] => c.error(
                item.span(),
                format!(
                    "host port {first} and {} more of this range are published twice",
                    rest.len()
                ),
            ),
        }
    }
    out
}

fn mounts(
    c: &mut Checker,
    list: &Option<Vec<Sp<raw::Volume>>>,
    graphics: bool,
) -> Vec<volumes::Mount> {
    let mut out: Vec<volumes::Mount> = Vec::new();
    let mut targets = HashSet::new();
    for item in list.iter().flatten() {
        let dir = c.dir_of(&item.span());
        let owner = c.loader.owner_at(&item.span());
        match volumes::parse(item.get(), &dir, owner.as_ref(), item.span()) {
            Ok(m) if gpus::is_gpu_path(&m.target, graphics) => c.diags.push(
                Diagnostic::new(
                    item.span(),
                    format!(
                        "mount target `{}` is where GPU device nodes or driver files go: GPU access comes from `gpus` alone",
                        m.target
                    ),
                )
                .help(gpus::GPU_HELP),
            ),
            Ok(m) if !targets.insert(m.target.clone()) => {
                c.error(
                    item.span(),
                    format!("mount target `{}` is used twice", m.target),
                );
            }
            Ok(m) => out.push(m),
            Err(message) => c.error(item.span(), message),
        }
    }
    out
}

/// Extra devices, none of them a GPU's and none twice.
fn devices(
    c: &mut Checker,
    list: &Option<Vec<Sp<String>>>,
    graphics: bool,
) -> Vec<devices::DeviceMapping> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in list.iter().flatten() {
        match devices::parse(item.get()) {
            Ok(d)
                if [&d.host, &d.container]
                    .iter()
                    .any(|p| gpus::is_gpu_path(&volumes::normalize(p), graphics)) =>
            {
                c.diags.push(
                    Diagnostic::new(
                        item.span(),
                        format!(
                            "device `{}` is a GPU device node: GPU access comes from `gpus` alone",
                            item.get()
                        ),
                    )
                    .help(gpus::GPU_HELP),
                )
            }
            Ok(d) if !seen.insert(d.container.clone()) => c.error(
                item.span(),
                format!("device path `{}` is used twice", d.container),
            ),
            Ok(d) => out.push(devices::DeviceMapping {
                span: item.span(),
                ..d
            }),
            Err(message) => c.error(item.span(), message),
        }
    }
    out
}

fn restart(value: &str) -> Result<RestartPolicy, String> {
    use crate::spec::RestartName;
    let (name, count) = value
        .split_once(':')
        .map_or((value, None), |(n, c)| (n, Some(c)));
    let named = match name {
        "no" => Some(RestartName::No),
        "always" => Some(RestartName::Always),
        "unless-stopped" => Some(RestartName::UnlessStopped),
        "on-failure" => Some(RestartName::OnFailure),
        _ => None,
    };
    match (named, count) {
        (Some(name), None) => Ok(RestartPolicy {
            name,
            max_retries: None,
        }),
        (Some(RestartName::OnFailure), Some(n)) => n
            .parse()
            .map(|n| RestartPolicy {
                name: RestartName::OnFailure,
                max_retries: Some(n),
            })
            .map_err(|_| format!("restart retry count `{n}` is not a number")),
        _ => Err(unknown(
            "restart policy",
            value,
            &[
                "no",
                "always",
                "unless-stopped",
                "on-failure",
                "on-failure:N",
            ],
        )),
    }
}

fn healthcheck(c: &mut Checker, h: &Sp<raw::Healthcheck>) -> Option<Healthcheck> {
    let h_span = h.span();
    let h = h.get();
    let Some(cmd) = &h.cmd else {
        c.error(h_span, "a healthcheck needs `cmd`");
        return None;
    };
    let test = match cmd.get() {
        OneOrMany::One(line) => vec!["CMD-SHELL".to_string(), line.clone()],
        OneOrMany::Many(items) => {
            let items: Vec<String> = items.iter().map(|s| s.get().clone()).collect();
            match items.first().map(String::as_str) {
                None => {
                    c.error(cmd.span(), "healthcheck `cmd` is empty");
                    return None;
                }
                Some("CMD" | "CMD-SHELL" | "NONE") => items,
                Some(_) => std::iter::once("CMD".to_string()).chain(items).collect(),
            }
        }
    };
    let duration = |c: &mut Checker, v: &Option<Sp<String>>, key: &str| {
        c.map(v, |s| {
            let ns = humantime::parse_duration(s)
                .ok()
                .and_then(|d| i64::try_from(d.as_nanos()).ok())
                .ok_or_else(|| {
                    format!(
                        "healthcheck {key} `{s}` is not a duration such as \"30s\" or \"1m30s\""
                    )
                })?;
            // The engine's floor (0 is its default).
            if ns != 0 && ns < 1_000_000 {
                return Err(format!(
                    "healthcheck {key} `{s}` is shorter than 1ms, the least Docker takes"
                ));
            }
            Ok(ns)
        })
    };
    Some(Healthcheck {
        test,
        interval_ns: duration(c, &h.interval, "interval"),
        timeout_ns: duration(c, &h.timeout, "timeout"),
        retries: h.retries.as_ref().map(|r| *r.get()),
        start_period_ns: duration(c, &h.start_period, "start_period"),
    })
}

fn recreate(c: &mut Checker, r: &Option<Sp<raw::Recreate>>) -> RecreatePolicy {
    let Some(r) = r else {
        return RecreatePolicy::default();
    };
    let r = r.get();
    RecreatePolicy {
        changed_files: r
            .changed_files
            .as_ref()
            .map(|c| *c.get())
            .unwrap_or_default(),
        ignore: c.each(&r.ignore, |p| {
            absolute_container_path(p, "recreate.ignore path")
        }),
    }
}
