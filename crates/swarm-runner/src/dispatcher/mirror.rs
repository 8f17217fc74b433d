//! The file mirror: every task's `status.json` and `completion.json`, and the run's `status.json`,
//! as plain files under `plans/agent-shared/<RUN_ID>/` (`[feedback] mirror_dir`), so agents and
//! people can read how other tasks ended without the store. Every write is atomic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use swarm_core::config::FeedbackConfig;
use swarm_core::report::{RunReport, TaskReport};

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot mirror to `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A directory on the way to the mirror is a symbolic link (an agent could point it anywhere).
    #[error("cannot mirror to `{path}`: it is a symbolic link, which the mirror never follows")]
    Link { path: PathBuf },
    /// A run or task id that would escape the mirror directory.
    #[error("cannot mirror `{id}`: not a plain file name")]
    BadId { id: String },
}

/// Where the mirror writes; `root: None` when `[feedback] mirror = false`.
#[derive(Debug, Clone)]
pub struct Mirror {
    root: Option<PathBuf>,
    /// The part of `root` swarm trusts: the project root for a relative `mirror_dir` (agents
    /// may edit everything below it), the mirror directory itself for an absolute one.
    trusted: PathBuf,
}

impl Mirror {
    /// `mirror_dir` resolves against `project_root` (an absolute `mirror_dir` stays as it is).
    pub fn new(project_root: &Path, config: &FeedbackConfig) -> Mirror {
        let root = project_root.join(config.mirror_dir());
        let trusted =
            if config.mirror_dir().is_absolute() { root.clone() } else { project_root.to_path_buf() };
        Mirror { root: config.mirror().then_some(root), trusted }
    }

    /// A mirror that writes nothing.
    #[cfg(test)]
    pub fn off() -> Mirror {
        Mirror { root: None, trusted: PathBuf::new() }
    }

    /// The mirror directory, when mirroring is on.
    #[cfg(test)]
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `<root>/<RUN_ID>/<TASK_ID>`, when mirroring is on.
    pub fn task_dir(&self, run_id: &str, task_id: &str) -> Result<Option<PathBuf>, MirrorError> {
        plain(task_id)?;
        Ok(self.run_dir(run_id)?.map(|d| d.join(task_id)))
    }

    /// Writes `<root>/<RUN_ID>/<TASK_ID>/status.json`: the task's report as JSON.
    pub fn task_status(&self, run_id: &str, task: &TaskReport) -> Result<(), MirrorError> {
        let Some(dir) = self.task_dir(run_id, &task.id)? else { return Ok(()) };
        self.make_dirs(&dir)?;
        write_json(&dir.join("status.json"), task)
    }

    /// Copies the agent's completion.json, byte for byte, to `<root>/<RUN_ID>/<TASK_ID>/completion.json`.
    pub fn completion(&self, run_id: &str, task_id: &str, bytes: &[u8]) -> Result<(), MirrorError> {
        let Some(dir) = self.task_dir(run_id, task_id)? else { return Ok(()) };
        self.make_dirs(&dir)?;
        let path = dir.join("completion.json");
        write_atomic(&path, bytes).map_err(|source| MirrorError::Write { path, source })
    }

    /// Writes `<root>/<RUN_ID>/status.json`: the run report as JSON.
    pub fn run_status(&self, run_id: &str, report: &RunReport) -> Result<(), MirrorError> {
        let Some(dir) = self.run_dir(run_id)? else { return Ok(()) };
        self.make_dirs(&dir)?;
        write_json(&dir.join("status.json"), report)
    }

    /// Creates `dir` below the trusted part one directory at a time, refusing any component an
    /// agent turned into a symbolic link (or a file): the mirror never writes outside itself.
    fn make_dirs(&self, dir: &Path) -> Result<(), MirrorError> {
        let Ok(rest) = dir.strip_prefix(&self.trusted) else { return Ok(()) };
        std::fs::create_dir_all(&self.trusted)
            .map_err(|source| MirrorError::Write { path: self.trusted.clone(), source })?;
        let mut at = self.trusted.clone();
        for part in rest.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => return Err(MirrorError::Link { path: at }),
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    let source = std::io::Error::other("not a directory");
                    return Err(MirrorError::Write { path: at, source });
                }
                Err(_) => match std::fs::create_dir(&at) {
                    Ok(()) => {}
                    // Made by someone else meanwhile: look again next round (or fail there).
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                            return Err(MirrorError::Link { path: at });
                        }
                    }
                    Err(source) => return Err(MirrorError::Write { path: at, source }),
                },
            }
            if Some(&at) == self.root.as_ref() {
                ignore_in_git(&at);
            }
        }
        Ok(())
    }

    fn run_dir(&self, run_id: &str) -> Result<Option<PathBuf>, MirrorError> {
        plain(run_id)?;
        Ok(self.root.as_ref().map(|r| r.join(run_id)))
    }
}

/// A `.gitignore` of `*` in the mirror's root, made once: the mirror is swarm's output, and in
/// the user's checkout it would make the next run call the checkout dirty. Never written
/// through a link (`create_new` refuses an existing name).
fn ignore_in_git(root: &Path) {
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).open(root.join(".gitignore")).and_then(
        |mut f| std::io::Write::write_all(&mut f, b"# swarm's mirror of its runs (plans/agent-shared)\n*\n"),
    );
}

/// Ids become directory names: refuse anything that is not one plain path component.
fn plain(id: &str) -> Result<(), MirrorError> {
    let ok = !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(MirrorError::BadId { id: id.to_string() })
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), MirrorError> {
    let mut json = serde_json::to_vec_pretty(value).expect("reports serialize");
    json.push(b'\n');
    write_atomic(path, &json).map_err(|source| MirrorError::Write { path: path.to_path_buf(), source })
}

/// Writes `bytes` to `path` so readers see the old content or the new, never a part: a temporary
/// file beside it, then a rename. Creates the parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per process and call, so concurrent writers never share a temporary file.
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    // A new file, never an existing one (or a link someone planted under that name); the
    // rename then replaces the entry at `path`, whatever it was, without following it.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use swarm_core::report::{Counts, Usage};
    use swarm_core::state::{RunState, TaskState};

    fn task(id: &str) -> TaskReport {
        TaskReport {
            id: id.into(),
            title: "T".into(),
            agent: "exec".into(),
            depends: vec![],
            state: TaskState::Succeeded,
            reason: None,
            detail: None,
            attempts: vec![],
            branch: None,
            commit: None,
            start_commit: None,
            merge: None,
            conflict_paths: vec![],
            files_changed: vec![],
            handoff_from: vec![],
        }
    }

    fn run_report(tasks: Vec<TaskReport>) -> RunReport {
        RunReport {
            run_id: "r1".into(),
            plan: "p".into(),
            namespace: "ns".into(),
            state: RunState::Succeeded,
            base_commit: None,
            integration_branch: None,
            started_at: Utc::now(),
            ended_at: Some(Utc::now()),
            counts: Counts::of(tasks.iter().map(|t| &t.state)),
            totals: Usage::default(),
            by_model: vec![],
            by_layer: vec![],
            tasks,
            store_error: None,
            state_changes: vec![],
        }
    }

    fn tempdir() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "swarm-mirror-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn writes_task_status_completion_and_run_status_under_the_default_dir() {
        let root = tempdir();
        let m = Mirror::new(&root, &FeedbackConfig::default());
        let base = root.join("plans/agent-shared");
        assert_eq!(m.root(), Some(base.as_path()));
        let t = task("build");
        m.task_status("r1", &t).unwrap();
        m.completion("r1", "build", b"{\"raw\": true}").unwrap();
        m.run_status("r1", &run_report(vec![t.clone()])).unwrap();
        let status: TaskReport =
            serde_json::from_slice(&std::fs::read(base.join("r1/build/status.json")).unwrap()).unwrap();
        assert_eq!(status, t);
        assert_eq!(std::fs::read(base.join("r1/build/completion.json")).unwrap(), b"{\"raw\": true}");
        let run: RunReport =
            serde_json::from_slice(&std::fs::read(base.join("r1/status.json")).unwrap()).unwrap();
        assert_eq!(run.tasks, vec![t.clone()]);
        // An update replaces the file and leaves no temporary files behind.
        let mut failed = t;
        failed.state = TaskState::Failed;
        m.task_status("r1", &failed).unwrap();
        let status: TaskReport =
            serde_json::from_slice(&std::fs::read(base.join("r1/build/status.json")).unwrap()).unwrap();
        assert_eq!(status.state, TaskState::Failed);
        let names: Vec<String> =
            files(&base).into_iter().map(|f| f[base.display().to_string().len()..].into()).collect();
        assert_eq!(
            names,
            ["/.gitignore", "/r1/build/completion.json", "/r1/build/status.json", "/r1/status.json"],
            "the mirror keeps itself out of git"
        );
    }

    #[test]
    fn the_directory_is_configurable_and_the_mirror_can_be_off() {
        let root = tempdir();
        let cfg = FeedbackConfig { mirror: None, mirror_dir: Some("out/shared".into()), footer: None };
        Mirror::new(&root, &cfg).task_status("r1", &task("a")).unwrap();
        assert!(root.join("out/shared/r1/a/status.json").is_file());
        let off = Mirror::new(&root, &FeedbackConfig { mirror: Some(false), mirror_dir: None, footer: None });
        assert_eq!(off.root(), None);
        off.task_status("r1", &task("a")).unwrap();
        off.completion("r1", "a", b"{}").unwrap();
        off.run_status("r1", &run_report(vec![])).unwrap();
        assert!(!root.join("plans").exists());
        assert_eq!(Mirror::off().task_dir("r1", "a").unwrap(), None);
    }

    #[test]
    fn a_link_an_agent_planted_in_the_mirror_is_never_followed() {
        let root = tempdir();
        let outside = tempdir();
        let m = Mirror::new(&root, &FeedbackConfig::default());
        std::fs::create_dir_all(root.join("plans/agent-shared/r1")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("plans/agent-shared/r1/a")).unwrap();
        let err = m.task_status("r1", &task("a")).unwrap_err();
        assert!(matches!(err, MirrorError::Link { .. }), "{err:?}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // Higher up too: `plans` itself replaced by a link.
        let root2 = tempdir();
        std::os::unix::fs::symlink(&outside, root2.join("plans")).unwrap();
        let m2 = Mirror::new(&root2, &FeedbackConfig::default());
        assert!(matches!(m2.completion("r1", "a", b"{}"), Err(MirrorError::Link { .. })));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing written through the links");
        // A link at the file's own name is replaced, not written through.
        let m = Mirror::new(&root, &FeedbackConfig::default());
        std::fs::create_dir_all(root.join("plans/agent-shared/r1/b")).unwrap();
        let victim = outside.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, root.join("plans/agent-shared/r1/b/status.json")).unwrap();
        m.task_status("r1", &task("b")).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(root.join("plans/agent-shared/r1/b/status.json"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn errors_are_returned_not_swallowed() {
        let root = tempdir();
        // The mirror directory is a file: nothing can be created below it.
        std::fs::write(root.join("blocker"), "").unwrap();
        let m = Mirror::new(
            &root,
            &FeedbackConfig { mirror: None, mirror_dir: Some("blocker".into()), footer: None },
        );
        let err = m.task_status("r1", &task("a")).unwrap_err();
        assert!(matches!(err, MirrorError::Write { .. }), "{err:?}");
        assert!(err.to_string().ends_with("/blocker`"), "names the path that is in the way: {err}");
        for (run, id) in [("..", "a"), ("r1", "../x"), ("r1", ""), ("a/b", "t")] {
            let err = Mirror::new(&root, &FeedbackConfig::default()).completion(run, id, b"{}").unwrap_err();
            assert!(matches!(err, MirrorError::BadId { .. }), "{run} {id}: {err:?}");
        }
    }
}
