//! Which provider serves a model: `model: local/ok` names the provider `local` of swarm.toml,
//! whose key the agent reads from an environment variable (a placeholder for a local endpoint
//! without one). Keys never pass through here: only the names of the variables that hold them.

use swarm_core::config::Config;

/// The provider of a model, and the key variable (name, placeholder) swarm must set, if any.
pub type ResolvedProvider = (Option<swarm_agents::ProviderSpec>, Option<(String, String)>);

/// Placeholder key for a local endpoint whose key env var is unset.
const PLACEHOLDER_KEY: &str = "swarm-local-placeholder-key";

/// Env var the agent reads its key from when the provider names none.
const DEFAULT_KEY_ENV: &str = "SWARM_PROVIDER_API_KEY";

/// `model: local/ok` → the provider `local` from `swarm.toml`, and the key variable the agent
/// must get set explicitly (a placeholder), if any. A model whose prefix is no configured provider
/// is passed to the agent as is (its own config knows the provider). Errors name the provider.
pub fn resolve_provider(config: &Config, model: &str) -> Result<ResolvedProvider, String> {
    let Some((name, id)) = model.split_once('/') else { return Ok((None, None)) };
    let Some(p) = config.providers.get(name) else {
        if config.providers.is_empty() {
            return Ok((None, None));
        }
        // Providers are configured but not this one: most likely a typo; but real provider
        // names (anthropic/…, openai/…) are the agents' own business.
        if swarm_core::config::AGENT_PROVIDERS.contains(&name) {
            return Ok((None, None));
        }
        let known: Vec<&str> = config.providers.keys().map(String::as_str).collect();
        return Err(format!(
            "model `{model}`: no provider `{name}` in swarm.toml [providers] (configured: {})",
            known.join(", ")
        ));
    };
    let env_name = p.api_key_env.clone().unwrap_or_else(|| DEFAULT_KEY_ENV.into());
    let has_key = std::env::var_os(&env_name).is_some_and(|v| !v.is_empty());
    let loopback = p.base_url.as_deref().is_some_and(crate::os::net::is_loopback);
    let key_env = if has_key {
        None
    } else if loopback || p.api_key_env.is_none() {
        Some((env_name.clone(), PLACEHOLDER_KEY.to_string()))
    } else {
        return Err(format!(
            "provider `{name}` needs its key in the environment variable `{env_name}`, which is not set"
        ));
    };
    let spec = swarm_agents::ProviderSpec {
        name: name.into(),
        kind: p.kind.clone(),
        base_url: p.base_url.clone(),
        model: id.into(),
        api_key_env: env_name,
    };
    Ok((Some(spec), key_env))
}

/// Whether a task pinned to `model` spends money: a model of a provider declared in swarm.toml is
/// paid when it or its provider says `paid = true`; when neither says, unless the provider is on
/// loopback (the user's own server, as `[providers.local]` of the docs). A model of a provider
/// swarm.toml does not declare is the agent's own business.
/// Whether a task pinned to `model` has a key the gateway can keep from its agent: the model's
/// provider is declared with a `base_url` and an `api_key_env` that is set. (Without a key there
/// is nothing to keep, and an unset one is said as before, when the attempt starts.)
pub fn gateway_keeps_key(config: &Config, model: &str) -> bool {
    let Some((name, _)) = model.split_once('/') else { return false };
    let Some(p) = config.providers.get(name) else { return false };
    let set = |var: &String| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    p.base_url.is_some() && p.api_key_env.as_ref().is_some_and(set)
}

pub fn pinned_paid(config: &Config, model: &str) -> bool {
    let Some((name, _)) = model.split_once('/') else { return false };
    let Some(p) = config.providers.get(name) else { return false };
    let own = config.model_limits(model).and_then(|l| l.paid);
    let loopback = p.base_url.as_deref().is_some_and(crate::os::net::is_loopback);
    own.or(p.paid).unwrap_or(!loopback)
}

#[cfg(test)]
mod provider_tests {
    use super::*;

    fn config(base_url: &str, key_env: Option<&str>) -> Config {
        let mut c = Config::default();
        c.providers.insert(
            "local".into(),
            swarm_core::config::ProviderConfig {
                kind: "openai-compatible".into(),
                base_url: Some(base_url.into()),
                api_key_env: key_env.map(String::from),
                models: vec!["ok".into()],
                paid: None,
                ..Default::default()
            },
        );
        c
    }

    #[test]
    fn a_local_provider_without_its_key_gets_a_placeholder() {
        let c = config("http://127.0.0.1:8999/v1", Some("SWARM_TEST_UNSET_KEY_1"));
        let (spec, key) = resolve_provider(&c, "local/ok").unwrap();
        let spec = spec.unwrap();
        assert_eq!((spec.name.as_str(), spec.model.as_str()), ("local", "ok"));
        assert_eq!(spec.api_key_env, "SWARM_TEST_UNSET_KEY_1");
        assert_eq!(key, Some(("SWARM_TEST_UNSET_KEY_1".into(), PLACEHOLDER_KEY.into())));
    }

    #[test]
    fn a_remote_provider_without_its_key_is_an_error_naming_the_variable() {
        let c = config("https://llm.example.com/v1", Some("SWARM_TEST_UNSET_KEY_2"));
        let err = resolve_provider(&c, "local/ok").unwrap_err();
        assert!(err.contains("SWARM_TEST_UNSET_KEY_2"), "{err}");
    }

    #[test]
    fn unknown_prefixes() {
        let c = config("http://localhost:1/v1", None);
        let err = resolve_provider(&c, "locl/ok").unwrap_err();
        assert!(err.contains("`locl`") && err.contains("local"), "{err}");
        assert_eq!(resolve_provider(&c, "anthropic/claude-sonnet-4").unwrap(), (None, None));
        assert_eq!(resolve_provider(&c, "gpt-5").unwrap(), (None, None));
        assert_eq!(resolve_provider(&Config::default(), "local/ok").unwrap(), (None, None));
    }
}
