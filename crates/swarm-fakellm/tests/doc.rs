//! docs/fake-llm.md cannot rot: every scenario in it (a ```` ```toml ```` block) parses with
//! `Scenario::from_toml`, every ```` ```json ```` block is JSON and its request-log line is a
//! `RequestRecord`, and the defaults and refusals its reference lists are the parser's. (Its
//! ```` ```toml config ```` block is a swarm.toml snippet, parsed by swarm-core's
//! `the_docs_configs_parse`; its Rust example compiles as a doctest of this crate.)

use swarm_fakellm::{LimitKind, RequestRecord, ResponseKind, Scenario, Step};

const DOC: &str = include_str!("../../../docs/fake-llm.md");

/// A fenced block: its info string (` ```toml config ` → `toml config`), text and first line.
struct Block {
    info: String,
    body: String,
    line: usize,
}

fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in DOC.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```").filter(|i| !i.is_empty()) {
                    open = Some(Block { info: info.trim().to_string(), body: String::new(), line: i + 1 });
                }
            }
            Some(_) if line == "```" => out.extend(open.take()),
            Some(b) => {
                b.body.push_str(line);
                b.body.push('\n');
            }
        }
    }
    assert!(open.is_none(), "docs/fake-llm.md has an unclosed code block");
    out
}

fn of_kind(info: &str) -> Vec<Block> {
    blocks().into_iter().filter(|b| b.info == info).collect()
}

#[test]
fn every_scenario_parses() {
    let all = blocks();
    let toml: Vec<&Block> = all.iter().filter(|b| b.info.starts_with("toml")).collect();
    for b in &toml {
        assert!(
            b.info == "toml" || b.info == "toml config",
            "docs/fake-llm.md:{}: a TOML block is a scenario (```toml) or swarm.toml (```toml config)",
            b.line
        );
    }
    let scenarios = of_kind("toml");
    assert!(scenarios.len() >= 2, "the scenario example and the group example");
    for b in &scenarios {
        if let Err(e) = Scenario::from_toml(&b.body) {
            panic!("docs/fake-llm.md:{}: {e}\n{}", b.line, b.body);
        }
    }
    // The main example shows every model key and step kind the reference table lists.
    let main = Scenario::from_toml(&scenarios[0].body).unwrap();
    let models = &main.models;
    assert!(models["r429"].rate_limit.is_some() && models["paced"].limits.is_some());
    assert!(models["broken"].error.is_some() && models["hang"].hang && models["gemini-3"].thought_signatures);
    assert!(
        models["slow"].delay_ms > 0 && models["slow"].chunk_delay_ms > 0 && models["slow"].usage.is_some()
    );
    let steps: Vec<&Step> = models.values().flat_map(|m| &m.steps).collect();
    assert!(steps.iter().any(|s| matches!(s, Step::Say(_))));
    assert!(steps.iter().any(|s| matches!(s, Step::Write { .. })));
    assert!(steps.iter().any(|s| matches!(s, Step::Call { .. })));
    assert!(steps
        .iter()
        .any(|s| matches!(s, Step::Report { files_changed, .. } if !files_changed.is_empty())));
    let grouped = Scenario::from_toml(&scenarios[1].body).unwrap();
    assert_eq!(grouped.groups["free"].models.len(), 2);
    for config in of_kind("toml config") {
        if let Err(e) = config.body.parse::<toml::Table>() {
            panic!("docs/fake-llm.md:{}: {e}", config.line);
        }
    }
}

#[test]
fn the_json_examples_are_json_and_the_log_line_is_a_record() {
    let json = of_kind("json");
    assert!(json.len() >= 2, "the completion report and the request-log line");
    let mut records = 0;
    for b in &json {
        let value: serde_json::Value = serde_json::from_str(&b.body)
            .unwrap_or_else(|e| panic!("docs/fake-llm.md:{}: {e}\n{}", b.line, b.body));
        if value.get("seq").is_some() {
            let record: RequestRecord = serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("docs/fake-llm.md:{}: not a RequestRecord: {e}", b.line));
            assert!(matches!(record.response, ResponseKind::ToolCall { .. }), "{:?}", record.response);
            records += 1;
        } else {
            let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
            for key in ["schema_version", "run_id", "task_id", "status", "summary", "files_changed", "tests"]
            {
                assert!(keys.contains(&key), "docs/fake-llm.md:{}: the report lacks `{key}`", b.line);
            }
        }
    }
    assert_eq!(records, 1);
}

#[test]
fn the_documented_defaults_hold() {
    let s =
        Scenario::from_toml("[models.a]\nrate_limit = { first = 1 }\nerror = { status = 500 }\n").unwrap();
    let limit = s.models["a"].rate_limit.as_ref().unwrap();
    assert_eq!(
        (limit.retry_after, limit.kind, limit.header, limit.stream, limit.message.as_deref()),
        (1, LimitKind::Rate, true, false, None)
    );
    let error = s.models["a"].error.as_ref().unwrap();
    assert_eq!(
        (error.message.as_str(), error.first, error.retry_after),
        ("fake-llm: scripted error", None, None)
    );
    assert_eq!(s.models["a"].final_text(), "DONE", "a model without steps says DONE");
}

#[test]
fn the_documented_refusals_are_refused() {
    for (scenario, says) in [
        ("[models.a]\nstepz = []\n", "stepz"),
        ("[models.a]\nsteps = [ { shout = \"x\" } ]\n", "shout"),
        ("[models.\"\"]\n", "empty"),
        ("[models.a]\nerror = { status = 200 }\n", "400-599"),
        ("[models.a]\nsteps = [ { write = { path = \"\", content = \"x\" } } ]\n", "write.path"),
        ("[models.a]\nsteps = [ { call = { name = \"\" } } ]\n", "call.name"),
        ("[models.a]\nsteps = [ { call = { name = \"bash\", arguments = 1 } } ]\n", "call.arguments"),
        ("[models.a]\nsteps = [ { report = { status = \"ok\", summary = \"s\" } } ]\n", "report.status"),
        ("[models.a]\n[groups.g]\nmodels = [\"b\"]\nlimits = { rpm = 1 }\n", "no model `b`"),
    ] {
        match Scenario::from_toml(scenario) {
            Ok(_) => panic!("accepted:\n{scenario}"),
            Err(e) => assert!(e.to_string().contains(says), "{e}\n{scenario}"),
        }
    }
}
