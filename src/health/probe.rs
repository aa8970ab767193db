//! The in-container NVML check of `[gpus] probe`: what `nvidia-smi -L`'s
//! end says about the container's GPUs. Pure; the exec is `reconcile::probe`.

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// NVML works in the container.
    Healthy,
    /// The container lost its GPUs: restart it. Says why.
    Lost(String),
    /// Could not tell (a timeout, another failure): a warning, no restart.
    Unsure(String),
}

/// `code`: the exit code (`None`: it did not end within the timeout);
/// `output`: what it printed; `provided`: the GPU mode puts `nvidia-smi` in
/// the container (the `utility` capability), so a missing tool means the
/// injection is gone.
pub fn judge(code: Option<i64>, output: &str, provided: bool) -> Verdict {
    let last = output
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    match code {
        None => Verdict::Unsure("`nvidia-smi -L` did not answer within 5 s".into()),
        Some(0) => Verdict::Healthy,
        Some(_) if output.contains("Failed to initialize NVML") => {
            Verdict::Lost(format!("`nvidia-smi -L` in the container: {last}"))
        }
        Some(126 | 127) if provided => Verdict::Lost(format!(
            "`nvidia-smi` is gone from the container ({last})"
        )),
        Some(126 | 127) => Verdict::Unsure(
            "the container has no `nvidia-smi` (the `utility` capability is not asked for), so its GPUs cannot be probed".into(),
        ),
        Some(code) => Verdict::Unsure(format!(
            "`nvidia-smi -L` in the container exited {code}: {last}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvml_failing_in_the_container_means_its_gpus_are_lost() {
        assert_eq!(
            judge(Some(0), "GPU 0: NVIDIA H100 (UUID: GPU-1)\n", true),
            Verdict::Healthy
        );
        let v = judge(
            Some(255),
            "Failed to initialize NVML: Unknown Error\n",
            true,
        );
        assert_eq!(
            v,
            Verdict::Lost(
                "`nvidia-smi -L` in the container: Failed to initialize NVML: Unknown Error".into()
            )
        );
    }

    #[test]
    fn a_missing_tool_is_lost_only_where_the_mode_provides_it() {
        let missing =
            "OCI runtime exec failed: exec failed: executable file not found in $PATH: unknown";
        assert!(matches!(judge(Some(126), missing, true), Verdict::Lost(_)));
        assert!(matches!(
            judge(Some(127), missing, false),
            Verdict::Unsure(_)
        ));
    }

    #[test]
    fn a_timeout_or_another_failure_is_a_warning() {
        assert!(matches!(judge(None, "", true), Verdict::Unsure(m) if m.contains("5 s")));
        assert!(
            matches!(judge(Some(9), "No devices were found", true), Verdict::Unsure(m) if m.contains("No devices"))
        );
    }
}
