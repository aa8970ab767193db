//! `--format systemd`: the cron line as units. `launch-<name>.service` runs
//! `launch up PROFILE` once; `launch-<name>.timer` starts it every minute,
//! and at boot for a minute missed while the machine was off.

use super::{Input, Output};

/// An argument of `ExecStart=`: `%` is a specifier and `$` a variable, so
/// both are doubled, and the whole is quoted when it holds a space, quote
/// or backslash.
fn exec_arg(arg: &str) -> String {
    let arg = arg.replace('%', "%%").replace('$', "$$");
    if arg.contains([' ', '"', '\\', '\'', '\t']) {
        format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        arg
    }
}

pub fn render(input: &Input<'_>) -> Output {
    let name = &input.spec.name;
    let profile = input.profile.path.display().to_string();
    let bin = input.launch_bin.display().to_string();
    let unit = format!("launch-{name}");
    let description = format!("launch {name}: {}", profile).replace('%', "%%");
    let service = format!(
        "[Unit]\n\
         Description={description}\n\
         Wants=network-online.target\n\
         After=network-online.target docker.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={} up {}\n",
        exec_arg(&bin),
        exec_arg(&profile),
    );
    let timer = format!(
        "[Unit]\n\
         Description=Run {unit}.service every minute\n\
         \n\
         [Timer]\n\
         OnCalendar=*-*-* *:*:00\n\
         Persistent=true\n\
         Unit={unit}.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n"
    );
    // A newline would end the unit line and start another of the value's
    // own making: such a value cannot be written.
    let invalid = [("the profile's path", &profile), ("launch's path", &bin)]
        .into_iter()
        .filter(|(_, v)| v.contains(['\n', '\r']))
        .map(|(what, v)| {
            format!("{what} {v:?} holds a line break, which a systemd unit line cannot")
        })
        .collect();
    Output {
        files: vec![
            (format!("{unit}.service"), service),
            (format!("{unit}.timer"), timer),
        ],
        dropped: Vec::new(),
        invalid,
    }
}
