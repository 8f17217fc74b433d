use super::*;

#[test]
fn unknown_keys_are_errors() {
    let dir = std::env::temp_dir().join(format!("swarm-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("swarm.toml");
    std::fs::write(&p, "[run]\nconcurency = 3\n").unwrap();
    let err = Config::read(&p).unwrap_err().to_string();
    assert!(err.contains("concurency"), "{err}");
    std::fs::write(
        &p,
        "[agents.mine]\ncommand = \"my-cli {prompt}\"\nconcurrency = 2\n[run]\ngrace = \"2s\"\n",
    )
    .unwrap();
    let cfg = Config::read(&p).unwrap();
    assert_eq!(cfg.custom_agents(), vec!["mine".to_string()]);
    assert_eq!(cfg.agent_limit("mine"), Some(2));
    assert_eq!(cfg.grace(), Duration::from_secs(2));
}

#[test]
fn agent_sections_are_checked_against_the_built_in_names() {
    let builtin = ["claude", "exec"];
    let check = |text: &str| Config::parse(text, Path::new("swarm.toml")).unwrap().check_agents(&builtin);
    let err = check("[agents.mine]\nconcurrency = 2\n").unwrap_err().to_string();
    assert!(err.contains("agents.mine: a custom agent needs `command`"), "{err}");
    let err = check("[agents.claude]\ncommand = \"x {prompt}\"\n").unwrap_err().to_string();
    assert!(err.contains("cannot override the built-in agent `claude`"), "{err}");
    check("[agents.claude]\nconcurrency = 2\n[agents.mine]\ncommand = \"my-cli {prompt}\"\n").unwrap();
}

#[test]
fn hooks_and_feedback_have_defaults_and_reject_unknown_keys() {
    let dir = std::env::temp_dir().join(format!("swarm-cfg-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("swarm.toml");
    let cfg = Config::default();
    assert_eq!(cfg.hooks.timeout(), Duration::from_secs(30));
    assert_eq!(cfg.hooks.webhook_timeout(), Duration::from_secs(10));
    assert_eq!(cfg.hooks.webhook_retries(), 3);
    assert!(cfg.feedback.mirror());
    assert_eq!(cfg.feedback.mirror_dir(), PathBuf::from("plans/agent-shared"));
    std::fs::write(
        &p,
        "[hooks]\non_task_end = \"cat > t.json\"\non_failure = \"notify\"\non_run_end = \"cat\"\n\
         timeout = \"500ms\"\nwebhook = \"http://127.0.0.1:9/h\"\nwebhook_timeout = \"2s\"\nwebhook_retries = 0\n\
         [feedback]\nmirror = false\nmirror_dir = \"shared/out\"\n",
    )
    .unwrap();
    let cfg = Config::read(&p).unwrap();
    assert_eq!(cfg.hooks.on_task_end.as_deref(), Some("cat > t.json"));
    assert_eq!(cfg.hooks.timeout(), Duration::from_millis(500));
    assert_eq!(cfg.hooks.webhook_timeout(), Duration::from_secs(2));
    assert_eq!(cfg.hooks.webhook_retries(), 0);
    assert!(!cfg.feedback.mirror());
    assert_eq!(cfg.feedback.mirror_dir(), PathBuf::from("shared/out"));
    for (text, want) in [
        ("[hooks]\non_end = \"x\"\n", "on_end"),
        ("[feedback]\nmirror_path = \"x\"\n", "mirror_path"),
        ("[hooks]\ntimeout = \"soon\"\n", "soon"),
        ("[hooks]\ntimeout = \"0s\"\n", "hooks.timeout must be longer than 0s"),
        ("[hooks]\non_failure = \" \"\n", "hooks.on_failure must not be empty"),
        ("[hooks]\nwebhook = \"example.com/h\"\n", "http:// or https://"),
        ("[feedback]\nmirror_dir = \"\"\n", "feedback.mirror_dir must not be empty"),
    ] {
        std::fs::write(&p, text).unwrap();
        let err = Config::read(&p).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swarm-cfg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const PROVIDERS: &str = "[providers.gemini]\nkind = \"openai-compatible\"\npaid = false\n\
                         [providers.openrouter]\nkind = \"openai-compatible\"\n";

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(text, Path::new("swarm.toml")).map_err(|e| e.to_string())
}

#[test]
fn models_default_to_no_hierarchy() {
    let cfg = Config::default();
    assert!(!cfg.has_model_hierarchy());
    assert!(cfg.model_layers().is_empty());
    assert!(!cfg.allow_paid());
    assert_eq!(cfg.max_wait(), Duration::from_secs(60));
    assert_eq!((cfg.budget_usd(), cfg.budget_tokens()), (None, None));
    let cfg = parse("[models]\nallow_paid = true\n").unwrap();
    assert!(cfg.allow_paid() && !cfg.has_model_hierarchy());
}

#[test]
fn models_section_parses_every_key() {
    let cfg = parse(&format!(
        "{PROVIDERS}[models]\nallow_paid = true\nmax_wait = \"90s\"\nbudget_usd = 20.0\nbudget_tokens = 2000000\n\
         layers = [[\"gemini/gemini-2.5-flash\", \"gemini/gemini-2.5-flash-lite\"], \
         [\"openrouter/deepseek/deepseek-chat-v3-0324:free\"], [\"openrouter/anthropic/claude-sonnet-4.5\"]]\n\
         [models.limits.\"gemini/gemini-2.5-flash\"]\nrpm = 10\nrpd = 250\ntpm = 250000\ncontext = 1048576\n\
         paid = false\nprice_in = 0.0\nprice_out = 0.0\n\
         [models.limits.\"openrouter/deepseek/deepseek-chat-v3-0324:free\"]\npaid = false\n\
         [models.limits.\"openrouter/anthropic/claude-sonnet-4.5\"]\nprice_in = 3.0\nprice_out = 15.0\n"
    ))
    .unwrap();
    assert!(cfg.has_model_hierarchy() && cfg.allow_paid());
    assert_eq!(cfg.max_wait(), Duration::from_secs(90));
    assert_eq!((cfg.budget_usd(), cfg.budget_tokens()), (Some(20.0), Some(2_000_000)));
    assert_eq!(cfg.model_layers().len(), 3);
    assert_eq!(cfg.model_layers()[0], ["gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash-lite"]);
    let flash = cfg.model_limits("gemini/gemini-2.5-flash").unwrap();
    assert_eq!(
        (flash.rpm, flash.rpd, flash.tpm, flash.context),
        (Some(10), Some(250), Some(250_000), Some(1_048_576))
    );
    assert_eq!(cfg.model_limits("gemini/gemini-2.5-flash-lite"), None);
    assert_eq!(cfg.models_path.as_deref(), Some(Path::new("swarm.toml")));
    let models: Vec<(u8, &str)> = cfg.models.as_ref().unwrap().models().collect();
    assert_eq!(models[2], (2, "openrouter/deepseek/deepseek-chat-v3-0324:free"));
    assert_eq!(split_model_id("openrouter/deepseek/x:free"), Some(("openrouter", "deepseek/x:free")));
    assert_eq!(split_model_id("flash"), None);
    assert_eq!(split_model_id("/flash"), None);
    assert_eq!(split_model_id("gemini/"), None);
}

#[test]
fn a_model_is_paid_unless_it_or_its_provider_says_otherwise() {
    let cfg = parse(&format!(
        "{PROVIDERS}[providers.local]\nkind = \"openai-compatible\"\npaid = true\n\
         [models]\nlayers = [[\"gemini/a\", \"gemini/b\", \"openrouter/c\", \"openrouter/d:free\", \"local/e\"]]\n\
         [models.limits.\"gemini/b\"]\npaid = true\n[models.limits.\"openrouter/d:free\"]\npaid = false\n"
    ))
    .unwrap();
    let paid: Vec<bool> = ["gemini/a", "gemini/b", "openrouter/c", "openrouter/d:free", "local/e"]
        .map(|m| cfg.model_paid(m))
        .to_vec();
    assert_eq!(paid, [false, true, true, false, true]);
}

#[test]
fn models_errors_name_the_key() {
    let layer = |models: &str| format!("{PROVIDERS}[models]\nlayers = [{models}]\n");
    let eight = (1..=8).map(|i| format!("[\"gemini/m{i}\"]")).collect::<Vec<_>>().join(", ");
    let seven = (1..=7).map(|i| format!("[\"gemini/m{i}\"]")).collect::<Vec<_>>().join(", ");
    assert!(parse(&layer(&seven)).is_ok());
    let limits = |body: &str| format!("{}[models.limits.\"gemini/a\"]\n{body}\n", layer("[\"gemini/a\"]"));
    for (text, want) in [
        (layer(&eight), "models.layers has 8 layers; at most 7 are allowed"),
        (layer("[\"gemini/a\"], []"), "models.layers: layer 2 is empty"),
        (layer("[\"gemini/a\", \"gemini/b\"], [\"gemini/a\"]"), "models.layers: `gemini/a` is listed twice (layers 1 and 2)"),
        (layer("[\"gemini/a\", \"gemini/a\"]"), "`gemini/a` is listed twice (layers 1 and 1)"),
        (
            layer("[\"anthropic/claude\"]"),
            "models.layers: `anthropic/claude` names the provider `anthropic`, which is not declared in [providers] (declared: gemini, openrouter)",
        ),
        ("[models]\nlayers = [[\"x/y\"]]\n".to_string(), "which is not declared in [providers] (none is)"),
        (layer("[\"flash\"]"), "models.layers: `flash` is not PROVIDER/MODEL"),
        (
            format!("{}[models.limits.\"gemini/b\"]\nrpm = 5\n", layer("[\"gemini/a\"]")),
            "models.limits.\"gemini/b\": `gemini/b` is in no layer of models.layers",
        ),
        (limits("price_in = -0.5"), "models.limits.\"gemini/a\".price_in must be a price of 0 or more"),
        (limits("price_out = -1.0"), "models.limits.\"gemini/a\".price_out must be a price of 0 or more"),
        (limits("price_out = nan"), "price_out must be a price of 0 or more"),
        (limits("rpm = 0"), "models.limits.\"gemini/a\".rpm must be at least 1"),
        (limits("rpd = 0"), "models.limits.\"gemini/a\".rpd must be at least 1"),
        (limits("tpm = 0"), "models.limits.\"gemini/a\".tpm must be at least 1"),
        (limits("context = 0"), "models.limits.\"gemini/a\".context must be at least 1"),
        (limits("rpm = -3"), "rpm"),
        (limits("rps = 3"), "rps"),
        (format!("{}budget_usd = -1.0\n", layer("[\"gemini/a\"]")), "models.budget_usd must be 0 or more"),
        ("[models]\nmax_wait = \"soon\"\n".to_string(), "soon"),
        ("[models]\nallow_payed = true\n".to_string(), "allow_payed"),
        ("[providers.x]\nkind = \"openai-compatible\"\npaid = \"no\"\n".to_string(), "paid"),
        (
            "[providers.x]\nkind = \"antropic\"\n".to_string(),
            "providers.x.kind is `antropic`: did you mean `anthropic`? (known kinds: `openai-compatible`, `openai`, `openrouter`, `anthropic`, `gemini`",
        ),
    ] {
        let err = parse(&text).unwrap_err();
        assert!(err.contains(want), "{text:?}:\n{err}");
        assert!(err.contains("swarm.toml"), "{err}");
    }
}

#[test]
fn models_toml_beside_swarm_toml() {
    let d = dir("models-file");
    let swarm = d.join("swarm.toml");
    let models = d.join(MODELS_FILE);
    std::fs::write(&swarm, format!("{PROVIDERS}[run]\ngrace = \"1s\"\n")).unwrap();
    std::fs::write(
        &models,
        "[providers.local]\nkind = \"openai-compatible\"\npaid = false\n\
         [models]\nmax_wait = \"10s\"\nlayers = [[\"gemini/a\"], [\"local/b\"]]\n\
         [models.limits.\"gemini/a\"]\nrpm = 3\n",
    )
    .unwrap();
    for cfg in [Config::read(&swarm).unwrap(), Config::discover(&d).unwrap()] {
        assert_eq!(cfg.grace(), Duration::from_secs(1));
        assert_eq!(cfg.max_wait(), Duration::from_secs(10));
        assert_eq!(cfg.model_layers().len(), 2);
        assert_eq!(cfg.model_limits("gemini/a").unwrap().rpm, Some(3));
        assert!(!cfg.model_paid("local/b"), "a provider from models.toml");
        assert_eq!(cfg.models_path.as_deref(), Some(models.as_path()));
    }
    // Without swarm.toml, models.toml alone (with its providers) still counts.
    std::fs::remove_file(&swarm).unwrap();
    let err = Config::discover(&d).unwrap_err().to_string();
    assert!(err.contains("models.toml") && err.contains("`gemini/a` names the provider `gemini`"), "{err}");
    std::fs::write(&models, format!("{PROVIDERS}[models]\nlayers = [[\"gemini/a\"]]\n")).unwrap();
    assert_eq!(Config::discover(&d).unwrap().model_layers().len(), 1);

    // Errors in models.toml name it.
    std::fs::write(&swarm, PROVIDERS).unwrap();
    for (text, want) in [
        ("[models]\nlayers = [[]]\n", "models.layers: layer 1 is empty"),
        ("[models]\nlayers = [[\"gemini/a\"]]\n[run]\ngrace = \"1s\"\n", "unknown field `run`"),
        ("[models]\nlayerz = []\n", "layerz"),
        ("[providers.gemini]\nkind = \"openai-compatible\"\n", "providers.gemini is declared both in"),
    ] {
        std::fs::write(&models, text).unwrap();
        let err = Config::read(&swarm).unwrap_err().to_string();
        assert!(err.contains(want) && err.contains(&models.display().to_string()), "{text:?}:\n{err}");
    }

    // [models] in both files: an error naming both.
    std::fs::write(&swarm, format!("{PROVIDERS}[models]\nlayers = [[\"gemini/a\"]]\n")).unwrap();
    std::fs::write(&models, "[models]\nlayers = [[\"gemini/b\"]]\n").unwrap();
    let err = Config::read(&swarm).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "[models] is defined both in `{}` and in `{}`",
            swarm.display(),
            models.display()
        )),
        "{err}"
    );
    // models.toml without [models] (only providers) is fine next to swarm.toml's [models].
    std::fs::write(&models, "[providers.local]\nkind = \"openai-compatible\"\n").unwrap();
    let cfg = Config::read(&swarm).unwrap();
    assert_eq!(cfg.models_path.as_deref(), Some(swarm.as_path()));
    assert!(cfg.providers.contains_key("local"));
    // --config naming models.toml itself does not read it twice.
    std::fs::write(&models, format!("{PROVIDERS}[models]\nlayers = [[\"gemini/b\"]]\n")).unwrap();
    assert_eq!(Config::read(&models).unwrap().model_layers()[0], ["gemini/b"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn every_known_provider_kind_parses_and_others_are_openai_chat() {
    for kind in PROVIDER_KINDS.iter().chain(&["ollama", "groq", "lmstudio"]) {
        let cfg = parse(&format!("[providers.p]\nkind = \"{kind}\"\n")).unwrap();
        assert_eq!(cfg.providers["p"].kind, *kind);
    }
}
