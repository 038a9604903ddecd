//! Containers, read from the runtimes' state on disk, never through their
//! sockets: the agent must not be able to start, stop or change anything.
//!
//! - Docker: `/var/lib/docker/containers/<id>/config.v2.json`, the record
//!   dockerd keeps of each container (name, image, state).
//! - Podman (rootful): `/var/lib/containers/storage/overlay-containers/
//!   containers.json`, the storage layer's list. It does not say whether a
//!   container runs, so its state is `unknown`.
//!
//! A runtime whose state directory does not exist is not installed; with
//! none installed the section is `None`.

use fathom_shared::wire::Container;
use serde::Deserialize;

use super::{list_dir, HostRoot, ListError, ReadError};

pub const DOCKER: &str = "/var/lib/docker/containers";
pub const PODMAN: &str = "/var/lib/containers/storage/overlay-containers/containers.json";

#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    List(#[from] ListError),
    #[error("{path} is not a container record the agent understands")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

pub fn probe(root: &HostRoot) -> Result<Option<Vec<Container>>, ContainersError> {
    let docker = docker(root)?;
    let podman = podman(root)?;
    if docker.is_none() && podman.is_none() {
        return Ok(None);
    }
    let mut all: Vec<Container> = docker.into_iter().chain(podman).flatten().collect();
    all.sort_by(|a, b| (&a.runtime, &a.name).cmp(&(&b.runtime, &b.name)));
    Ok(Some(all))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerRecord {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    created: Option<String>,
    config: DockerConfig,
    state: DockerState,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerConfig {
    image: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerState {
    #[serde(default)]
    running: bool,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    restarting: bool,
    #[serde(default)]
    dead: bool,
    #[serde(default)]
    started_at: Option<String>,
}

fn docker(root: &HostRoot) -> Result<Option<Vec<Container>>, ContainersError> {
    let Some(entries) = list_dir(&root.path(DOCKER))? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for entry in entries {
        let file = format!(
            "{DOCKER}/{}/config.v2.json",
            entry.file_name().to_string_lossy()
        );
        let bytes = match root.read(&file) {
            Ok(bytes) => bytes,
            // A container being created or removed.
            Err(ReadError::Missing { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let record: DockerRecord =
            serde_json::from_slice(&bytes).map_err(|source| ContainersError::Json {
                path: root.path(&file).display().to_string(),
                source,
            })?;
        let s = &record.state;
        let never_started = s
            .started_at
            .as_deref()
            .is_none_or(|t| t.starts_with("0001-"));
        let state = match () {
            _ if s.dead => "dead",
            _ if s.paused => "paused",
            _ if s.restarting => "restarting",
            _ if s.running => "running",
            _ if never_started => "created",
            _ => "exited",
        };
        out.push(Container {
            runtime: "docker".into(),
            id: record.id,
            name: record.name.trim_start_matches('/').to_owned(),
            image: record.config.image,
            image_id: record.image,
            state: state.into(),
            created_at_ms: record.created.as_deref().and_then(timestamp_ms),
        });
    }
    Ok(Some(out))
}

#[derive(Deserialize)]
struct PodmanRecord {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    image: String,
    #[serde(default)]
    created: Option<String>,
    /// JSON text with the image's name, written by libpod.
    #[serde(default)]
    metadata: Option<String>,
}

#[derive(Deserialize)]
struct PodmanMetadata {
    #[serde(rename = "image-name", default)]
    image_name: Option<String>,
}

fn podman(root: &HostRoot) -> Result<Option<Vec<Container>>, ContainersError> {
    let bytes = match root.read(PODMAN) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let records: Vec<PodmanRecord> =
        serde_json::from_slice(&bytes).map_err(|source| ContainersError::Json {
            path: root.path(PODMAN).display().to_string(),
            source,
        })?;
    Ok(Some(
        records
            .into_iter()
            .map(|r| {
                let image_name = r
                    .metadata
                    .as_deref()
                    .and_then(|m| serde_json::from_str::<PodmanMetadata>(m).ok())
                    .and_then(|m| m.image_name);
                Container {
                    runtime: "podman".into(),
                    name: r.names.first().cloned().unwrap_or_else(|| r.id.clone()),
                    id: r.id,
                    image: image_name.unwrap_or_else(|| r.image.clone()),
                    image_id: Some(format!("sha256:{}", r.image)),
                    state: "unknown".into(),
                    created_at_ms: r.created.as_deref().and_then(timestamp_ms),
                }
            })
            .collect(),
    ))
}

/// RFC 3339 with nanoseconds, as Go writes it.
fn timestamp_ms(text: &str) -> Option<i64> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(ts.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/containers");

    #[test]
    fn lists_docker_and_podman_containers_from_their_state_files() {
        let containers = probe(&HostRoot::new(FIXTURE)).unwrap().unwrap();
        let got: Vec<(&str, &str, &str, &str)> = containers
            .iter()
            .map(|c| {
                (
                    c.runtime.as_str(),
                    c.name.as_str(),
                    c.image.as_str(),
                    c.state.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("docker", "db", "postgres:16", "exited"),
                ("docker", "web", "nginx:1.25", "running"),
                ("podman", "cache", "docker.io/library/redis:7", "unknown"),
            ]
        );
        let web = &containers[1];
        assert_eq!(web.id.len(), 64);
        assert_eq!(web.created_at_ms, Some(1_717_236_000_123));
        assert!(web.image_id.as_deref().unwrap().starts_with("sha256:"));
    }

    #[test]
    fn no_runtime_is_no_section_and_a_bad_record_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(probe(&HostRoot::new(dir.path())).unwrap().is_none());
        let c = dir.path().join("var/lib/docker/containers/abc");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("config.v2.json"), b"{\"ID\": 3}").unwrap();
        let err = probe(&HostRoot::new(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("containers/abc/config.v2.json is not a container record"),
            "{err}"
        );
    }
}
