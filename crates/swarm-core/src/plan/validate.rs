//! Checks shared by the markdown and JSON forms: ids, agents, tiers, dependencies and cycles.
//! Every check reports into the same [`Sink`], so all problems come out at once.

use super::model::{AgentKind, Task, Workdir};
use super::PlanContext;
use crate::diagnostic::{closest, Sink};
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::time::Duration;

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<T> Spanned<T> {
    pub(crate) fn new(value: T, span: Range<usize>) -> Self {
        Spanned { value, span }
    }
}

/// A task as written (defaults applied), before the checks that need the whole plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub id: Spanned<String>,
    pub title: String,
    pub agent: Option<Spanned<String>>,
    /// The agent was inherited from `defaults`, so its span is not in the task itself.
    pub agent_from_defaults: bool,
    pub model: Option<String>,
    pub tier: Option<Spanned<i64>>,
    pub depends: Vec<Spanned<String>>,
    pub timeout: Option<Duration>,
    pub stall: Option<Duration>,
    pub retries: u32,
    pub check: Option<String>,
    pub command: Option<String>,
    pub paths: Vec<String>,
    pub workdir: Option<Workdir>,
    pub role: Option<Spanned<String>>,
    pub handoff: Option<crate::team::Handoff>,
    pub on_conflict: Option<super::model::OnConflict>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub prompt: String,
}

impl Default for Spanned<String> {
    fn default() -> Self {
        Spanned::new(String::new(), 0..0)
    }
}

/// `[a-z0-9][a-z0-9_-]{0,63}`
pub(crate) fn is_valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    (1..=64).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

pub(crate) fn report_bad_id(sink: &mut Sink, id: &Spanned<String>) {
    sink.error(id.span.clone(), format!("bad task id `{}`", id.value))
        .label("bad id")
        .help("an id is 1 to 64 characters of `a-z`, `0-9`, `_` and `-`, starting with a letter or digit");
}

/// At most this many NUL bytes are reported (a binary file would have thousands).
const MAX_NUL_REPORTS: usize = 20;

/// A NUL in a plan would reach a process as part of an argument or environment variable
/// (command, check, prompt, brief, model, namespace …), which cannot hold one; the attempt would
/// fail to start long after `swarm plan check` said the plan was fine.
pub(crate) fn report_nul(sink: &mut Sink, span: Range<usize>) {
    sink.error(span, "NUL byte in the plan")
        .label("NUL (\\0)")
        .help("plan text is passed to processes as arguments and environment variables, which cannot hold NUL bytes");
}

/// Every raw NUL byte of the source (up to [`MAX_NUL_REPORTS`]).
pub(crate) fn report_nul_bytes(src: &str, sink: &mut Sink) {
    for (i, _) in src.match_indices('\0').take(MAX_NUL_REPORTS) {
        report_nul(sink, i..i + 1);
    }
}

/// What the whole-plan checks need to know about the form the plan was written in.
pub(crate) struct Form<'a> {
    /// Where to point when there is no task at all, and what to suggest.
    pub no_tasks: Range<usize>,
    pub no_tasks_help: &'a str,
    /// The defaults could not be read (broken front matter): a missing agent may be their fault,
    /// so it is not reported again for every task.
    pub defaults_broken: bool,
}

/// Runs the whole-plan checks and turns drafts into tasks (in the same order).
pub(crate) fn finish(drafts: Vec<Draft>, ctx: &PlanContext, sink: &mut Sink, form: Form) -> Vec<Task> {
    if drafts.is_empty() {
        sink.error(form.no_tasks, "the plan has no tasks").help(form.no_tasks_help.to_string());
        return Vec::new();
    }
    let index = check_ids(&drafts, sink);
    check_agents(&drafts, ctx, sink, form.defaults_broken);
    check_tiers(&drafts, sink);
    check_roles(&drafts, ctx, sink);
    check_providers(&drafts, ctx, sink);
    let edges = dependency_edges(&drafts, &index, sink);
    report_cycles(&drafts, &edges, sink);
    drafts.into_iter().map(into_task).collect()
}

/// Ids: validity and uniqueness. Returns each id's task; dependencies resolve to the first task
/// with that id.
fn check_ids<'d>(drafts: &'d [Draft], sink: &mut Sink) -> HashMap<&'d str, usize> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        if !is_valid_id(&d.id.value) {
            report_bad_id(sink, &d.id);
        }
        if let Some(&first) = index.get(d.id.value.as_str()) {
            let (line, _) = sink.line_col(drafts[first].id.span.start);
            sink.error(
                d.id.span.clone(),
                format!("duplicate task id `{}` (first defined at line {line})", d.id.value),
            )
            .label("duplicate id")
            .help("task ids must be unique within a plan");
        } else {
            index.insert(d.id.value.as_str(), i);
        }
    }
    index
}

fn check_tiers(drafts: &[Draft], sink: &mut Sink) {
    for tier in drafts.iter().filter_map(|d| d.tier.as_ref()) {
        if !(1..=7).contains(&tier.value) {
            sink.error(tier.span.clone(), format!("tier {} is out of range", tier.value))
                .label("expected a tier from 1 to 7");
        }
    }
}

/// Dependency edges (task -> `(target, index in depends)` of the tasks it depends on), in the
/// order written; unknown dependencies are reported.
fn dependency_edges(
    drafts: &[Draft],
    index: &HashMap<&str, usize>,
    sink: &mut Sink,
) -> Vec<Vec<(usize, usize)>> {
    let mut unknown = 0usize;
    let mut edges: Vec<Vec<(usize, usize)>> = Vec::with_capacity(drafts.len());
    for d in drafts {
        let mut out: Vec<(usize, usize)> = Vec::with_capacity(d.depends.len());
        for (k, dep) in d.depends.iter().enumerate() {
            match index.get(dep.value.as_str()) {
                Some(&t) => {
                    if !out.iter().any(|&(o, _)| o == t) {
                        out.push((t, k));
                    }
                }
                None => {
                    unknown += 1;
                    let diag = sink
                        .error(dep.span.clone(), format!("unknown dependency `{}`", dep.value))
                        .label("no task has this id");
                    // Suggestions compare against every id: only affordable for a few errors.
                    if unknown <= 20 && drafts.len() <= 20_000 {
                        if let Some(s) = closest(&dep.value, drafts.iter().map(|d| d.id.value.as_str())) {
                            diag.help(format!("did you mean `{s}`?"));
                        }
                    }
                }
            }
        }
        edges.push(out);
    }
    edges
}

/// The task a draft becomes: dependencies without repeats, `exec` for a command without agent.
fn into_task(d: Draft) -> Task {
    let mut depends: Vec<String> = Vec::with_capacity(d.depends.len());
    for dep in d.depends {
        if !depends.contains(&dep.value) {
            depends.push(dep.value);
        }
    }
    let agent = match d.agent {
        Some(a) => a.value,
        None if d.command.is_some() => AgentKind::EXEC.to_string(),
        None => String::new(),
    };
    Task {
        id: d.id.value,
        title: d.title,
        agent,
        model: d.model,
        tier: d.tier.and_then(|t| u8::try_from(t.value).ok()),
        depends,
        timeout: d.timeout,
        stall: d.stall,
        retries: d.retries,
        check: d.check,
        command: d.command,
        paths: d.paths,
        workdir: d.workdir,
        role: d.role.map(|r| r.value),
        handoff: d.handoff,
        on_conflict: d.on_conflict,
        labels: d.labels,
        prompt: d.prompt,
    }
}

/// A role must be one the context knows (`[roles.NAME]` or an agent CLI's own named agent),
/// when the context lists them.
fn check_roles(drafts: &[Draft], ctx: &PlanContext, sink: &mut Sink) {
    let Some(known) = &ctx.roles else { return };
    for role in drafts.iter().filter_map(|d| d.role.as_ref()) {
        if !known.contains(&role.value) {
            let listed = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            sink.error(role.span.clone(), format!("unknown role `{}`", role.value))
                .label(format!("known roles: {listed}"))
                .help("define it with `[roles.NAME] prompt_file = \"…\"` in swarm.toml, or as the agent's own named agent (e.g. `.opencode/agent/NAME.md`, `.claude/agents/NAME.md`)");
        }
    }
}

/// A task's `model: NAME/…` names a provider of swarm.toml (or one agents know by themselves),
/// when the context lists them: caught here, not minutes later as three different agent errors.
fn check_providers(drafts: &[Draft], ctx: &PlanContext, sink: &mut Sink) {
    let Some(declared) = ctx.providers.as_ref().filter(|p| !p.is_empty()) else { return };
    for d in drafts {
        let Some((name, _)) = d.model.as_deref().and_then(|m| m.split_once('/')) else { continue };
        if declared.iter().any(|p| p == name) || crate::config::AGENT_PROVIDERS.contains(&name) {
            continue;
        }
        let model = d.model.as_deref().unwrap_or_default();
        let diag = sink
            .error(
                d.id.span.clone(),
                format!("task `{}`: model `{model}` names no provider `{name}`", d.id.value),
            )
            .label(format!("providers in swarm.toml: {}", declared.join(", ")));
        match closest(name, declared.iter().map(String::as_str)) {
            Some(s) => diag.help(format!("did you mean `{s}/…`?")),
            None => diag.help(format!("declare it as `[providers.{name}]` in swarm.toml")),
        };
    }
}

fn check_agents(drafts: &[Draft], ctx: &PlanContext, sink: &mut Sink, defaults_broken: bool) {
    let known = || ctx.agents.iter().map(String::as_str);
    for d in drafts {
        match &d.agent {
            None if d.command.is_none() && !defaults_broken => {
                sink.error(d.id.span.clone(), format!("task `{}` has no agent", d.id.value))
                    .label("no agent for this task")
                    .help("set `agent:` in the task or `agent:` under `defaults:` in the front matter");
            }
            None => {}
            Some(agent) if !known().any(|k| k == agent.value) => {
                let names: Vec<&str> = known().collect();
                let diag = sink
                    .error(agent.span.clone(), format!("unknown agent `{}`", agent.value))
                    .label(format!("expected one of: {}", names.join(", ")));
                if let Some(s) = closest(&agent.value, names.iter().copied()) {
                    diag.help(format!("did you mean `{s}`?"));
                }
            }
            Some(agent) if AgentKind::of(&agent.value) == AgentKind::Exec && d.command.is_none() => {
                if d.agent_from_defaults {
                    sink.error(
                        d.id.span.clone(),
                        format!(
                            "task `{}` uses `agent: exec` (from defaults) but has no `command`",
                            d.id.value
                        ),
                    )
                    .label("no command for this task")
                    .help("set `command:` to the shell command to run, or another `agent:`");
                } else {
                    sink.error(agent.span.clone(), "`agent: exec` needs a `command`")
                        .label("exec runs a shell command")
                        .help("set `command:` to the shell command to run, or another `agent:`");
                }
            }
            Some(_) => {}
        }
    }
}

/// Reports one cycle per strongly connected component that has one, naming it in full
/// (`a -> b -> c -> a`, where `->` reads "depends on").
fn report_cycles(drafts: &[Draft], edges: &[Vec<(usize, usize)>], sink: &mut Sink) {
    let mut scratch = CycleScratch::new(edges.len());
    for scc in strongly_connected(edges) {
        let start = *scc.iter().min().expect("components are never empty");
        let cyclic = scc.len() > 1 || edges[start].iter().any(|&(t, _)| t == start);
        if !cyclic {
            continue;
        }
        let path = scratch.shortest_cycle(start, &scc, edges);
        let names: Vec<&str> = path.iter().map(|&i| drafts[i].id.value.as_str()).collect();
        let (_, k) = *edges[start].iter().find(|&&(t, _)| t == path[1]).expect("edge on the cycle");
        let dep = &drafts[start].depends[k];
        sink.error(dep.span.clone(), format!("dependency cycle: {}", names.join(" -> ")))
            .label(if path.len() == 2 {
                format!("`{}` depends on itself", names[0])
            } else {
                format!("`{}` depends on `{}`, which leads back to `{}`", names[0], names[1], names[0])
            })
            .help("remove one of these dependencies");
    }
}

/// Buffers reused across components, so many small cycles stay linear overall.
struct CycleScratch {
    in_scc: Vec<bool>,
    parent: Vec<usize>,
}

impl CycleScratch {
    const UNSEEN: usize = usize::MAX;

    fn new(n: usize) -> Self {
        CycleScratch { in_scc: vec![false; n], parent: vec![Self::UNSEEN; n] }
    }

    /// The shortest path `start -> ... -> start` inside one component (breadth-first search).
    fn shortest_cycle(&mut self, start: usize, scc: &[usize], edges: &[Vec<(usize, usize)>]) -> Vec<usize> {
        for &v in scc {
            self.in_scc[v] = true;
        }
        let mut queue = VecDeque::from([start]);
        let mut last = start;
        'search: while let Some(v) = queue.pop_front() {
            for &(w, _) in &edges[v] {
                if w == start {
                    last = v;
                    break 'search;
                }
                if self.in_scc[w] && self.parent[w] == Self::UNSEEN {
                    self.parent[w] = v;
                    queue.push_back(w);
                }
            }
        }
        let mut back = Vec::new();
        let mut v = last;
        while v != start {
            back.push(v);
            v = self.parent[v];
        }
        for &v in scc {
            self.in_scc[v] = false;
            self.parent[v] = Self::UNSEEN;
        }
        let mut path = Vec::with_capacity(back.len() + 2);
        path.push(start);
        path.extend(back.into_iter().rev());
        path.push(start);
        path
    }
}

/// Tarjan's algorithm, iterative so deep graphs cannot overflow the stack.
fn strongly_connected(edges: &[Vec<(usize, usize)>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut calls: Vec<(usize, usize)> = Vec::new(); // (node, next edge to look at)
    let mut next = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        calls.push((root, 0));
        while let Some(&mut (v, ref mut e)) = calls.last_mut() {
            if let Some(&(w, _)) = edges[v].get(*e) {
                *e += 1;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(p, _)) = calls.last() {
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                let mut scc = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(scc);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, pairs: &[(usize, usize)]) -> Vec<Vec<(usize, usize)>> {
        let mut g = vec![Vec::new(); n];
        for &(a, b) in pairs {
            let k = g[a].len();
            g[a].push((b, k));
        }
        g
    }

    #[test]
    fn ids() {
        for ok in ["a", "0", "a-b_c", &"x".repeat(64)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "-a", "_a", "A", "a b", "é", &"x".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn finds_components_and_cycles() {
        let g = graph(5, &[(0, 1), (1, 2), (2, 0), (3, 3), (4, 0)]);
        let mut sccs: Vec<Vec<usize>> = strongly_connected(&g)
            .into_iter()
            .map(|mut s| {
                s.sort();
                s
            })
            .collect();
        sccs.sort();
        assert_eq!(sccs, vec![vec![0, 1, 2], vec![3], vec![4]]);
        assert_eq!(CycleScratch::new(5).shortest_cycle(0, &[0, 1, 2], &g), vec![0, 1, 2, 0]);
        assert_eq!(CycleScratch::new(5).shortest_cycle(3, &[3], &g), vec![3, 3]);
    }

    #[test]
    fn deep_chain_does_not_overflow() {
        let n = 200_000;
        let pairs: Vec<(usize, usize)> = (0..n - 1).map(|i| (i, i + 1)).chain([(n - 1, 0)]).collect();
        let g = graph(n, &pairs);
        let sccs = strongly_connected(&g);
        assert_eq!(sccs.len(), 1);
        assert_eq!(CycleScratch::new(n).shortest_cycle(0, &sccs[0], &g).len(), n + 1);
    }
}
