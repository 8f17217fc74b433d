//! `swarm doctor` through the real binary: store health, agent CLIs, credentials by name only.

mod support;

use std::os::unix::fs::PermissionsExt;
use support::*;
use swarm_testkit::RedisServer;

#[test]
fn a_healthy_embedded_store_and_a_local_agent_cli() {
    let p = Project::new();
    // A stand-in `opencode` in the project-local tool folder the test setup fills.
    p.write(".tools/node_modules/.bin/opencode", "#!/bin/sh\necho 1.18.33\n");
    let bin = p.file(".tools/node_modules/.bin/opencode");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = p.swarm(&["doctor", "--json"]);
    out.expect_code(0);
    let v = out.json();
    assert_eq!(v["healthy"], true, "{}", out.dump());
    assert_eq!(v["store"]["backend"], if on_redis() { "redis" } else { "sqlite" });
    assert_eq!(v["store"]["schema_version"], 1);
    let opencode = v["agents"].as_array().unwrap().iter().find(|a| a["name"] == "opencode").unwrap();
    assert_eq!(opencode["version"], "1.18.33", "{}", out.dump());
    assert_eq!(opencode["pinned"], "1.18.33");
    let human = p.swarm(&["doctor"]);
    human.expect_code(0);
    assert!(human.stdout.contains("healthy"), "{}", human.dump());
}

#[test]
fn redis_without_persistence_is_a_warning_and_an_unreachable_store_a_problem() {
    let redis = RedisServer::start();
    let p = Project::new();
    let out = p.swarm(&["doctor", "--json", "--store", &redis.url()]);
    out.expect_code(0);
    let v = out.json();
    assert_eq!(v["store"]["backend"], "redis");
    assert!(v["store"]["server_version"].as_str().unwrap().starts_with(char::is_numeric));
    assert!(
        v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("neither AOF nor RDB")),
        "{}",
        out.dump()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://bob:topsecret@127.0.0.1:{port}");
    let down = p.swarm(&["doctor", "--store", &url]);
    down.expect_code(1);
    assert!(down.stdout.contains(&format!("127.0.0.1:{port}")), "{}", down.dump());
    assert!(!down.dump().contains("topsecret"), "password printed:\n{}", down.dump());
}

#[test]
fn missing_provider_credentials_are_named_never_shown() {
    let p = Project::new();
    p.write(
        "swarm.toml",
        "[providers.cloud]\nkind = \"openai-compatible\"\nbase_url = \"https://api.example.invalid/v1\"\n\
         api_key_env = \"SWARM_TEST_CLOUD_KEY\"\nmodels = [\"m\"]\n\n\
         [providers.local]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:8999/v1\"\n\
         api_key_env = \"SWARM_TEST_LOCAL_KEY\"\nmodels = [\"ok\"]\n",
    );
    let out = p.swarm(&["doctor"]);
    out.expect_code(1);
    assert!(out.stdout.contains("SWARM_TEST_CLOUD_KEY is not set"), "{}", out.dump());
    assert!(out.stdout.contains("placeholder key"), "local endpoints get a placeholder: {}", out.dump());
    let mut cmd = p.command(&["doctor"]);
    cmd.env("SWARM_TEST_CLOUD_KEY", "sk-very-secret-value");
    let ok = p.spawn_cmd(cmd).wait(CMD_TIMEOUT);
    ok.expect_code(0);
    assert!(ok.stdout.contains("SWARM_TEST_CLOUD_KEY is set"), "{}", ok.dump());
    assert!(!ok.dump().contains("sk-very-secret-value"), "key printed:\n{}", ok.dump());
}
