//! swarm-testkit: helpers shared by the test suites — a real `redis-server` on a free port in a
//! temporary directory (or a Redis Cluster of them), waiting on explicit conditions instead of
//! sleeping, and a fixed run for the snapshot tests of its renderings.

mod cluster;
pub mod fixtures;

pub use cluster::RedisCluster;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_until`], but the condition yields a value.
pub fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    wait_until(timeout, what, || {
        found = probe();
        found.is_some()
    });
    found.expect("wait_until returned")
}

/// Whether `pid` is a live (non-zombie) process.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => match stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) {
            Some(state) => !matches!(state, "Z" | "X" | "x"),
            None => true,
        },
        Err(_) => false,
    }
}

/// Sends PING and expects +PONG (or -NOAUTH from a server with a password): the server is up
/// and is a Redis.
fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && (&buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH"))
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local addr").port()
}

/// A `redis-server` of our own, stopped on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    pub(crate) extra: Vec<String>,
    tls: bool,
}

impl RedisServer {
    /// Starts a server with persistence off.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// Starts a server with persistence off that requires `password` (`requirepass`), for tests
    /// of credentials; [`RedisServer::url`] carries no password.
    pub fn start_with_password(password: &str) -> RedisServer {
        RedisServer::start_with(&["--save", "", "--appendonly", "no", "--requirepass", password])
    }

    /// Starts a server with AOF on (`appendfsync always`), for restart tests.
    pub fn start_persistent() -> RedisServer {
        RedisServer::start_with(&["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
    }

    pub fn start_with(args: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            extra: args.iter().map(|s| s.to_string()).collect(),
            tls: false,
        };
        server.spawn();
        server
    }

    /// Starts a server that speaks only TLS, with a fresh private CA (see [`RedisServer::ca_cert`]).
    pub fn start_tls() -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let d = dir.path();
        let sh = |script: &str| {
            let out = Command::new("sh").arg("-c").arg(script).current_dir(d).output().expect("run openssl");
            assert!(out.status.success(), "openssl failed: {}", String::from_utf8_lossy(&out.stderr));
        };
        sh("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && \
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=swarm-test-ca 2>/dev/null && \
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null && \
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null");
        let port = free_port();
        let args: Vec<String> = [
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut server = RedisServer { child: None, port, dir, extra: args, tls: true };
        server.spawn();
        server
    }

    /// The PEM file of the CA that signed a TLS server's certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn spawn(&mut self) {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let port_args = if self.tls { vec![] } else { vec!["--port".to_string(), self.port.to_string()] };
        let child = Command::new(&bin)
            .args(&port_args)
            .args(["--bind", "127.0.0.1", "--dir"])
            .arg(self.dir.path())
            .args(["--daemonize", "no", "--logfile", "redis.log"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{bin}` ({e}); ./scripts/test.sh installs redis-server (apt-get install redis-server)")
            });
        self.child = Some(child);
        let port = self.port;
        // Ready when it answers PING; if it died (port taken meanwhile), say so.
        let mut died = None;
        wait_until(Duration::from_secs(10), "redis-server to answer PING", || {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                died = Some(status);
                return true;
            }
            if self.tls {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                ping(port)
            }
        });
        if let Some(status) = died {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            panic!("redis-server on port {port} exited ({status}):\n{log}");
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Kills the server (SIGKILL: like a crash) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory (AOF, if on, restores the data).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
