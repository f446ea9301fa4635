//! Drivers for real FTP clients: curl, Python ftplib and lftp.
//!
//! Each driver runs one upload, one LIST and one download in a given data-connection mode
//! and returns the client's own protocol transcript, so a test can prove that the command
//! it names (EPSV, PASV, EPRT, PORT) was really sent and no fallback was taken.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// How the data connection is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Extended passive (RFC 2428).
    Epsv,
    /// Classic passive.
    Pasv,
    /// Extended active (RFC 2428).
    Eprt,
    /// Classic active.
    Port,
}

impl Mode {
    /// The FTP verb that sets the mode up.
    pub fn verb(self) -> &'static str {
        match self {
            Mode::Epsv => "EPSV",
            Mode::Pasv => "PASV",
            Mode::Eprt => "EPRT",
            Mode::Port => "PORT",
        }
    }

    /// The verb a client would fall back to, which must then not appear.
    fn fallback(self) -> &'static str {
        match self {
            Mode::Epsv => "PASV",
            Mode::Pasv => "EPSV",
            Mode::Eprt => "PORT",
            Mode::Port => "EPRT",
        }
    }

    /// `passive` or `active`, as the tunnel's transfer lines say.
    pub fn kind(self) -> &'static str {
        match self {
            Mode::Epsv | Mode::Pasv => "passive",
            Mode::Eprt | Mode::Port => "active",
        }
    }
}

/// Which client program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// curl (`-v` transcript, `> CMD` lines).
    Curl,
    /// Python's ftplib (debug level 1, `*cmd* 'CMD'` lines).
    Ftplib,
    /// lftp (`-d` transcript, `---> CMD` lines).
    Lftp,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::Curl => "curl",
            Client::Ftplib => "ftplib",
            Client::Lftp => "lftp",
        })
    }
}

/// Where the client connects and as whom.
#[derive(Debug, Clone)]
pub struct Target {
    /// `127.0.0.1` or `::1` (no brackets).
    pub host: String,
    /// The tunnel's listening port (or the server's, for harness self-tests).
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Password.
    pub pass: String,
    /// Directory for the upload, relative to the login directory ("" = there).
    pub dir: String,
    /// Run the client inside this namespace (harness self-tests) instead of the root one.
    pub netns: Option<String>,
}

impl Target {
    fn host_in_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    fn url_dir(&self) -> String {
        let h = self.host_in_url();
        if self.dir.is_empty() {
            format!("ftp://{h}:{}/", self.port)
        } else {
            format!("ftp://{h}:{}/{}/", self.port, self.dir)
        }
    }

    fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        }
    }
}

/// What a round trip produced.
#[derive(Debug, Clone, Default)]
pub struct RoundTrip {
    /// The LIST output.
    pub listing: String,
    /// The client's protocol transcript (its debug output).
    pub transcript: String,
}

/// Uploads `local` as `name`, lists the directory, downloads `name` into `out`.
pub fn round_trip(
    client: Client,
    mode: Mode,
    target: &Target,
    local: &Path,
    name: &str,
    out: &Path,
) -> Result<RoundTrip> {
    let rt = match client {
        Client::Curl => curl(mode, target, local, name, out)?,
        Client::Ftplib => ftplib(mode, target, local, name, out)?,
        Client::Lftp => lftp(mode, target, local, name, out)?,
    };
    check_mode_used(client, mode, &rt.transcript)?;
    Ok(rt)
}

/// Fails unless the transcript shows `mode`'s verb sent and its fallback never sent.
pub fn check_mode_used(client: Client, mode: Mode, transcript: &str) -> Result<()> {
    let sent = |verb: &str| {
        transcript.lines().any(|l| {
            let l = l.trim_start();
            match client {
                Client::Curl => l.starts_with(&format!("> {verb}")),
                Client::Ftplib => l.starts_with(&format!("*cmd* '{verb}")),
                Client::Lftp => l.contains(&format!("---> {verb}")),
            }
        })
    };
    if !sent(mode.verb()) {
        return Err(Error::Ftp(format!(
            "{client} never sent {}; transcript:\n{transcript}",
            mode.verb()
        )));
    }
    if sent(mode.fallback()) {
        return Err(Error::Ftp(format!(
            "{client} fell back to {}; transcript:\n{transcript}",
            mode.fallback()
        )));
    }
    Ok(())
}

fn run(mut cmd: Command, what: &str) -> Result<(String, String)> {
    let desc = format!("{what}: {cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Spawn(desc.clone(), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(Error::Ftp(format!(
            "{desc} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        )));
    }
    Ok((stdout, stderr))
}

fn curl(mode: Mode, t: &Target, local: &Path, name: &str, out: &Path) -> Result<RoundTrip> {
    let base = |c: &mut Command| {
        c.args(["-sS", "-v", "--max-time", "120", "-u"])
            .arg(format!("{}:{}", t.user, t.pass));
        match mode {
            Mode::Epsv => c.arg("--ftp-pasv"),
            Mode::Pasv => c.args(["--ftp-pasv", "--disable-epsv"]),
            Mode::Eprt => c.args(["-P", "-"]),
            Mode::Port => c.args(["-P", "-", "--disable-eprt"]),
        };
    };
    let dir = t.url_dir();
    let mut transcript = String::new();

    let mut up = t.command("curl");
    base(&mut up);
    up.arg("-T").arg(local).arg(format!("{dir}{name}"));
    transcript.push_str(&run(up, "curl upload")?.1);

    let mut ls = t.command("curl");
    base(&mut ls);
    ls.arg(&dir);
    let (listing, err) = run(ls, "curl list")?;
    transcript.push_str(&err);

    let mut down = t.command("curl");
    base(&mut down);
    down.arg("-o").arg(out).arg(format!("{dir}{name}"));
    transcript.push_str(&run(down, "curl download")?.1);
    Ok(RoundTrip {
        listing,
        transcript,
    })
}

/// ftplib decides PASV/EPSV and PORT/EPRT by address family; overriding `makepasv` and
/// `makeport` lets each mode be chosen explicitly on IPv4 too.
const FTPLIB_PY: &str = r#"
import ftplib, socket, sys
host, port, user, pw, d, mode, local, name, out = sys.argv[1:10]

class F(ftplib.FTP):
    def makepasv(self):
        peer = self.sock.getpeername()
        if mode == "PASV":
            _, p = ftplib.parse227(self.sendcmd("PASV"))
        else:
            _, p = ftplib.parse229(self.sendcmd("EPSV"), peer)
        return peer[0], p

    def makeport(self):
        me = self.sock.getsockname()[0]
        fam = socket.AF_INET6 if ":" in me else socket.AF_INET
        sock = socket.create_server((me, 0), family=fam, backlog=1)
        p = sock.getsockname()[1]
        if mode == "PORT":
            self.sendport(me, p)
        else:
            self.voidcmd("EPRT |%d|%s|%d|" % (2 if fam == socket.AF_INET6 else 1, me, p))
        sock.settimeout(self.timeout)
        return sock

ftp = F()
ftp.set_debuglevel(1)
ftp.connect(host, int(port), timeout=60)
ftp.login(user, pw)
ftp.set_pasv(mode in ("PASV", "EPSV"))
if d:
    ftp.cwd(d)
with open(local, "rb") as f:
    ftp.storbinary("STOR " + name, f, blocksize=65536)
lines = []
ftp.retrlines("LIST", lines.append)
for l in lines:
    print("LIST: " + l)
with open(out, "wb") as f:
    ftp.retrbinary("RETR " + name, f.write, blocksize=65536)
ftp.quit()
"#;

fn ftplib(mode: Mode, t: &Target, local: &Path, name: &str, out: &Path) -> Result<RoundTrip> {
    let py = crate::python();
    let mut c = t.command(&py.to_string_lossy());
    c.args(["-c", FTPLIB_PY])
        .args([
            &t.host,
            &t.port.to_string(),
            &t.user,
            &t.pass,
            &t.dir,
            mode.verb(),
        ])
        .arg(local)
        .arg(name)
        .arg(out);
    let (stdout, stderr) = run(c, "ftplib")?;
    let listing = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("LIST: "))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(RoundTrip {
        listing,
        transcript: format!("{stdout}{stderr}"),
    })
}

fn lftp(mode: Mode, t: &Target, local: &Path, name: &str, out: &Path) -> Result<RoundTrip> {
    let (passive, epsv) = match mode {
        Mode::Epsv => ("on", "yes"),
        Mode::Pasv => ("on", "no"),
        Mode::Eprt | Mode::Port => ("off", "no"),
    };
    // lftp sends EPRT only on an IPv6 control connection: the EPRT case must use one.
    if mode == Mode::Eprt && !t.host.contains(':') {
        return Err(Error::Setup(
            "lftp sends EPRT only over IPv6: use host ::1".into(),
        ));
    }
    let q = |p: &Path| format!("\"{}\"", p.display());
    let mut script = format!(
        "set cmd:fail-exit yes; set ftp:ssl-allow no; set ftp:passive-mode {passive}; \
         set ftp:prefer-epsv {epsv}; set ftp:auto-passive-mode no; set net:max-retries 1; \
         set net:timeout 60; set xfer:clobber yes; \
         open -u \"{}\",\"{}\" ftp://{}:{}; ",
        t.user,
        t.pass,
        t.host_in_url(),
        t.port,
    );
    if !t.dir.is_empty() {
        script.push_str(&format!("cd \"{}\"; ", t.dir));
    }
    script.push_str(&format!(
        "put {} -o \"{name}\"; echo LISTING-BEGIN; ls; echo LISTING-END; get \"{name}\" -o {}",
        q(local),
        q(out)
    ));
    let mut c = t.command("lftp");
    c.args(["-d", "-c", &script]);
    let (stdout, stderr) = run(c, "lftp")?;
    let listing = stdout
        .split("LISTING-BEGIN")
        .nth(1)
        .and_then(|s| s.split("LISTING-END").next())
        .unwrap_or_default()
        .to_string();
    Ok(RoundTrip {
        listing,
        transcript: format!("{stdout}{stderr}"),
    })
}
