//! A Kafka broker of a test's own, for tests that kill and restart a broker (the shared one
//! must stay up for every other test): `scripts/test-services kafka DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::unique_name;

/// A broker in a directory of its own, killed and its data removed on drop. `scripts/test-services
/// down` also stops it if the test process dies first.
#[derive(Debug)]
pub struct OwnBroker {
    dir: PathBuf,
    /// Its address, the same across restarts.
    pub bootstrap: String,
}

impl OwnBroker {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-services")
    }

    /// Starts the broker in `dir`, or restarts it there (same address, same data).
    fn start_in(dir: &Path) -> String {
        let out = Command::new(Self::script())
            .arg("kafka")
            .arg(dir)
            .output()
            .expect("scripts/test-services runs");
        assert!(
            out.status.success(),
            "scripts/test-services kafka: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Starts a broker; panics (with its log) if it does not serve metadata within 90 s.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique_name("ledgerline-own-kafka"));
        let bootstrap = Self::start_in(&dir);
        Self { dir, bootstrap }
    }

    /// SIGKILL: no clean shutdown, as in a crash.
    pub fn kill(&self) {
        let pid =
            std::fs::read_to_string(self.dir.join("kafka.pid")).expect("the broker's pid file");
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -KILL {pid}");
    }

    /// Starts it again on the same address with the data it had.
    pub fn restart(&self) {
        assert_eq!(Self::start_in(&self.dir), self.bootstrap);
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("kafka.pid")) {
            // Already gone unless the test failed half-way.
            let _ = Command::new("kill")
                .args(["-KILL", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
