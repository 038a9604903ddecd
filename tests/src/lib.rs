//! The end-to-end harness: starts the real `fathom-collector` and
//! `fathom-agent` binaries on loopback with real TLS and temporary state,
//! drives the real `fathom` CLI, and sends hand-made envelopes.
//!
//! Binaries are taken from the target directory this test binary was built
//! into, after one `cargo build` of them per test run: `cargo test` does not
//! rebuild another package's binaries by itself.

// The harness talks to the collector over HTTPS as agents and operators do.
#![allow(clippy::disallowed_types)]

pub mod snmpsim;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use fathom_shared::tls::{client_config, Fingerprint, Trust};
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

/// The directory holding the workspace's binaries.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/<profile>/deps/tests-<hash>, or target/<profile>/fathom-bench
        let exe = std::env::current_exe().unwrap();
        let mut dir = exe.parent().unwrap().to_owned();
        if dir
            .file_name()
            .is_some_and(|n| n == "deps" || n == "examples")
        {
            dir.pop();
        }
        // Always ask cargo: it is a quick no-op when the binaries are fresh,
        // and a stale binary would test old code.
        {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "--bins",
                "-p",
                "fathom-agent",
                "-p",
                "fathom-collector",
                "-p",
                "fathom-cli",
            ]);
            if dir.file_name().is_some_and(|p| p == "release") {
                cmd.arg("--release");
            }
            // What `cargo test` sets for test processes would look like a
            // changed environment to the build scripts of ring and
            // mimalloc, which would then rebuild on every run.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&key.as_ref());
                if (key.starts_with("CARGO_") && !keep) || key == "LD_LIBRARY_PATH" {
                    cmd.env_remove(key.as_ref());
                }
            }
            let status = cmd.status().expect("running cargo build for the binaries");
            assert!(status.success(), "building the binaries failed");
        }
        dir
    })
}

pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A free loopback port. Another process could take it before we bind it,
/// but nothing else on a test machine hands out ports this way.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Unix milliseconds as an RFC 3339 UTC timestamp, as the CLI accepts.
pub use fathom_support::time::rfc3339;

pub use fathom_support::now_ms;

/// A benchmark's command line: `--help` prints `usage` and runs nothing; an
/// option not in `known` is an error naming it (exit 2), not ignored.
pub fn bench_args(usage: &str, known: &[&str]) {
    for arg in std::env::args().skip(1) {
        if arg == "--help" || arg == "-h" {
            print!("{usage}");
            std::process::exit(0);
        }
        if arg.starts_with("--") && !known.contains(&arg.as_str()) {
            eprintln!("unknown option {arg}; see --help");
            std::process::exit(2);
        }
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
/// Renders a page in headless Chromium (Debian's `chromium`, which
/// `.ci/run` installs) and saves a screenshot of `width`×`height` to `png`,
/// with the flags this closed network needs; returns the PNG's size as
/// read from its header.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) -> (u32, u32) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}); install Debian's chromium, as .ci/run does")
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG", "{} is not a PNG", png.display());
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Where tests keep what people look at afterwards (screenshots):
/// `target/<profile>/test-output/`.
pub fn output_dir() -> PathBuf {
    let dir = bin_dir().join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The fenced code blocks of a Markdown text whose info string starts
/// with `lang` (```` ```sh ````), in order, without their fences.
pub fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut current, fence) {
            (None, Some(info)) if info.split_whitespace().next() == Some(lang) => {
                current = Some(String::new());
            }
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some(block), None) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            if std::env::var_os("FATHOM_TEST_TIMING").is_some() {
                eprintln!("{what}: {:?}", start.elapsed());
            }
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An answer's status and JSON body (`Null` if it has none); status 0 and
/// the error's text if the request failed.
async fn status_and_json(answer: reqwest::Result<reqwest::Response>) -> (u16, Value) {
    match answer {
        Ok(r) => {
            let status = r.status().as_u16();
            let bytes = r.bytes().await.unwrap_or_default();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// A real collector process with its own data directory.
#[derive(Debug)]
pub struct Collector {
    pub dir: tempfile::TempDir,
    data: PathBuf,
    pub port: u16,
    child: Option<Child>,
    log_filter: &'static str,
    pub fingerprint: Fingerprint,
    pub admin_token: String,
    /// Directories that must live as long as the process (a policy file…).
    keep: Vec<tempfile::TempDir>,
}

impl Collector {
    pub fn start() -> Collector {
        Self::start_with("")
    }

    /// Starts with extra lines appended to `collector.toml`, logging at debug
    /// level to `collector.log` (shown when a test fails).
    pub fn start_with(extra: &str) -> Collector {
        Self::start_logging(extra, "debug")
    }

    /// Starts with a chosen log filter; benchmarks use "warn", since debug
    /// logging of every request would be what they measure.
    pub fn start_logging(extra: &str, log_filter: &'static str) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        Self::start_in(dir, data, extra, log_filter)
    }

    /// Starts with its store in `data` (a filesystem a test made, say).
    pub fn start_at(data: &Path, extra: &str) -> Collector {
        Self::start_in(
            tempfile::tempdir().unwrap(),
            data.to_owned(),
            extra,
            "debug",
        )
    }

    fn start_in(
        dir: tempfile::TempDir,
        data: PathBuf,
        extra: &str,
        log_filter: &'static str,
    ) -> Collector {
        let port = free_port();
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{extra}",
            data.display()
        );
        std::fs::write(dir.path().join("collector.toml"), config).unwrap();
        let mut c = Collector {
            dir,
            data,
            port,
            child: None,
            log_filter,
            fingerprint: Fingerprint::of_der(b""),
            admin_token: String::new(),
            keep: Vec::new(),
        };
        c.restart();
        c
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    /// (Re)starts the process on the same port and data, and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "collector already running");
        let log = std::fs::File::create(self.dir.path().join("collector.log")).unwrap();
        let child = Command::new(bin("fathom-collector"))
            .args(["run", "--config"])
            .arg(self.dir.path().join("collector.toml"))
            .env("FATHOM_LOG", self.log_filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let cert = self.data_dir().join("tls/cert.pem");
        let token = self.data_dir().join("admin.token");
        self.fingerprint = wait_for(
            "the collector's certificate",
            Duration::from_secs(20),
            || {
                let pem = std::fs::read(&cert).ok()?;
                let der = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                    .next()?
                    .ok()?;
                Some(Fingerprint::of_der(&der))
            },
        );
        self.admin_token = wait_for("the admin token", Duration::from_secs(20), || {
            std::fs::read_to_string(&token)
                .ok()
                .filter(|t| !t.trim().is_empty())
        })
        .trim()
        .to_owned();
        wait_for("the collector to answer", Duration::from_secs(20), || {
            self.assert_running();
            (self.post_raw(b"not an envelope").0 == 400).then_some(())
        });
    }

    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("collector exited with {status}; log:\n{}", self.log());
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }

    /// Asks the process to stop (SIGTERM) and waits for it, at most
    /// `within`; panics if it is still running then.
    pub fn stop(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > within {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the collector ignored SIGTERM for {within:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /v1/health`: (status, JSON answer).
    pub fn health(&self) -> (u16, Value) {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(&Trust::Pinned(self.fingerprint)).unwrap())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = format!("{}v1/health", self.url());
        runtime().block_on(async move { status_and_json(client.get(url).send().await).await })
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("collector running").id()
    }

    /// A line of `/proc/<pid>/status` in KiB: `VmRSS` now, `VmHWM` the peak.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Kills the process without letting it shut down cleanly.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Runs the `fathom` CLI against this collector as its admin.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.admin_token, &self.fingerprint.to_string(), args)
    }

    /// Runs the `fathom` CLI with a given token and pinned fingerprint.
    pub fn cli_as(&self, token: &str, fingerprint: &str, args: &[&str]) -> Output {
        self.cli_command(token, fingerprint, args).output().unwrap()
    }

    /// The `fathom` CLI as a command to run, with a given token and pinned
    /// fingerprint.
    pub fn cli_command(&self, token: &str, fingerprint: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("fathom"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("FATHOM_URL", self.url())
            .env("FATHOM_TOKEN", token)
            .env("FATHOM_FINGERPRINT", fingerprint);
        cmd
    }

    /// The admin's `fathom` CLI as a command to run.
    pub fn admin_command(&self, args: &[&str]) -> Command {
        self.cli_command(&self.admin_token, &self.fingerprint.to_string(), args)
    }

    /// Runs the CLI with `--json` and parses what it printed.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "fathom {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn create_token(&self, ttl: &str, uses: u32) -> String {
        let created =
            self.cli_json(&["token", "create", "--ttl", ttl, "--uses", &uses.to_string()]);
        created["token"].as_str().unwrap().to_owned()
    }

    pub fn agents(&self) -> Vec<Value> {
        self.cli_json(&["agent", "list"])
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn cis(&self) -> Vec<Value> {
        self.cli_json(&["ci", "list"]).as_array().unwrap().clone()
    }

    /// POSTs raw bytes to `/v1/reports`: (status, JSON answer).
    pub fn post_raw(&self, body: &[u8]) -> (u16, Value) {
        self.post_typed(body, Some("application/vnd.fathom.envelope"))
    }

    /// POSTs raw bytes to `/v1/reports` with this Content-Type (none if
    /// `None`): (status, JSON answer).
    pub fn post_typed(&self, body: &[u8], content_type: Option<&str>) -> (u16, Value) {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(&Trust::Pinned(self.fingerprint)).unwrap())
            .build()
            .unwrap();
        let url = format!("{}v1/reports", self.url());
        let body = body.to_vec();
        let content_type = content_type.map(str::to_owned);
        runtime().block_on(async move {
            let mut request = client.post(url).body(body);
            if let Some(t) = content_type {
                request = request.header("content-type", t);
            }
            status_and_json(request.send().await).await
        })
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fixture host root: what the agent reads instead of `/`.
pub fn fixture_root(hostname: &str, machine_id: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let p = root.path();
    std::fs::create_dir_all(p.join("etc")).unwrap();
    std::fs::create_dir_all(p.join("var/lib/dpkg")).unwrap();
    std::fs::write(p.join("etc/hostname"), format!("{hostname}\n")).unwrap();
    std::fs::write(p.join("etc/machine-id"), format!("{machine_id}\n")).unwrap();
    std::fs::write(
        p.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
    )
    .unwrap();
    let status = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fixtures/dpkg/status");
    std::fs::copy(status, p.join("var/lib/dpkg/status")).unwrap();
    root
}

/// A real agent process's configuration and state directory.
#[derive(Debug)]
pub struct Agent {
    pub dir: tempfile::TempDir,
}

impl Agent {
    pub fn new(collector: &Collector, host_root: &Path, extra: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "collector_url = \"{}\"\ncollector_fingerprint = \"{}\"\nstate_dir = \"{}\"\nhost_root = \"{}\"\n{extra}",
            collector.url(),
            collector.fingerprint,
            dir.path().join("state").display(),
            host_root.display(),
        );
        std::fs::write(dir.path().join("agent.toml"), config).unwrap();
        Agent { dir }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("fathom-agent"));
        cmd.args(args)
            .arg("--config")
            .arg(self.dir.path().join("agent.toml"))
            .env("FATHOM_LOG", "debug")
            .env_remove("FATHOM_ENROLLMENT_TOKEN");
        cmd
    }

    /// `fathom-agent run` as a daemon, with `token` if given, logging to
    /// `agent.log` in its directory.
    pub fn daemon(&self, token: Option<&str>) -> std::process::Child {
        let mut cmd = self.command(&["run"]);
        if let Some(t) = token {
            cmd.env("FATHOM_ENROLLMENT_TOKEN", t);
        }
        let log = std::fs::File::create(self.dir.path().join("agent.log")).unwrap();
        cmd.stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// `fathom-agent run --once`, with `token` if given.
    pub fn run_once(&self, token: Option<&str>) -> Output {
        let mut cmd = self.command(&["run", "--once"]);
        if let Some(t) = token {
            cmd.env("FATHOM_ENROLLMENT_TOKEN", t);
        }
        cmd.output().unwrap()
    }

    /// The agent's signing key, as a test impersonating it needs.
    pub fn key(&self) -> SigningKey {
        let bytes: [u8; 32] = std::fs::read(self.state_dir().join("agent.key"))
            .unwrap()
            .try_into()
            .unwrap();
        SigningKey::from_bytes(&bytes)
    }

    /// The agent's id, as the collector lists it.
    pub fn agent_id(&self) -> String {
        fathom_shared::ids::AgentId::from_public_key(&self.key().verifying_key().to_bytes())
            .to_string()
    }

    pub fn last_seq(&self) -> u64 {
        std::fs::read_to_string(self.state_dir().join("seq"))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0)
    }

    pub fn spooled(&self) -> usize {
        std::fs::read_dir(self.state_dir().join("spool"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().is_file())
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Edits a fixture root's dpkg database: sets `package`'s version
/// (`None`: removes its stanza), as an upgrade or removal by dpkg would.
pub fn set_package(root: &Path, package: &str, version: Option<&str>) {
    let path = root.join("var/lib/dpkg/status");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut stanzas: Vec<String> = text
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let header = format!("Package: {package}\n");
    let index = stanzas
        .iter()
        .position(|s| s.starts_with(&header))
        .unwrap_or_else(|| panic!("no package {package} in the fixture"));
    match version {
        Some(v) => {
            let lines: Vec<String> = stanzas[index]
                .lines()
                .map(|l| {
                    if l.starts_with("Version: ") {
                        format!("Version: {v}")
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            stanzas[index] = lines.join("\n");
        }
        None => {
            stanzas.remove(index);
        }
    }
    // Written aside and renamed, as dpkg does.
    let tmp = root.join("var/lib/dpkg/status-new");
    std::fs::write(&tmp, stanzas.join("\n\n") + "\n").unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// Builds a small Debian package with `dpkg-deb` and installs it into the
/// fixture root with the real `dpkg --root`, as an administrator would.
pub fn dpkg_install(root: &Path, package: &str, version: &str) {
    let build = tempfile::tempdir().unwrap();
    let pkg = build.path().join("pkg");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join(format!("usr/share/doc/{package}"))).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        format!("Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: Fathom tests <tests@example.org>\nDescription: a package for Fathom's tests\n"),
    )
    .unwrap();
    std::fs::write(
        pkg.join(format!("usr/share/doc/{package}/README")),
        "test\n",
    )
    .unwrap();
    let deb = build.path().join(format!("{package}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&pkg)
        .arg(&deb));
    dpkg(root, &["-i", &deb.display().to_string()]);
}

/// Removes a package from the fixture root with `dpkg --root -r`.
pub fn dpkg_remove(root: &Path, package: &str) {
    dpkg(root, &["-r", package]);
}

fn dpkg(root: &Path, args: &[&str]) {
    for dir in ["updates", "info", "triggers"] {
        std::fs::create_dir_all(root.join("var/lib/dpkg").join(dir)).unwrap();
    }
    let available = root.join("var/lib/dpkg/available");
    if !available.exists() {
        std::fs::write(&available, "").unwrap();
    }
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(args));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `rpm` and `rpmbuild` are here (CI installs them).
pub fn have_rpm() -> bool {
    ["rpm", "rpmbuild"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Builds a small noarch package with `rpmbuild` and records it in the
/// fixture root's rpm database with the real `rpm -i --justdb`.
pub fn rpm_install(root: &Path, package: &str, version: &str) {
    let build = tempfile::tempdir().unwrap();
    let spec = build.path().join(format!("{package}.spec"));
    std::fs::write(
        &spec,
        format!("Name: {package}\nVersion: {version}\nRelease: 1\nSummary: a package for Fathom's tests\nLicense: MIT\nBuildArch: noarch\n%description\ntest\n%files\n"),
    )
    .unwrap();
    run(Command::new("rpmbuild")
        .args(["-bb", "--quiet", "--define"])
        .arg(format!("_topdir {}", build.path().join("top").display()))
        .args(["--define", "_build_id_links none"])
        .arg(&spec));
    let rpm = build
        .path()
        .join(format!("top/RPMS/noarch/{package}-{version}-1.noarch.rpm"));
    run(Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--justdb"])
        .arg(&rpm));
}

/// Writes SMBIOS identity files under the fixture root's
/// `/sys/class/dmi/id`.
pub fn set_dmi(root: &Path, fields: &[(&str, &str)]) {
    let dir = root.join("sys/class/dmi/id");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, value) in fields {
        std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
    }
}

impl Collector {
    /// Starts with this change-control policy (written next to the config).
    pub fn start_with_policy(policy: &str) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
        let policy_path = dir.path().join("policy.toml");
        let mut c = Self::start_with(&format!("policy = \"{}\"\n", policy_path.display()));
        // Keep the policy's directory alive as long as the collector.
        c.keep.push(dir);
        c
    }

    /// Runs the CLI and expects it to fail; returns its stderr.
    pub fn cli_fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "fathom {args:?} should have failed; printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}
