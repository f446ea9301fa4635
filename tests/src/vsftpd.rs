//! vsftpd in a test's namespace on 127.0.0.1:21 (or [::1]:21), anonymous, uploads allowed in
//! `pub/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::netns::NetNs;
use crate::{Error, FtpServer, Result};

/// The control port inside the namespace.
pub const VSFTPD_PORT: u16 = 21;

/// A running vsftpd; killed on Drop.
#[derive(Debug)]
pub struct Vsftpd {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Vsftpd {
    /// Starts vsftpd inside `ns` on 127.0.0.1 and waits until it listens.
    pub fn start(ns: &NetNs) -> Result<Self> {
        Self::start_on(ns, false)
    }

    /// Starts vsftpd inside `ns` on `::1` only (IPv6 tests) and waits until it listens.
    pub fn start_v6(ns: &NetNs) -> Result<Self> {
        Self::start_on(ns, true)
    }

    fn start_on(ns: &NetNs, ipv6: bool) -> Result<Self> {
        let dir = crate::open_tempdir("ftpt-vsftpd-")?;
        let d = dir.path();
        let root = d.join("root");
        let pubdir = root.join("pub");
        fs::create_dir_all(&pubdir)?;
        // vsftpd refuses an anonymous root the anonymous user can write to; `pub/` is where
        // uploads go.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
        fs::set_permissions(&pubdir, fs::Permissions::from_mode(0o777))?;
        fs::create_dir_all("/var/run/vsftpd/empty")?;
        let config = format!(
            "{listen}\n\
             listen_port={VSFTPD_PORT}\n\
             background=NO\n\
             anonymous_enable=YES\n\
             no_anon_password=YES\n\
             local_enable=NO\n\
             write_enable=YES\n\
             anon_upload_enable=YES\n\
             anon_mkdir_write_enable=YES\n\
             anon_other_write_enable=YES\n\
             anon_world_readable_only=NO\n\
             anon_umask=022\n\
             anon_root={root}\n\
             pasv_enable=YES\n\
             pasv_min_port=40000\n\
             pasv_max_port=40100\n\
             port_enable=YES\n\
             connect_from_port_20=NO\n\
             seccomp_sandbox=NO\n\
             secure_chroot_dir=/var/run/vsftpd/empty\n\
             ftp_username=ftp\n\
             xferlog_enable=YES\n\
             log_ftp_protocol=YES\n\
             vsftpd_log_file={log}\n\
             xferlog_std_format=NO\n\
             dual_log_enable=NO\n\
             max_clients=200\n\
             max_per_ip=200\n\
             idle_session_timeout=120\n\
             data_connection_timeout=60\n",
            listen = if ipv6 {
                "listen=NO\nlisten_ipv6=YES\nlisten_address6=::1"
            } else {
                "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1"
            },
            root = root.display(),
            log = d.join("vsftpd.log").display(),
        );
        let cfg = d.join("vsftpd.conf");
        fs::write(&cfg, config)?;
        fs::write(d.join("vsftpd.log"), "")?;
        let out = fs::File::create(d.join("vsftpd.out"))?;
        let child = ns
            .command_in("/usr/sbin/vsftpd", &[])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| Error::Spawn("vsftpd".into(), e))?;
        let v = Vsftpd {
            child: Some(child),
            dir,
        };
        if let Err(e) = ns.wait_listening(VSFTPD_PORT, Duration::from_secs(10)) {
            crate::dump_log("vsftpd stdout", &v.dir.path().join("vsftpd.out"));
            return Err(e);
        }
        Ok(v)
    }
}

impl FtpServer for Vsftpd {
    fn port(&self) -> u16 {
        VSFTPD_PORT
    }
    fn user(&self) -> &str {
        "anonymous"
    }
    fn pass(&self) -> &str {
        "test@example.invalid"
    }
    fn upload_dir(&self) -> &str {
        "pub"
    }
    fn upload_dir_local(&self) -> PathBuf {
        self.dir.path().join("root").join("pub")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("vsftpd.log")
    }
    fn name(&self) -> &'static str {
        "vsftpd"
    }
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        crate::dump_log_if_panicking("vsftpd", &self.log_path());
        crate::dump_log_if_panicking("vsftpd stdout", &self.dir.path().join("vsftpd.out"));
        if let Some(mut c) = self.child.take() {
            // Per-session vsftpd processes are children of the listener; end them too.
            crate::kill_tree(&mut c);
        }
    }
}
