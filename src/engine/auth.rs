//! Registry credentials as the docker CLI keeps them: `~/.docker/config.json`
//! (or `$DOCKER_CONFIG/config.json`), its `auths`, `credHelpers` and
//! `credsStore`, the helpers being `docker-credential-<name>` programs.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// The registry an image comes from, as config.json keys it.
pub fn registry_of(image: &str) -> String {
    crate::image_ref::ImageRef::parse(image)
        .ok()
        .and_then(|r| r.registry().map(str::to_string))
        .unwrap_or_else(|| "https://index.docker.io/v1/".to_string())
}

fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    }
}

/// Credentials for pulling `image`, if the user has any; none is not an error
/// (public images need none), but a broken config is logged.
pub fn credentials_for(image: &str) -> Option<DockerCredentials> {
    let path = config_path()?;
    let text = std::fs::read_to_string(&path).ok()?;
    let config: Config = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", path.display());
            return None;
        }
    };
    let registry = registry_of(image);
    if let Some(helper) = config.cred_helpers.get(&registry) {
        return from_helper(helper, &registry);
    }
    let entry = ["", "https://", "http://"]
        .iter()
        .find_map(|scheme| config.auths.get(&format!("{scheme}{registry}")));
    if let Some(entry) = entry {
        let (username, password) = match &entry.auth {
            Some(auth) => decode(auth)?,
            None => (
                entry.username.clone()?,
                entry.password.clone().unwrap_or_default(),
            ),
        };
        return Some(DockerCredentials {
            username: Some(username),
            password: Some(password),
            identitytoken: entry.identitytoken.clone(),
            serveraddress: Some(registry),
            ..Default::default()
        });
    }
    from_helper(config.creds_store.as_deref()?, &registry)
}

fn decode(auth: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Asks `docker-credential-<helper> get`, as the docker CLI does.
fn from_helper(helper: &str, registry: &str) -> Option<DockerCredentials> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| tracing::warn!("credential helper {program}: {e}"))
        .ok()?;
    child.stdin.take()?.write_all(registry.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        tracing::debug!("{program} has no credentials for {registry}");
        return None;
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).ok()?;
    // A helper answers "<token>" as the user name for identity tokens.
    Some(if answer.username == "<token>" {
        DockerCredentials {
            identitytoken: Some(answer.secret),
            serveraddress: Some(registry.into()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(answer.username),
            password: Some(answer.secret),
            serveraddress: Some(registry.into()),
            ..Default::default()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_the_first_component_when_it_is_a_host() {
        assert_eq!(registry_of("127.0.0.1:5000/demo:1"), "127.0.0.1:5000");
        assert_eq!(
            registry_of("thub.autohome.com.cn/dm_ai/cs_images:ddm"),
            "thub.autohome.com.cn"
        );
        assert_eq!(
            registry_of("nvidia/cuda:12.4.1"),
            "https://index.docker.io/v1/"
        );
        assert_eq!(registry_of("busybox"), "https://index.docker.io/v1/");
    }

    #[test]
    fn auth_field_is_base64_user_colon_password() {
        assert_eq!(decode("dXNlcjpwYXNz"), Some(("user".into(), "pass".into())));
    }
}
