//! `[gpus] probe = true`: after `up` left a running GPU container as it
//! was, run `nvidia-smi -L` in it (5 s), and restart it when NVML fails
//! there (docs/architecture.md, GPU health). The judgement is
//! `health::probe`.
//!
//! The command runs as the container's own user, never as root in a
//! container that does not run as root, with launch's argv (the tool where
//! the GPU mode puts it) and a fixed PATH: the container's owner may control
//! the image's PATH and any folder a bind mounts (docs/architecture.md, the
//! owner boundary).

use std::time::Duration;

use futures_util::StreamExt;

use crate::engine::{Engine, ExecOutput, ExecRequest};
use crate::error::Result;
use crate::health::probe::{Verdict, judge};
use crate::profile::Profile;
use crate::spec::InjectionMode;

use super::{Action, Outcome};

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Probes the container of an outcome that changed nothing (so it was
/// running when the run began); a lost container is restarted and the
/// outcome says `restart`. Anything else is returned as it came.
pub async fn after_up<E: Engine>(
    engine: &E,
    profile: &Profile,
    outcome: Outcome,
) -> Result<Outcome> {
    let probed = profile.gpus.as_ref().filter(|g| g.probe);
    let (Some(gpus), Action::Nothing, Some(id)) = (probed, &outcome.action, outcome.id.clone())
    else {
        return Ok(outcome);
    };
    let provided = gpus
        .capabilities
        .iter()
        .any(|c| c == "utility" || c == "all");
    let mode = engine
        .find(&id)
        .await?
        .and_then(|c| c.spec())
        .and_then(|s| s.gpu)
        .map(|g| g.mode);
    let tool = match mode {
        // Launch's own read-only bind of the host's binary.
        Some(InjectionMode::Devices) => "/usr/local/nvidia/bin/nvidia-smi",
        // Where the toolkit (and a CDI spec) mounts it.
        _ => "/usr/bin/nvidia-smi",
    };
    let (code, output) = match tokio::time::timeout(TIMEOUT, run(engine, &id, tool)).await {
        Ok(ran) => ran?,
        Err(_) => (None, String::new()),
    };
    match judge(code, &output, provided) {
        Verdict::Healthy => Ok(outcome),
        Verdict::Unsure(why) => {
            tracing::warn!("{}: probe: {why}", profile.name);
            Ok(outcome)
        }
        Verdict::Lost(why) => {
            engine.stop(&id, profile.stop_timeout).await?;
            engine.start(&id).await?;
            Ok(Outcome {
                action: Action::Restart { why },
                ..outcome
            })
        }
    }
}

/// The PATH the probe runs with, whatever the image or profile set.
pub const PATH: &str = "PATH=/usr/local/nvidia/bin:/usr/bin:/bin";

/// `TOOL -L` in the container, as its own user: its exit code and output.
async fn run<E: Engine>(engine: &E, id: &str, tool: &str) -> Result<(Option<i64>, String)> {
    let request = ExecRequest {
        cmd: vec![tool.into(), "-L".into()],
        tty: false,
        stdin: false,
        user: None,
        env: vec![PATH.into()],
    };
    let mut session = engine.exec(id, &request).await?;
    let mut output = Vec::new();
    while let Some(chunk) = session.output.next().await {
        match chunk? {
            ExecOutput::Stdout(b) | ExecOutput::Stderr(b) => output.extend(b),
        }
    }
    let output = String::from_utf8_lossy(&output).into_owned();
    // The engine may take a moment to record the exit code.
    for _ in 0..40 {
        if let Some(code) = engine.exec_exit_code(&session.id).await? {
            return Ok((Some(code), output));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((None, output))
}
