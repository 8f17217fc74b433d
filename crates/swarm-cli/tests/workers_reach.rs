//! What reaches which worker (docs/contract.md §11), with real `swarm worker` processes on a
//! real redis-server: a worker given no namespace runs every namespace's attempts; a task
//! needing labels waits for a worker that has them; a worker on a host without the checkout
//! works in its own clone of the run's repository and pushes the work back, which the
//! orchestrator merges; a worker's agents use the worker's own model gateway and keys.

mod support;

use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::Duration;
use support::*;

#[test]
fn a_worker_given_no_namespace_runs_the_attempts_of_every_namespace() {
    let mut p = Project::on_own_redis();
    let url = p.redis().url();
    // Started in another directory: the project's own namespace is not the runs'.
    let elsewhere = Project::new();
    let mut cmd = elsewhere.command(&["worker", "--name", "far", "--lease", LEASE, "--json"]);
    cmd.env("SWARM_STORE", &url);
    let mut w = elsewhere.spawn_cmd(cmd);
    wait_until(Duration::from_secs(20), "the worker started", || {
        assert!(w.is_running(), "the worker exited:\n{}{}", w.stdout(), w.stderr());
        w.stdout().contains("worker_started")
    });
    for ns in ["team7", "team8"] {
        p.write(
            &format!("{ns}.md"),
            &format!("---\nnamespace: {ns}\ndefaults:\n  agent: exec\n---\n\n## a: A\n- command: echo {ns} > {ns}.txt\n"),
        );
        let out = p.swarm(&["run", &format!("{ns}.md"), "--workers"]);
        out.expect_code(0);
        assert_eq!(attempts(&p.report(&out.run_id()), "a")[0]["worker"], "far");
        assert_eq!(p.read(&format!("{ns}.txt")).trim(), ns);
        let listed = p.swarm(&["workers", "--json", "--namespace", ns]).expect_code(0).json();
        assert_eq!(listed[0]["name"], "far", "{listed}");
    }
    w.signal(Signal::SIGTERM);
    let said = w.wait(Duration::from_secs(20));
    assert!(!said.stdout.contains("store_error"), "{}", said.dump());
}

/// A project with `plan` committed, its repository a bare one elsewhere, and worker `far` in
/// another directory working in its own clones (under the returned directory).
struct Far {
    p: Project,
    w: Bg,
    bare: String,
    clones: tempfile::TempDir,
    _remote: tempfile::TempDir,
}

fn far(plan: &str) -> Far {
    far_with(plan, |_| {})
}

/// [`far`], with what `files` writes committed too; the worker finds the pinned agent CLIs.
fn far_with(plan: &str, files: impl FnOnce(&Project)) -> Far {
    let mut p = Project::on_own_redis();
    let url = p.redis().url();
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["config", "user.name", "Test User"]);
    git(&p, &["config", "user.email", "user@example.com"]);
    p.plan(plan);
    files(&p);
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "plan"]);
    // The run's repository: a bare one, as a host without the checkout would reach it.
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("app.git");
    git(&p, &["init", "-q", "--bare", bare.to_str().unwrap()]);
    let bare = bare.display().to_string();
    let clones = tempfile::tempdir().unwrap();
    let elsewhere = Project::new();
    let args = ["worker", "--name", "far", "-j", "2", "--lease", LEASE, "--json", "--repo", &bare];
    let mut cmd = elsewhere.command(&args);
    cmd.arg("--clones").arg(clones.path()).env("SWARM_STORE", &url).env("PATH", agents_path());
    let mut w = elsewhere.spawn_cmd(cmd);
    wait_until(Duration::from_secs(20), "the worker started", || {
        assert!(w.is_running(), "the worker exited:\n{}{}", w.stdout(), w.stderr());
        w.stdout().contains("worker_started")
    });
    Far { p, w, bare, clones, _remote: remote }
}

#[test]
fn a_worker_in_its_own_clone_pushes_the_work_and_the_orchestrator_merges_it() {
    let Far { p, w, bare, clones, _remote } =
        far("---\ndefaults:\n  agent: exec\n  workdir: worktree\n---\n\n\
         ## a: A\n- command: pwd > where-a.txt && echo a > a.txt && echo said by a\n\n\
         ## b: B\n- depends: a\n- command: cat a.txt > b.txt && pwd > where-b.txt\n");
    let clones_dir = clones.path().display().to_string();
    let out = p.swarm(&["run", "plan.md", "--workers", "--repo", &bare]);
    out.expect_code(0);
    let run = out.run_id();
    let report = p.report(&run);
    for task in ["a", "b"] {
        assert_task(&report, task, "succeeded", None);
        assert_eq!(attempts(&report, task)[0]["worker"], "far");
        let t = report["tasks"].as_array().unwrap().iter().find(|t| t["id"] == task).unwrap();
        assert_eq!(t["merge"], "merged", "{t}");
        // The agent worked in the worker's clone, not in the run's checkout.
        let wrote = git(&p, &["show", &format!("swarm/{run}:where-{task}.txt")]);
        assert!(wrote.starts_with(&clones_dir), "{task} worked in {wrote}");
    }
    // b started from a's merged work, fetched from the run's repository.
    assert_eq!(git(&p, &["show", &format!("swarm/{run}:b.txt")]), "a");
    // The refs the worker pushed its work to went once it was fetched; the run's branch stays
    // until `swarm clean --branches`.
    let refs = || {
        let listed = std::process::Command::new("git").args(["--git-dir", &bare, "for-each-ref"]).output();
        String::from_utf8_lossy(&listed.unwrap().stdout).into_owned()
    };
    assert!(refs().contains(&format!("refs/heads/swarm/{run}")), "{}", refs());
    assert!(!refs().contains("refs/swarm/"), "{}", refs());
    // What the agent printed there is in the log here.
    let logs = p.swarm(&["logs", &run, "a"]);
    assert!(logs.expect_code(0).stdout.contains("said by a"), "{}", logs.dump());
    // A host with neither the log nor its directory reads it from the run's feed.
    let log = attempts(&report, "a")[0]["log"].as_str().expect("a log").to_string();
    std::fs::remove_dir_all(std::path::Path::new(&log).parent().unwrap()).unwrap();
    let logs = p.swarm(&["logs", &run, "a"]);
    assert_eq!(logs.expect_code(0).stdout, "said by a\n", "{}", logs.dump());
    let cleaned = p.swarm(&["clean", &run, "--branches", "--json"]);
    let cleaned: Value = serde_json::from_str(&cleaned.expect_code(0).stdout).expect("json");
    assert_eq!(cleaned["remote_refs_deleted"], serde_json::json!([format!("refs/heads/swarm/{run}")]));
    assert!(!refs().contains("swarm"), "{}", refs());
    w.signal(Signal::SIGTERM);
    let said = w.wait(Duration::from_secs(20));
    assert!(!said.stdout.contains("store_error"), "{}", said.dump());
}

#[test]
fn work_pushed_from_a_clone_that_conflicts_fails_its_task_and_leaves_the_branch_as_it_was() {
    let Far { p, w, bare, _remote, .. } = far("---\ndefaults:\n  agent: exec\n  workdir: worktree\n---\n\n\
         ## x: X\n- command: echo x > same.txt\n\n\
         ## y: Y\n- command: echo y > same.txt\n");
    let out = p.swarm(&["run", "plan.md", "--workers", "--repo", &bare]);
    out.expect_code(1);
    let run = out.run_id();
    let report = p.report(&run);
    let states: Vec<(String, String)> = ["x", "y"]
        .iter()
        .map(|id| {
            let t = report["tasks"].as_array().unwrap().iter().find(|t| t["id"] == *id).unwrap();
            (t["state"].as_str().unwrap().to_string(), t["merge"].as_str().unwrap_or("").to_string())
        })
        .collect();
    let conflicted = states.iter().filter(|(s, m)| s == "failed" && m == "conflict").count();
    let merged = states.iter().filter(|(s, m)| s == "succeeded" && m == "merged").count();
    assert_eq!((conflicted, merged), (1, 1), "{states:?}");
    // The integration branch holds the one that merged, and nothing of a merge half done.
    let same = git(&p, &["show", &format!("swarm/{run}:same.txt")]);
    assert!(same == "x" || same == "y", "{same}");
    assert!(
        git(&p, &["-C", &format!(".swarm/worktrees/{run}/_integration"), "status", "--porcelain"]).is_empty()
    );
    drop(w);
}

#[test]
fn a_task_needing_labels_waits_for_a_worker_that_has_them() {
    let p = Project::on_own_redis();
    p.plan(
        "---\ndefaults:\n  agent: exec\n---\n\n\
         ## any: Anywhere\n- command: echo any\n\n\
         ## gpu: Needs a GPU\n- labels: gpu=yes\n- command: echo gpu\n",
    );
    let w1 = worker(&p, "w1", 2, &["--labels", "gpu=no,zone=a"]);
    let mut run = p.spawn(&["run", "plan.md", "--workers"]);
    let id = run.run_id();
    wait_until(Duration::from_secs(30), "the labelled task says it waits", || {
        p.swarm(&["events", &id]).stdout.contains("task gpu: no live worker takes from queue `exec@gpu=yes`")
    });
    assert!(run.is_running(), "the run waits for a worker with the labels");
    let w2 = worker(&p, "w2", 2, &["--labels", "gpu=yes"]);
    let out = run.wait(CMD_TIMEOUT);
    out.expect_code(0);
    let report = p.report(&id);
    assert_eq!(attempts(&report, "gpu")[0]["worker"], "w2");
    assert_task(&report, "any", "succeeded", None);
    assert!(said(&w1, "took").iter().all(|t| t["task"] != "gpu"), "{}", w1.stdout());
    drop((w1, w2));
}

/// `PATH` with the pinned agent CLIs first.
fn agents_path() -> std::ffi::OsString {
    let mut dirs = vec![tools_bin()];
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

/// What the fake model does for an agent: write the file, report done, say DONE.
const WRITES: &str = "steps = [ { write = { path = \"out.txt\", content = \"written\\n\" } }, { report = { status = \"done\", summary = \"wrote out.txt\" } }, { say = \"DONE\" } ]\n";
/// The provider key only the worker has.
const KEY: &str = "sk-provider-secret-0123456789";

/// Plan `far.md`: one opencode task.
const FAR: &str = "---\ndefaults:\n  timeout: 90s\n---\n\n## far: Uses whatever model the hierarchy gives\n- agent: opencode\n\nWrite the file, report, say DONE.\n";

/// Project `p` with a hierarchy of `layers` over `fake` (`extra` appended to swarm.toml), and
/// plan `far.md` ([`FAR`]) run with `run_args` by a worker that alone has the provider's key:
/// whatever reached the model went through the worker's gateway. The report, the run and the
/// stopped worker's output.
fn on_a_worker_with_the_key(
    p: &Project,
    fake: &Fake,
    layers: &str,
    extra: &str,
    run_args: &[&str],
) -> (Value, Out, Out) {
    on_a_worker_with_the_key_running(p, fake, (layers, extra), (FAR, 1), run_args)
}

/// [`on_a_worker_with_the_key`], with plan `far.md` and the worker's concurrency given.
fn on_a_worker_with_the_key_running(
    p: &Project,
    fake: &Fake,
    (layers, extra): (&str, &str),
    (plan, jobs): (&str, usize),
    run_args: &[&str],
) -> (Value, Out, Out) {
    p.write(
        "swarm.toml",
        &format!(
            "{FAST_CONFIG}\n[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key_env = \"SWARM_TEST_PROVIDER_KEY\"\npaid = false\n\n[models]\nlayers = {layers}\n{extra}",
            fake.base_url()
        ),
    );
    p.write("far.md", plan);
    let path = agents_path();
    let mut cmd = p.command(&["worker", "--name", "w1", "-j", &jobs.to_string(), "--json"]);
    cmd.env("PATH", &path).env("SWARM_TEST_PROVIDER_KEY", KEY);
    let mut w = p.spawn_cmd(cmd);
    wait_until(Duration::from_secs(30), "the worker started", || {
        assert!(w.is_running(), "the worker exited:\n{}{}", w.stdout(), w.stderr());
        w.stdout().contains("worker_started")
    });
    let mut cmd = p.command(&[&["run", "far.md", "--workers"][..], run_args].concat());
    cmd.env("PATH", &path).env_remove("SWARM_TEST_PROVIDER_KEY");
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(150));
    let report = p.report(&out.run_id());
    w.signal(Signal::SIGTERM);
    let said = w.wait(Duration::from_secs(30));
    assert!(!said.stdout.contains("store_error"), "{}", said.dump());
    (report, out, said)
}

#[test]
fn a_worker_serves_its_attempts_through_its_own_gateway_with_its_own_key() {
    let fake = Fake::start(&format!(
        "[models.a]\nrate_limit = {{ first = 1000, retry_after = 300 }}\n{WRITES}[models.b]\n{WRITES}"
    ));
    let p = Project::on_own_redis();
    let (report, out, w) = on_a_worker_with_the_key(&p, &fake, "[[\"fake/a\"], [\"fake/b\"]]", "", &[]);
    let a = attempts(&report, "far").last().cloned().expect("an attempt");
    let why = format!("{}\n{a:#}\n{}\n{}", detail(&report, "far"), out.dump(), w.dump());
    assert_eq!(state(&report, "far"), "succeeded", "{why}");
    assert_eq!(a["worker"], "w1", "{a:#}");
    // The worker's gateway absorbed the 429 and said so to the run, through the feed.
    assert_eq!((a["model"].as_str(), a["layer"].as_u64()), (Some("fake/b"), Some(2)), "{a:#}");
    assert_eq!(a["fallback_reason"], "rate_limited", "{a:#}");
    assert!(a["requests"][0]["count"].as_u64().unwrap() >= 2, "{a:#}");
    let events = p.swarm(&["events", &out.run_id(), "--json"]).stdout;
    assert!(events.contains("\"model_fallback\"") && events.contains("rate_limited"), "{events}");
    let log = fake.server.as_ref().unwrap().log().records();
    let chats: Vec<_> = log.iter().filter(|r| r.path.ends_with("chat/completions")).collect();
    assert!(!chats.is_empty() && chats.iter().all(|r| r.bearer.as_deref() == Some(KEY)), "{chats:?}");
    assert_eq!(p.read("out.txt"), "written\n");
}

#[test]
fn a_workers_gateway_allows_paid_models_when_the_run_does() {
    let fake = Fake::start(&format!(
        "[models.free]\nrate_limit = {{ first = 1000, retry_after = 120 }}\n{WRITES}[models.paid]\n{WRITES}"
    ));
    let p = Project::on_own_redis();
    let paid = "[models.limits.\"fake/paid\"]\npaid = true\nprice_in = 3.0\nprice_out = 15.0\n";
    let layers = "[[\"fake/free\"], [\"fake/paid\"]]";
    let (report, out, w) = on_a_worker_with_the_key(&p, &fake, layers, paid, &["--allow-paid"]);
    let a = attempts(&report, "far").last().cloned().expect("an attempt");
    let why = format!("{}\n{a:#}\n{}\n{}", detail(&report, "far"), out.dump(), w.dump());
    assert_eq!(state(&report, "far"), "succeeded", "{why}");
    assert_eq!((a["worker"].as_str(), a["model"].as_str()), (Some("w1"), Some("fake/paid")), "{a:#}");
}

#[test]
fn a_budget_spent_through_a_workers_gateway_stops_the_run_from_starting_more() {
    let fake = Fake::start(&format!(
        "[models.pricey]\nusage = {{ prompt_tokens = 1000, completion_tokens = 0 }}\n{WRITES}"
    ));
    let p = Project::on_own_redis();
    // $1000 per million tokens: every answer costs $1, twice the run's budget.
    let pricey = "allow_paid = true\nbudget_usd = 0.5\n[models.limits.\"fake/pricey\"]\npaid = true\nprice_in = 1000.0\nprice_out = 1000.0\n";
    // `second` starts once the run heard that `first`'s request was served on the worker.
    let heard = format!(
        "until {} events $SWARM_RUN_ID --json | grep -q model_serving; do sleep 0.2; done",
        env!("CARGO_BIN_EXE_swarm")
    );
    let plan = format!(
        "---\ndefaults:\n  timeout: 90s\n---\n\n## first: Spends the budget\n- agent: opencode\n\nWrite the file, report, say DONE.\n\n\
         ## heard: Waits for the spend to reach the run\n- agent: exec\n- command: {heard}\n\n\
         ## second: Comes after\n- agent: opencode\n- depends: heard\n\nWrite the file, report, say DONE.\n"
    );
    let (report, out, w) =
        on_a_worker_with_the_key_running(&p, &fake, ("[[\"fake/pricey\"]]", pricey), (&plan, 2), &[]);
    let why = format!("{}\n{}", out.dump(), w.dump());
    // The worker's gateway let the first request go (nothing was spent yet) and no other.
    assert_task(&report, "first", "failed", Some("models_exhausted"));
    let chats = fake.server.as_ref().unwrap().log().records();
    assert_eq!(chats.iter().filter(|r| r.path.ends_with("chat/completions")).count(), 1, "{chats:?}\n{why}");
    assert_eq!(attempts(&report, "first")[0]["cost_usd"], 1.0, "{why}");
    // The orchestrator counted what the worker's gateway spent: `second` never went to a worker.
    assert_task(&report, "second", "failed", Some("models_exhausted"));
    let second = &attempts(&report, "second")[0];
    assert!(second["worker"].is_null(), "{second:#}\n{why}");
    assert!(detail(&report, "second").contains("budget"), "{}", detail(&report, "second"));
}

#[test]
fn a_conflict_in_work_pushed_from_a_clone_is_resolved_on_the_orchestrators_host() {
    let fake = Fake::start(
        "[models.first]\nsteps = [ { write = { path = \"poem.txt\", content = \"roses are RED\\n\" } }, { report = { status = \"done\", summary = \"red\" } }, { say = \"DONE\" } ]\n\
         [models.second]\ndelay_ms = 1500\nsteps = [ { write = { path = \"poem.txt\", content = \"roses are BLUE\\n\" } }, { report = { status = \"done\", summary = \"blue\" } }, { say = \"DONE\" } ]\n",
    );
    let plan = "---\ndefaults:\n  agent: opencode\n  timeout: 60s\n---\n\n\
                ## red: Make the roses red\n- model: local/first\n\nEdit poem.txt.\n\n\
                ## blue: Make the roses blue\n- model: local/second\n- on_conflict: agent\n- check: grep -q BLUE poem.txt\n\nEdit poem.txt.\n";
    let toml = format!(
        "{FAST_CONFIG}\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\nmodels = [\"first\", \"second\"]\n",
        fake.base_url()
    );
    let Far { p, w, bare, clones, _remote } = far_with(plan, |p| {
        p.write("swarm.toml", &toml);
        p.write("poem.txt", "roses are red\n");
    });
    let mut cmd = p.command(&["run", "plan.md", "--workers", "--repo", &bare]);
    cmd.env("PATH", agents_path());
    let out = p.spawn_cmd(cmd).wait(Duration::from_secs(180));
    let report = p.report(&out.run_id());
    let why = format!("{report:#}\n{}\n{}", out.dump(), w.stdout());
    out.expect_code(0);
    let run = out.run_id();
    // Both agents worked in the worker's clone; blue's work conflicted with red's, merged first.
    for task in ["red", "blue"] {
        assert_eq!(attempts(&report, task)[0]["worker"], "far", "{why}");
        assert!(
            attempts(&report, task)[0]["workdir"]
                .as_str()
                .unwrap()
                .starts_with(&clones.path().display().to_string()),
            "{why}"
        );
    }
    assert_eq!(task(&report, "red")["merge"], "merged", "{why}");
    // The merge happened here, so the resolver ran here: the conflict resolved, the check passed.
    assert_task(&report, "blue", "succeeded", None);
    assert_eq!(task(&report, "blue")["merge"], "resolved", "{why}");
    let resolver = attempts(&report, "blue").last().unwrap();
    assert_eq!(
        (&resolver["kind"], &resolver["agent"]),
        (&Value::from("resolver"), &Value::from("opencode")),
        "{why}"
    );
    assert_eq!(git(&p, &["show", &format!("swarm/{run}:poem.txt")]), "roses are BLUE");
    let log = git(&p, &["log", "--format=%s", &format!("swarm/{run}")]);
    assert!(log.contains("task blue (merge resolved by opencode)"), "{log}");
    drop(w);
}
