//! snmpsim (PyPI), serving recordings of real devices from the
//! snmpsim-data package, for the SNMP tests and benchmark. Each recording is
//! a community (`network/switch/cisco-c3750`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{bin, free_port, wait_for};

/// A loopback UDP port nothing listens on.
pub fn free_udp_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// snmpsim, serving recordings of real devices from the snmpsim-data
/// package; each recording is a community (`network/switch/cisco-c3750`).
#[derive(Debug)]
pub struct Snmpsim {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Snmpsim {
    /// `None` unless `FATHOM_SNMPSIM` names a virtualenv with snmpsim and
    /// snmpsim-data (`.ci/run` makes one).
    pub fn start(recordings: &[&str]) -> Option<Snmpsim> {
        let Some(venv) = std::env::var_os("FATHOM_SNMPSIM").map(PathBuf::from) else {
            eprintln!("FATHOM_SNMPSIM is not set; no snmpsim to poll");
            return None;
        };
        let data_root = Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import snmpsim_data, os; print(os.path.join(os.path.dirname(snmpsim_data.__file__), 'data'))",
            ])
            .output()
            .unwrap();
        assert!(data_root.status.success(), "{data_root:?}");
        let data_root = PathBuf::from(String::from_utf8(data_root.stdout).unwrap().trim());
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        for recording in recordings {
            let from = data_root.join(format!("{recording}.snmprec.bz2"));
            let to = data.join(format!("{recording}.snmprec.bz2"));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        }
        let port = free_udp_port();
        let mut cmd = Command::new(venv.join("bin/snmpsim-command-responder"));
        cmd.arg(format!("--data-dir={}", data.display()))
            .arg(format!("--cache-dir={}", cache.display()))
            .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"));
        // snmpsim will not run as root; it drops to nobody, who must be able
        // to write its index cache.
        if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
            cmd.args(["--process-user=nobody", "--process-group=nogroup"]);
            let status = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
            let status = Command::new("chmod")
                .args(["a+rx"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(std::env::temp_dir().join(format!("snmpsim-{port}.log")))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let sim = Snmpsim {
            child,
            port,
            _dir: dir,
        };
        // snmpsim indexes a recording on its first query; every one is
        // indexed before the tests or the benchmark time anything.
        for recording in recordings {
            wait_for(
                &format!("snmpsim to index {recording}"),
                Duration::from_secs(120),
                || sim.run_probe(recording).status.success().then_some(()),
            );
        }
        Some(sim)
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn run_probe(&self, recording: &str) -> std::process::Output {
        Command::new(bin("fathom-agent"))
            .args([
                "probe",
                "snmp",
                "--target",
                &self.target(),
                "--community",
                recording,
            ])
            // snmpsim answers a request carrying many varbinds in seconds
            // (see docs/benchmarks.md), more when the other tests load
            // both cores: these tests are about what is read, not how fast.
            .args(["--timeout-ms", "10000", "--retries", "2", "--json"])
            .output()
            .unwrap()
    }

    /// `fathom-agent probe snmp --json` of one recording.
    pub fn probe(&self, recording: &str) -> serde_json::Value {
        let out = self.run_probe(recording);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
