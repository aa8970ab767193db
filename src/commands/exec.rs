//! `launch exec`: a command, or a shell, in a running container. Its exit
//! code becomes launch's.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{connect, container_target, existing_container, runtime, store};
use crate::cli::Global;
use launch::engine::{Engine, ExecOutput, ExecRequest, State};
use launch::error::{Error, Result};
use launch::exit::Exit;

pub fn run(target: &str, command: &[String], global: &Global) -> Result<Exit> {
    let (name, acting) = container_target(target, global)?;
    let store = store(global);
    // A TTY only when both ends are a terminal: output piped to a file
    // should not carry terminal line endings and escapes.
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let code = runtime()?.block_on(async {
        let docker = connect(global).await?;
        let engine = launch::engine::Gate::new(&docker, &store, acting);
        let container = existing_container(&engine, &name).await?;
        if container.state != State::Running {
            return Err(Error::Io(format!(
                "{name} is {}, not running; `launch up PROFILE` starts it \
                 (exec never starts a container)",
                container.state.as_str()
            )));
        }
        let cmd = if command.is_empty() {
            vec![default_shell(&engine, &container.id).await?]
        } else {
            command.to_vec()
        };
        let raw = if tty { Some(RawMode::enter()?) } else { None };
        let code = session(&engine, &container.id, cmd, tty).await;
        drop(raw);
        code
    })?;
    if code == 0 {
        return Ok(Exit::Ok);
    }
    // The command's own code, which `Exit` has no variant for: everything
    // is written and the terminal restored by now.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(
        i32::try_from(code)
            .ok()
            .filter(|c| (1..=255).contains(c))
            .unwrap_or(1),
    );
}

/// `bash` where it can run, else `sh`: trying bash first, quietly, keeps
/// the engine's "executable file not found" out of the user's terminal.
async fn default_shell<E: Engine>(engine: &E, id: &str) -> Result<String> {
    let probe = ExecRequest {
        cmd: ["bash", "-c", "exit 0"].map(String::from).to_vec(),
        tty: false,
        stdin: false,
        user: None,
        env: Vec::new(),
    };
    let mut session = engine.exec(id, &probe).await?;
    while session.output.next().await.is_some() {}
    let code = exit_code(engine, &session.id).await?;
    Ok(if matches!(code, 126 | 127) {
        "sh"
    } else {
        "bash"
    }
    .to_string())
}

/// Runs `cmd` attached: stdin forwarded, output written as it comes, the
/// window size followed on a TTY; returns the command's exit code.
async fn session<E: Engine>(engine: &E, id: &str, cmd: Vec<String>, tty: bool) -> Result<i64> {
    let request = ExecRequest {
        cmd,
        tty,
        stdin: true,
        user: None,
        env: Vec::new(),
    };
    let mut s = engine.exec(id, &request).await?;
    let mut winch = None;
    if tty {
        resize(engine, &s.id).await;
        winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    }
    // Reading stdin blocks: a thread of its own, which the process's exit ends.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = stdin.read(&mut buf) {
            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut input_open = true;
    let written = |r: std::io::Result<()>| {
        r.map_err(|e| Error::Io(format!("cannot write the command's output: {e}")))
    };
    loop {
        tokio::select! {
            item = s.output.next() => match item {
                None => break,
                Some(Ok(ExecOutput::Stdout(bytes))) => {
                    let mut out = std::io::stdout().lock();
                    written(out.write_all(&bytes).and_then(|()| out.flush()))?;
                }
                Some(Ok(ExecOutput::Stderr(bytes))) => {
                    let mut err = std::io::stderr().lock();
                    written(err.write_all(&bytes).and_then(|()| err.flush()))?;
                }
                Some(Err(e)) => return Err(e.into()),
            },
            chunk = rx.recv(), if input_open => match chunk {
                Some(bytes) => {
                    // The command closed its input: stop forwarding.
                    if s.input.write_all(&bytes).await.is_err() || s.input.flush().await.is_err() {
                        input_open = false;
                    }
                }
                None => {
                    // End of input reaches the command as end of its stdin.
                    let _ = s.input.shutdown().await;
                    input_open = false;
                }
            },
            Some(()) = async {
                match winch.as_mut() {
                    Some(w) => w.recv().await,
                    None => std::future::pending().await,
                }
            } => resize(engine, &s.id).await,
        }
    }
    exit_code(engine, &s.id).await
}

/// The exit code of a finished exec; the engine may take a moment to record it.
async fn exit_code<E: Engine>(engine: &E, exec: &str) -> Result<i64> {
    for _ in 0..100 {
        if let Some(code) = engine.exec_exit_code(exec).await? {
            return Ok(code);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::Io(
        "the command's output ended, but the engine never reported its exit code".into(),
    ))
}

/// Gives the exec the terminal's size; a failure only costs the layout.
async fn resize<E: Engine>(engine: &E, exec: &str) {
    let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdout()) else {
        return;
    };
    if size.ws_col > 0
        && size.ws_row > 0
        && let Err(e) = engine.exec_resize(exec, size.ws_col, size.ws_row).await
    {
        tracing::debug!("{e}");
    }
}

/// The terminal in raw mode (keys go through as typed, the container's TTY
/// does the echo and line editing) until dropped.
struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enter() -> Result<RawMode> {
        let stdin = std::io::stdin();
        let failed =
            |e: rustix::io::Errno| Error::Io(format!("cannot set the terminal to raw mode: {e}"));
        let saved = rustix::termios::tcgetattr(&stdin).map_err(failed)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
            .map_err(failed)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
