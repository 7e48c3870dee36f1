//! Helpers shared by the integration tests: run the real `batchboard` binary
//! on a free loopback port with its own data directory.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_batchboard");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "batchboard-test-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `batchboard` process.
pub struct Proc {
    pub child: Child,
    pub addr: String,
}

impl Proc {
    /// Starts `cmd` (which must listen on `addr`) and waits until it accepts.
    /// The caller sets the environment (see [`command`]).
    pub fn spawn(mut cmd: Command, addr: String) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd.spawn().expect("spawn batchboard");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    e.read_to_string(&mut err).unwrap();
                }
                panic!("batchboard exited early ({status}):\n{err}");
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        Self { child, addr }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the process with SIGTERM; returns its exit status and output.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(25));
        };
        let mut logs = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut logs).unwrap();
        }
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut logs).unwrap();
        }
        (status, logs)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary, with no upstream settings inherited from the environment.
pub fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("OPENAI_API_KEY")
        .env_remove("BATCHBOARD_UPSTREAM_URL")
        .env_remove("BATCHBOARD_SANDBOX_KEY");
    cmd
}

/// Fast sandbox settings for tests.
pub const FAST: &[&str] = &[
    "--sandbox-rps",
    "500",
    "--sandbox-validation-ms",
    "50",
    "--sandbox-finalizing-ms",
    "50",
];

/// `batchboard sandbox` on a free port.
pub fn sandbox(data_dir: &std::path::Path, key: &str, speed: &[&str]) -> Proc {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = command();
    cmd.args(["sandbox", "--addr", &addr, "--api-key", key, "--data-dir"])
        .arg(data_dir)
        .args(speed);
    Proc::spawn(cmd, addr)
}
