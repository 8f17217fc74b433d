//! Worktrees and merge-back (docs/contract.md §9), in real git repositories: every worktree task works
//! on its own branch from the run's integration branch, its work is committed and merged back in
//! dependency order, a conflict fails the task and blocks its dependents, and the user's own
//! checkout is never touched. `swarm diff`, `swarm merge` and `swarm clean` on the result.

mod support;

use serde_json::Value;
use std::process::Command;
use support::*;

/// `git -C project ARGS`, its trimmed stdout; panics when git fails.
fn git(p: &Project, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(p.path()).args(args).output().expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repository on branch `main` with one commit of `shared.txt` (and the project's
/// swarm.toml), as a user's project is.
fn repo() -> Project {
    let p = Project::new();
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["config", "user.name", "Test User"]);
    git(&p, &["config", "user.email", "user@example.com"]);
    p.write("shared.txt", "one\ntwo\nthree\n");
    p.write(".gitignore", ".env\n");
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "init"]);
    p
}

const HEADER: &str =
    "---\nconcurrency: 4\ndefaults:\n  agent: exec\n  workdir: worktree\n  timeout: 30s\n---\n\n";

/// A file of branch `rev`, or `None` when it has none.
fn show(p: &Project, rev: &str, path: &str) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(p.path())
        .args(["show", &format!("{rev}:{path}")])
        .output()
        .unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("`{key}` is a string in {v:#}"))
}

#[test]
fn three_parallel_tasks_are_all_merged_into_the_integration_branch() {
    let p = repo();
    let head = git(&p, &["rev-parse", "HEAD"]);
    p.plan(&format!(
        "{HEADER}## a: A\n- command: sleep 0.3; echo A > a.txt\n\n## b: B\n- command: sleep 0.3; mkdir -p src && echo B > src/b.txt\n\n## c: C\n- command: sleep 0.3; echo C > c.txt\n"
    ));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    assert!(
        out.stderr.contains(&format!("base {}", &head[..12])),
        "the base is said at the start\n{}",
        out.dump()
    );
    let report = p.report(&run_id);
    assert_eq!(report["base_commit"], head.as_str());
    let integration = format!("swarm/{run_id}");
    assert_eq!(report["integration_branch"], integration.as_str());
    // They ran at once, each in its own worktree.
    let started: Vec<_> =
        ["a", "b", "c"].iter().map(|id| time(&attempts(&report, id)[0]["started_at"])).collect();
    let ended: Vec<_> =
        ["a", "b", "c"].iter().map(|id| time(&attempts(&report, id)[0]["ended_at"])).collect();
    assert!(started.iter().max() < ended.iter().min(), "the three overlapped: {report:#}");
    for (id, file, content) in [("a", "a.txt", "A\n"), ("b", "src/b.txt", "B\n"), ("c", "c.txt", "C\n")] {
        let t = task(&report, id);
        assert_eq!(t["merge"], "merged", "{t:#}");
        let branch = format!("swarm/{run_id}--{id}");
        assert_eq!(str_of(t, "branch"), branch);
        assert_eq!(str_of(t, "commit"), git(&p, &["rev-parse", &branch]), "commit is the branch's head");
        assert_eq!(t["files_changed"], serde_json::json!([file]));
        assert!(t["conflict_paths"].as_array().is_none_or(Vec::is_empty));
        assert_eq!(show(&p, &integration, file).as_deref(), Some(content), "{file} is merged");
        assert_eq!(show(&p, "main", file), None, "main is left alone");
        let log = git(&p, &["log", "-1", "--format=%an <%ae>%n%s", &branch]);
        assert!(log.starts_with("swarm <swarm@localhost>"), "{log}");
        assert!(log.contains(&format!("run {run_id}, task {id}")), "the message names run and task: {log}");
    }
    assert_eq!(git(&p, &["rev-parse", "main"]), head, "the user's branch did not move");
    assert_eq!(git(&p, &["merge-base", "--is-ancestor", &head, &integration]), "");
    // The diff of a task is its own work.
    let diff = p.swarm(&["diff", &run_id, "b"]);
    diff.expect_code(0);
    assert!(diff.stdout.contains("+++ b/src/b.txt") && !diff.stdout.contains("a.txt"), "{}", diff.dump());
    let json = p.swarm(&["diff", &run_id, "a", "--json"]);
    json.expect_code(0);
    assert_eq!(json.json()["files_changed"], serde_json::json!(["a.txt"]));
}

#[test]
fn a_same_line_conflict_fails_one_task_and_blocks_its_dependent() {
    let p = repo();
    p.plan(&format!(
        "{HEADER}## c: Edits line two\n- command: sed -i 's/two/TWO from c/' shared.txt\n\n## d: Edits line two too\n- command: sed -i 's/two/TWO from d/' shared.txt\n\n## c2: After c\n- depends: c\n- command: echo c2 > c2.txt\n\n## d2: After d\n- depends: d\n- command: echo d2 > d2.txt\n"
    ));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let run_id = out.run_id();
    let report = p.report(&run_id);
    let conflicted: Vec<&str> =
        ["c", "d"].into_iter().filter(|id| reason(&report, id) == Some("merge_conflict")).collect();
    assert_eq!(conflicted.len(), 1, "exactly one of the two conflicts: {report:#}");
    let (loser, winner) = if conflicted[0] == "c" { ("c", "d") } else { ("d", "c") };
    assert_task(&report, winner, "succeeded", None);
    assert_task(&report, loser, "failed", Some("merge_conflict"));
    let t = task(&report, loser);
    assert_eq!(t["merge"], "conflict");
    assert_eq!(t["conflict_paths"], serde_json::json!(["shared.txt"]));
    assert!(detail(&report, loser).contains("shared.txt"), "{t:#}");
    assert_eq!(attempts(&report, loser).len(), 1, "a conflict is not retried");
    assert_task(&report, &format!("{loser}2"), "blocked", Some("dependency_failed"));
    assert_task(&report, &format!("{winner}2"), "succeeded", None);
    let integration = format!("swarm/{run_id}");
    let merged = show(&p, &integration, "shared.txt").unwrap();
    assert_eq!(
        merged,
        format!("one\nTWO from {winner}\nthree\n"),
        "the integration branch holds the winner only"
    );
    // The loser's work is kept on its branch.
    let kept = show(&p, str_of(t, "branch"), "shared.txt").unwrap();
    assert_eq!(kept, format!("one\nTWO from {loser}\nthree\n"));
    // Nothing half-merged was left in the integration worktree.
    let tree = p.file(&format!(".swarm/worktrees/{run_id}/_integration"));
    let status = Command::new("git").arg("-C").arg(&tree).args(["status", "--porcelain"]).output().unwrap();
    assert!(status.stdout.is_empty(), "{}", String::from_utf8_lossy(&status.stdout));
    assert_eq!(task(&report, &format!("{loser}2"))["merge"], "skipped");
    let md = p.read(&format!(".swarm/runs/{run_id}/report.md"));
    assert!(md.contains("## Merge-back") && md.contains(&format!("| {loser} | conflict |")), "{md}");
    assert!(md.contains(&format!("| {winner} | merged |")), "{md}");
}

#[test]
fn a_dependent_starts_from_its_dependencies_merged_work() {
    let p = repo();
    p.plan(&format!(
        "{HEADER}## a: First\n- command: echo from-a > a.txt\n\n## z: Unrelated, also first\n- command: echo from-z > z.txt\n\n## b: Sees a and z\n- depends: a, z\n- command: test \"$(cat a.txt)\" = from-a && test \"$(cat z.txt)\" = from-z && cat a.txt z.txt > b.txt\n"
    ));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let integration = format!("swarm/{run_id}");
    assert_eq!(show(&p, &integration, "b.txt").as_deref(), Some("from-a\nfrom-z\n"));
    let report = p.report(&run_id);
    assert_eq!(task(&report, "b")["files_changed"], serde_json::json!(["b.txt"]), "b's own work only");
    // b's branch grew out of a's and z's merged work.
    let b = format!("{integration}--b");
    for dep in ["a", "z"] {
        let commit = str_of(task(&report, dep), "commit");
        git(&p, &["merge-base", "--is-ancestor", commit, &b]);
    }
}

#[test]
fn the_users_checkout_is_never_touched() {
    let p = repo();
    p.write("staged.txt", "staged\n");
    git(&p, &["add", "staged.txt"]);
    p.write("shared.txt", "one\ntwo (my uncommitted edit)\nthree\n");
    p.write("scratch.txt", "untracked, mine\n");
    git(&p, &["checkout", "-q", "-b", "feature"]);
    p.plan(&format!(
        "{HEADER}## a: Rewrites shared\n- command: printf 'agent\\n' > shared.txt && rm -f scratch.txt && echo a > a.txt\n\n## b: After a\n- depends: a\n- command: echo b > b.txt\n"
    ));
    let snapshot = |p: &Project| {
        (
            git(p, &["rev-parse", "HEAD"]),
            git(p, &["symbolic-ref", "HEAD"]),
            std::fs::read(p.file(".git/index")).unwrap(),
            git(p, &["ls-files", "--stage"]),
            p.read("shared.txt"),
            p.read("scratch.txt"),
            p.read("staged.txt"),
            git(p, &["stash", "list"]),
        )
    };
    let before = snapshot(&p);
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    assert!(out.stderr.contains("uncommitted changes"), "a dirty tree is said\n{}", out.dump());
    assert!(snapshot(&p) == before, "HEAD, branch, index and files are byte for byte as they were");
    assert!(!p.exists("a.txt") && !p.exists("b.txt"), "work lands in the integration branch, not here");
    let run_id = out.run_id();
    let integration = format!("swarm/{run_id}");
    assert_eq!(show(&p, &integration, "shared.txt").as_deref(), Some("agent\n"));
    assert_eq!(show(&p, &integration, "staged.txt"), None, "the base is HEAD: staged work is not in it");

    // `swarm merge` is the only way home, and it refuses a checkout with uncommitted changes.
    let refused = p.swarm(&["merge", &run_id]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("uncommitted changes") && refused.stderr.contains("feature"),
        "{}",
        refused.dump()
    );
    assert!(snapshot(&p) == before, "a refused merge changes nothing");
    // Into a branch checked out nowhere: merged in a worktree of swarm's own, this checkout untouched.
    let merged = p.swarm(&["merge", &run_id, "--into", "main", "--json"]);
    merged.expect_code(0);
    let m = merged.json();
    assert_eq!(m["outcome"], "merged", "{m:#}");
    assert_eq!(m["into"], "main");
    assert_eq!(git(&p, &["rev-parse", "main"]), str_of(&m, "commit"));
    assert_eq!(show(&p, "main", "b.txt").as_deref(), Some("b\n"));
    assert!(snapshot(&p) == before, "merging into another branch leaves this checkout alone");
    let again = p.swarm(&["merge", &run_id, "--into", "main", "--json"]);
    again.expect_code(0);
    assert_eq!(again.json()["outcome"], "up_to_date");
    assert_eq!(
        git(&p, &["worktree", "list", "--porcelain"]).matches("worktree ").count(),
        4,
        "main + a, b, _integration"
    );
}

#[test]
fn merge_into_the_checked_out_branch_when_clean_and_a_conflict_changes_nothing() {
    let p = repo();
    p.plan(&format!("{HEADER}## a: Edits line one\n- command: sed -i 's/one/ONE/' shared.txt\n"));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    // The user moved on meanwhile, editing the same line.
    p.write("shared.txt", "uno\ntwo\nthree\n");
    git(&p, &["commit", "-q", "-am", "mine"]);
    let head = git(&p, &["rev-parse", "HEAD"]);
    let conflict = p.swarm(&["merge", &run_id]);
    conflict.expect_code(1);
    assert!(
        conflict.stderr.contains("shared.txt") && conflict.stderr.contains("unchanged"),
        "{}",
        conflict.dump()
    );
    assert_eq!(git(&p, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&p, &["status", "--porcelain", "--untracked-files=no"]), "", "the conflict was aborted");
    assert_eq!(p.read("shared.txt"), "uno\ntwo\nthree\n");
    // Once the user takes the run's line, it merges (squashed into one commit).
    git(&p, &["reset", "-q", "--hard", "HEAD~1"]);
    let merged = p.swarm(&["merge", &run_id, "--squash"]);
    merged.expect_code(0);
    assert!(merged.stdout.contains(&format!("merged swarm/{run_id} into main")), "{}", merged.dump());
    assert_eq!(p.read("shared.txt"), "ONE\ntwo\nthree\n");
    assert_eq!(git(&p, &["rev-list", "--count", "HEAD"]), "2", "one squashed commit on top of init");
}

#[test]
fn worktreeinclude_copies_env_files_and_they_are_never_committed() {
    let p = repo();
    p.write(".env", "TOKEN=local-only\n");
    p.write(".worktreeinclude", ".env\n");
    git(&p, &["add", ".worktreeinclude"]);
    git(&p, &["commit", "-q", "-m", "include"]);
    p.plan(&format!("{HEADER}## a: Reads .env\n- command: cp .env seen.txt && echo changed >> .env\n"));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let integration = format!("swarm/{}", out.run_id());
    assert_eq!(show(&p, &integration, "seen.txt").as_deref(), Some("TOKEN=local-only\n"));
    assert_eq!(show(&p, &integration, ".env"), None, "a copied file is never committed");
    assert_eq!(p.read(".env"), "TOKEN=local-only\n", "the user's own copy is untouched");
}

#[test]
fn a_failing_worktree_setup_is_setup_failed() {
    let p = repo();
    p.write("swarm.toml", &format!("{FAST_CONFIG}\n[worktree]\nsetup = \"echo preparing; exit 3\"\n"));
    p.plan(&format!("{HEADER}## a: Never starts\n- retries: 0\n- command: touch ran.txt\n"));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    assert_task(&report, "a", "failed", Some("setup_failed"));
    assert!(!p.file(&format!(".swarm/worktrees/{}/a/ran.txt", out.run_id())).exists());
}

#[test]
fn clean_removes_every_worktree_and_with_branches_every_branch() {
    let p = repo();
    p.plan(&format!("{HEADER}## a: A\n- command: echo a > a.txt\n\n## b: B\n- command: echo b > b.txt\n"));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    assert!(p.file(&format!(".swarm/worktrees/{run_id}/a")).is_dir());
    let clean = p.swarm(&["clean", &run_id, "--json"]);
    clean.expect_code(0);
    assert_eq!(clean.json()["worktrees_removed"].as_array().unwrap().len(), 3, "{}", clean.dump());
    assert!(!p.file(&format!(".swarm/worktrees/{run_id}")).exists());
    assert_eq!(git(&p, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
    assert_eq!(
        git(&p, &["branch", "--list", "swarm/*"]).lines().count(),
        3,
        "branches stay without --branches"
    );
    p.swarm(&["clean", &run_id, "--branches"]).expect_code(0);
    assert_eq!(git(&p, &["branch", "--list", "swarm/*"]), "");
    assert_eq!(git(&p, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
}

#[test]
fn resume_after_sigkill_recreates_the_worktree_clean_and_merges() {
    let p = repo();
    let pidfile = p.file("b.pid");
    p.plan(&format!(
        "{HEADER}## a: Quick\n- command: echo a > a.txt\n\n## b: Hangs on its first attempt, which leaves a mess\n- depends: a\n- command: test ! -e mess.txt && test -f a.txt && if [ \"$SWARM_ATTEMPT\" = 1 ]; then touch mess.txt; exec {{fake}} --pidfile {} --sleep 60s; fi; echo b > b.txt\n\n## c: After b\n- depends: b\n- command: cat a.txt b.txt > c.txt\n",
        pidfile.display()
    ));
    let mut run = p.spawn(&["run", "plan.md"]);
    let run_id = run.run_id();
    let old_b = p.pid("b.pid");
    wait_status(&p, &run_id, "b's attempt is recorded", |st| {
        attempts(st, "b").first().is_some_and(|a| a["pid"] == old_b)
    });
    assert!(p.file(&format!(".swarm/worktrees/{run_id}/b/mess.txt")).exists());
    run.kill9();
    let resumed = p.swarm(&["resume", &run_id]);
    resumed.expect_code(0);
    assert_gone(old_b, "b's orphaned first attempt");
    let report = p.report(&run_id);
    for id in ["a", "b", "c"] {
        assert_task(&report, id, "succeeded", None);
        assert_eq!(task(&report, id)["merge"], "merged");
    }
    assert_eq!(attempts(&report, "a").len(), 1, "a is not run again");
    assert_eq!(attempts(&report, "b").len(), 2);
    let integration = format!("swarm/{run_id}");
    assert_eq!(show(&p, &integration, "c.txt").as_deref(), Some("a\nb\n"));
    assert_eq!(show(&p, &integration, "mess.txt"), None, "the killed attempt's leftovers are not merged");
    // Exactly one merge of a: the resumed run did not bring it back twice.
    let merges = git(&p, &["log", "--merges", "--format=%s", &integration]);
    assert_eq!(merges.lines().filter(|l| l.contains("task a ")).count(), 1, "{merges}");
}

/// An agent that points its worktree's `.git` at the user's git directory cannot make swarm
/// commit onto the user's branch (issue 15): swarm drives git with the worktree's own records,
/// sees the worktree is not as it made it, fails the task saying so, and leaves the user's
/// branch, index and checkout as they were.
#[test]
fn an_agent_redirecting_its_worktree_git_cannot_reach_the_users_branch() {
    let p = repo();
    let head = git(&p, &["rev-parse", "HEAD"]);
    let user_git = p.path().join(".git");
    p.plan(&format!(
        "{HEADER}## evil: Points .git at the user's repository\n- command: echo 'gitdir: {}' > .git; echo pwned > pwned.txt\n",
        user_git.display()
    ));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    assert_task(&report, "evil", "failed", Some("merge_failed"));
    let why = detail(&report, "evil");
    assert!(why.contains("`.git`") && why.contains("did not commit"), "{why}");
    assert_eq!(attempts(&report, "evil").len(), 1, "not retried: {report:#}");
    assert_eq!(git(&p, &["rev-parse", "main"]), head, "the user's branch did not move");
    assert_eq!(git(&p, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    // Only the untracked plan (and what swarm keeps beside it) in the user's checkout: nothing
    // staged, nothing of the agent's.
    let status = git(&p, &["status", "--porcelain"]);
    assert!(status.lines().all(|l| l.starts_with("?? ")) && !status.contains("pwned"), "{status}");
}

/// An agent that commits onto the user's branch itself, or writes into the user's checkout, is
/// not stopped by swarm (it runs as the user), but the attempt says so.
#[test]
fn an_agent_moving_the_users_branch_or_writing_their_checkout_is_reported() {
    let p = repo();
    let user = p.path().display().to_string();
    p.plan(&format!(
        "{HEADER}## sneaky: Commits outside its worktree\n- command: echo x > {user}/stray.txt; git -C {user} -c user.name=a -c user.email=a@b commit -q --allow-empty -m sneaky; echo ok > ok.txt\n"
    ));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let report = p.report(&out.run_id());
    let warnings = attempts(&report, "sneaky")[0]["warnings"].to_string();
    assert!(warnings.contains("branch `main`") && warnings.contains("moved"), "{warnings}");
    assert!(warnings.contains("stray.txt"), "{warnings}");
}

/// swarm's own mirror (`plans/agent-shared/`) does not make the next run call the checkout dirty
/// (issue 15).
#[test]
fn the_mirror_does_not_make_the_next_run_call_the_checkout_dirty() {
    let p = repo();
    p.plan(&format!("{HEADER}## a: A\n- command: echo A > a.txt\n"));
    git(&p, &["add", "plan.md"]);
    git(&p, &["commit", "-q", "-m", "plan"]);
    p.swarm(&["run", "plan.md"]).expect_code(0);
    assert!(p.exists("plans/agent-shared"), "the mirror was written");
    let second = p.swarm(&["run", "plan.md"]);
    second.expect_code(0);
    assert!(!second.stderr.contains("uncommitted changes"), "{}", second.dump());
    assert_eq!(git(&p, &["status", "--porcelain"]), "");
}

/// A worktree whose `.git` was deleted is not a merge conflict (issue 15): `merge_failed`, saying
/// why.
#[test]
fn a_deleted_worktree_git_is_merge_failed_not_a_conflict() {
    let p = repo();
    p.plan(&format!("{HEADER}## gone: Deletes its .git\n- command: rm -f .git; echo x > x.txt\n"));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let report = p.report(&out.run_id());
    assert_task(&report, "gone", "failed", Some("merge_failed"));
}

/// A file over `[worktree] max_file_size` is not committed, and the attempt says so (issue 15:
/// a 300 MB file was committed silently).
#[test]
fn a_file_over_max_file_size_is_left_out_of_the_commit_with_a_warning() {
    let p = repo();
    p.write("swarm.toml", &format!("{FAST_CONFIG}[worktree]\nmax_file_size = \"1 MiB\"\n"));
    p.plan(&format!(
        "{HEADER}## big: Makes a big file\n- command: head -c 3000000 /dev/zero > big.bin; echo small > small.txt\n"
    ));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(0);
    let run_id = out.run_id();
    let report = p.report(&run_id);
    let integration = format!("swarm/{run_id}");
    assert_eq!(show(&p, &integration, "small.txt").as_deref(), Some("small\n"));
    assert_eq!(show(&p, &integration, "big.bin"), None, "the big file is not committed");
    let warnings = attempts(&report, "big")[0]["warnings"].to_string();
    assert!(warnings.contains("big.bin") && warnings.contains("max_file_size"), "{warnings}");
}

/// A task whose branch an agent replaced with unrelated history (issue 15): the run says what
/// happened to the merge, and the integration branch gets nothing of the stranger's history.
#[test]
fn a_task_branch_replaced_by_unrelated_history_is_not_a_conflict() {
    let p = repo();
    p.plan(&format!(
        "{HEADER}## orphan: Replaces its branch with unrelated history\n- command: b=$(git rev-parse --abbrev-ref HEAD) \
         && git checkout -q --orphan tmp && git rm -rqf . && echo y > y.txt && git add y.txt \
         && git -c user.name=a -c user.email=a@b commit -qm orphan && git branch -M tmp \"$b\"\n"
    ));
    let out = p.swarm(&["run", "plan.md"]);
    out.expect_code(1);
    let run_id = out.run_id();
    let report = p.report(&run_id);
    assert_task(&report, "orphan", "failed", Some("merge_failed"));
    assert!(detail(&report, "orphan").contains("shares no history"), "{}", detail(&report, "orphan"));
    assert_eq!(show(&p, &format!("swarm/{run_id}"), "y.txt"), None, "nothing of it was merged");
}
