//! `swarm schema [NAME]`: the JSON Schemas generated from swarm's own types.

use crate::cli::SchemaArgs;
use crate::error::{CliError, CliResult};
use anyhow::anyhow;

pub fn schema(args: SchemaArgs) -> CliResult {
    if args.list {
        for name in swarm_core::schema::names() {
            println!("{name}");
        }
        return Ok(0);
    }
    let out = match &args.name {
        Some(name) => swarm_core::schema::get(name).ok_or_else(|| {
            CliError::invalid(anyhow!(
                "no schema `{name}`; known: {}",
                swarm_core::schema::names().join(", ")
            ))
        })?,
        None => serde_json::Value::Object(
            swarm_core::schema::all().into_iter().map(|(n, s)| (n.to_string(), s)).collect(),
        ),
    };
    println!("{}", serde_json::to_string_pretty(&out).expect("schemas serialize"));
    Ok(0)
}
