//! The dispatcher: the one owner of a run's state. It `select!`s over executor reports, retry
//! timers, cancel requests (Ctrl-C, SIGTERM, `swarm cancel` through the store) and a heartbeat
//! tick; feeds the scheduler; carries out its actions; and is the only writer to the store.

use crate::hooks::{HookKind, HookOutcome, Hooks};
use crate::mirror::Mirror;
use crate::paths::RunDir;
use crate::process::hostname;
use crate::progress::Reporter;
use crate::report_files;
use crate::supervise::{Executor, ExecutorEvent, Limits, ReportSpec, StopRequest};
use crate::sweeper::{Request, Sweeper, Swept};
use crate::writer::{Note, Write, Writer};
use chrono::Utc;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_agents::{AttemptSpec, Registry};
use swarm_core::config::Config;
use swarm_core::event::{Event, EventKind};
use swarm_core::plan::{Plan, Workdir};
use swarm_core::report::{AttemptReport, Owner, RunRecord, RunReport, TaskReport};
use swarm_core::scheduler::{self, Action, Failure, Input, Options, Restored, Scheduler};
use swarm_core::state::{Reason, RunState, TaskState};
use swarm_store::Store;
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

pub struct RunSetup {
    pub store: Arc<dyn Store>,
    pub record: RunRecord,
    /// Current task documents in plan order.
    pub tasks: Vec<TaskReport>,
    /// How tasks stood when resuming; `None` for a fresh run.
    pub restored: Option<Vec<Restored>>,
    pub retry_failed: bool,
    pub registry: Registry,
    pub config: Config,
    pub run_dir: RunDir,
    /// Value given to agents as `SWARM_STORE` (never carries a password).
    pub store_env: String,
    /// The secrets masked in `store_env`, given to agents as `SWARM_STORE_PASSWORD` so swarm's
    /// own commands inside a task can connect (see `swarm_store::unmask`).
    pub store_secret: Option<String>,
    pub reporter: Box<dyn Reporter>,
    /// The lease token taken on the run before calling `run`.
    pub lease: String,
    /// The project's root (git root or current directory): hooks run and the mirror lives there.
    pub project_root: PathBuf,
}

enum Control {
    RetryDue(u32),
    Cancel(String),
    Kill,
}

struct Running {
    attempt: u32,
    stop: watch::Sender<StopRequest>,
}

struct Dispatcher {
    /// Ends what finished attempts left running outside their process groups.
    sweeper: Sweeper,
    store: Arc<dyn Store>,
    record: RunRecord,
    plan: Plan,
    docs: Vec<TaskReport>,
    registry: Registry,
    config: Config,
    run_dir: RunDir,
    store_env: String,
    store_secret: Option<String>,
    reporter: Box<dyn Reporter>,
    writer: Writer,
    /// Why the store was lost to this run, once it was.
    store_lost: Option<String>,
    started: Instant,
    exec_tx: mpsc::UnboundedSender<ExecutorEvent>,
    ctl_tx: mpsc::UnboundedSender<Control>,
    running: HashMap<u32, Running>,
    host: String,
    finished: Option<RunState>,
    cancel_seen: bool,
    /// This swarm binary, so agents can call `swarm report` / `swarm state`.
    swarm_bin: PathBuf,
    /// PATH for agents: this binary's directory first.
    agent_path: std::ffi::OsString,
    hooks: Hooks,
    mirror: Mirror,
    project_root: PathBuf,
}

/// Runs (or resumes) a run to its end and returns its final report.
pub async fn run(setup: RunSetup) -> RunReport {
    let RunSetup {
        store,
        mut record,
        tasks,
        restored,
        retry_failed,
        registry,
        config,
        run_dir,
        store_env,
        store_secret,
        reporter,
        lease,
        project_root,
    } = setup;
    let plan = record.spec.clone();
    let (nodes, agents) = scheduler::nodes_for(&plan);
    let concurrency = record.concurrency.max(1);
    let opts = Options {
        concurrency,
        agent_limits: agents.iter().map(|a| config.agent_limit(a)).collect(),
        fail_fast: record.fail_fast,
        backoff: config.backoff(),
        seed: fastrand::u64(..),
    };
    let names: Vec<String> = plan.tasks.iter().map(|t| t.id.clone()).collect();
    let resumed = restored.is_some();
    let mut sched = match &restored {
        Some(r) => Scheduler::restore(nodes, names, opts, r, retry_failed),
        None => Scheduler::new(nodes, names, opts),
    };
    // Whatever an agent detaches re-parents to swarm, where its attempt's marker finds it.
    crate::reaper::become_subreaper();
    let host = hostname();
    record.owner = Some(Owner { pid: std::process::id(), host: host.clone(), heartbeat_at: Utc::now() });
    record.state = RunState::Running;
    record.ended_at = None;

    let (note_tx, mut note_rx) = mpsc::unbounded_channel::<Note>();
    let hook_tx = note_tx.clone();
    let hooks = Hooks::new(&config.hooks, move |outcome: HookOutcome| {
        if !outcome.is_ok() {
            let _ = hook_tx.send(Note::Warning(outcome.to_string()));
        }
    })
    .in_dir(&project_root);
    let mirror = Mirror::new(&project_root, &config.feedback);
    // The states the store holds now: every write expects to find what this writer left.
    let known = tasks.iter().map(|t| (t.id.clone(), t.state)).collect();
    let give_up_after = config.store_give_up_after();
    let writer = Writer::start(store.clone(), record.run_id.clone(), lease, known, give_up_after, move |n| {
        let _ = note_tx.send(n);
    });
    let (exec_tx, mut exec_rx) = mpsc::unbounded_channel();
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
    let (swept_tx, mut swept_rx) = mpsc::unbounded_channel();
    let sweeper = Sweeper::start(move |s| {
        let _ = swept_tx.send(s);
    });
    let mut d = Dispatcher {
        sweeper,
        store,
        record,
        plan,
        docs: tasks,
        registry,
        config,
        run_dir,
        store_env,
        store_secret,
        reporter,
        writer,
        store_lost: None,
        started: Instant::now(),
        exec_tx,
        ctl_tx: ctl_tx.clone(),
        running: HashMap::new(),
        host,
        finished: None,
        cancel_seen: false,
        swarm_bin: std::env::current_exe().unwrap_or_else(|_| "swarm".into()),
        agent_path: agent_path(),
        hooks,
        mirror,
        project_root: project_root.clone(),
    };
    d.writer.send(Write::Run(d.record.clone()));
    d.emit(EventKind::RunStarted {
        plan: d.record.plan.clone(),
        namespace: d.record.namespace.clone(),
        tasks: d.plan.tasks.len(),
        concurrency,
        resumed,
    });

    let poller_stop = Arc::new(AtomicBool::new(false));
    spawn_cancel_poller(d.store.clone(), d.record.run_id.clone(), ctl_tx.clone(), poller_stop.clone());
    spawn_signal_listener(ctl_tx.clone());

    for dir in [d.run_dir.logs(), d.run_dir.completions()] {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            d.emit(EventKind::Warning { message: format!("cannot create {}: {e}", dir.display()) });
        }
    }
    let mut actions = Vec::new();
    sched.start(&mut actions);
    d.carry_out(&mut sched, actions);

    let mut heartbeat = tokio::time::interval(Duration::from_secs(2));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while d.finished.is_none() {
        let input = tokio::select! {
            Some(ev) = exec_rx.recv() => d.on_executor(ev),
            Some(ctl) = ctl_rx.recv() => d.on_control(ctl),
            Some(swept) = swept_rx.recv() => { d.on_swept(swept); None }
            Some(note) = note_rx.recv() => match note {
                Note::Warning(message) => { d.emit(EventKind::Warning { message }); None }
                Note::LeaseLost(message) => d.lease_lost(message),
            },
            _ = heartbeat.tick() => {
                if let Some(o) = d.record.owner.as_mut() { o.heartbeat_at = Utc::now(); }
                d.writer.send(Write::Run(d.record.clone()));
                None
            }
        };
        if let Some(input) = input {
            let mut actions = Vec::new();
            sched.handle(input, &mut actions);
            d.carry_out(&mut sched, actions);
        }
    }
    poller_stop.store(true, Ordering::Relaxed);
    d.finish(&mut note_rx, &mut swept_rx)
}

impl Dispatcher {
    fn emit(&mut self, kind: EventKind) {
        let ev = Event {
            run_id: self.record.run_id.clone(),
            timestamp: Utc::now(),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            kind,
        };
        self.reporter.event(&ev);
        if ev.kind.is_persistent() {
            self.writer.send(Write::Event(ev));
        }
    }

    fn save_task(&mut self, i: usize) {
        self.writer.send(Write::Task(self.docs[i].clone()));
    }

    fn carry_out(&mut self, sched: &mut Scheduler, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let follow_up = match action {
                Action::SetState { task, state, reason, detail } => {
                    self.set_state(task as usize, state, reason, detail);
                    None
                }
                Action::Start { task, attempt } => self.start(task, attempt),
                Action::RetryAfter { task, next_attempt, delay } => {
                    // Never sooner than the provider asked (`retry-after` of a rate limit).
                    let asked = self.docs[task as usize]
                        .attempts
                        .last()
                        .and_then(|a| a.retry_after_ms)
                        .map(Duration::from_millis)
                        .unwrap_or_default();
                    let delay = delay.max(asked);
                    self.emit(EventKind::RetryScheduled {
                        task: self.plan.tasks[task as usize].id.clone(),
                        next_attempt,
                        delay_ms: delay.as_millis() as u64,
                    });
                    let tx = self.ctl_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(Control::RetryDue(task));
                    });
                    None
                }
                Action::Stop { task } => {
                    if let Some(r) = self.running.get(&task) {
                        let _ = r.stop.send(StopRequest::Terminate);
                    }
                    None
                }
                Action::Finished(state) => {
                    self.finished = Some(state);
                    None
                }
            };
            if let Some(input) = follow_up {
                let mut more = Vec::new();
                sched.handle(input, &mut more);
                queue.extend(more);
            }
        }
    }

    fn set_state(&mut self, i: usize, state: TaskState, reason: Option<Reason>, detail: Option<String>) {
        let doc = &mut self.docs[i];
        doc.state = state;
        if state.is_terminal() {
            doc.reason = reason;
            doc.detail = detail.clone();
        } else if state == TaskState::Pending && reason.is_some() {
            // A failed attempt that will be retried: the task is not failed, say why it waits.
            doc.reason = None;
            doc.detail = Some(format!(
                "attempt {} failed ({}){}; retrying",
                doc.attempts.len(),
                reason.map(|r| r.as_str()).unwrap_or("?"),
                detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ));
        } else {
            doc.reason = None;
            if state != TaskState::Running {
                doc.detail = None;
            }
        }
        let task = doc.id.clone();
        if state != TaskState::Running {
            // A running task is saved by `start` together with its new attempt record, so no
            // reader ever sees `running` without the attempt (and its process group).
            self.save_task(i);
        }
        let (reason, detail) =
            if state.is_terminal() { (reason, detail) } else { (None, self.docs[i].detail.clone()) };
        self.emit(EventKind::TaskState { task, state, reason, detail });
        self.mirror_task(i);
        if state.is_terminal() {
            let payload = serde_json::json!({
                "run_id": self.record.run_id, "plan": self.record.plan, "namespace": self.record.namespace,
                "task": self.docs[i],
            });
            if state == TaskState::Failed {
                self.hooks.fire(HookKind::Failure, payload.clone());
            }
            self.hooks.fire(HookKind::TaskEnd, payload);
        }
    }

    /// Launches attempt `attempt` of task `task`. Returns an input for the scheduler when the
    /// attempt could not even start.
    fn start(&mut self, task: u32, attempt: u32) -> Option<Input> {
        let i = task as usize;
        let t = self.plan.tasks[i].clone();
        let log = self.run_dir.log(&t.id, attempt);
        let attempt_dir = self.run_dir.attempt_dir(&t.id, attempt);
        let mut doc = AttemptReport {
            n: attempt,
            agent: t.agent.clone(),
            model: t.model.clone(),
            layer: t.tier,
            exit_code: None,
            started_at: Utc::now(),
            ended_at: None,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            fallback_reason: None,
            reason: None,
            detail: None,
            pid: None,
            host: Some(self.host.clone()),
            log: Some(log.display().to_string()),
            workdir: None,
            completion: None,
            check_output: None,
            warnings: vec![],
            failure_class: None,
            retry_after_ms: None,
            session_id: None,
        };
        let required = self.config.require_report(&t.agent);
        let mut baseline = None;
        let launched = self.workdir_for(&t).and_then(|workdir| {
            doc.workdir = Some(workdir.display().to_string());
            if required {
                // Before the agent starts, so its first edits are never taken for old ones.
                baseline = crate::supervise::git_changes_now(&workdir);
            }
            self.spawn(&t, attempt, &attempt_dir, workdir.clone())
                .map(|(child, stdin, adapter)| (child, stdin, adapter, workdir))
        });
        match launched {
            Ok((child, stdin, adapter, workdir)) => {
                let pid = child.id();
                doc.pid = pid;
                self.docs[i].attempts.push(doc);
                self.save_task(i);
                self.emit(EventKind::AttemptStarted {
                    task: t.id.clone(),
                    attempt,
                    agent: t.agent.clone(),
                    model: t.model.clone(),
                    pid,
                });
                let (stop_tx, stop_rx) = watch::channel(StopRequest::None);
                self.running.insert(task, Running { attempt, stop: stop_tx });
                let exec = Executor {
                    marker: crate::reaper::Marker::attempt(&self.record.run_id, &t.id, attempt),
                    report: Some(ReportSpec {
                        path: self.run_dir.completion(&t.id, attempt),
                        required,
                        run_id: self.record.run_id.clone(),
                        task_id: t.id.clone(),
                    }),
                    baseline,
                    workdir: workdir.clone(),
                    check_tail: Default::default(),
                    task,
                    attempt,
                    limits: Limits { timeout: t.timeout, stall: t.stall, grace: self.config.grace() },
                    log: crate::attempt_log::AttemptLog::new(log, self.config.log_limit()),
                    check: t.check.clone().map(|c| (c, workdir.clone())),
                    check_timeout: self.config.check_timeout(),
                    stdin,
                    tx: self.exec_tx.clone(),
                    stop: stop_rx,
                    adapter,
                    agent_errors: Vec::new(),
                    recovered: false,
                    saw_usage: false,
                    stderr_tail: Default::default(),
                    session: None,
                };
                tokio::spawn(exec.run(child));
                None
            }
            Err(message) => {
                doc.ended_at = Some(Utc::now());
                doc.reason = Some(Reason::SpawnError);
                doc.detail = Some(message.clone());
                let _ = std::fs::write(&log, format!("swarm: could not start the attempt: {message}\n"));
                self.docs[i].attempts.push(doc);
                self.save_task(i);
                self.emit(EventKind::AttemptStarted {
                    task: t.id.clone(),
                    attempt,
                    agent: t.agent.clone(),
                    model: t.model.clone(),
                    pid: None,
                });
                self.emit(EventKind::AttemptFinished {
                    task: t.id.clone(),
                    attempt,
                    exit_code: None,
                    reason: Some(Reason::SpawnError),
                    detail: Some(message.clone()),
                });
                Some(Input::AttemptEnded {
                    task,
                    attempt,
                    outcome: Err(Failure { reason: Reason::SpawnError, detail: Some(message) }),
                })
            }
        }
    }

    fn spawn(
        &self,
        t: &swarm_core::Task,
        attempt: u32,
        attempt_dir: &std::path::Path,
        workdir: PathBuf,
    ) -> Result<Spawned, String> {
        if t.agent != "exec" {
            // exec tasks rarely report; `swarm report` creates the directory when they do.
            std::fs::create_dir_all(attempt_dir)
                .map_err(|e| format!("cannot create {}: {e}", attempt_dir.display()))?;
        }
        let adapter = self.registry.get(&t.agent).map_err(|e| e.to_string())?;
        let mut prompt = compose_prompt(&self.plan.brief, &t.prompt);
        if let Some(previous) =
            self.docs[self.plan.task_index(&t.id).expect("task of the plan")].attempts.last()
        {
            prompt.push_str(&retry_feedback(previous));
        }
        let completion_file = self.run_dir.completion(&t.id, attempt);
        if self.config.require_report(&t.agent) {
            let template = self.config.feedback.footer.as_deref().unwrap_or(REPORT_FOOTER);
            prompt.push_str(&report_footer(template, &self.record.run_id, &t.id, attempt, &completion_file));
        }
        let (provider, key_env) = match t.model.as_deref() {
            Some(model) => resolve_provider(&self.config, model)?,
            None => (None, None),
        };
        let spec = AttemptSpec {
            run_id: &self.record.run_id,
            task: t,
            attempt,
            prompt: &prompt,
            model: t.model.as_deref(),
            workdir,
            provider,
            attempt_dir: attempt_dir.to_path_buf(),
            project_root: self.project_root.clone(),
        };
        let launch = adapter.launch(&spec).map_err(|e| e.to_string())?;
        for step in &launch.setup {
            // Never echo the setup's arguments: they may name provider details; the key itself
            // only ever travels in the environment.
            let mut cmd = std::process::Command::new(&step.program);
            cmd.args(&step.args)
                .envs(crate::reaper::Marker::attempt(&self.record.run_id, &t.id, attempt).env())
                .current_dir(&launch.cwd)
                .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .envs(step.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("PATH", &self.agent_path)
                .stdin(Stdio::null());
            if let Some((k, v)) = &key_env {
                cmd.env(k, v);
            }
            let out = cmd.output().map_err(|e| format!("cannot run the {} setup: {e}", t.agent))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                let err: String = err
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(format!(
                    "the {} setup failed ({}): {}",
                    t.agent,
                    out.status,
                    redact(&err, spec.provider.as_ref().map(|p| p.api_key_env.as_str()), &key_env)
                ));
            }
        }
        let mut cmd = Command::new(&launch.program);
        if let Some((k, v)) = &key_env {
            cmd.env(k, v);
        }
        // `env_from`: the value the source variable has in the agent's environment — set just
        // above (a placeholder key), by the launch, or inherited from swarm's own.
        for (var, from) in &launch.env_from {
            let value = key_env
                .as_ref()
                .filter(|(k, _)| k == from)
                .map(|(_, v)| v.clone())
                .or_else(|| launch.env.iter().find(|(k, _)| k == from).map(|(_, v)| v.clone()))
                .or_else(|| std::env::var(from).ok());
            if let Some(value) = value {
                cmd.env(var, value);
            }
        }
        cmd.args(&launch.args)
            .current_dir(&launch.cwd)
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SWARM_RUN_ID", &self.record.run_id)
            .env("SWARM_TASK_ID", &t.id)
            .env("SWARM_ATTEMPT", attempt.to_string())
            .env("SWARM_STORE", &self.store_env)
            .env("SWARM_STORE_PASSWORD", self.store_secret.as_deref().unwrap_or_default())
            .env("SWARM_NAMESPACE", &self.record.namespace)
            .env("SWARM_COMPLETION_FILE", &completion_file)
            .env("SWARM_BIN", &self.swarm_bin)
            .env("PATH", &self.agent_path)
            .stdin(if launch.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            if !launch.cwd.is_dir() {
                format!(
                    "cannot start `{}`: working directory {} does not exist",
                    launch.program,
                    launch.cwd.display()
                )
            } else {
                format!("cannot start `{}`: {e}", launch.program)
            }
        })?;
        Ok((child, launch.stdin, adapter))
    }

    /// Mirrors a task's status for tools without store access: tasks of reporting agents, and
    /// any task that wrote a completion report (plain `exec` tasks stay out of it).
    fn mirror_task(&mut self, i: usize) {
        let doc = &self.docs[i];
        let reporting =
            self.config.require_report(&doc.agent) || doc.attempts.iter().any(|a| a.completion.is_some());
        if !reporting {
            return;
        }
        if let Err(e) = self.mirror.task_status(&self.record.run_id, doc) {
            self.emit(EventKind::Warning { message: e.to_string() });
        }
    }

    /// Where the task runs: the plan's directory (`shared`), or the task's own git worktree on a
    /// branch `swarm/<run>/<task>`, created on its first attempt and kept for the next ones.
    fn workdir_for(&self, t: &swarm_core::Task) -> Result<PathBuf, String> {
        let shared = PathBuf::from(&self.record.workdir);
        if t.workdir == Workdir::Shared {
            return Ok(shared);
        }
        let Some(root) = shared.ancestors().find(|d| d.join(".git").exists()) else {
            return Err(format!(
                "`workdir: worktree` needs the plan inside a git repository ({} is not)",
                shared.display()
            ));
        };
        let tree = self.run_dir.root.join("worktrees").join(&t.id);
        let inner = tree.join(shared.strip_prefix(root).unwrap_or(std::path::Path::new("")));
        if tree.is_dir() {
            return Ok(inner);
        }
        let branch = format!("swarm/{}/{}", self.record.run_id, t.id);
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(root)
                .args(args)
                .output()
                .map_err(|e| format!("cannot run git: {e}"))
        };
        let tree_arg = tree.display().to_string();
        let mut out = git(&["worktree", "add", "--quiet", "-b", &branch, &tree_arg, "HEAD"])?;
        if !out.status.success() {
            // The branch may exist already (a resumed run whose worktree was removed).
            out = git(&["worktree", "add", "--quiet", &tree_arg, &branch])?;
        }
        if !out.status.success() {
            return Err(format!(
                "cannot create worktree {}: {}",
                tree.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(inner)
    }

    fn on_executor(&mut self, ev: ExecutorEvent) -> Option<Input> {
        match ev {
            ExecutorEvent::Output { task, attempt, stream, line } => {
                let id = self.plan.tasks[task as usize].id.clone();
                self.emit(EventKind::Output { task: id, attempt, stream, line });
                None
            }
            ExecutorEvent::Agent { task, attempt, output } => {
                use swarm_agents::AgentOutput;
                let i = task as usize;
                let a = self.docs[i].attempts.iter_mut().find(|a| a.n == attempt)?;
                match output {
                    AgentOutput::Usage { tokens_in, tokens_out, cost_usd } => {
                        a.tokens_in += tokens_in;
                        a.tokens_out += tokens_out;
                        if cost_usd.is_finite() && cost_usd > 0.0 {
                            a.cost_usd += cost_usd;
                        }
                    }
                    AgentOutput::Session(id) => {
                        if a.session_id.as_deref() == Some(id.as_str()) {
                            return None;
                        }
                        a.session_id = Some(id);
                    }
                    _ => return None,
                }
                self.save_task(i);
                None
            }
            ExecutorEvent::CheckStarted { task, attempt, pgid } => {
                // `resume` and `cancel` stop the recorded group of an attempt left running.
                let i = task as usize;
                if let Some(a) = self.docs[i].attempts.iter_mut().find(|a| a.n == attempt) {
                    a.pid = pgid;
                }
                self.save_task(i);
                None
            }
            ExecutorEvent::Finished { task, attempt, exit_code, mut outcome, evidence } => {
                let id = &self.plan.tasks[task as usize].id;
                self.sweeper.sweep(Request {
                    task,
                    attempt,
                    marker: crate::reaper::Marker::attempt(&self.record.run_id, id, attempt),
                    grace: self.config.grace(),
                    log: Some(self.run_dir.log(id, attempt)),
                });
                if let (Some(message), Err(f)) = (&self.store_lost, &mut outcome) {
                    if f.reason == Reason::Cancelled {
                        // Stopped because the store was lost, not by a user.
                        *f = Failure { reason: Reason::LeaseLost, detail: Some(message.clone()) };
                    }
                }
                if self.running.get(&task).is_some_and(|r| r.attempt == attempt) {
                    self.running.remove(&task);
                }
                let i = task as usize;
                if let Some(a) = self.docs[i].attempts.iter_mut().find(|a| a.n == attempt) {
                    a.ended_at = Some(Utc::now());
                    a.exit_code = exit_code;
                    if let Err(f) = &outcome {
                        a.reason = Some(f.reason);
                        a.detail = f.detail.clone();
                    }
                    a.completion = evidence.completion;
                    a.check_output = evidence.check_output;
                    a.warnings = evidence.warnings;
                    a.failure_class = evidence.failure_class;
                    a.retry_after_ms = evidence.retry_after.map(|d| d.as_millis() as u64);
                }
                if let Some(bytes) = &evidence.completion_bytes {
                    if let Err(e) = self.mirror.completion(&self.record.run_id, &self.plan.tasks[i].id, bytes)
                    {
                        self.emit(EventKind::Warning { message: e.to_string() });
                    }
                }
                self.save_task(i);
                let (reason, detail) = match &outcome {
                    Ok(()) => (None, None),
                    Err(f) => (Some(f.reason), f.detail.clone()),
                };
                self.emit(EventKind::AttemptFinished {
                    task: self.plan.tasks[i].id.clone(),
                    attempt,
                    exit_code,
                    reason,
                    detail,
                });
                Some(Input::AttemptEnded { task, attempt, outcome })
            }
        }
    }

    fn on_control(&mut self, ctl: Control) -> Option<Input> {
        match ctl {
            Control::RetryDue(task) => Some(Input::RetryDue { task }),
            Control::Cancel(source) => {
                if self.cancel_seen {
                    return None;
                }
                self.cancel_seen = true;
                self.emit(EventKind::CancelRequested { source });
                Some(Input::Cancel)
            }
            Control::Kill => {
                for r in self.running.values() {
                    let _ = r.stop.send(StopRequest::Kill);
                }
                if !self.cancel_seen {
                    self.cancel_seen = true;
                    return Some(Input::Cancel);
                }
                None
            }
        }
    }

    /// The store is lost to this run (emptied, replaced, or taken by another orchestrator): stop
    /// the attempts and fail what did not finish with `lease_lost`. This is no user cancel.
    fn lease_lost(&mut self, message: String) -> Option<Input> {
        if self.store_lost.is_some() {
            return None;
        }
        self.emit(EventKind::Warning {
            message: format!("{message}; stopping this orchestrator's attempts"),
        });
        self.store_lost = Some(message.clone());
        Some(Input::Abort(Failure { reason: Reason::LeaseLost, detail: Some(message) }))
    }

    /// An attempt left processes running outside its group; they are ended now.
    fn on_swept(&mut self, s: Swept) {
        let i = s.task as usize;
        let warning = format!(
            "swarm ended {} process(es) the attempt left running outside its process group{}",
            s.ended.found,
            if s.ended.killed > 0 { format!(" ({} needed SIGKILL)", s.ended.killed) } else { String::new() }
        );
        if let Some(a) = self.docs[i].attempts.iter_mut().find(|a| a.n == s.attempt) {
            a.warnings.push(warning.clone());
        }
        self.save_task(i);
        let task = self.plan.tasks[i].id.clone();
        self.emit(EventKind::Warning { message: format!("{task} (attempt {}): {warning}", s.attempt) });
    }

    fn finish(
        mut self,
        notes: &mut mpsc::UnboundedReceiver<Note>,
        swept: &mut mpsc::UnboundedReceiver<Swept>,
    ) -> RunReport {
        let mut state = self.finished.expect("finish after the scheduler finished");
        // Every finished attempt's leftovers are ended (and recorded) before the run ends.
        self.sweeper.flush();
        while let Ok(s) = swept.try_recv() {
            self.on_swept(s);
        }
        // Anything of the run still alive now escaped that (e.g. forked while its attempt was
        // being stopped).
        let run = crate::reaper::Marker::run(&self.record.run_id);
        let left = crate::reaper::end(&run, crate::reaper::Scope::Mine, self.config.grace());
        if left.found > 0 {
            self.emit(EventKind::Warning {
                message: format!("ended {} process(es) of the run still running at its end", left.found),
            });
        }
        let counts = swarm_core::report::Counts::of(self.docs.iter().map(|t| &t.state));
        self.record.state = state;
        self.record.ended_at = Some(Utc::now());
        self.emit(EventKind::RunFinished {
            state,
            succeeded: counts.succeeded,
            failed: counts.failed,
            blocked: counts.blocked,
            cancelled: counts.cancelled,
        });
        self.writer.send(Write::Run(self.record.clone()));
        // Everything is in the store (or known lost) before the report says how the run ended.
        let closed = self.writer.close();
        // What the writer said while saving the last writes (a store that came back, or not).
        while let Ok(Note::Warning(message) | Note::LeaseLost(message)) = notes.try_recv() {
            self.emit(EventKind::Warning { message });
        }
        let failure = closed.failure(&self.docs);
        if let Some(f) = &failure {
            // A run the store could not record did not succeed, whatever its tasks did.
            if state == RunState::Succeeded {
                state = RunState::Failed;
                self.record.state = state;
            }
            self.emit(EventKind::StoreLost { message: f.message.clone(), lost_writes: f.lost_writes });
        }
        let mut report = RunReport::build(&self.record, self.docs.clone());
        report.store_error = failure;
        if let Err(e) = report_files::write(&self.run_dir, &report) {
            self.emit(EventKind::Warning { message: format!("cannot write report: {e}") });
        }
        if let Err(e) = self.mirror.run_status(&self.record.run_id, &report) {
            self.emit(EventKind::Warning { message: e.to_string() });
        }
        self.hooks.fire(HookKind::RunEnd, serde_json::to_value(&report).expect("report serializes"));
        // Hooks never block the run, but the process should not exit under them: wait for the
        // ones still running, at most as long as one hook may take.
        self.hooks.wait_idle(self.hooks.max_duration() + Duration::from_secs(1));
        let Dispatcher { mut reporter, run_dir, record, started, .. } = self;
        // What the hooks said.
        while let Ok(Note::Warning(message) | Note::LeaseLost(message)) = notes.try_recv() {
            reporter.event(&Event {
                run_id: record.run_id.clone(),
                timestamp: Utc::now(),
                elapsed_ms: started.elapsed().as_millis() as u64,
                kind: EventKind::Warning { message },
            });
        }
        reporter.finish(&report, &run_dir);
        report
    }
}

/// A started agent: its process, what goes to its stdin, the adapter that reads its output.
type Spawned = (tokio::process::Child, Option<String>, Arc<dyn swarm_agents::Adapter>);

/// The provider of a model, and the key variable (name, placeholder) swarm must set, if any.
pub type ResolvedProvider = (Option<swarm_agents::ProviderSpec>, Option<(String, String)>);

/// Placeholder key for a local endpoint whose key env var is unset.
const PLACEHOLDER_KEY: &str = "swarm-local-placeholder-key";

/// Env var the agent reads its key from when the provider names none.
const DEFAULT_KEY_ENV: &str = "SWARM_PROVIDER_API_KEY";

/// `model: local/ok` → the provider `local` from `swarm.toml`, and the key variable the agent
/// must get set explicitly (a placeholder), if any. A model whose prefix is no configured provider
/// is passed to the agent as is (its own config knows the provider). Errors name the provider.
pub fn resolve_provider(config: &Config, model: &str) -> Result<ResolvedProvider, String> {
    let Some((name, id)) = model.split_once('/') else { return Ok((None, None)) };
    let Some(p) = config.providers.get(name) else {
        if config.providers.is_empty() {
            return Ok((None, None));
        }
        // Providers are configured but not this one: most likely a typo; but real provider
        // names (anthropic/…, openai/…) are the agents' own business.
        if KNOWN_AGENT_PROVIDERS.contains(&name) {
            return Ok((None, None));
        }
        let known: Vec<&str> = config.providers.keys().map(String::as_str).collect();
        return Err(format!(
            "model `{model}`: no provider `{name}` in swarm.toml [providers] (configured: {})",
            known.join(", ")
        ));
    };
    let env_name = p.api_key_env.clone().unwrap_or_else(|| DEFAULT_KEY_ENV.into());
    let has_key = std::env::var_os(&env_name).is_some_and(|v| !v.is_empty());
    let loopback = p.base_url.as_deref().is_some_and(is_loopback_url);
    let key_env = if has_key {
        None
    } else if loopback || p.api_key_env.is_none() {
        Some((env_name.clone(), PLACEHOLDER_KEY.to_string()))
    } else {
        return Err(format!(
            "provider `{name}` needs its key in the environment variable `{env_name}`, which is not set"
        ));
    };
    let spec = swarm_agents::ProviderSpec {
        name: name.into(),
        kind: p.kind.clone(),
        base_url: p.base_url.clone(),
        model: id.into(),
        api_key_env: env_name,
    };
    Ok((Some(spec), key_env))
}

/// Provider prefixes agents know by themselves (models.dev ids).
const KNOWN_AGENT_PROVIDERS: &[&str] = &[
    "anthropic",
    "openai",
    "google",
    "openrouter",
    "groq",
    "mistral",
    "deepseek",
    "xai",
    "ollama",
    "azure",
    "amazon-bedrock",
    "github-copilot",
    "opencode",
    "kilo",
    "cline",
    "vertex",
    "together",
    "fireworks",
    "cerebras",
];

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `text` with the provider's key (the user's, or the placeholder swarm set) blanked out.
fn redact(text: &str, env_name: Option<&str>, key_env: &Option<(String, String)>) -> String {
    let mut out = text.to_string();
    let user_key = env_name.and_then(|n| std::env::var(n).ok()).filter(|k| k.len() >= 4);
    for key in user_key.iter().chain(key_env.as_ref().map(|(_, v)| v)) {
        out = out.replace(key.as_str(), "***");
    }
    out
}

/// PATH with the directory of this `swarm` binary first.
fn agent_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> =
        std::env::current_exe().ok().and_then(|e| e.parent().map(PathBuf::from)).into_iter().collect();
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap_or_default()
}

/// Longest retry feedback added to a prompt.
const FEEDBACK_LIMIT: usize = 2000;

/// Why the previous attempt failed, for the next attempt's prompt: reason, detail, the check's
/// output tail and the agent's own blockers, bounded.
pub fn retry_feedback(previous: &AttemptReport) -> String {
    let Some(reason) = previous.reason else { return String::new() };
    let mut s = format!("\n\n---\n\n## Your previous attempt (#{}) failed\n\nreason: {reason}", previous.n);
    if let Some(d) = &previous.detail {
        s.push_str(&format!(" — {d}"));
    }
    if let Some(out) = &previous.check_output {
        s.push_str(&format!("\n\ncheck output (last lines):\n```\n{out}\n```"));
    }
    if let Some(c) = previous.completion.as_ref().filter(|c| !c.blockers.is_empty()) {
        s.push_str(&format!("\n\nblockers you reported: {}", c.blockers.join("; ")));
    }
    s.push_str("\n\nFix this in this attempt.");
    if s.len() > FEEDBACK_LIMIT {
        let mut cut = FEEDBACK_LIMIT - 20;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n[… truncated]");
    }
    s
}

/// The default report footer; `{completion_file}`, `{run_id}`, `{task_id}` and `{attempt}` are
/// filled in. Overridable with `[feedback] footer` in swarm.toml.
pub const REPORT_FOOTER: &str = "\n\n---\n\nWhen you are done (or cannot go on), report back before you exit: write \
`{completion_file}` (also in $SWARM_COMPLETION_FILE) as JSON:\n\
{\"schema_version\": 1, \"run_id\": \"{run_id}\", \"task_id\": \"{task_id}\", \"status\": \"done|partial|blocked|failed\", \
\"summary\": \"one paragraph\", \"files_changed\": [\"path\"], \"tests\": [{\"command\": \"cmd\", \"passed\": true}], \
\"follow_ups\": [], \"blockers\": []}\n\
or run `swarm report --status done --summary \"…\" --file PATH`. Without a report this attempt fails.";

pub fn report_footer(
    template: &str,
    run_id: &str,
    task_id: &str,
    attempt: u32,
    completion_file: &std::path::Path,
) -> String {
    template
        .replace("{completion_file}", &completion_file.display().to_string())
        .replace("{run_id}", run_id)
        .replace("{task_id}", task_id)
        .replace("{attempt}", &attempt.to_string())
}

/// The text an agent receives: the plan's shared brief, then its task prompt.
pub fn compose_prompt(brief: &str, prompt: &str) -> String {
    match (brief.trim().is_empty(), prompt.trim().is_empty()) {
        (true, _) => prompt.to_string(),
        (false, true) => brief.to_string(),
        (false, false) => format!("{brief}\n\n---\n\n{prompt}"),
    }
}

/// Watches the store for `swarm cancel` from another process.
fn spawn_cancel_poller(
    store: Arc<dyn Store>,
    run_id: String,
    tx: mpsc::UnboundedSender<Control>,
    stop: Arc<AtomicBool>,
) {
    std::thread::Builder::new()
        .name("swarm-cancel-poll".into())
        .spawn(move || {
            crate::writer::block_signals();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(true) = store.cancel_requested(&run_id) {
                    let _ = tx.send(Control::Cancel("swarm cancel".into()));
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
        .expect("spawn cancel poller");
}

/// First Ctrl-C (or SIGTERM, or SIGHUP when the terminal goes away): graceful cancel.
/// Second: kill every attempt now.
fn spawn_signal_listener(tx: mpsc::UnboundedSender<Control>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
            (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            return;
        };
        let mut count = 0;
        loop {
            let source = tokio::select! {
                _ = int.recv() => "ctrl-c",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            count += 1;
            let msg = if count == 1 { Control::Cancel(source.into()) } else { Control::Kill };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod provider_tests {
    use super::*;

    fn config(base_url: &str, key_env: Option<&str>) -> Config {
        let mut c = Config::default();
        c.providers.insert(
            "local".into(),
            swarm_core::config::ProviderConfig {
                kind: "openai-compatible".into(),
                base_url: Some(base_url.into()),
                api_key_env: key_env.map(String::from),
                models: vec!["ok".into()],
            },
        );
        c
    }

    #[test]
    fn a_local_provider_without_its_key_gets_a_placeholder() {
        let c = config("http://127.0.0.1:8999/v1", Some("SWARM_TEST_UNSET_KEY_1"));
        let (spec, key) = resolve_provider(&c, "local/ok").unwrap();
        let spec = spec.unwrap();
        assert_eq!((spec.name.as_str(), spec.model.as_str()), ("local", "ok"));
        assert_eq!(spec.api_key_env, "SWARM_TEST_UNSET_KEY_1");
        assert_eq!(key, Some(("SWARM_TEST_UNSET_KEY_1".into(), PLACEHOLDER_KEY.into())));
    }

    #[test]
    fn a_remote_provider_without_its_key_is_an_error_naming_the_variable() {
        let c = config("https://llm.example.com/v1", Some("SWARM_TEST_UNSET_KEY_2"));
        let err = resolve_provider(&c, "local/ok").unwrap_err();
        assert!(err.contains("SWARM_TEST_UNSET_KEY_2"), "{err}");
    }

    #[test]
    fn unknown_prefixes() {
        let c = config("http://localhost:1/v1", None);
        let err = resolve_provider(&c, "locl/ok").unwrap_err();
        assert!(err.contains("`locl`") && err.contains("local"), "{err}");
        assert_eq!(resolve_provider(&c, "anthropic/claude-sonnet-4").unwrap(), (None, None));
        assert_eq!(resolve_provider(&c, "gpt-5").unwrap(), (None, None));
        assert_eq!(resolve_provider(&Config::default(), "local/ok").unwrap(), (None, None));
    }

    #[test]
    fn loopback_urls() {
        for url in ["http://127.0.0.1:8999/v1", "http://localhost/v1", "http://[::1]:80/v1", "127.0.0.2:1"] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in ["https://api.openai.com/v1", "http://10.0.0.1:8000/v1", "http://localhost.evil.com/"] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}
