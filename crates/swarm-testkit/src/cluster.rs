//! A real Redis Cluster of our own: `redis-server` processes with `--cluster-enabled yes` on free
//! ports, joined by `redis-cli --cluster create`, every node stopped on drop.

use crate::{free_port, wait_until, RedisServer};
use std::process::Command;
use std::time::Duration;

/// A cluster of primaries without replicas, ready (every slot served) once started.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts a 3-node cluster with persistence off.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(3, &[])
    }

    /// Starts a cluster of `n` (≥ 3) primaries; `args` go to every node.
    pub fn start_with(n: usize, args: &[&str]) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..n)
            .map(|_| {
                // The bus port is given, not port + 10000, which may lie past 65535.
                let bus = free_port().to_string();
                let mut all = vec![
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--cluster-port",
                    &bus,
                ];
                all.extend_from_slice(args);
                RedisServer::start_with(&all)
            })
            .collect();
        let cluster = RedisCluster { nodes };
        cluster.create();
        cluster
    }

    fn create(&self) {
        let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
        let out = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(self.addresses())
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .args(self.auth_args())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{cli}` ({e})"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for node in &self.nodes {
            let port = node.port;
            wait_until(Duration::from_secs(30), &format!("node {port} to see the cluster ok"), || {
                let info = self.cli(port, &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
        }
    }

    /// `redis-cli -p PORT ARGS…` on one node, its standard output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
        let out = Command::new(cli)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(self.auth_args())
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The password nodes were started with (`--requirepass`), for redis-cli.
    fn auth_args(&self) -> Vec<String> {
        let extra = self.nodes.first().map(|n| n.extra.clone()).unwrap_or_default();
        match extra.iter().position(|a| a == "--requirepass") {
            Some(i) => vec!["-a".into(), extra[i + 1].clone(), "--no-auth-warning".into()],
            None => vec![],
        }
    }

    fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect()
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`.
    pub fn url(&self) -> String {
        format!("redis+cluster://{}", self.addresses().join(","))
    }

    /// Runs `args` on every node (`FLUSHALL`, `ACL SETUSER …`): what is not replicated.
    pub fn on_every_node(&self, args: &[&str]) {
        for node in &self.nodes {
            self.cli(node.port, args);
        }
    }
}
