//! The kernel module against the user-space driver: a difference means the
//! driver was upgraded and the host not yet rebooted.

/// Where the running kernel module says its version, under `--dev-root`.
pub const VERSION_FILE: &str = "proc/driver/nvidia/version";

/// The version in `/proc/driver/nvidia/version`'s first line, e.g.
/// `NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 …`
/// or, for the open modules, `… Open Kernel Module for x86_64  550.54.15  Release Build …`.
pub fn module_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let (_, rest) = line.split_once("Kernel Module")?;
    rest.split_whitespace()
        .find(|t| t.starts_with(|c: char| c.is_ascii_digit()) && t.contains('.'))
        .map(str::to_string)
}

/// Why a reboot is pending, when the kernel module and NVML's (user-space)
/// driver differ; `None` when they agree or the module's version is unknown.
pub fn pending_reboot(nvml_driver: &str, kernel_module: Option<&str>) -> Option<String> {
    let module = kernel_module?;
    (module != nvml_driver).then(|| {
        format!(
            "a reboot is pending: the NVIDIA kernel module is {module} but the driver's libraries are {nvml_driver} (the driver was upgraded without a reboot); reboot the host, then run launch again"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_proprietary_and_the_open_modules_version_line() {
        let proprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n";
        assert_eq!(module_version(proprietary).as_deref(), Some("535.104.05"));
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:17:15 UTC 2024\n";
        assert_eq!(module_version(open).as_deref(), Some("550.54.15"));
        assert_eq!(module_version("garbage"), None);
        assert_eq!(module_version(""), None);
    }

    #[test]
    fn a_different_module_means_a_pending_reboot() {
        assert_eq!(pending_reboot("550.54.15", Some("550.54.15")), None);
        assert_eq!(pending_reboot("550.54.15", None), None);
        let why = pending_reboot("560.35.03", Some("550.54.15")).expect("pending");
        assert!(why.contains("550.54.15") && why.contains("560.35.03") && why.contains("reboot"));
    }
}
