//! The bench for `-R ftp/` tunnels: the FTP server and ftp-tunnel inside a namespace, the SSH
//! server in the root namespace on the root's end of the veth link, FTP clients in the root
//! namespace. A client reaches the FTP server only through the SSH server's `-R` listener,
//! and the FTP server reaches a client only through the tunnel: the two loopbacks are apart.

use crate::clients::Target;
use crate::dropbear::Dropbear;
use crate::lab::ServerKind;
use crate::netns::NetNs;
use crate::pyftpd::Pyftpd;
use crate::sshd::{Forwarding, Side, SshServer, Sshd};
use crate::tunnel::{Tunnel, ssh_args};
use crate::vsftpd::Vsftpd;
use crate::{FtpServer, Result, free_port};

/// Which SSH server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshKind {
    /// OpenSSH's sshd.
    OpenSsh,
    /// dropbear.
    Dropbear,
}

/// Namespace + FTP server inside + SSH server outside. Fields drop in order.
pub struct RemoteLab {
    /// The FTP server (inside the namespace, 127.0.0.1).
    pub server: Box<dyn FtpServer>,
    /// The SSH server (root namespace, the veth's root end).
    pub ssh: Box<dyn SshServer>,
    /// The namespace.
    pub ns: NetNs,
}

impl RemoteLab {
    /// Sets everything up.
    pub fn new(kind: ServerKind, ssh: SshKind) -> Result<Self> {
        let ns = NetNs::new()?;
        let ssh: Box<dyn SshServer> = match ssh {
            SshKind::OpenSsh => Box::new(Sshd::start_at(&ns, Side::Host, Forwarding::Yes, "")?),
            SshKind::Dropbear => Box::new(Dropbear::start(&ns, Side::Host)?),
        };
        let server: Box<dyn FtpServer> = match kind {
            ServerKind::Vsftpd => Box::new(Vsftpd::start(&ns)?),
            ServerKind::VsftpdIpv6 => Box::new(Vsftpd::start_v6(&ns)?),
            ServerKind::Pyftpd => Box::new(Pyftpd::start(&ns)?),
        };
        Ok(RemoteLab { server, ssh, ns })
    }

    /// `ftp-tunnel -R ftp/BIND:PORT:127.0.0.1:FTP_PORT` running next to the FTP server, with
    /// `extra` options; PORT is a free port of the root namespace.
    pub fn tunnel(&self, bind: &str, extra: &[&str]) -> Result<Tunnel> {
        let port = free_port()?;
        let spec = format!("ftp/{bind}:{port}:127.0.0.1:{}", self.server.port());
        self.tunnel_with(&["-R", &spec], extra)
    }

    /// ftp-tunnel next to the FTP server with these forwards and options.
    pub fn tunnel_with(&self, forwards: &[&str], extra: &[&str]) -> Result<Tunnel> {
        let mut args = ssh_args(self.ssh.as_ref());
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(forwards.iter().map(|s| s.to_string()));
        args.push(self.ssh.addr().to_string());
        let listeners = forwards.iter().filter(|f| f.starts_with('-')).count();
        Tunnel::start_in(&self.ns, &args, listeners)
    }

    /// Where a client in the root namespace reaches the FTP server through `tunnel`'s first
    /// `-R` listener.
    pub fn target(&self, tunnel: &Tunnel) -> Target {
        let host = tunnel.first_host();
        Target {
            host,
            port: tunnel.port(),
            user: self.server.user().to_string(),
            pass: self.server.pass().to_string(),
            dir: self.server.upload_dir().to_string(),
            netns: None,
        }
    }

    /// The local path of an uploaded file named `name`.
    pub fn uploaded(&self, name: &str) -> std::path::PathBuf {
        self.server.upload_dir_local().join(name)
    }
}
