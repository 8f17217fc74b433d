//! The built-in 7-layer hierarchy (`swarm models --defaults`): free Gemini first, then other
//! free models, a local server, and paid models last, each layer with why it is where it is.

use crate::config::Config;
use std::path::Path;

/// A `[providers.*]` + `[models]` snippet; paste it into `swarm.toml` (or the `[models]` part
/// into `models.toml`) and edit. Limits and prices are as published at the time of writing.
pub const DEFAULT_MODELS_TOML: &str = r#"# swarm's default model hierarchy: free Gemini first, paid last.
# Limits, windows and prices below are as published at the time of writing; providers change
# them. Set your own in [models.limits."ID"] (for your account's tier) before relying on them.

[providers.gemini]
kind = "openai-compatible"
base_url = "https://generativelanguage.googleapis.com/v1beta/openai"
api_key_env = "GEMINI_API_KEY"
paid = false            # the free tier; if your key's Google Cloud project has billing on, set true

[providers.openrouter]
kind = "openai-compatible"
base_url = "https://openrouter.ai/api/v1"
api_key_env = "OPENROUTER_API_KEY"
# paid, except the `:free` models, which say paid = false below

[providers.local]
kind = "openai-compatible"
base_url = "http://127.0.0.1:8080/v1"   # llama.cpp's llama-server; Ollama: http://127.0.0.1:11434/v1
api_key_env = "LOCAL_API_KEY"           # unset: a placeholder key is used for a loopback server
paid = false

[models]
allow_paid = false      # layers 6 and 7 are used only with true (or `swarm run --allow-paid`)
max_wait = "1m"
budget_usd = 5.0        # per run, once paid models are allowed
layers = [
  ["gemini/gemini-2.5-flash"],
  ["gemini/gemini-2.5-flash-lite"],
  ["gemini/gemini-2.5-pro"],
  ["openrouter/qwen/qwen3-coder:free", "openrouter/deepseek/deepseek-chat-v3-0324:free"],
  ["local/qwen3-coder"],
  ["openrouter/deepseek/deepseek-chat-v3-0324"],
  ["openrouter/anthropic/claude-sonnet-4.5"],
]

# Gemini API free tier. Google no longer publishes one table: the live figures are per project
# and model in AI Studio (ai.google.dev/gemini-api/docs/rate-limits), and its 2026 429 bodies show
# Flash models at about 20 requests a day (`limit: 20`, quotaId GenerateRequestsPerDay...).
# These are guesses to start from: swarm learns the real limit from the first 429 that names it
# and paces by that. Days reset at midnight Pacific time (the gemini provider's default).
[models.limits."gemini/gemini-2.5-flash"]
rpm = 10
rpd = 20
tpm = 250000
context = 1048576

[models.limits."gemini/gemini-2.5-flash-lite"]
rpm = 15
rpd = 20
tpm = 250000
context = 1048576

[models.limits."gemini/gemini-2.5-pro"]
rpm = 5
rpd = 20
tpm = 250000
context = 1048576

# OpenRouter `:free` models share one bucket per account (openrouter.ai/docs, free model
# variants): 20 requests a minute and 50 a day (1000 once the account bought 10 credits), the
# day in UTC. One group holds it for all of them.
[models.groups.openrouter-free]
models = ["openrouter/*:free"]
rpm = 20
rpd = 50

[models.limits."openrouter/qwen/qwen3-coder:free"]
context = 262144
paid = false

[models.limits."openrouter/deepseek/deepseek-chat-v3-0324:free"]
context = 163840
paid = false

# Your own server: no limits; set context to the server's context size (llama-server -c).
[models.limits."local/qwen3-coder"]
context = 32768

# Paid, as published at the time of writing (USD per million tokens).
[models.limits."openrouter/deepseek/deepseek-chat-v3-0324"]
context = 163840
price_in = 0.27
price_out = 1.10

[models.limits."openrouter/anthropic/claude-sonnet-4.5"]
context = 200000
price_in = 3.0
price_out = 15.0
"#;

/// Each layer of [`DEFAULT_MODELS_TOML`]: its models and why it is where it is.
const LAYERS: [(u8, &[&str], &str); 7] = [
    (
        1,
        &["gemini/gemini-2.5-flash"],
        "Free (about 10 requests a minute and 20 a day per project, reset at midnight Pacific), a \
         strong coder with a 1M-token window: the best free everyday model, so it goes first.",
    ),
    (
        2,
        &["gemini/gemini-2.5-flash-lite"],
        "Free with its own quota (about 15 a minute, 20 a day) but weaker: it takes the overflow \
         while Flash is cooling down or spent for the day.",
    ),
    (
        3,
        &["gemini/gemini-2.5-pro"],
        "Free and the strongest free model, but its free tier is tiny (about 5 a minute, 20 a day \
         at most), so it is a scarce reserve behind the two Flash models (a task with tier 3 starts \
         here).",
    ),
    (
        4,
        &["openrouter/qwen/qwen3-coder:free", "openrouter/deepseek/deepseek-chat-v3-0324:free"],
        "Free on another provider, so Google's limits don't stop them; they share one account-wide \
         bucket (20 a minute, 50 a day without credits, UTC days), held by one group. Qwen3 Coder \
         first as the coding specialist.",
    ),
    (
        5,
        &["local/qwen3-coder"],
        "Your own OpenAI-compatible server (llama.cpp, Ollama): free and unlimited, but weaker, \
         slower and with a smaller window, so it is the last free layer (remove it if you run none).",
    ),
    (
        6,
        &["openrouter/deepseek/deepseek-chat-v3-0324"],
        "Paid but cheap (about $0.27 in, $1.10 out per million tokens), a capable coder: the first \
         place money is spent, only with allow_paid.",
    ),
    (
        7,
        &["openrouter/anthropic/claude-sonnet-4.5"],
        "Paid and strong (about $3 in, $15 out per million tokens): the last resort, only with \
         allow_paid and within the run's budget.",
    ),
];

/// The default layers: (layer, its models in order, why it is there).
pub fn explain() -> Vec<(u8, Vec<&'static str>, &'static str)> {
    LAYERS.iter().map(|(layer, models, why)| (*layer, models.to_vec(), *why)).collect()
}

/// [`DEFAULT_MODELS_TOML`] as a config (its providers and `[models]`, nothing else set).
pub fn config() -> Config {
    Config::parse(DEFAULT_MODELS_TOML, Path::new("<built-in models>"))
        .expect("the built-in model hierarchy is a valid config")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Catalog;

    #[test]
    fn parses_into_seven_layers_with_free_models_before_paid_ones() {
        let cfg = config();
        assert_eq!(cfg.model_layers().len(), 7);
        assert!(!cfg.allow_paid());
        assert_eq!(cfg.max_wait(), std::time::Duration::from_secs(60));
        let catalog = Catalog::from_config(&cfg);
        assert_eq!(catalog.layers(), 7);
        let first_paid = catalog.models.iter().position(|m| m.paid).expect("paid layers");
        assert!(catalog.models[..first_paid]
            .iter()
            .all(|m| !m.paid && m.price_in == 0.0 && m.price_out == 0.0));
        assert!(catalog.models[first_paid..].iter().all(|m| m.paid && m.price_in > 0.0 && m.price_out > 0.0));
        assert_eq!(catalog.models[first_paid].layer, 6);
        assert!(catalog.models[0].id.starts_with("gemini/"), "free Gemini first");
        assert!(catalog.models.iter().filter(|m| m.layer <= 3).all(|m| m.provider == "gemini"));
        for p in ["gemini", "openrouter", "local"] {
            assert_eq!(cfg.providers[p].kind, "openai-compatible");
        }
    }

    #[test]
    fn explain_matches_the_toml() {
        let cfg = config();
        let explained = explain();
        assert_eq!(explained.len(), 7);
        for ((layer, models, why), (i, wanted)) in explained.iter().zip(cfg.model_layers().iter().enumerate())
        {
            assert_eq!(*layer as usize, i + 1);
            assert_eq!(models, wanted);
            assert!(why.ends_with('.') && why.len() > 40, "{why}");
            let paid = cfg.model_paid(models[0]);
            assert_eq!(why.starts_with("Paid"), paid, "layer {layer} says whether it is paid: {why}");
        }
    }

    const DOC: &str = include_str!("../../../../docs/models.md");
    const CONTRACT: &str = include_str!("../../../../docs/contract.md");
    const FAKE_LLM: &str = include_str!("../../../../docs/fake-llm.md");

    /// The ```` ```toml config ```` blocks of a doc page.
    fn configs(doc: &str) -> Vec<&str> {
        doc.split("```toml config\n").skip(1).map(|b| b.split("```").next().unwrap()).collect()
    }

    #[test]
    fn the_docs_configs_parse() {
        let pages = [("docs/models.md", DOC), ("docs/contract.md", CONTRACT), ("docs/fake-llm.md", FAKE_LLM)];
        let counts: Vec<usize> = pages.iter().map(|(_, doc)| configs(doc).len()).collect();
        assert!(counts[0] >= 4);
        assert_eq!(&counts[1..], &[2, 1], "docs/contract.md §7 and §8; docs/fake-llm.md's provider");
        for (file, doc) in pages {
            for block in configs(doc) {
                if let Err(e) = Config::parse(block, Path::new(file)) {
                    panic!("{file}: {e}\n{block}");
                }
            }
        }
    }

    #[test]
    fn the_docs_show_the_default_layers_as_explained() {
        for (layer, models, why) in explain() {
            let models: Vec<String> = models.iter().map(|m| format!("`{m}`")).collect();
            let row = format!("| {layer} | {} | {why} |", models.join(", "));
            assert!(DOC.contains(&row), "docs/models.md lacks the row\n{row}");
        }
    }
}
