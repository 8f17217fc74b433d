//! Key names. Everything a namespace needs lives under `swarm:{<ns>}:`, so one hash tag keeps
//! a namespace's keys in one Cluster slot and a Redis ACL user limited to `~swarm:{<ns>}:*`
//! can use it all. The few global keys only help find namespaces and runs across them: they
//! are written when the user may, read when it may, and never needed.

/// Global (optional): `schema_version` and `layout` (2 once the per-namespace run indexes
/// were built from the global one).
pub(super) const META: &str = "swarm:meta";
/// Global (optional): every run id scored by its start (ms).
pub(super) const RUNS: &str = "swarm:runs";
/// Global (optional): run id -> namespace.
pub(super) const RUN_NS: &str = "swarm:run_ns";
/// Global (optional): the namespaces of the store.
pub(super) const NAMESPACES: &str = "swarm:namespaces";

/// The key layout this swarm writes: 2 = per-namespace run indexes.
pub(super) const LAYOUT: u32 = 2;

/// `swarm:{<ns>}:<rest>`.
pub(super) fn ns_key(ns: &str, rest: &str) -> String {
    format!("swarm:{{{ns}}}:{rest}")
}

/// Keys of one namespace as a whole.
pub(super) struct NsKeys {
    /// HASH `schema_version`: the namespace's own copy of the schema marker.
    pub(super) meta: String,
    /// SORTED SET: the namespace's run ids scored by their start (ms).
    pub(super) runs: String,
}

pub(super) fn ns_keys(ns: &str) -> NsKeys {
    NsKeys { meta: ns_key(ns, "meta"), runs: ns_key(ns, "runs") }
}

/// Keys of one run.
pub(super) struct RunKeys {
    pub(super) run: String,
    pub(super) tasks: String,
    pub(super) events: String,
    /// Pub/sub channel announcing new events of the namespace's runs.
    pub(super) channel: String,
}

pub(super) fn run_keys(ns: &str, run_id: &str) -> RunKeys {
    RunKeys {
        run: ns_key(ns, &format!("run:{run_id}")),
        tasks: ns_key(ns, &format!("run:{run_id}:tasks")),
        events: ns_key(ns, &format!("run:{run_id}:events")),
        channel: ns_key(ns, "events"),
    }
}
