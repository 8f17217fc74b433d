//! The plan: a markdown (or JSON) file turned into a validated task graph (docs/contract.md §1).

mod fields;
mod front_matter;
mod json;
mod lines;
mod markdown;
mod model;
pub mod source;
mod state_decl;
mod validate;

pub use model::{AgentKind, OnConflict, Plan, Task, Workdir};

use crate::diagnostic::Diagnostics;
use std::path::Path;

/// What a plan inherits from where it lives, when its front matter does not say.
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    /// Default `name`: the plan file's stem.
    pub default_name: String,
    /// Default `namespace`: the name of the git root directory (or of the current directory).
    pub default_namespace: String,
    /// Every agent name a task may use, in the order messages list them: swarm-agents' built-in
    /// table, then the custom agents of `swarm.toml` (`swarm_agents::agent_names`).
    pub agents: Vec<String>,
    /// The roles a task may name (`[roles.NAME]` and the agents' own named agents); `None`:
    /// not checked.
    pub roles: Option<Vec<String>>,
    /// The plan file's directory: `schema_file` paths are relative to it.
    pub plan_dir: Option<std::path::PathBuf>,
    /// The providers swarm.toml declares; a `model: NAME/…` must name one of them (or one the
    /// agents know by themselves, [`crate::config::AGENT_PROVIDERS`]). `None`: not checked.
    pub providers: Option<Vec<String>>,
}

/// The two ways to write a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    Markdown,
    Json,
}

impl PlanFormat {
    /// `.json` files are JSON, anything else is markdown.
    pub fn of(path: &Path) -> PlanFormat {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            PlanFormat::Json
        } else {
            PlanFormat::Markdown
        }
    }
}

/// Reads and parses a plan file; `.json` files are parsed as JSON, anything else as markdown.
/// Every problem is returned at once, each with `file:line:column`.
/// The file is read as untrusted input ([`source::read`]): a link, a FIFO, a device or a file over
/// [`source::PLAN_LIMIT`] is an error, never a hang.
pub fn load(path: &Path, ctx: &PlanContext) -> Result<Plan, Diagnostics> {
    let file = path.display().to_string();
    let mut ctx = ctx.clone();
    if ctx.plan_dir.is_none() {
        ctx.plan_dir = Some(path.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    match source::read(path) {
        Ok(bytes) => parse_bytes(&file, &bytes, PlanFormat::of(path), &ctx),
        Err(why) => Err(Diagnostics::unreadable(&file, &why)),
    }
}

/// Parses a plan as read from disk: text that is not UTF-8 is an error at its first invalid byte;
/// a file with as many NUL bytes as lines is binary data (or `/proc/self/environ`), not a plan,
/// and is never quoted. (A stray NUL in a plan is reported where it is, by the parser.)
pub fn parse_bytes(
    file: &str,
    bytes: &[u8],
    format: PlanFormat,
    ctx: &PlanContext,
) -> Result<Plan, Diagnostics> {
    let nuls = bytes.iter().filter(|&&b| b == 0).count();
    // UTF-16 has NULs too: it gets its own hint below.
    let utf16 = bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]);
    if !utf16 && nuls > 0 && nuls >= bytes.iter().filter(|&&b| b == b'\n').count() {
        let why = "it holds NUL bytes: binary data, not a plan";
        // The source is kept (nothing of it is quoted: the error has no line).
        return Err(Diagnostics {
            source: String::from_utf8_lossy(bytes).into_owned(),
            ..Diagnostics::unreadable(file, why)
        });
    }
    let src = std::str::from_utf8(bytes).map_err(|e| Diagnostics::not_utf8(file, bytes, &e))?;
    match format {
        PlanFormat::Markdown => parse_markdown(file, src, ctx),
        PlanFormat::Json => parse_json(file, src, ctx),
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
