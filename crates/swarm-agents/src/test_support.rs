//! Test helpers shared by the adapters' launch tests: a project with a fake agent binary, a
//! provider, an attempt spec.

use crate::adapter::{AttemptSpec, ProviderSpec};
use std::path::PathBuf;

/// A project dir of its own (tests run in parallel) with an executable fake `binary` in
/// `.tools/node_modules/.bin`.
pub fn project(binary: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("swarm-agents-{binary}-{}-{n}", std::process::id()));
    let bin = dir.join(".tools/node_modules/.bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join(binary);
    std::fs::write(&fake, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub fn provider(kind: &str) -> ProviderSpec {
    ProviderSpec {
        name: "local".into(),
        kind: kind.into(),
        base_url: Some("http://127.0.0.1:9/v1".into()),
        model: "ok".into(),
        api_key_env: "MY_KEY".into(),
    }
}

/// What the model gateway gives an agent as its provider (swarm-runner's
/// `ModelRoute::gateway_provider`): `swarm/auto` at the gateway's `/v1`, its token in
/// `SWARM_GATEWAY_TOKEN`.
pub fn gateway() -> ProviderSpec {
    ProviderSpec {
        name: "swarm".into(),
        kind: "openai-compatible".into(),
        base_url: Some("http://127.0.0.1:4321/v1".into()),
        model: "auto".into(),
        api_key_env: "SWARM_GATEWAY_TOKEN".into(),
    }
}

pub fn spec<'a>(
    dir: &std::path::Path,
    task: &'a swarm_core::plan::Task,
    prompt: &'a str,
    provider: Option<ProviderSpec>,
) -> AttemptSpec<'a> {
    AttemptSpec {
        run_id: "r",
        task,
        attempt: 1,
        prompt,
        model: provider.as_ref().map(|_| "local/ok").or(Some("plain-model")),
        workdir: dir.to_path_buf(),
        provider,
        attempt_dir: dir.join("attempt"),
        project_root: dir.to_path_buf(),
        completion_file: Some(dir.join("completions/t.1.json")),
    }
}

pub fn env<'l>(l: &'l crate::adapter::Launch, k: &str) -> Option<&'l str> {
    l.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}
