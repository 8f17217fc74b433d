//! The scheduler's unit and property tests: fed inputs, checked actions.

use super::*;
use crate::backoff::Backoff;
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
        .filter_map(|a| if let Action::Start { task, attempt } = a { Some((*task, *attempt)) } else { None })
        .collect()
}

fn fail(reason: Reason) -> Result<(), Failure> {
    Err(Failure { reason, detail: None })
}

#[test]
fn diamond_runs_branches_in_parallel() {
    // a -> (b, c) -> d
    let mut s =
        Scheduler::new(vec![node(&[], 1), node(&[0], 1), node(&[0], 1), node(&[1, 2], 1)], names(4), opts(4));
    let mut out = vec![];
    s.start(&mut out);
    assert_eq!(starts(&out), vec![(0, 1)]);
    out.clear();
    s.handle(Input::AttemptEnded { task: 0, attempt: 1, outcome: Ok(()), retry_after: None }, &mut out);
    assert_eq!(starts(&out), vec![(1, 1), (2, 1)]);
    out.clear();
    s.handle(Input::AttemptEnded { task: 1, attempt: 1, outcome: Ok(()), retry_after: None }, &mut out);
    assert!(starts(&out).is_empty());
    s.handle(Input::AttemptEnded { task: 2, attempt: 1, outcome: Ok(()), retry_after: None }, &mut out);
    assert_eq!(starts(&out), vec![(3, 1)]);
    out.clear();
    s.handle(Input::AttemptEnded { task: 3, attempt: 1, outcome: Ok(()), retry_after: None }, &mut out);
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
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::ExitCode), retry_after: None },
        &mut out,
    );
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
    s.handle(Input::AttemptEnded { task: 3, attempt: 1, outcome: Ok(()), retry_after: None }, &mut out);
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
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Timeout), retry_after: None },
        &mut out,
    );
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
        s.handle(
            Input::AttemptEnded { task: 0, attempt, outcome: fail(Reason::ExitCode), retry_after: None },
            &mut out,
        );
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
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::SpawnError), retry_after: None },
        &mut out,
    );
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
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Cancelled), retry_after: None },
        &mut out,
    );
    s.handle(Input::AttemptEnded { task: 2, attempt: 1, outcome: Ok(()), retry_after: None }, &mut out);
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
    s.handle(
        Input::AttemptEnded { task: 3, attempt: 1, outcome: fail(Reason::ExitCode), retry_after: None },
        &mut out,
    );
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
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Cancelled), retry_after: None },
        &mut out,
    );
    assert_eq!(
        out[0],
        Action::SetState {
            task: 0,
            state: TaskState::Failed,
            reason: Some(Reason::LeaseLost),
            detail: Some("store gone".into())
        }
    );
    s.handle(
        Input::AttemptEnded { task: 4, attempt: 1, outcome: fail(Reason::ExitCode), retry_after: None },
        &mut out,
    );
    assert_eq!(s.state_of(4), TaskState::Failed);
    s.handle(Input::AttemptEnded { task: 2, attempt: 1, outcome: Ok(()), retry_after: None }, &mut out);
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
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Cancelled), retry_after: None },
        &mut out,
    );
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
    s.handle(Input::AttemptEnded { task: 1, attempt: 2, outcome: Ok(()), retry_after: None }, &mut out);
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
            s.handle(Input::AttemptEnded { task, attempt, outcome, retry_after: None }, &mut out);
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
                s.handle(Input::AttemptEnded { task, attempt, outcome, retry_after: None }, &mut out);
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

#[test]
fn a_fallback_to_the_next_model_spends_no_retry_and_waits_no_backoff() {
    // One task, no retries: two fallbacks, then a plain failure ends it.
    let mut s = Scheduler::new(vec![node(&[], 1)], vec!["t".into()], opts(1));
    let mut out = Vec::new();
    s.start(&mut out);
    assert!(out.contains(&Action::Start { task: 0, attempt: 1 }));
    let limited = Failure { reason: Reason::ExitCode, detail: Some("rate_limited".into()) };
    for attempt in 1..=2 {
        out.clear();
        s.handle(Input::FellBack { task: 0, attempt, failure: limited.clone() }, &mut out);
        assert!(
            out.contains(&Action::RetryAfter { task: 0, next_attempt: attempt + 1, delay: Duration::ZERO }),
            "{out:?}"
        );
        out.clear();
        s.handle(Input::RetryDue { task: 0 }, &mut out);
        assert!(out.contains(&Action::Start { task: 0, attempt: attempt + 1 }), "{out:?}");
    }
    out.clear();
    s.handle(Input::AttemptEnded { task: 0, attempt: 3, outcome: Err(limited), retry_after: None }, &mut out);
    assert!(out.iter().any(|a| matches!(a, Action::SetState { state: TaskState::Failed, .. })), "{out:?}");
}

#[test]
fn a_retry_waits_at_least_what_the_provider_asked_and_says_why() {
    let mut s = Scheduler::new(vec![node(&[], 3)], names(1), opts(1));
    let mut out = vec![];
    s.start(&mut out);
    out.clear();
    let limited = Failure { reason: Reason::ExitCode, detail: Some("429 from the provider".into()) };
    let asked = Some(Duration::from_secs(7));
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 1, outcome: Err(limited), retry_after: asked },
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            Action::SetState {
                task: 0,
                state: TaskState::Pending,
                reason: Some(Reason::ExitCode),
                detail: Some("attempt 1 failed (exit_code): 429 from the provider; retrying".into()),
            },
            Action::RetryAfter { task: 0, next_attempt: 2, delay: Duration::from_secs(7) },
        ]
    );
    // A backoff longer than what was asked stands.
    out.clear();
    s.handle(Input::RetryDue { task: 0 }, &mut out);
    out.clear();
    let short = Some(Duration::from_millis(1));
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 2, outcome: fail(Reason::ExitCode), retry_after: short },
        &mut out,
    );
    assert!(
        out.contains(&Action::RetryAfter { task: 0, next_attempt: 3, delay: Duration::from_millis(20) }),
        "{out:?}"
    );
}

#[test]
fn an_abort_fails_what_has_not_started_and_stops_what_runs() {
    let mut s = Scheduler::new(vec![node(&[], 1), node(&[0], 1), node(&[], 2)], names(3), opts(1));
    let mut out = vec![];
    s.start(&mut out);
    out.clear();
    let lost = Failure { reason: Reason::LeaseLost, detail: Some("the store is gone".into()) };
    s.handle(Input::Abort(lost.clone()), &mut out);
    assert!(out.contains(&Action::Stop { task: 0 }));
    for task in [1, 2] {
        assert!(out.contains(&Action::SetState {
            task,
            state: TaskState::Failed,
            reason: Some(Reason::LeaseLost),
            detail: lost.detail.clone()
        }));
    }
    out.clear();
    s.handle(
        Input::AttemptEnded { task: 0, attempt: 1, outcome: fail(Reason::Cancelled), retry_after: None },
        &mut out,
    );
    assert_eq!(s.state_of(0), TaskState::Failed, "stopped by the abort: failed for its reason");
    assert_eq!(out.last(), Some(&Action::Finished(RunState::Failed)));
}

#[test]
fn settling_an_outcome() {
    let cancelled = Failure { reason: Reason::Cancelled, detail: Some("run cancelled".into()) };
    let crashed = Failure { reason: Reason::ExitCode, detail: Some("exit 1".into()) };
    let lost = |why: &str| Err(Failure { reason: Reason::LeaseLost, detail: Some(why.into()) });
    let exhausted = |why: &str| Err(Failure { reason: Reason::ModelsExhausted, detail: Some(why.into()) });
    // A stop because the store was lost is no user's cancel.
    assert_eq!(settle(Err(cancelled.clone()), Some("store gone"), None), lost("store gone"));
    assert_eq!(settle(Err(cancelled.clone()), None, Some("x".into())), Err(cancelled.clone()));
    // The gateway's reason wins over the agent's giving up, but never over a cancel.
    assert_eq!(settle(Err(crashed.clone()), None, Some("all cooling".into())), exhausted("all cooling"));
    assert_eq!(settle(Err(crashed.clone()), Some("store gone"), None), Err(crashed));
    assert_eq!(settle(Ok(()), Some("store gone"), Some("x".into())), Ok(()));
}
