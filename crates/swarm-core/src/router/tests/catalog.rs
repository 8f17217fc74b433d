//! The catalog: routing order, each model resolved, prices.

use super::*;

const CONFIG: &str = r#"
[providers.gemini]
kind = "openai-compatible"
paid = false
[providers.openrouter]
kind = "openai-compatible"

[models]
layers = [
  ["gemini/flash", "gemini/lite"],
  ["openrouter/deepseek/deepseek-chat-v3-0324:free", "openrouter/qwen/qwen3-coder"],
  ["openrouter/anthropic/claude-sonnet-4.5"],
]
[models.limits."gemini/flash"]
rpm = 10
rpd = 250
tpm = 250000
context = 1048576
[models.limits."gemini/lite"]
paid = true
[models.limits."openrouter/deepseek/deepseek-chat-v3-0324:free"]
paid = false
context = 163840
[models.limits."openrouter/anthropic/claude-sonnet-4.5"]
price_in = 3.0
price_out = 15.0
"#;

#[test]
fn catalog_keeps_routing_order_and_resolves_each_model() {
    let cfg = Config::parse(CONFIG, Path::new("swarm.toml")).unwrap();
    let c = Catalog::from_config(&cfg);
    let order: Vec<(&str, u8)> = c.models.iter().map(|m| (m.id.as_str(), m.layer)).collect();
    assert_eq!(
        order,
        [
            ("gemini/flash", 1),
            ("gemini/lite", 1),
            ("openrouter/deepseek/deepseek-chat-v3-0324:free", 2),
            ("openrouter/qwen/qwen3-coder", 2),
            ("openrouter/anthropic/claude-sonnet-4.5", 3),
        ]
    );
    assert_eq!(c.len(), 5);
    assert_eq!(c.layers(), 3);
    let free = &c.models[2];
    assert_eq!(
        (free.provider.as_str(), free.provider_model.as_str()),
        ("openrouter", "deepseek/deepseek-chat-v3-0324:free")
    );
    let flash = &c.models[0];
    assert_eq!(
        (flash.rpm, flash.rpd, flash.tpm, flash.context),
        (Some(10), Some(250), Some(250_000), Some(1_048_576))
    );
    // Paid unless the model or its provider says otherwise; the model's word wins.
    let paid: Vec<bool> = c.models.iter().map(|m| m.paid).collect();
    assert_eq!(paid, [false, true, false, true, true]);
    assert_eq!(c.index("openrouter/qwen/qwen3-coder"), Some(3));
    assert_eq!(c.index("qwen3-coder"), None);
    assert!(!c.is_empty());
    assert!(Catalog::from_config(&Config::default()).is_empty());
}

#[test]
fn cost_is_priced_per_million_tokens() {
    let cfg = Config::parse(CONFIG, Path::new("swarm.toml")).unwrap();
    let c = Catalog::from_config(&cfg);
    assert_eq!(c.cost_usd(4, 1_000_000, 500_000), 10.5);
    assert!((c.cost_usd(4, 1_200, 300) - 0.0081).abs() < 1e-12);
    assert_eq!(c.cost_usd(0, 1_000_000, 1_000_000), 0.0, "free");
    assert_eq!(c.cost_usd(99, 1, 1), 0.0, "unknown index");
}
