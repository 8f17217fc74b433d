//! A run's dispatcher made ready: its scheduler (fresh, or restored on resume), the store
//! writer, the sweeper, hooks and mirror, the channels its loop listens on; then its start:
//! the run's record, the `run_started` event, the first attempts.

use super::{Context, Dispatcher, Ending, Inbox, Models, RunSetup, Senders};
use crate::dispatcher::mirror::Mirror;
use crate::dispatcher::sweeper::Sweeper;
use crate::dispatcher::writer::{Note, Write, Writer};
use crate::engine::handle::{Control, EventBus};
use crate::hooks::{HookOutcome, Hooks};
use crate::os::process::hostname;
use chrono::Utc;
use std::collections::HashMap;
use std::time::Instant;
use swarm_core::event::EventKind;
use swarm_core::report::Owner;
use swarm_core::scheduler::{self, Options, Scheduler};
use swarm_core::state::RunState;
use tokio::sync::mpsc;

impl Dispatcher {
    /// The dispatcher of `setup`'s run, its scheduler and the inputs its loop reads.
    pub(super) fn new(
        setup: RunSetup,
        bus: EventBus,
        ctl: mpsc::UnboundedSender<Control>,
    ) -> (Dispatcher, Scheduler, Inbox) {
        let sched = scheduler_for(&setup);
        let resumed = setup.restored.is_some();
        let RunSetup { store, mut record, tasks, executors, config, run_dir, store_env, lease, .. } = setup;
        let host = hostname();
        record.owner = Some(Owner { pid: std::process::id(), host: host.clone(), heartbeat_at: Utc::now() });
        record.state = RunState::Running;
        record.ended_at = None;
        let (note_tx, notes) = mpsc::unbounded_channel::<Note>();
        let hook_tx = note_tx.clone();
        let hooks = Hooks::new(&config.hooks, move |outcome: HookOutcome| {
            if !outcome.is_ok() {
                let _ = hook_tx.send(Note::Warning(outcome.to_string()));
            }
        })
        .in_dir(&setup.project_root);
        let mirror = Mirror::new(&setup.project_root, &config.feedback);
        // The states the store holds now: every write expects to find what this writer left.
        let known = tasks.iter().map(|t| (t.id.clone(), t.state)).collect();
        let give_up_after = config.store_give_up_after();
        let writer = Writer::start(store, record.run_id.clone(), lease, known, give_up_after, move |n| {
            let _ = note_tx.send(n);
        });
        let (exec_tx, exec) = mpsc::unbounded_channel();
        let (gw_tx, gw) = mpsc::unbounded_channel();
        let (swept_tx, swept) = mpsc::unbounded_channel();
        let sweeper = Sweeper::start(move |s| {
            let _ = swept_tx.send(s);
        });
        let catalog = swarm_core::router::Catalog::from_config(&config);
        let models =
            Models { gateway: setup.gateway, ledger: setup.ledger, catalog, fell_back: HashMap::new() };
        let project_root = setup.project_root;
        let ctx = Context {
            config,
            run_dir,
            store_env,
            project_root,
            host,
            started: Instant::now(),
            resumed,
            executors,
        };
        let d = Dispatcher {
            record,
            docs: tasks,
            running: HashMap::new(),
            ctx,
            models,
            tx: Senders { exec: exec_tx, ctl, gw: gw_tx },
            ending: Ending::default(),
            writer,
            sweeper,
            bus,
            hooks,
            mirror,
            ready_at: HashMap::new(),
        };
        (d, sched, Inbox { exec, gw, swept, notes })
    }

    /// The run begins: its record and first event, its directories, its first attempts.
    pub(super) fn begin(&mut self, sched: &mut Scheduler) {
        self.writer.send(Write::Run(self.record.clone()));
        self.emit(EventKind::RunStarted {
            plan: self.record.plan.clone(),
            namespace: self.record.namespace.clone(),
            tasks: self.record.spec.tasks.len(),
            concurrency: self.record.concurrency.max(1),
            resumed: self.ctx.resumed,
        });
        for dir in [self.ctx.run_dir.logs(), self.ctx.run_dir.completions()] {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                self.emit(EventKind::Warning { message: format!("cannot create {}: {e}", dir.display()) });
            }
        }
        let mut actions = Vec::new();
        sched.start(&mut actions);
        self.carry_out(sched, actions);
    }
}

/// The run's scheduler: fresh, or restored from how its tasks stood (resume).
fn scheduler_for(setup: &RunSetup) -> Scheduler {
    let plan = &setup.record.spec;
    let (nodes, agents) = scheduler::nodes_for(plan);
    let opts = Options {
        concurrency: setup.record.concurrency.max(1),
        agent_limits: agents.iter().map(|a| setup.config.agent_limit(a)).collect(),
        fail_fast: setup.record.fail_fast,
        backoff: setup.config.backoff(),
        seed: fastrand::u64(..),
    };
    let names: Vec<String> = plan.tasks.iter().map(|t| t.id.clone()).collect();
    match &setup.restored {
        Some(r) => Scheduler::restore(nodes, names, opts, r, setup.retry_failed),
        None => Scheduler::new(nodes, names, opts),
    }
}
