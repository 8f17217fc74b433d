//! The scheduler: a pure, synchronous state machine over the task graph. It is fed inputs
//! (attempt ended, retry due, cancel) and answers with actions (start, set state, retry later,
//! stop, finished). No clocks, processes or stores live here: DAG readiness, concurrency limits,
//! retries with backoff, fail-fast, blocking and cancellation are all decided by `handle`.

use crate::backoff::Backoff;
use crate::plan::Plan;
use crate::state::{Reason, RunState, TaskState};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// One node as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Node {
    pub deps: Vec<u32>,
    /// Index into the agent table (for per-agent limits).
    pub agent: u16,
    /// 1 + retries.
    pub max_attempts: u32,
}

/// How a task stood when a run is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub state: TaskState,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The attempt `attempt` of `task` ended; `Ok` when it succeeded.
    AttemptEnded { task: u32, attempt: u32, outcome: Result<(), Failure> },
    /// The backoff delay announced by `Action::RetryAfter` has passed.
    RetryDue { task: u32 },
    /// Stop: nothing new starts, running attempts are stopped, the rest is cancelled.
    Cancel,
    /// The run cannot go on (e.g. its store lease is lost): nothing new starts, running attempts
    /// are stopped, and every task that did not finish fails with `failure`, never `cancelled`.
    Abort(Failure),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub reason: Reason,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    SetState { task: u32, state: TaskState, reason: Option<Reason>, detail: Option<String> },
    Start { task: u32, attempt: u32 },
    RetryAfter { task: u32, next_attempt: u32, delay: Duration },
    Stop { task: u32 },
    Finished(RunState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Pending,
    Ready,
    Running { attempt: u32 },
    Waiting { next_attempt: u32 },
    Succeeded,
    Failed,
    Blocked,
    Cancelled,
}

impl NodeState {
    fn is_terminal(self) -> bool {
        matches!(self, NodeState::Succeeded | NodeState::Failed | NodeState::Blocked | NodeState::Cancelled)
    }
}

pub struct Options {
    pub concurrency: usize,
    /// Limit per agent index (`None`: only the global limit).
    pub agent_limits: Vec<Option<usize>>,
    pub fail_fast: bool,
    pub backoff: Backoff,
    pub seed: u64,
}

pub struct Scheduler {
    nodes: Vec<Node>,
    state: Vec<NodeState>,
    attempts: Vec<u32>,
    dependents: Vec<Vec<u32>>,
    missing_deps: Vec<u32>,
    /// Ready tasks per agent, in the order they became ready.
    ready: Vec<VecDeque<u32>>,
    running: usize,
    running_per_agent: Vec<usize>,
    waiting: usize,
    opts: Options,
    rng: fastrand::Rng,
    stopping: Option<Stop>,
    /// Why the run was aborted, once it was.
    aborted: Option<Failure>,
    any_failed: bool,
    finished: bool,
    names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancel,
    FailFast,
    Abort,
}

impl Scheduler {
    /// A fresh run. `names` are task ids, used only in human details.
    pub fn new(nodes: Vec<Node>, names: Vec<String>, opts: Options) -> Scheduler {
        let restored = vec![Restored { state: TaskState::Pending, attempts: 0 }; nodes.len()];
        Scheduler::restore(nodes, names, opts, &restored, false)
    }

    /// A resumed run: succeeded tasks stay done; tasks that were running, ready, pending or
    /// cancelled run again (an attempt cut short by a dead orchestrator does not use up a retry);
    /// failed and blocked tasks stay so unless `retry_failed`.
    pub fn restore(
        nodes: Vec<Node>,
        names: Vec<String>,
        opts: Options,
        restored: &[Restored],
        retry_failed: bool,
    ) -> Scheduler {
        let n = nodes.len();
        assert_eq!(restored.len(), n);
        let mut dependents = vec![Vec::new(); n];
        for (i, node) in nodes.iter().enumerate() {
            for &d in &node.deps {
                dependents[d as usize].push(i as u32);
            }
        }
        let agents =
            opts.agent_limits.len().max(nodes.iter().map(|n| n.agent as usize + 1).max().unwrap_or(0));
        let mut nodes = nodes;
        let mut state = Vec::with_capacity(n);
        let mut attempts = Vec::with_capacity(n);
        for (node, r) in nodes.iter_mut().zip(restored) {
            let s = match r.state {
                TaskState::Succeeded => NodeState::Succeeded,
                TaskState::Failed if !retry_failed => NodeState::Failed,
                TaskState::Blocked if !retry_failed => NodeState::Blocked,
                TaskState::Running => {
                    node.max_attempts += 1;
                    NodeState::Pending
                }
                TaskState::Failed | TaskState::Blocked => {
                    node.max_attempts += r.attempts;
                    NodeState::Pending
                }
                _ => NodeState::Pending,
            };
            state.push(s);
            attempts.push(r.attempts);
        }
        let missing_deps = nodes
            .iter()
            .map(|node| {
                node.deps.iter().filter(|&&d| state[d as usize] != NodeState::Succeeded).count() as u32
            })
            .collect();
        let seed = opts.seed;
        Scheduler {
            nodes,
            state,
            attempts,
            dependents,
            missing_deps,
            ready: vec![VecDeque::new(); agents],
            running: 0,
            running_per_agent: vec![0; agents],
            waiting: 0,
            opts,
            rng: fastrand::Rng::with_seed(seed),
            stopping: None,
            aborted: None,
            any_failed: false,
            finished: false,
            names,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn running(&self) -> usize {
        self.running
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn state_of(&self, task: u32) -> TaskState {
        match self.state[task as usize] {
            NodeState::Pending | NodeState::Waiting { .. } => TaskState::Pending,
            NodeState::Ready => TaskState::Ready,
            NodeState::Running { .. } => TaskState::Running,
            NodeState::Succeeded => TaskState::Succeeded,
            NodeState::Failed => TaskState::Failed,
            NodeState::Blocked => TaskState::Blocked,
            NodeState::Cancelled => TaskState::Cancelled,
        }
    }

    /// First call after construction: marks ready tasks (and tasks blocked by restored failures)
    /// and starts what the limits allow.
    pub fn start(&mut self, out: &mut Vec<Action>) {
        for i in 0..self.nodes.len() {
            if self.state[i] != NodeState::Pending {
                if self.state[i] == NodeState::Failed {
                    self.any_failed = true;
                }
                continue;
            }
            let failed_dep = self.nodes[i]
                .deps
                .iter()
                .copied()
                .find(|&d| matches!(self.state[d as usize], NodeState::Failed | NodeState::Blocked));
            if let Some(d) = failed_dep {
                self.any_failed = true;
                self.block_dependents_of(d, out);
            } else if self.missing_deps[i] == 0 {
                self.make_ready(i as u32, out);
            }
        }
        self.fill(out);
        self.check_finished(out);
    }

    /// Feeds one input; appends the resulting actions to `out`.
    pub fn handle(&mut self, input: Input, out: &mut Vec<Action>) {
        if self.finished {
            return;
        }
        match input {
            Input::AttemptEnded { task, attempt, outcome } => self.attempt_ended(task, attempt, outcome, out),
            Input::RetryDue { task } => {
                if let NodeState::Waiting { .. } = self.state[task as usize] {
                    self.waiting -= 1;
                    self.make_ready(task, out);
                }
            }
            Input::Cancel => self.cancel(out),
            Input::Abort(failure) => self.abort(failure, out),
        }
        self.fill(out);
        self.check_finished(out);
    }

    fn attempt_ended(
        &mut self,
        task: u32,
        attempt: u32,
        outcome: Result<(), Failure>,
        out: &mut Vec<Action>,
    ) {
        let i = task as usize;
        match self.state[i] {
            NodeState::Running { attempt: a } if a == attempt => {}
            _ => return, // stale report of an attempt we no longer track
        }
        self.running -= 1;
        self.running_per_agent[self.nodes[i].agent as usize] -= 1;
        if self.stopping == Some(Stop::Cancel) {
            self.set(task, NodeState::Cancelled, Some(Reason::Cancelled), Some("run cancelled".into()), out);
            return;
        }
        if let (Some(f), Err(_)) = (&self.aborted, &outcome) {
            // Stopped by the abort (or failed meanwhile): the abort is why it did not finish.
            let f = f.clone();
            self.any_failed = true;
            self.set(task, NodeState::Failed, Some(f.reason), f.detail, out);
            return;
        }
        match outcome {
            Ok(()) => {
                self.set(task, NodeState::Succeeded, None, None, out);
                for k in 0..self.dependents[i].len() {
                    let d = self.dependents[i][k] as usize;
                    self.missing_deps[d] -= 1;
                    if self.missing_deps[d] == 0 && self.state[d] == NodeState::Pending {
                        self.make_ready(d as u32, out);
                    }
                }
            }
            Err(f) => {
                let can_retry = f.reason.is_retryable()
                    && attempt < self.nodes[i].max_attempts
                    && self.stopping.is_none();
                if can_retry {
                    let delay = self.opts.backoff.delay(attempt, &mut self.rng);
                    self.state[i] = NodeState::Waiting { next_attempt: attempt + 1 };
                    self.waiting += 1;
                    out.push(Action::SetState {
                        task,
                        state: TaskState::Pending,
                        reason: Some(f.reason),
                        detail: f.detail,
                    });
                    out.push(Action::RetryAfter { task, next_attempt: attempt + 1, delay });
                } else {
                    self.any_failed = true;
                    self.set(task, NodeState::Failed, Some(f.reason), f.detail, out);
                    self.block_dependents_of(task, out);
                    if self.opts.fail_fast && self.stopping.is_none() {
                        self.stopping = Some(Stop::FailFast);
                        let detail = format!("not started: --fail-fast after `{}` failed", self.names[i]);
                        self.cancel_unstarted(&detail, out);
                    }
                }
            }
        }
    }

    fn cancel(&mut self, out: &mut Vec<Action>) {
        if matches!(self.stopping, Some(Stop::Cancel | Stop::Abort)) {
            return;
        }
        self.stopping = Some(Stop::Cancel);
        self.cancel_unstarted("run cancelled", out);
        for i in 0..self.nodes.len() {
            if let NodeState::Running { .. } = self.state[i] {
                out.push(Action::Stop { task: i as u32 });
            }
        }
    }

    fn abort(&mut self, failure: Failure, out: &mut Vec<Action>) {
        if self.stopping == Some(Stop::Abort) {
            return;
        }
        self.stopping = Some(Stop::Abort);
        self.aborted = Some(failure.clone());
        for q in &mut self.ready {
            q.clear();
        }
        for i in 0..self.nodes.len() {
            match self.state[i] {
                NodeState::Pending | NodeState::Ready | NodeState::Waiting { .. } => {
                    if let NodeState::Waiting { .. } = self.state[i] {
                        self.waiting -= 1;
                    }
                    self.any_failed = true;
                    self.set(i as u32, NodeState::Failed, Some(failure.reason), failure.detail.clone(), out);
                }
                NodeState::Running { .. } => out.push(Action::Stop { task: i as u32 }),
                _ => {}
            }
        }
    }

    fn cancel_unstarted(&mut self, detail: &str, out: &mut Vec<Action>) {
        for q in &mut self.ready {
            q.clear();
        }
        for i in 0..self.nodes.len() {
            match self.state[i] {
                NodeState::Pending | NodeState::Ready | NodeState::Waiting { .. } => {
                    if let NodeState::Waiting { .. } = self.state[i] {
                        self.waiting -= 1;
                    }
                    self.set(
                        i as u32,
                        NodeState::Cancelled,
                        Some(Reason::Cancelled),
                        Some(detail.into()),
                        out,
                    );
                }
                _ => {}
            }
        }
    }

    /// Marks every transitive dependent of `failed` that has not finished as blocked.
    fn block_dependents_of(&mut self, failed: u32, out: &mut Vec<Action>) {
        let detail = format!("dependency `{}` failed", self.names[failed as usize]);
        let mut stack: Vec<u32> = self.dependents[failed as usize].clone();
        while let Some(t) = stack.pop() {
            let s = self.state[t as usize];
            if s.is_terminal() || matches!(s, NodeState::Running { .. }) {
                continue;
            }
            if s == NodeState::Ready {
                let q = &mut self.ready[self.nodes[t as usize].agent as usize];
                q.retain(|&x| x != t);
            }
            if let NodeState::Waiting { .. } = s {
                self.waiting -= 1;
            }
            self.set(t, NodeState::Blocked, Some(Reason::DependencyFailed), Some(detail.clone()), out);
            stack.extend_from_slice(&self.dependents[t as usize]);
        }
    }

    fn make_ready(&mut self, task: u32, out: &mut Vec<Action>) {
        if self.stopping.is_some() {
            return;
        }
        self.set(task, NodeState::Ready, None, None, out);
        self.ready[self.nodes[task as usize].agent as usize].push_back(task);
    }

    fn set(
        &mut self,
        task: u32,
        s: NodeState,
        reason: Option<Reason>,
        detail: Option<String>,
        out: &mut Vec<Action>,
    ) {
        self.state[task as usize] = s;
        out.push(Action::SetState { task, state: self.state_of(task), reason, detail });
    }

    /// Starts ready tasks, lowest plan index first among agents with free capacity.
    fn fill(&mut self, out: &mut Vec<Action>) {
        if self.stopping.is_some() {
            return;
        }
        while self.running < self.opts.concurrency {
            let mut best: Option<(u32, usize)> = None;
            for (agent, q) in self.ready.iter().enumerate() {
                let Some(&head) = q.front() else { continue };
                let limit = self.opts.agent_limits.get(agent).copied().flatten();
                if limit.is_some_and(|l| self.running_per_agent[agent] >= l) {
                    continue;
                }
                if best.is_none_or(|(b, _)| head < b) {
                    best = Some((head, agent));
                }
            }
            let Some((task, agent)) = best else { break };
            self.ready[agent].pop_front();
            let i = task as usize;
            self.attempts[i] += 1;
            let attempt = self.attempts[i];
            self.running += 1;
            self.running_per_agent[agent] += 1;
            self.set(task, NodeState::Running { attempt }, None, None, out);
            out.push(Action::Start { task, attempt });
        }
    }

    fn check_finished(&mut self, out: &mut Vec<Action>) {
        if self.finished || self.running > 0 || self.waiting > 0 {
            return;
        }
        if self.ready.iter().any(|q| !q.is_empty()) {
            return;
        }
        // Tasks still pending here can never become ready (a cancel or fail-fast stopped them).
        self.finished = true;
        let state = if self.stopping == Some(Stop::Abort) {
            RunState::Failed
        } else if self.stopping == Some(Stop::Cancel) {
            RunState::Cancelled
        } else if self.any_failed || self.state.iter().any(|s| *s != NodeState::Succeeded) {
            RunState::Failed
        } else {
            RunState::Succeeded
        };
        out.push(Action::Finished(state));
    }
}

/// Builds scheduler nodes from a validated plan; returns the nodes and the agent table.
pub fn nodes_for(plan: &Plan) -> (Vec<Node>, Vec<String>) {
    let index: HashMap<&str, u32> =
        plan.tasks.iter().enumerate().map(|(i, t)| (t.id.as_str(), i as u32)).collect();
    let mut agents: Vec<String> = Vec::new();
    let nodes = plan
        .tasks
        .iter()
        .map(|t| {
            let agent = match agents.iter().position(|a| *a == t.agent) {
                Some(p) => p,
                None => {
                    agents.push(t.agent.clone());
                    agents.len() - 1
                }
            } as u16;
            Node {
                deps: t.depends.iter().map(|d| index[d.as_str()]).collect(),
                agent,
                max_attempts: 1 + t.retries,
            }
        })
        .collect();
    (nodes, agents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(concurrency: usize) -> Options {
        Options {
            concurrency,
            agent_limits: vec![],
            fail_fast: false,
            backoff: Backoff {
                initial: Duration::from_millis(10),
                factor: 2.0,
                max: Duration::from_secs(1),
                jitter: 0.0,
            },
            seed: 1,
        }
    }

    fn node(deps: &[u32], max_attempts: u32) -> Node {
        Node { deps: deps.to_vec(), agent: 0, max_attempts }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("t{i}")).collect()
    }

    fn starts(actions: &[Action]) -> Vec<(u32, u32)> {
        actions
            .iter()
            .filter_map(
                |a| if let Action::Start { task, attempt } = a { Some((*task, *attempt)) } else { None },
            )
            .collect()
    }

    fn fail(reason: Reason) -> Result<(), Failure> {
        Err(Failure { reason, detail: None })
    }

    #[test]
    fn diamond_runs_branches_in_parallel() {
        // a -> (b, c) -> d
        let mut s = Scheduler::new(
            vec![node(&[], 1), node(&[0], 1), node(&[0], 1), node(&[1, 2], 1)],
            names(4),
            opts(4),
        );
        let mut out = vec![];
        s.start(&mut out);
        assert_eq!(starts(&out), vec![(0, 1)]);
        out.clear();
        s.handle(Input::AttemptEnded { task: 0, attempt: 1, outcome: Ok(()) }, &mut out);
        assert_eq!(starts(&out), vec![(1, 1), (2, 1)]);
        out.clear();
        s.handle(Input::AttemptEnded { task: 1, attempt: 1, outcome: Ok(()) }, &mut out);
        assert!(starts(&out).is_empty());
        s.handle(Input::AttemptEnded { task: 2, attempt: 1, outcome: Ok(()) }, &mut out);
        assert_eq!(starts(&out), vec![(3, 1)]);
        out.clear();
        s.handle(Input::AttemptEnded { task: 3, attempt: 1, outcome: Ok(()) }, &mut out);
        assert_eq!(out.last(), Some(&Action::Finished(RunState::Succeeded)));
    }

    #[test]
    fn failure_blocks_transitive_dependents_and_names_the_failed_task() {
        // a -> b -> c ; d independent
        let mut s =
            Scheduler::new(vec![node(&[], 1), node(&[0], 1), node(&[1], 1), node(&[], 1)], names(4), opts(4));
        let mut out = vec![];
        s.start(&mut out);
        out.clear();
        s.handle(Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::ExitCode) }, &mut out);
        let blocked: Vec<_> = out
            .iter()
            .filter_map(|a| match a {
                Action::SetState { task, state: TaskState::Blocked, reason, detail } => {
                    assert_eq!(*reason, Some(Reason::DependencyFailed));
                    assert_eq!(detail.as_deref(), Some("dependency `t0` failed"));
                    Some(*task)
                }
                _ => None,
            })
            .collect();
        assert_eq!(blocked.len(), 2);
        assert_eq!(s.state_of(3), TaskState::Running, "independent branch keeps going");
        out.clear();
        s.handle(Input::AttemptEnded { task: 3, attempt: 1, outcome: Ok(()) }, &mut out);
        assert_eq!(out.last(), Some(&Action::Finished(RunState::Failed)));
    }

    #[test]
    fn fail_fast_stops_starting_new_tasks() {
        let mut o = opts(1);
        o.fail_fast = true;
        let mut s = Scheduler::new(vec![node(&[], 1), node(&[], 1), node(&[], 1)], names(3), o);
        let mut out = vec![];
        s.start(&mut out);
        assert_eq!(starts(&out), vec![(0, 1)]);
        out.clear();
        s.handle(Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Timeout) }, &mut out);
        assert!(starts(&out).is_empty());
        assert_eq!(s.state_of(1), TaskState::Cancelled);
        assert_eq!(out.last(), Some(&Action::Finished(RunState::Failed)));
    }

    #[test]
    fn retries_with_backoff_then_fails() {
        let mut s = Scheduler::new(vec![node(&[], 3)], names(1), opts(1));
        let mut out = vec![];
        s.start(&mut out);
        for attempt in 1..=3 {
            out.clear();
            s.handle(Input::AttemptEnded { task: 0, attempt, outcome: fail(Reason::ExitCode) }, &mut out);
            if attempt < 3 {
                let delay = out.iter().find_map(|a| match a {
                    Action::RetryAfter { delay, next_attempt, .. } => {
                        assert_eq!(*next_attempt, attempt + 1);
                        Some(*delay)
                    }
                    _ => None,
                });
                assert_eq!(delay, Some(Duration::from_millis(10 * 2u64.pow(attempt - 1))));
                out.clear();
                s.handle(Input::RetryDue { task: 0 }, &mut out);
                assert_eq!(starts(&out), vec![(0, attempt + 1)]);
            }
        }
        assert_eq!(s.state_of(0), TaskState::Failed);
        assert_eq!(out.last(), Some(&Action::Finished(RunState::Failed)));
    }

    #[test]
    fn spawn_errors_are_not_retried() {
        let mut s = Scheduler::new(vec![node(&[], 3)], names(1), opts(1));
        let mut out = vec![];
        s.start(&mut out);
        s.handle(Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::SpawnError) }, &mut out);
        assert_eq!(s.state_of(0), TaskState::Failed);
    }

    #[test]
    fn cancel_stops_running_and_cancels_the_rest() {
        let mut s = Scheduler::new(vec![node(&[], 1), node(&[0], 1), node(&[], 2)], names(3), opts(4));
        let mut out = vec![];
        s.start(&mut out);
        out.clear();
        s.handle(Input::Cancel, &mut out);
        let stops: Vec<_> = out.iter().filter(|a| matches!(a, Action::Stop { .. })).collect();
        assert_eq!(stops.len(), 2);
        assert_eq!(s.state_of(1), TaskState::Cancelled);
        out.clear();
        s.handle(Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Cancelled) }, &mut out);
        s.handle(Input::AttemptEnded { task: 2, attempt: 1, outcome: Ok(()) }, &mut out);
        assert_eq!(s.state_of(2), TaskState::Cancelled);
        assert_eq!(out.last(), Some(&Action::Finished(RunState::Cancelled)));
    }

    #[test]
    fn abort_fails_every_unfinished_task_with_its_reason_and_stops_the_running_ones() {
        // 0 running, 1 waits for 0, 2 running then succeeds, 3 waits for its retry, 4 takes 3's
        // slot, 5 has no slot
        let mut s = Scheduler::new(
            vec![node(&[], 1), node(&[0], 1), node(&[], 1), node(&[], 2), node(&[], 1), node(&[], 1)],
            names(6),
            opts(3),
        );
        let mut out = vec![];
        s.start(&mut out);
        assert_eq!(starts(&out), vec![(0, 1), (2, 1), (3, 1)]);
        out.clear();
        s.handle(Input::AttemptEnded { task: 3, attempt: 1, outcome: fail(Reason::ExitCode) }, &mut out);
        assert_eq!(starts(&out), vec![(4, 1)]);
        assert_eq!(s.state_of(3), TaskState::Pending, "waiting for its retry");
        out.clear();
        let lost = Failure { reason: Reason::LeaseLost, detail: Some("store gone".into()) };
        s.handle(Input::Abort(lost.clone()), &mut out);
        assert!(starts(&out).is_empty(), "nothing new starts");
        let stops: Vec<_> = out.iter().filter(|a| matches!(a, Action::Stop { .. })).collect();
        assert_eq!(stops, [&Action::Stop { task: 0 }, &Action::Stop { task: 2 }, &Action::Stop { task: 4 }]);
        for t in [1, 3, 5] {
            assert_eq!(s.state_of(t), TaskState::Failed, "task {t}");
        }
        assert!(out.contains(&Action::SetState {
            task: 5,
            state: TaskState::Failed,
            reason: Some(Reason::LeaseLost),
            detail: Some("store gone".into()),
        }));
        // A cancel now changes nothing; a retry timer that fires late starts nothing.
        out.clear();
        s.handle(Input::Cancel, &mut out);
        s.handle(Input::RetryDue { task: 3 }, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // The stopped attempts fail with the abort's reason; one that succeeded meanwhile stays so.
        s.handle(Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Cancelled) }, &mut out);
        assert_eq!(
            out[0],
            Action::SetState {
                task: 0,
                state: TaskState::Failed,
                reason: Some(Reason::LeaseLost),
                detail: Some("store gone".into())
            }
        );
        s.handle(Input::AttemptEnded { task: 4, attempt: 1, outcome: fail(Reason::ExitCode) }, &mut out);
        assert_eq!(s.state_of(4), TaskState::Failed);
        s.handle(Input::AttemptEnded { task: 2, attempt: 1, outcome: Ok(()) }, &mut out);
        assert_eq!(s.state_of(2), TaskState::Succeeded);
        assert_eq!(s.state_of(1), TaskState::Failed, "its dependent stays failed, not blocked");
        assert_eq!(out.last(), Some(&Action::Finished(RunState::Failed)));
    }

    #[test]
    fn abort_after_a_cancel_still_ends_failed_not_cancelled() {
        let mut s = Scheduler::new(vec![node(&[], 1), node(&[0], 1)], names(2), opts(2));
        let mut out = vec![];
        s.start(&mut out);
        s.handle(Input::Cancel, &mut out);
        assert_eq!(s.state_of(1), TaskState::Cancelled);
        out.clear();
        let lost = Failure { reason: Reason::LeaseLost, detail: None };
        s.handle(Input::Abort(lost), &mut out);
        s.handle(Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Cancelled) }, &mut out);
        assert_eq!(s.state_of(0), TaskState::Failed);
        assert_eq!(s.state_of(1), TaskState::Cancelled, "what the cancel decided stays");
        assert_eq!(out.last(), Some(&Action::Finished(RunState::Failed)));
    }

    #[test]
    fn per_agent_limit_is_respected() {
        let mut o = opts(4);
        o.agent_limits = vec![Some(1), None];
        let nodes = vec![node(&[], 1), node(&[], 1), Node { deps: vec![], agent: 1, max_attempts: 1 }];
        let mut s = Scheduler::new(nodes, names(3), o);
        let mut out = vec![];
        s.start(&mut out);
        assert_eq!(starts(&out), vec![(0, 1), (2, 1)]);
    }

    #[test]
    fn resume_keeps_successes_and_reruns_interrupted_attempts() {
        let nodes = vec![node(&[], 1), node(&[0], 1), node(&[1], 1)];
        let restored = [
            Restored { state: TaskState::Succeeded, attempts: 1 },
            Restored { state: TaskState::Running, attempts: 1 },
            Restored { state: TaskState::Pending, attempts: 0 },
        ];
        let mut s = Scheduler::restore(nodes, names(3), opts(2), &restored, false);
        let mut out = vec![];
        s.start(&mut out);
        assert_eq!(starts(&out), vec![(1, 2)], "the interrupted task runs again as attempt 2");
        out.clear();
        s.handle(Input::AttemptEnded { task: 1, attempt: 2, outcome: Ok(()) }, &mut out);
        assert_eq!(starts(&out), vec![(2, 1)]);
    }

    #[test]
    fn resume_blocks_dependents_of_failures() {
        let nodes = vec![node(&[], 1), node(&[0], 1)];
        let restored = [
            Restored { state: TaskState::Failed, attempts: 1 },
            Restored { state: TaskState::Pending, attempts: 0 },
        ];
        let mut s = Scheduler::restore(nodes, names(2), opts(2), &restored, false);
        let mut out = vec![];
        s.start(&mut out);
        assert_eq!(s.state_of(1), TaskState::Blocked);
        assert_eq!(out.last(), Some(&Action::Finished(RunState::Failed)));
    }

    /// Random DAG: each task depends on a few earlier ones.
    fn dag() -> impl Strategy<Value = Vec<Vec<u32>>> {
        (1usize..40).prop_flat_map(|n| {
            (0..n)
                .map(|i| {
                    if i == 0 {
                        Just(vec![]).boxed()
                    } else {
                        proptest::collection::btree_set(0..i as u32, 0..3.min(i) + 1)
                            .prop_map(|s| s.into_iter().collect::<Vec<_>>())
                            .boxed()
                    }
                })
                .collect::<Vec<_>>()
        })
    }

    proptest! {
        /// Whenever an abort comes, nothing starts after it, every task ends exactly once, no
        /// task is cancelled (an abort is no user cancel) and the run fails.
        #[test]
        fn an_abort_at_any_moment_fails_what_did_not_finish(
            deps in dag(),
            concurrency in 1usize..6,
            abort_at in 0usize..60,
            fail_mask in proptest::collection::vec(0u8..3, 40),
        ) {
            let n = deps.len();
            let nodes: Vec<Node> = deps.iter().map(|d| Node { deps: d.clone(), agent: 0, max_attempts: 2 }).collect();
            let mut s = Scheduler::new(nodes, names(n), opts(concurrency));
            let mut out = vec![];
            s.start(&mut out);
            let mut running: Vec<(u32, u32)> = vec![];
            let mut ended = vec![None::<TaskState>; n];
            let mut aborted = false;
            for step in 0.. {
                let mut due = vec![];
                for a in out.drain(..) {
                    match a {
                        Action::Start { task, attempt } => {
                            prop_assert!(!aborted, "started after the abort");
                            running.push((task, attempt));
                        }
                        Action::SetState { task, state, reason, .. } if state.is_terminal() => {
                            prop_assert!(ended[task as usize].is_none(), "ended twice");
                            prop_assert_ne!(state, TaskState::Cancelled);
                            if aborted && state == TaskState::Failed {
                                prop_assert_eq!(reason, Some(Reason::LeaseLost));
                            }
                            ended[task as usize] = Some(state);
                        }
                        Action::RetryAfter { task, .. } => due.push(task),
                        _ => {}
                    }
                }
                for task in due {
                    s.handle(Input::RetryDue { task }, &mut out);
                }
                if !out.is_empty() {
                    continue;
                }
                if step >= abort_at && !aborted {
                    aborted = true;
                    s.handle(Input::Abort(Failure { reason: Reason::LeaseLost, detail: None }), &mut out);
                    continue;
                }
                let Some((task, attempt)) = running.pop() else { break };
                let fails = fail_mask[task as usize % fail_mask.len()] as u32 > attempt;
                let outcome = if aborted || fails { fail(Reason::Cancelled) } else { Ok(()) };
                s.handle(Input::AttemptEnded { task, attempt, outcome }, &mut out);
            }
            if aborted {
                prop_assert!(s.is_finished());
                prop_assert!(ended.iter().all(Option::is_some), "every task ends");
            }
        }

        #[test]
        fn random_dags_respect_order_limits_and_failures(
            deps in dag(),
            concurrency in 1usize..6,
            fail_mask in proptest::collection::vec(0u8..4, 40),
            retries in 0u32..3,
        ) {
            let n = deps.len();
            let nodes: Vec<Node> = deps.iter().map(|d| Node { deps: d.clone(), agent: 0, max_attempts: 1 + retries }).collect();
            let mut s = Scheduler::new(nodes, names(n), opts(concurrency));
            let mut out = vec![];
            s.start(&mut out);
            let mut running: Vec<(u32, u32)> = vec![];
            let mut finished_state = vec![None::<TaskState>; n];
            let mut started_attempts = vec![0u32; n];
            let mut step = 0usize;
            loop {
                let mut due = vec![];
                for a in out.drain(..) {
                    match a {
                        Action::Start { task, attempt } => {
                            for &d in &deps[task as usize] {
                                prop_assert_eq!(finished_state[d as usize], Some(TaskState::Succeeded), "started before dep succeeded");
                            }
                            prop_assert!(finished_state[task as usize].is_none(), "started a finished task");
                            started_attempts[task as usize] += 1;
                            prop_assert_eq!(started_attempts[task as usize], attempt);
                            prop_assert!(attempt <= 1 + retries);
                            running.push((task, attempt));
                            prop_assert!(running.len() <= concurrency, "concurrency exceeded");
                        }
                        Action::SetState { task, state, .. } if state.is_terminal() => {
                            prop_assert!(finished_state[task as usize].is_none(), "finished twice");
                            finished_state[task as usize] = Some(state);
                        }
                        Action::RetryAfter { task, .. } => due.push(task),
                        _ => {}
                    }
                }
                // Backoff elapses at once here: deliver the retries before anything else.
                for task in due {
                    s.handle(Input::RetryDue { task }, &mut out);
                }
                if out.is_empty() {
                    if running.is_empty() { break; }
                    // finish the oldest running attempt; task i fails while fail_mask says so
                    let (task, attempt) = running.remove(step % running.len());
                    let fails = fail_mask[task as usize % fail_mask.len()] as u32 > attempt;
                    let outcome = if fails { fail(Reason::ExitCode) } else { Ok(()) };
                    s.handle(Input::AttemptEnded { task, attempt, outcome }, &mut out);
                    step += 1;
                }
            }
            prop_assert!(s.is_finished());
            for i in 0..n {
                let st = finished_state[i].expect("every task ends");
                if st == TaskState::Blocked {
                    prop_assert!(deps[i].iter().any(|&d| finished_state[d as usize] != Some(TaskState::Succeeded)));
                    prop_assert_eq!(started_attempts[i], 0, "blocked task never runs");
                }
                if st == TaskState::Succeeded || st == TaskState::Failed {
                    prop_assert!(started_attempts[i] >= 1);
                }
            }
        }
    }
}
