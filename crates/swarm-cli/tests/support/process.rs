//! `swarm` run to its end (`Out`) or in the background (`Bg`), and what it printed.

use super::*;
/// The result of one finished `swarm` invocation.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the full output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Out {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}, got {:?}\n{}",
            self.status,
            self.dump()
        );
        self
    }

    pub fn dump(&self) -> String {
        format!("--- stdout ---\n{}--- stderr ---\n{}", self.stdout, self.stderr)
    }

    /// The run id from the first stdout line, which must be `run <RUN_ID>`.
    pub fn run_id(&self) -> String {
        run_id_of(&self.stdout)
            .unwrap_or_else(|| panic!("first stdout line is not `run <RUN_ID>`\n{}", self.dump()))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.dump()))
    }
}

fn run_id_of(stdout: &str) -> Option<String> {
    let first = stdout.lines().next()?;
    let id = first.strip_prefix("run ")?;
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

pub(super) fn drain(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().expect("output buffer").extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// A `swarm` process running in the background; killed if dropped while still running.
pub struct Bg {
    pub(super) child: Child,
    pub(super) stdout: Arc<Mutex<Vec<u8>>>,
    pub(super) stderr: Arc<Mutex<Vec<u8>>>,
    pub(super) readers: Vec<JoinHandle<()>>,
    pub(super) started: Instant,
    pub(super) status: Option<ExitStatus>,
}

impl Bg {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("stdout")).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr")).into_owned()
    }

    /// The run id, once the first stdout line (`run <RUN_ID>`) is out.
    pub fn run_id(&mut self) -> String {
        wait_for(Duration::from_secs(10), "swarm printed `run <RUN_ID>`", || {
            let out = self.stdout();
            if !out.contains('\n') {
                if !self.is_running() {
                    panic!(
                        "swarm exited ({:?}) before printing its run id\n{}{}",
                        self.status,
                        out,
                        self.stderr()
                    );
                }
                return None;
            }
            Some(run_id_of(&out).unwrap_or_else(|| panic!("first stdout line is not `run <RUN_ID>`:\n{out}")))
        })
    }

    pub fn is_running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_none()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        signal(self.pid(), sig);
    }

    /// Signals the process group the process leads (see [`Project::spawn_job`]).
    pub fn signal_group(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.pid() as i32), sig).expect("signal group");
    }

    /// Waits for the process to exit (panicking after `timeout`) and collects its output.
    pub fn wait(mut self, timeout: Duration) -> Out {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "swarm did not exit within {timeout:?}\n--- stdout ---\n{}--- stderr ---\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = self.started.elapsed();
        // Escaped grandchildren may hold the pipes open; give the readers a moment, no more.
        let readers_until = Instant::now() + Duration::from_secs(2);
        for r in std::mem::take(&mut self.readers) {
            while !r.is_finished() && Instant::now() < readers_until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
        Out { status: self.status.expect("exited"), stdout: self.stdout(), stderr: self.stderr(), elapsed }
    }

    /// SIGKILLs the process and reaps it (so its pid no longer looks alive).
    pub fn kill9(mut self) -> Out {
        let _ = self.child.kill();
        self.wait(Duration::from_secs(10))
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if self.status.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- reading reports -------------------------------------------------------------------------
