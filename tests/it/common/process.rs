//! The bridge as a real process: for what only a process shows (signals, exit codes, several
//! instances, reloads of files on disk).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct BridgeProcess {
    child: Child,
    pub log: PathBuf,
    pub addr: SocketAddr,
}

impl BridgeProcess {
    /// Starts `entree-bridge serve --config config` listening on `addr`, logging to `log`,
    /// and waits until it answers /healthz.
    pub async fn start(config: &Path, addr: SocketAddr, log: PathBuf) -> BridgeProcess {
        let process = Self::spawn(config, addr, log);
        process.wait_healthy(Duration::from_secs(20)).await;
        process
    }

    /// Starts the process without waiting for it (for https, which the caller probes itself).
    pub fn spawn(config: &Path, addr: SocketAddr, log: PathBuf) -> BridgeProcess {
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
            .args(["serve", "--config"])
            .arg(config)
            .env("ENTREE_BRIDGE_SERVER__LISTEN", addr.to_string())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("the bridge binary starts");
        BridgeProcess { child, log, addr }
    }

    /// A process started elsewhere (e.g. `demo`), watched like the others.
    pub fn adopt(child: Child, log: PathBuf, addr: SocketAddr) -> BridgeProcess {
        BridgeProcess { child, log, addr }
    }

    /// Waits until /healthz answers 200.
    pub async fn wait_healthy(&self, within: Duration) {
        let health = format!("http://{}/healthz", self.addr);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not healthy within {within:?}:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (`HUP`, `TERM`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for the process to end (at most `within`) and gives its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the bridge did not exit within {within:?}:\n{}", self.log_text());
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The built `entree-bridge` binary, quiet but for warnings, with no config from the shell.
pub fn bridge_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_entree-bridge"));
    cmd.env("RUST_LOG", "warn").env_remove("ENTREE_BRIDGE_CONFIG");
    cmd
}

/// Runs `cmd` to its end: exit code, stdout, stderr.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let std::process::Output { status, stdout, stderr } = cmd.output().expect("run entree-bridge");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}
