//! Which queues there are: one work stream per agent CLI of a namespace, and one per agent and
//! set of labels its tasks need (`<agent>@k=v,…`), listed in a set so that workers find the
//! queues whose labels they have; and the namespaces with queues, for a worker that serves
//! every namespace.

use super::keys::ns_key;
use super::queue::work_key;
use super::RedisStore;
use crate::store::StoreError;
use redis::Commands;
use std::collections::BTreeMap;

/// SET: the queues of tasks that need labels (`<agent>@k=v,…`), for workers to find theirs.
pub(super) fn labelled_key(ns: &str) -> String {
    ns_key(ns, "work:labelled")
}

/// The queue of a task of `agent` needing `labels`: `agent`, or `agent@k=v,k2=v2` (sorted).
pub fn queue_name(agent: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return agent.to_string();
    }
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{agent}@{}", labels.join(","))
}

/// Whether a worker with `agents` and `labels` takes from queue `name`.
pub(super) fn takes(name: &str, agents: &[String], labels: &[(String, String)]) -> bool {
    let (agent, needs) = name.split_once('@').unwrap_or((name, ""));
    agents.iter().any(|a| a == agent)
        && needs.split(',').filter(|n| !n.is_empty()).all(|n| {
            let (k, v) = n.split_once('=').unwrap_or((n, ""));
            labels.iter().any(|(lk, lv)| lk == k && lv == v)
        })
}

impl RedisStore {
    /// The queues of namespace `ns` a worker running `agents` with `labels` takes from: one per
    /// agent, and those of tasks needing labels it has (every one of them, same value).
    pub fn queues_for(
        &self,
        ns: &str,
        agents: &[String],
        labels: &[(String, String)],
    ) -> Result<Vec<String>, StoreError> {
        let labelled: Option<Vec<String>> = self.in_namespace(ns, |c| c.smembers(labelled_key(ns)))?;
        let mut queues = agents.to_vec();
        let mut more: Vec<String> =
            labelled.unwrap_or_default().into_iter().filter(|q| takes(q, agents, labels)).collect();
        more.sort();
        queues.extend(more);
        Ok(queues)
    }

    /// The namespaces this user may read that have a work queue for one of `agents`: where a
    /// worker that serves every namespace looks for work.
    pub fn queued_namespaces(&self, agents: &[String]) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        for ns in self.namespaces()? {
            let keys = agents.iter().map(|a| work_key(&ns, a)).chain([labelled_key(&ns)]);
            for key in keys {
                // One key per command: on a Cluster each namespace is its own slot.
                if self.in_namespace(&ns, |c| c.exists::<_, bool>(&key))? == Some(true) {
                    found.push(ns);
                    break;
                }
            }
        }
        Ok(found)
    }
}
