//! The work queue for workers on many hosts (docs/contract.md §11), on Redis Streams: one stream
//! per agent CLI in a namespace (`swarm:{<ns>}:work:<agent>`, consumer group `workers`), so a
//! worker reads only the attempts it can run; a hash per attempt holding its owner, lease (on the
//! server's clock) and fencing token; a feed stream per run carrying what the attempts' current
//! owners say (their events, then their end) back to the orchestrator. A stale owner's writes
//! never reach it.
//!
//! The pitfalls this is built against: a delivered entry whose worker died stays pending until
//! another worker reclaims it (XAUTOCLAIM after the lease, every page until the cursor is back
//! at `0-0`, empty pages included); a long attempt keeps its entry by renewing, which checks
//! ownership first (a bare XCLAIM would let a zombie steal it back); a stale owner's renewal and
//! end are refused and counted (`lease_lost`); an end reported twice counts once (a duplicate
//! delivery after a failover, a retry after a lost answer).

use super::conn::Conn;
use super::keys::ns_key;
use super::queue_run::queued_key;
use super::{Lua, RedisStore};
use crate::store::StoreError;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::{Commands, RedisResult};
use std::time::Duration;

static ENQUEUE: Lua = Lua::new(include_str!("lua/queue_enqueue.lua"));
static CLAIM: Lua = Lua::new(include_str!("lua/queue_claim.lua"));
static RENEW: Lua = Lua::new(include_str!("lua/queue_renew.lua"));
static FINISH: Lua = Lua::new(include_str!("lua/queue_finish.lua"));
static EVENTS: Lua = Lua::new(include_str!("lua/queue_events.lua"));
static RELEASE: Lua = Lua::new(include_str!("lua/queue_release.lua"));

/// The consumer group every worker of a namespace reads in.
const GROUP: &str = "workers";
/// Feed entries kept per run (approximately).
const FEED_MAXLEN: usize = 100_000;
/// How long a finished attempt's hash is kept (a late duplicate is still recognised).
pub(super) const DONE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Entries per XAUTOCLAIM page.
const RECLAIM_PAGE: usize = 50;

/// One attempt for a worker to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    pub run_id: String,
    pub task: String,
    pub attempt: u32,
    /// The queue it is on: its agent CLI, and the labels a worker needs to take it
    /// ([`queue_name`]).
    pub queue: String,
    /// The attempt's job, as the orchestrator wrote it (JSON).
    pub job: String,
}

/// An attempt a worker owns until `until_ms` (server clock), with its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The namespace whose queue it came from.
    pub ns: String,
    pub item: WorkItem,
    /// The stream entry it came in.
    pub entry: String,
    /// Grows with every new owner: only the current one's renewal and end count.
    pub fence: u64,
    pub until_ms: u64,
}

/// What became of a renewal, an owner's events or an attempt's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fenced {
    /// Done: the lease runs until this moment (renewal), or the end was counted (finish);
    /// `stop`: the orchestrator asks the owner to stop the attempt (`terminate`, `kill`).
    Accepted { until_ms: Option<u64>, stop: Option<String> },
    /// This end was counted already.
    Duplicate,
    /// The attempt has another owner now (or none): nothing was written.
    LeaseLost { owner: String, fence: u64 },
}

/// What an attempt's owner said, as the orchestrator reads it from the run's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Stream entry id: read on after it.
    pub id: String,
    pub task: String,
    pub attempt: u32,
    pub worker: String,
    /// The worker's host (events only).
    pub host: String,
    pub fence: u64,
    pub said: Said,
}

/// An owner's events (a JSON array), or the attempt's end (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    Events(String),
    End(String),
}

pub(super) fn work_key(ns: &str, queue: &str) -> String {
    ns_key(ns, &format!("work:{queue}"))
}

pub(super) fn attempt_key(ns: &str, run_id: &str, task: &str, attempt: u32) -> String {
    ns_key(ns, &format!("attempt:{run_id}:{task}:{attempt}"))
}

fn feed_key(ns: &str, run_id: &str) -> String {
    ns_key(ns, &format!("run:{run_id}:feed"))
}

fn field(entry: &StreamId, name: &str) -> String {
    entry.get::<String>(name).unwrap_or_default()
}

pub(super) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl RedisStore {
    /// Queues `item` for the workers that run its agent (and have its labels); queuing it again
    /// returns its entry.
    pub fn enqueue(&self, ns: &str, item: &WorkItem) -> Result<String, StoreError> {
        if item.queue.contains('@') {
            self.with(|c| c.sadd::<_, _, ()>(super::queue_names::labelled_key(ns), &item.queue))?;
        }
        let script = ENQUEUE.get();
        let mut inv = script.key(work_key(ns, &item.queue));
        inv.key(attempt_key(ns, &item.run_id, &item.task, item.attempt));
        inv.key(queued_key(ns, &item.run_id));
        inv.arg(&item.run_id).arg(&item.task).arg(item.attempt).arg(&item.job);
        inv.arg(&item.queue).arg(ms(DONE_TTL));
        self.with(|c| inv.invoke(c))
    }

    /// Up to `count` new attempts for `worker`, of the given agents, each leased for `lease`;
    /// waits up to `block` (< 10 s) for one to come. Blocks only its own connection.
    pub fn take(
        &self,
        ns: &str,
        worker: &str,
        agents: &[String],
        lease: Duration,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        if agents.is_empty() || count == 0 {
            return Ok(vec![]);
        }
        let keys: Vec<String> = agents.iter().map(|a| work_key(ns, a)).collect();
        let ids = vec![">"; keys.len()];
        let mut opts = StreamReadOptions::default().group(GROUP, worker).count(count);
        if !block.is_zero() {
            opts = opts.block(ms(block) as usize); // BLOCK 0 would wait for ever
        }
        // The groups are made on first use (a stream nobody queued on yet has none).
        let reply: Option<StreamReadReply> = self.with_blocking(|c| {
            let read = |c: &mut Conn| {
                redis::cmd("XREADGROUP").arg(&opts).arg("STREAMS").arg(&keys).arg(&ids).query(c)
            };
            match read(c) {
                Err(e) if e.code() == Some("NOGROUP") => {
                    ensure_groups(c, &keys)?;
                    read(c)
                }
                other => other,
            }
        })?;
        let mut leases = Vec::new();
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            leases.extend(self.claim(ns, worker, &stream.key, &stream.ids, lease)?);
        }
        Ok(leases)
    }

    /// The attempts delivered to `worker` before and never taken up, but for the entries in
    /// `running`: a reply lost to a broken connection (the server delivered, the worker never
    /// read it), or a worker restarted under the same name. Claimed like new ones.
    pub fn take_pending(
        &self,
        ns: &str,
        worker: &str,
        agents: &[String],
        lease: Duration,
        running: &[String],
    ) -> Result<Vec<Lease>, StoreError> {
        let mut leases = Vec::new();
        for key in agents.iter().map(|a| work_key(ns, a)) {
            let opts = StreamReadOptions::default().group(GROUP, worker).count(1000);
            let read =
                self.with(|c| redis::cmd("XREADGROUP").arg(&opts).arg("STREAMS").arg(&key).arg("0").query(c));
            let reply: Option<StreamReadReply> = match read {
                Err(StoreError::Backend { message, .. }) if message.contains("NOGROUP") => continue,
                other => other?,
            };
            let mut claim = Vec::new();
            for entry in reply.map(|r| r.keys).unwrap_or_default().into_iter().flat_map(|k| k.ids) {
                if running.contains(&entry.id) {
                    continue;
                }
                if entry.map.is_empty() {
                    // Deleted since (it ended): nothing to run, nothing to keep pending.
                    let _ =
                        self.with(|c| redis::cmd("XACK").arg(&key).arg(GROUP).arg(&entry.id).query::<u64>(c));
                    continue;
                }
                claim.push(entry);
            }
            leases.extend(self.claim(ns, worker, &key, &claim, lease)?);
        }
        Ok(leases)
    }

    /// Up to `max` attempts whose owner has not renewed within `lease` (it died, hangs, or lost
    /// the network), taken over by `worker` with a new fencing token. Reads every page.
    pub fn reclaim(
        &self,
        ns: &str,
        worker: &str,
        agents: &[String],
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Lease>, StoreError> {
        let mut leases = Vec::new();
        for key in agents.iter().map(|a| work_key(ns, a)) {
            let mut cursor = "0-0".to_string();
            while leases.len() < max {
                let page: Result<StreamAutoClaimReply, _> = self.with(|c| {
                    redis::cmd("XAUTOCLAIM")
                        .arg(&key)
                        .arg(GROUP)
                        .arg(worker)
                        .arg(ms(lease))
                        .arg(&cursor)
                        .arg("COUNT")
                        .arg(RECLAIM_PAGE.min(max - leases.len()))
                        .query(c)
                });
                let page = match page {
                    Err(e) if e.to_string().contains("NOGROUP") => break, // nothing was ever queued here
                    other => other?,
                };
                leases.extend(self.claim(ns, worker, &key, &page.claimed, lease)?);
                // A page may be empty while the cursor is not back at the start: go on.
                if page.next_stream_id == "0-0" {
                    break;
                }
                cursor = page.next_stream_id;
            }
        }
        Ok(leases)
    }

    /// Makes `worker` the owner of the attempts of `entries` of `stream` (one script call):
    /// those it may have, leased for `lease`.
    fn claim(
        &self,
        ns: &str,
        worker: &str,
        stream: &str,
        entries: &[StreamId],
        lease: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        if entries.is_empty() {
            return Ok(vec![]);
        }
        let queue = stream.rsplit_once(":work:").map(|(_, a)| a.to_string()).unwrap_or_default();
        let items: Vec<WorkItem> = entries
            .iter()
            .map(|entry| WorkItem {
                run_id: field(entry, "run"),
                task: field(entry, "task"),
                attempt: field(entry, "attempt").parse().unwrap_or(0),
                queue: queue.clone(),
                job: field(entry, "job"),
            })
            .collect();
        let script = CLAIM.get();
        let mut inv = script.key(stream);
        inv.arg(worker).arg(ms(lease));
        for (item, entry) in items.iter().zip(entries) {
            inv.key(attempt_key(ns, &item.run_id, &item.task, item.attempt)).arg(&entry.id);
        }
        let replies: Vec<Vec<String>> = self.with(|c| inv.invoke(c))?;
        let leases = items.into_iter().zip(entries).zip(replies).filter_map(|((item, entry), reply)| {
            (reply.first().map(String::as_str) == Some("ok")).then(|| Lease {
                ns: ns.to_string(),
                item,
                entry: entry.id.clone(),
                fence: reply.get(1).and_then(|f| f.parse().ok()).unwrap_or(0),
                until_ms: reply.get(2).and_then(|f| f.parse().ok()).unwrap_or(0),
            })
        });
        Ok(leases.collect())
    }

    /// Extends `lease` by `by`, if `worker` still owns the attempt with its fencing token.
    pub fn renew(&self, worker: &str, lease: &Lease, by: Duration) -> Result<Fenced, StoreError> {
        let (ns, item) = (lease.ns.as_str(), &lease.item);
        let script = RENEW.get();
        let mut inv = script.key(attempt_key(ns, &item.run_id, &item.task, item.attempt));
        inv.key(work_key(ns, &item.queue)).arg(worker).arg(lease.fence).arg(ms(by)).arg(&lease.entry);
        let reply: Vec<String> = self.with(|c| inv.invoke(c))?;
        Ok(fenced(&reply))
    }

    /// Appends what `worker` says of its attempt (`events`, a JSON array) to the run's feed, if
    /// it still owns the attempt; says whether the orchestrator asks it to stop.
    pub fn say(&self, worker: &str, host: &str, lease: &Lease, events: &str) -> Result<Fenced, StoreError> {
        let (ns, item) = (lease.ns.as_str(), &lease.item);
        let script = EVENTS.get();
        let mut inv = script.key(attempt_key(ns, &item.run_id, &item.task, item.attempt));
        inv.key(feed_key(ns, &item.run_id));
        inv.arg(worker).arg(lease.fence).arg(events).arg(FEED_MAXLEN).arg(host);
        let reply: Vec<String> = self.with(|c| inv.invoke(c))?;
        Ok(fenced(&reply))
    }

    /// Reports the attempt's end (`outcome`, JSON): counted once, and only from its current owner.
    pub fn finish(&self, worker: &str, lease: &Lease, outcome: &str) -> Result<Fenced, StoreError> {
        self.finish_saying(worker, lease, None, outcome)
    }

    /// [`RedisStore::finish`], with the owner's last events (`(host, events)`, as
    /// [`RedisStore::say`] takes them) appended before the end in the same step.
    pub fn finish_saying(
        &self,
        worker: &str,
        lease: &Lease,
        said: Option<(&str, &str)>,
        outcome: &str,
    ) -> Result<Fenced, StoreError> {
        let (ns, item) = (lease.ns.as_str(), &lease.item);
        let script = FINISH.get();
        let mut inv = script.key(attempt_key(ns, &item.run_id, &item.task, item.attempt));
        inv.key(work_key(ns, &item.queue)).key(feed_key(ns, &item.run_id));
        inv.arg(worker).arg(lease.fence).arg(&lease.entry).arg(outcome);
        inv.arg(FEED_MAXLEN).arg(ms(DONE_TTL));
        if let Some((host, events)) = said {
            inv.arg(host).arg(events);
        }
        let reply: Vec<String> = self.with(|c| inv.invoke(c))?;
        Ok(fenced(&reply))
    }

    /// A draining worker hands its attempt back to the queue, for any worker to take at once.
    pub fn release(&self, worker: &str, lease: &Lease) -> Result<Fenced, StoreError> {
        let (ns, item) = (lease.ns.as_str(), &lease.item);
        let script = RELEASE.get();
        let mut inv = script.key(attempt_key(ns, &item.run_id, &item.task, item.attempt));
        inv.key(work_key(ns, &item.queue)).arg(worker).arg(lease.fence).arg(&lease.entry);
        let reply: Vec<String> = self.with(|c| inv.invoke(c))?;
        Ok(fenced(&reply))
    }

    /// What the run's attempts' owners said after entry `after` (`0-0`: from the start), at
    /// most `count`; waits up to `block` (< 10 s, on its own connection) when nothing is there.
    pub fn feed(
        &self,
        ns: &str,
        run_id: &str,
        after: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        let key = feed_key(ns, run_id);
        let mut opts = StreamReadOptions::default().count(count);
        let read = |opts: &StreamReadOptions, c: &mut Conn| {
            redis::cmd("XREAD").arg(opts).arg("STREAMS").arg(&key).arg(after).query(c)
        };
        let reply: Option<StreamReadReply> = match block {
            Some(b) => {
                opts = opts.block(ms(b) as usize);
                self.with_blocking(|c| read(&opts, c))?
            }
            None => self.with(|c| read(&opts, c))?,
        };
        let entries = reply.map(|r| r.keys).unwrap_or_default().into_iter().flat_map(|k| k.ids);
        Ok(entries.map(feed_entry).collect())
    }

    /// How many late writes of stale owners the attempt's hash counted (`lease_lost`).
    pub fn lost_writes(&self, ns: &str, run_id: &str, task: &str, attempt: u32) -> Result<u64, StoreError> {
        let key = attempt_key(ns, run_id, task, attempt);
        let lost: Option<u64> = self.with(|c| redis::cmd("HGET").arg(&key).arg("lost").query(c))?;
        Ok(lost.unwrap_or(0))
    }
}

fn feed_entry(e: StreamId) -> FeedEntry {
    let said = match e.get::<String>("end") {
        Some(end) => Said::End(end),
        None => Said::Events(field(&e, "events")),
    };
    FeedEntry {
        task: field(&e, "task"),
        attempt: field(&e, "attempt").parse().unwrap_or(0),
        worker: field(&e, "worker"),
        host: field(&e, "host"),
        fence: field(&e, "fence").parse().unwrap_or(0),
        said,
        id: e.id,
    }
}

fn fenced(reply: &[String]) -> Fenced {
    match reply.first().map(String::as_str) {
        Some("ok") => Fenced::Accepted {
            until_ms: reply.get(1).and_then(|u| u.parse().ok()),
            stop: reply.get(2).filter(|s| !s.is_empty()).cloned(),
        },
        Some("accepted") => Fenced::Accepted { until_ms: None, stop: None },
        Some("duplicate") => Fenced::Duplicate,
        _ => Fenced::LeaseLost {
            owner: reply.get(1).cloned().unwrap_or_default(),
            fence: reply.get(2).and_then(|f| f.parse().ok()).unwrap_or(0),
        },
    }
}

/// The consumer group on each stream, made (with the stream) where it is missing.
fn ensure_groups(c: &mut Conn, keys: &[String]) -> RedisResult<()> {
    for key in keys {
        let made: RedisResult<()> =
            redis::cmd("XGROUP").arg("CREATE").arg(key).arg(GROUP).arg("0").arg("MKSTREAM").query(c);
        match made {
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            other => other?,
        }
    }
    Ok(())
}
