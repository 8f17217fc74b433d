//! Helpers for the integration tests: a throw-away project directory, the real `swarm` binary
//! run in it (waited for with a deadline, or spawned in the background), polling without fixed
//! sleeps, and process liveness checks that treat zombies as dead.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const SWARM: &str = env!("CARGO_BIN_EXE_swarm");
pub const FAKE: &str = env!("CARGO_BIN_EXE_fake-agent");

/// Longest any single `swarm` invocation may take before the test gives up on it.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// The default `swarm.toml` of a test project: fast retries and a short grace period.
pub const FAST_CONFIG: &str = "[run]\nretry_backoff = \"100ms\"\ngrace = \"1s\"\n";

pub use swarm_testkit::{pid_alive, wait_for, wait_until};

mod process;
mod report;
mod workers;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use report::*;
#[allow(unused_imports)]
pub use workers::*;

/// Live processes whose environment says they belong to `run_id`.
pub fn processes_of(run_id: &str) -> Vec<String> {
    let needle = format!("SWARM_RUN_ID={run_id}");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        if env.split(|b| *b == 0).any(|e| e == needle.as_bytes()) && pid_alive(pid) {
            out.push(describe(pid));
        }
    }
    out
}

/// Waits (up to 5 s: a process SIGKILLed as its run ended may take a moment to go) until no
/// process of run `run_id` is left; the failure names each one left, its command and state.
pub fn assert_no_process_of(run_id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_of(run_id);
        if left.is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "processes of run {run_id} outlived it: {left:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `pid`, its command line and its `/proc/PID/stat` line, to say what was left.
fn describe(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    format!("{pid}: {} [{}]", cmdline.trim(), stat.trim())
}

/// Waits (up to 5 s) until `pid` is gone; a SIGKILLed process may take a moment to die.
pub fn assert_gone(pid: u32, what: &str) {
    wait_until(Duration::from_secs(5), &format!("{what} (pid {pid}) is gone"), || !pid_alive(pid));
}

pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("send signal");
}

/// A throw-away project: a temp directory with a `swarm.toml`, where `swarm` runs.
pub struct Project {
    dir: tempfile::TempDir,
    /// With `SWARM_TEST_STORE=redis`, every project gets its own redis-server and every `swarm`
    /// command runs with `SWARM_STORE` pointing at it: the whole suite then runs on Redis.
    redis: Option<swarm_testkit::RedisServer>,
}

/// Whether this test process runs the suite against Redis instead of the embedded store.
pub fn on_redis() -> bool {
    std::env::var("SWARM_TEST_STORE").is_ok_and(|s| s == "redis")
}

impl Project {
    /// A plain directory (not inside any git repository).
    pub fn new() -> Project {
        let dir = tempfile::Builder::new().prefix("swarm-it-").tempdir().expect("temp dir");
        if let Some(git) = dir.path().ancestors().skip(1).find(|d| d.join(".git").exists()) {
            panic!(
                "the temp dir {} lies inside the git repository {}; set TMPDIR elsewhere",
                dir.path().display(),
                git.display()
            );
        }
        let redis = on_redis().then(swarm_testkit::RedisServer::start);
        let p = Project { dir, redis };
        p.write("swarm.toml", FAST_CONFIG);
        p
    }

    /// A plain directory whose commands all use a redis-server of its own, whatever store the
    /// suite runs on.
    pub fn on_own_redis() -> Project {
        let mut p = Project::new();
        if p.redis.is_none() {
            p.redis = Some(swarm_testkit::RedisServer::start());
        }
        p
    }

    /// Like [`Project::on_own_redis`], on `server`.
    pub fn on_redis_server(server: swarm_testkit::RedisServer) -> Project {
        let mut p = Project::new();
        p.redis = Some(server);
        p
    }

    /// The project's redis-server (see [`Project::on_own_redis`]).
    pub fn redis(&mut self) -> &mut swarm_testkit::RedisServer {
        self.redis.as_mut().expect("a project on its own redis-server")
    }

    /// The namespace its runs use by default: the directory's name.
    pub fn namespace(&self) -> String {
        self.path().file_name().expect("a name").to_string_lossy().into_owned()
    }

    /// A directory initialised as a git repository.
    pub fn git() -> Project {
        let p = Project::new();
        let ok = Command::new("git")
            .args(["init", "-q"])
            .current_dir(p.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // No git here: swarm only looks for a `.git` entry to find the root.
            std::fs::create_dir(p.path().join(".git")).expect("mkdir .git");
        }
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.file(rel).exists()
    }

    /// Whether any run was ever stored (on either store).
    pub fn has_runs(&self) -> bool {
        match &self.redis {
            // On the embedded store, "nothing stored" means not even the file was created.
            None => self.exists(".swarm/state.db"),
            Some(_) => !self.runs().is_empty(),
        }
    }

    /// Writes a file (creating directories); `{fake}` is replaced by the fake-agent's path.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.file(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(&path, text.replace("{fake}", FAKE)).expect("write file");
    }

    /// Writes `plan.md` (with `{fake}` replaced).
    pub fn plan(&self, text: &str) {
        self.write("plan.md", text);
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    /// A pid written by a task into `rel`, waiting for the file to be complete.
    pub fn pid(&self, rel: &str) -> u32 {
        wait_for(Duration::from_secs(10), &format!("{rel} holds a pid"), || {
            std::fs::read_to_string(self.file(rel)).ok().and_then(|s| s.trim().parse().ok())
        })
    }

    /// A `swarm` command running in this project, isolated from the caller's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_in(".", args)
    }

    pub fn command_in(&self, rel_dir: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(SWARM);
        cmd.args(args)
            .current_dir(self.file(rel_dir))
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .env_remove("CI");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SWARM_") {
                cmd.env_remove(k);
            }
        }
        if let Some(redis) = &self.redis {
            cmd.env("SWARM_STORE", redis.url());
        }
        cmd
    }

    /// Runs `swarm ARGS` to the end (at most [`CMD_TIMEOUT`]).
    pub fn swarm(&self, args: &[&str]) -> Out {
        self.spawn_cmd(self.command(args)).wait(CMD_TIMEOUT)
    }

    pub fn swarm_in(&self, rel_dir: &str, args: &[&str]) -> Out {
        self.spawn_cmd(self.command_in(rel_dir, args)).wait(CMD_TIMEOUT)
    }

    /// Starts `swarm ARGS` in the background.
    pub fn spawn(&self, args: &[&str]) -> Bg {
        self.spawn_cmd(self.command(args))
    }

    /// Starts `swarm ARGS` in the background as the leader of its own process group, like a
    /// foreground job in a terminal (Ctrl-C there signals the whole group).
    pub fn spawn_job(&self, args: &[&str]) -> Bg {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command(args);
        cmd.process_group(0);
        self.spawn_cmd(cmd)
    }

    pub fn spawn_cmd(&self, mut cmd: Command) -> Bg {
        let started = Instant::now();
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn swarm");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            drain(child.stdout.take().expect("stdout"), stdout.clone()),
            drain(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Bg { child, stdout, stderr, readers, started, status: None }
    }

    /// `swarm status [RUN] --json`, parsed.
    pub fn status(&self, run: &str) -> Value {
        self.swarm(&["status", run, "--json"]).expect_code(0).json()
    }

    /// `swarm runs --json`, parsed (an array); none when there is no store yet (reading does
    /// not create the embedded store, and says so with exit 2).
    pub fn runs(&self) -> Vec<Value> {
        if self.redis.is_none() && !self.exists(".swarm/state.db") {
            return vec![];
        }
        match self.swarm(&["runs", "--json"]).expect_code(0).json() {
            Value::Array(rows) => rows,
            other => panic!("`swarm runs --json` is not an array: {other}"),
        }
    }

    /// The project's store, opened directly: for tests that must put the store in a state no
    /// command produces (a reused pid, say). Writes without a lease bypass fencing.
    pub fn store(&self) -> std::sync::Arc<dyn swarm_store::Store> {
        let address = match &self.redis {
            Some(r) => swarm_store::Address::parse(&r.url(), self.path()).expect("redis address"),
            None => swarm_store::Address::Sqlite(self.file(".swarm/state.db")),
        };
        swarm_store::open(&address, swarm_store::Options::default()).expect("open the store")
    }

    /// Reads `report.json` of a run.
    pub fn report(&self, run_id: &str) -> Value {
        let text = self.read(&format!(".swarm/runs/{run_id}/report.json"));
        serde_json::from_str(&text).expect("report.json is JSON")
    }
}

impl Drop for Project {
    /// Best effort: SIGKILL whatever test agents a failed test left behind (found through the
    /// pid files tasks wrote), so a failing test does not leak hour-long sleepers.
    fn drop(&mut self) {
        if let Some(keep) = std::env::var_os("SWARM_TEST_KEEP") {
            // Debugging a failure: a copy of the project survives the test.
            let to = Path::new(&keep).join(self.path().file_name().unwrap_or_default());
            let _ = Command::new("cp").arg("-a").arg(self.path()).arg(&to).status();
        }
        let Ok(entries) = std::fs::read_dir(self.path()) else { return };
        for e in entries.flatten() {
            if e.path().extension().is_none_or(|x| x != "pid") {
                continue;
            }
            let Some(pid) = std::fs::read_to_string(e.path()).ok().and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("fake-agent") || c.starts_with("sleep")
            });
            if ours {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The pinned agent CLIs' bin directory (`scripts/install-agents.sh` fills it).
pub fn tools_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/node_modules/.bin");
    for agent in ["opencode", "kilo", "cline"] {
        assert!(
            bin.join(agent).exists(),
            "{} is missing: run ./scripts/install-agents.sh to install the pinned agent CLIs",
            bin.join(agent).display()
        );
    }
    bin.canonicalize().expect("tools dir")
}

/// swarm's fake model server, started in the test process on its own runtime.
pub struct Fake {
    pub rt: tokio::runtime::Runtime,
    pub server: Option<swarm_fakellm::FakeLlm>,
}

impl Fake {
    pub fn start(scenario: &str) -> Fake {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let scenario = swarm_fakellm::Scenario::from_toml(scenario).expect("scenario");
        let server =
            rt.block_on(swarm_fakellm::serve(scenario, "127.0.0.1:0".parse().unwrap())).expect("serve");
        Fake { rt, server: Some(server) }
    }

    pub fn base_url(&self) -> String {
        self.server.as_ref().unwrap().base_url()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = self.rt.block_on(s.shutdown());
        }
    }
}
