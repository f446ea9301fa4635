//! pyftpdlib in a test's namespace on 127.0.0.1:21, user `user`/`pass`, full permissions.
//! Also a deliberately broken FTP-ish peer for the malformed-reply tests.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::netns::NetNs;
use crate::{Error, FtpServer, Result};

/// The control port inside the namespace.
pub const PYFTPD_PORT: u16 = 21;

const SERVER_PY: &str = r#"
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

home, port, logfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
logging.basicConfig(filename=logfile, level=logging.DEBUG,
                    format="%(asctime)s %(message)s")
auth = DummyAuthorizer()
auth.add_user("user", "pass", home, perm="elradfmwMT")
handler = FTPHandler
handler.authorizer = auth
handler.passive_ports = range(40000, 40101)
server = FTPServer(("127.0.0.1", port), handler)
server.max_cons = 256
server.serve_forever(handle_exit=True)
"#;

/// A "server" that greets, accepts any login, and answers PASV/EPSV with malformed replies.
const BROKEN_PY: &str = r#"
import socket, sys, threading
port, pasv_reply, epsv_reply = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def serve(conn):
    f = conn.makefile("rb")
    conn.sendall(b"220 broken test peer\r\n")
    for raw in f:
        line = raw.decode("latin-1").strip()
        verb = line.split(" ")[0].upper()
        print("got", repr(line), flush=True)
        if verb == "USER":
            out = "331 any password\r\n"
        elif verb == "PASS":
            out = "230 logged in\r\n"
        elif verb == "PASV":
            out = pasv_reply + "\r\n"
        elif verb == "EPSV":
            out = epsv_reply + "\r\n"
        elif verb == "QUIT":
            conn.sendall(b"221 bye\r\n")
            break
        elif verb == "NOOP":
            out = "200 NOOP ok\r\n"
        else:
            out = "502 not implemented\r\n"
        conn.sendall(out.encode("latin-1"))
    conn.close()

srv = socket.create_server(("127.0.0.1", port))
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// A running pyftpdlib server (or the broken peer); killed on Drop.
#[derive(Debug)]
pub struct Pyftpd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Pyftpd {
    /// Starts pyftpdlib inside `ns` and waits until it listens.
    pub fn start(ns: &NetNs) -> Result<Self> {
        let dir = crate::open_tempdir("ftpt-pyftpd-")?;
        let home = dir.path().join("home");
        fs::create_dir_all(&home)?;
        let script = dir.path().join("server.py");
        fs::write(&script, SERVER_PY)?;
        let log = dir.path().join("pyftpd.log");
        let mut cmd = ns.command_in(crate::python(), &[]);
        cmd.arg(&script)
            .arg(&home)
            .arg(PYFTPD_PORT.to_string())
            .arg(&log);
        Self::spawn(ns, dir, cmd, PYFTPD_PORT)
    }

    /// Starts the broken peer on `port` inside `ns`: PASV and EPSV get the given replies.
    pub fn start_broken(ns: &NetNs, port: u16, pasv_reply: &str, epsv_reply: &str) -> Result<Self> {
        let dir = crate::open_tempdir("ftpt-broken-")?;
        let script = dir.path().join("broken.py");
        fs::write(&script, BROKEN_PY)?;
        let mut cmd = ns.command_in(crate::python(), &[]);
        cmd.arg(&script)
            .arg(port.to_string())
            .arg(pasv_reply)
            .arg(epsv_reply);
        Self::spawn(ns, dir, cmd, port)
    }

    fn spawn(
        ns: &NetNs,
        dir: tempfile::TempDir,
        mut cmd: std::process::Command,
        port: u16,
    ) -> Result<Self> {
        let out = fs::File::create(dir.path().join("stdout.log"))?;
        fs::write(dir.path().join("pyftpd.log"), "")?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| Error::Spawn("python3".into(), e))?;
        let s = Pyftpd {
            child: Some(child),
            dir,
            port,
        };
        if let Err(e) = ns.wait_listening(port, Duration::from_secs(15)) {
            crate::dump_log("python server output", &s.dir.path().join("stdout.log"));
            return Err(e);
        }
        Ok(s)
    }

    /// What the server printed (the broken peer logs each command it got here).
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }
}

impl FtpServer for Pyftpd {
    fn port(&self) -> u16 {
        self.port
    }
    fn user(&self) -> &str {
        "user"
    }
    fn pass(&self) -> &str {
        "pass"
    }
    fn upload_dir(&self) -> &str {
        ""
    }
    fn upload_dir_local(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pyftpd.log")
    }
    fn name(&self) -> &'static str {
        "pyftpdlib"
    }
}

impl Drop for Pyftpd {
    fn drop(&mut self) {
        crate::dump_log_if_panicking("pyftpdlib", &self.log_path());
        crate::dump_log_if_panicking("python server output", &self.dir.path().join("stdout.log"));
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
