//! Running the binary, and reading export files with nothing but the documented format.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `handover` binary next to this test's own executable (`target/<profile>/handover`).
pub fn handover_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join(format!("handover{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p handover`; `just test` does)",
        bin.display()
    );
    bin
}

pub fn handover() -> Command {
    let mut c = Command::new(handover_bin());
    c.env_remove("HANDOVER_DATA").env("NO_COLOR", "1");
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = handover().args(args).output().expect("run handover");
    Run {
        code: status.code().expect("exited normally"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A small demo store in `dir/data`; returns the data directory.
pub fn demo_store(dir: &Path, days: &str) -> PathBuf {
    let data = dir.join("data");
    let r = run(&[
        "demo",
        "--data",
        path_str(&data),
        "--employees",
        "6",
        "--customers",
        "20",
        "--days",
        days,
        "--seed",
        "5",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    data
}

pub fn verify_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let r = run(&all);
    let v = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "verify --json printed {:?} ({e}); stderr {}",
            r.stdout, r.stderr
        )
    });
    (r.code, v)
}

/// One record of an export file: where it lies, and its entry's fields.
pub struct Record {
    pub seq: u64,
    /// Offset of the record's length prefix in the file.
    pub start: usize,
    /// Offset just past the entry.
    pub end: usize,
    pub hash: [u8; 32],
    pub payload: Vec<u8>,
}

/// Parses an export file by its documented layout (docs/log-format.md).
pub fn parse_export(bytes: &[u8]) -> Vec<Record> {
    assert_eq!(&bytes[..8], b"HNDVRLOG");
    let count = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
    let mut pos = 96;
    let mut out = Vec::new();
    for _ in 0..count {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let e = &bytes[pos + 4..pos + 4 + len];
        out.push(Record {
            seq: u64::from_le_bytes(e[..8].try_into().unwrap()),
            start: pos,
            end: pos + 4 + len,
            hash: e[80..112].try_into().unwrap(),
            payload: e[112..].to_vec(),
        });
        pos += 4 + len;
    }
    assert_eq!(pos, bytes.len());
    out
}

/// Exports the whole store of `data` to `out` and returns the file's bytes.
pub fn export(data: &Path, out: &Path) -> Vec<u8> {
    let r = run(&[
        "export-log",
        "--data",
        path_str(data),
        "--out",
        path_str(out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::read(out).unwrap()
}

/// SplitMix64, so that a failing case can be replayed from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((u128::from(z ^ (z >> 31)) * u128::from(n)) >> 64) as u64
    }
}

/// A minimal HTTP/1.1 exchange over loopback (one request per connection), so that the tests
/// speak to the real server without a client library: `(status, body)`.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the server");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, rest.to_string())
}

/// A running `handover serve`, stopped with SIGTERM when dropped (if still running).
pub struct Server {
    pub child: std::process::Child,
    pub addr: String,
    /// What it printed before it listened.
    pub banner: String,
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Server {
    /// `handover serve` on `data`, on a free loopback port, its log discarded.
    pub fn start(data: &Path) -> Server {
        let mut cmd = handover();
        cmd.args(["serve", "--data", path_str(data), "--listen", "127.0.0.1:0"])
            .stderr(std::process::Stdio::null());
        Server::spawn(cmd)
    }

    /// `handover serve` on `data`, on a free loopback port, logging at `level` into `log`.
    pub fn start_logging(data: &Path, level: &str, log: &Path) -> Server {
        let mut cmd = handover();
        cmd.args(["serve", "--data", path_str(data), "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", level)
            .stderr(std::fs::File::create(log).unwrap());
        Server::spawn(cmd)
    }

    /// Spawns a prepared `handover serve` command and waits until it listens.
    pub fn spawn(mut cmd: Command) -> Server {
        use std::io::BufRead;
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut banner = String::new();
        let addr = loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "serve exited before listening"
            );
            if let Some(a) = line.trim().strip_prefix("listening on http://") {
                break a.to_string();
            }
            banner.push_str(&line);
        };
        Server {
            child,
            addr,
            banner,
            stdout,
        }
    }

    /// SIGTERM, then the exit code and what it printed after listening.
    pub fn stop(mut self) -> (i32, String) {
        use std::io::Read;
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (code, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes a token with `scopes` in `data`'s configuration and returns it.
pub fn token(data: &Path, name: &str, scopes: &str) -> String {
    let r = run(&[
        "token",
        "add",
        name,
        "--scopes",
        scopes,
        "--data",
        path_str(data),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_string()
}

pub use e2e::nats::NatsServer as Nats;

/// Now, as RFC 3339, from the system clock (`date` is on every test machine).
pub fn now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
