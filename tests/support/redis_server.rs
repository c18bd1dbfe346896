//! A throwaway `redis-server` on a free loopback port (no persistence) for the cluster tests
//! and the Redis cost benchmark.
//!
//! Without `redis-server` on PATH a test skips with one line that names it, so `cargo test`
//! stays green on a bare machine; with `TUNNELGATE_REQUIRE_REDIS=1` (set by `.ci/run`, which
//! installs Debian's `redis-server`) an absent binary fails the test instead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: std::path::PathBuf,
}

fn redis_server_on_path() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl RedisServer {
    /// Starts a server, or returns `None` (after saying so on stderr) when `redis-server` is
    /// not installed and `TUNNELGATE_REQUIRE_REDIS` is not `1`.
    pub fn start() -> Option<Self> {
        if !redis_server_on_path() {
            let test = std::thread::current()
                .name()
                .unwrap_or("a cluster test")
                .to_owned();
            let message = format!(
                "redis-server is not on PATH: {test} needs it (apt-get install redis-server)"
            );
            assert!(
                std::env::var_os("TUNNELGATE_REQUIRE_REDIS").is_none_or(|value| value != "1"),
                "{message}"
            );
            // Straight to stderr: libtest captures `eprintln!`, and a silent skip looks like a pass.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
            return None;
        }
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let dir =
            std::env::temp_dir().join(format!("tunnelgate-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.restart();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (no shutdown save: persistence is off anyway).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", &self.dir.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.answers_ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within 10 s",
            self.port
        );
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
