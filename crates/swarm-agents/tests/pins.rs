//! The pinned agent CLIs are named twice — in the catalog swarm reads (`swarm agents`, `swarm
//! doctor`) and in the install script the tests and users run — and the two must agree: all seven.

use swarm_agents::catalog::CATALOG;

#[test]
fn the_install_script_installs_exactly_the_pinned_catalog_entries() {
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/install-agents.sh"))
            .expect("scripts/install-agents.sh");
    let body = &script[script.find("pins=(").expect("a pins=( … ) list")..];
    let body = &body[..body.find(')').expect("the list ends")];
    let mut installed: Vec<(String, String, String)> = body
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.strip_suffix('"').map(String::from))
        .map(|entry| {
            let (spec, bin) = entry.split_once(' ').expect("`package@version bin`");
            let (package, version) = spec.rsplit_once('@').expect("package@version");
            (bin.to_string(), package.to_string(), version.to_string())
        })
        .collect();
    // aider comes from PyPI, into its own venv.
    let aider = script.lines().find_map(|l| l.strip_prefix("aider_version=")).expect("aider_version=");
    installed.push(("aider".into(), "aider-chat".into(), aider.trim().into()));
    installed.sort();
    let mut pinned: Vec<(String, String, String)> = CATALOG
        .iter()
        .filter_map(|a| Some((a.binary.to_string(), a.package?.to_string(), a.pinned?.to_string())))
        .collect();
    pinned.sort();
    assert_eq!(pinned.len(), CATALOG.len(), "every built-in CLI is pinned");
    assert_eq!(installed, pinned, "scripts/install-agents.sh and swarm-agents' CATALOG disagree");
}
