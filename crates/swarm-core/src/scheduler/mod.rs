//! The scheduler: a pure, synchronous state machine over the task graph. It is fed inputs
//! (attempt ended, retry due, cancel) and answers with actions (start, set state, retry later,
//! stop, finished). No clocks, processes or stores live here: DAG readiness, concurrency limits,
//! retries with backoff, fail-fast, blocking and cancellation are all decided by `handle`.

mod inputs;

pub use inputs::{nodes_for, settle, Action, Failure, Input, Node, Options, Restored};

use crate::state::{Reason, RunState, TaskState};
use std::collections::VecDeque;
use std::time::Duration;

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

/// How a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// After the backoff, and never sooner than this.
    After(Duration),
    /// At once, on another model, without using up one of the task's retries.
    OnAnotherModel,
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
            Input::AttemptEnded { task, attempt, outcome, retry_after } => {
                self.attempt_ended(task, attempt, outcome, Retry::After(retry_after.unwrap_or_default()), out)
            }
            Input::FellBack { task, attempt, failure } => {
                self.attempt_ended(task, attempt, Err(failure), Retry::OnAnotherModel, out)
            }
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
        retry: Retry,
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
            Err(f) => self.attempt_failed(task, attempt, f, retry, out),
        }
    }

    /// A failed attempt: retried after the backoff (never sooner than the provider asked; at
    /// once, and without using up a retry, on another model), or the task fails and blocks its
    /// dependents.
    fn attempt_failed(&mut self, task: u32, attempt: u32, f: Failure, retry: Retry, out: &mut Vec<Action>) {
        let i = task as usize;
        let fell_back = retry == Retry::OnAnotherModel;
        if fell_back && self.stopping.is_none() {
            // A fallback to the next model is no retry: it never uses one up.
            self.nodes[i].max_attempts += 1;
        }
        let can_retry = (f.reason.is_retryable() || fell_back)
            && attempt < self.nodes[i].max_attempts
            && self.stopping.is_none();
        if !can_retry {
            self.any_failed = true;
            self.set(task, NodeState::Failed, Some(f.reason), f.detail, out);
            self.block_dependents_of(task, out);
            if self.opts.fail_fast && self.stopping.is_none() {
                self.stopping = Some(Stop::FailFast);
                let detail = format!("not started: --fail-fast after `{}` failed", self.names[i]);
                self.cancel_unstarted(
                    NodeState::Cancelled,
                    &Failure { reason: Reason::Cancelled, detail: Some(detail) },
                    out,
                );
            }
            return;
        }
        let delay = match retry {
            Retry::OnAnotherModel => Duration::ZERO,
            Retry::After(asked) => self.opts.backoff.delay(attempt, &mut self.rng).max(asked),
        };
        self.state[i] = NodeState::Waiting { next_attempt: attempt + 1 };
        self.waiting += 1;
        let detail = format!(
            "attempt {attempt} failed ({}){}; retrying",
            f.reason.as_str(),
            f.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        );
        out.push(Action::SetState {
            task,
            state: TaskState::Pending,
            reason: Some(f.reason),
            detail: Some(detail),
        });
        out.push(Action::RetryAfter { task, next_attempt: attempt + 1, delay });
    }

    fn cancel(&mut self, out: &mut Vec<Action>) {
        if matches!(self.stopping, Some(Stop::Cancel | Stop::Abort)) {
            return;
        }
        self.stopping = Some(Stop::Cancel);
        let why = Failure { reason: Reason::Cancelled, detail: Some("run cancelled".into()) };
        self.cancel_unstarted(NodeState::Cancelled, &why, out);
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
        if self.cancel_unstarted(NodeState::Failed, &failure, out) > 0 {
            self.any_failed = true;
        }
        for i in 0..self.nodes.len() {
            if let NodeState::Running { .. } = self.state[i] {
                out.push(Action::Stop { task: i as u32 });
            }
        }
    }

    /// Ends every task that has not started (pending, ready or waiting for a retry) in `end`
    /// for `why`; how many.
    fn cancel_unstarted(&mut self, end: NodeState, why: &Failure, out: &mut Vec<Action>) -> usize {
        for q in &mut self.ready {
            q.clear();
        }
        let mut ended = 0;
        for i in 0..self.nodes.len() {
            match self.state[i] {
                NodeState::Pending | NodeState::Ready | NodeState::Waiting { .. } => {
                    if let NodeState::Waiting { .. } = self.state[i] {
                        self.waiting -= 1;
                    }
                    self.set(i as u32, end, Some(why.reason), why.detail.clone(), out);
                    ended += 1;
                }
                _ => {}
            }
        }
        ended
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

#[cfg(test)]
mod tests;
