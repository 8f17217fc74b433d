//! The plan: a markdown (or JSON) file turned into a validated task graph (CONTRACT §1).

mod json;
mod markdown;
mod model;
mod validate;

pub use model::{Plan, Task, Workdir, AGENTS};

use crate::diagnostic::Diagnostics;
use std::path::Path;

/// What a plan inherits from where it lives, when its front matter does not say.
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    /// Default `name`: the plan file's stem.
    pub default_name: String,
    /// Default `namespace`: the name of the git root directory (or of the current directory).
    pub default_namespace: String,
    /// Agent names besides the built-in ones (custom agents from `swarm.toml`).
    pub custom_agents: Vec<String>,
}

/// Reads and parses a plan file; `.json` files are parsed as JSON, anything else as markdown.
/// Every problem is returned at once, each with `file:line:column`.
pub fn load(path: &Path, ctx: &PlanContext) -> Result<Plan, Diagnostics> {
    let file = path.display().to_string();
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return Err(Diagnostics::io(&file, &e)),
    };
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        parse_json(&file, &src, ctx)
    } else {
        parse_markdown(&file, &src, ctx)
    }
}

/// Parses a markdown plan. `file` names the source in diagnostics.
pub fn parse_markdown(file: &str, src: &str, ctx: &PlanContext) -> Result<Plan, Diagnostics> {
    markdown::parse(file, src, ctx)
}

/// Parses the JSON form of a plan (what `swarm plan show --json` prints).
pub fn parse_json(file: &str, src: &str, ctx: &PlanContext) -> Result<Plan, Diagnostics> {
    json::parse(file, src, ctx)
}
