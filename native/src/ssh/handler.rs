//! The russh client `Handler`: host key verification and routing of `forwarded-tcpip`
//! channels to the `RemoteForward` that asked for them.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use russh::ChannelOpenFailure;
use russh::client::{self, ChannelOpenHandle, DisconnectReason, Msg};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use tokio::sync::{mpsc, watch};

use super::error::SshError;
use super::known_hosts::{self, HostKeyStatus};
use super::options::StrictHostKeyChecking;

/// A `forwarded-tcpip` channel with its originator address and port.
pub(crate) type ForwardedChannel = (russh::Channel<Msg>, String, u32);

/// Connected port → the receiving `RemoteForward`.
pub(crate) type Routes = Arc<Mutex<HashMap<u32, mpsc::Sender<ForwardedChannel>>>>;

/// How host keys are judged for one connection.
#[derive(Debug, Clone)]
pub(crate) enum HostKeyPolicy {
    /// Verify against known_hosts.
    KnownHosts {
        path: PathBuf,
        strict: StrictHostKeyChecking,
        /// `HashKnownHosts`: record new keys under a hashed name.
        hash: bool,
    },
    /// Accept exactly this key (a pool's later connections, after the first one verified it).
    Pinned(PublicKey),
}

pub(crate) struct ClientHandler {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) policy: HostKeyPolicy,
    /// Set while a host key question waits on the terminal, so the connect timeout waits too.
    pub(crate) prompting: Arc<AtomicBool>,
    pub(crate) seen_key: Arc<Mutex<Option<PublicKey>>>,
    pub(crate) routes: Routes,
    /// `Some(reason)` once the session has ended.
    pub(crate) closed: watch::Sender<Option<String>>,
}

impl ClientHandler {
    async fn judge(&self, key: &PublicKey) -> Result<(), SshError> {
        let name = known_hosts::host_port_name(&self.host, self.port);
        let fingerprint = known_hosts::fingerprint(key);
        let (path, strict) = match &self.policy {
            HostKeyPolicy::Pinned(pinned) => {
                return if pinned.key_data() == key.key_data() {
                    Ok(())
                } else {
                    Err(SshError::HostKeyMismatch {
                        host: name,
                        fingerprint,
                    })
                };
            }
            HostKeyPolicy::KnownHosts { path, strict, .. } => (path.clone(), *strict),
        };
        let status = match known_hosts::check(&path, &self.host, self.port, key) {
            Ok(s) => s,
            Err(e) => {
                // OpenSSH also carries on with an unreadable file, as if it were empty.
                tracing::warn!(path = %path.display(), error = %e, "cannot read known_hosts");
                HostKeyStatus::Unknown
            }
        };
        match status {
            HostKeyStatus::Known => Ok(()),
            HostKeyStatus::Revoked { line } => Err(SshError::HostKeyRevoked {
                host: name,
                fingerprint,
                known_hosts: path,
                line,
            }),
            HostKeyStatus::Changed { line } => Err(SshError::HostKeyChanged {
                host: name,
                fingerprint,
                known_hosts: path,
                line,
            }),
            HostKeyStatus::Unknown => match strict {
                StrictHostKeyChecking::Yes => Err(SshError::HostKeyUnknown {
                    host: name,
                    fingerprint,
                    known_hosts: path,
                }),
                StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No => {
                    self.learn(&path, key);
                    Ok(())
                }
                StrictHostKeyChecking::Ask => {
                    self.prompting.store(true, Ordering::SeqCst);
                    let answer = ask_user(name.clone(), fingerprint.clone()).await;
                    self.prompting.store(false, Ordering::SeqCst);
                    match answer {
                        Ok(()) => {
                            self.learn(&path, key);
                            Ok(())
                        }
                        Err(why) => Err(SshError::HostKeyRejected {
                            host: name,
                            fingerprint,
                            why,
                        }),
                    }
                }
            },
        }
    }

    fn learn(&self, path: &std::path::Path, key: &PublicKey) {
        let name = known_hosts::host_port_name(&self.host, self.port);
        let hash = matches!(self.policy, HostKeyPolicy::KnownHosts { hash: true, .. });
        match known_hosts::append(path, &self.host, self.port, key, hash) {
            // OpenSSH's wording, so users recognise it.
            Ok(()) => tracing::warn!(
                "Permanently added '{name}' ({}) to the list of known hosts ({}).",
                key.algorithm().as_str(),
                path.display()
            ),
            Err(e) => tracing::warn!(
                "Failed to add the host '{name}' to the list of known hosts ({}): {e}",
                path.display()
            ),
        }
    }
}

/// Asks like OpenSSH does; `Err(reason)` when refused or when there is no terminal.
async fn ask_user(name: String, fingerprint: String) -> Result<(), String> {
    if !std::io::stdin().is_terminal() {
        return Err(
            "the host is unknown and there is no terminal to confirm it on (add it to known_hosts, or use StrictHostKeyChecking accept-new)"
                .to_string(),
        );
    }
    let answer = tokio::task::spawn_blocking(move || {
        let (alg, fp) = fingerprint.split_once(' ').unwrap_or(("", &fingerprint));
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "The authenticity of host '{name}' can't be established.\n{alg} key fingerprint is {fp}.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? "
        );
        let _ = err.flush();
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => return Err("no answer on the terminal".to_string()),
                Ok(_) => {}
            }
            let a = line.trim();
            if a.eq_ignore_ascii_case("yes") || a == fp {
                return Ok(());
            }
            if a.eq_ignore_ascii_case("no") {
                return Err("the user declined the host key".to_string());
            }
            let _ = write!(err, "Please type 'yes', 'no' or the fingerprint: ");
            let _ = err.flush();
        }
    })
    .await;
    answer.unwrap_or_else(|e| Err(format!("prompt failed: {e}")))
}

impl client::Handler for ClientHandler {
    type Error = SshError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Not advertised by us, so a server sending one is misbehaving.
            PublicKeyOrCertificate::Certificate(_) => {
                return Err(SshError::HostKeyRejected {
                    host: known_hosts::host_port_name(&self.host, self.port),
                    fingerprint: "certificate".to_string(),
                    why: "host certificates are not supported".to_string(),
                });
            }
        };
        self.judge(&key).await?;
        if let Ok(mut seen) = self.seen_key.lock() {
            *seen = Some(key);
        }
        Ok(true)
    }

    async fn auth_banner(
        &mut self,
        banner: &str,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(target: "ssh_banner", "{}", banner.trim_end());
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let sender = self
            .routes
            .lock()
            .ok()
            .and_then(|r| r.get(&connected_port).cloned());
        // try_reserve: the session loop must never wait on a slow acceptor.
        match sender.map(|s| s.try_reserve_owned()) {
            Some(Ok(permit)) => {
                reply.accept().await;
                permit.send((channel, originator_address.to_string(), originator_port));
            }
            other => {
                tracing::debug!(
                    connected_address,
                    connected_port,
                    known = other.is_some(),
                    "refusing forwarded-tcpip channel"
                );
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
        Ok(())
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let why = match reason {
            DisconnectReason::ReceivedDisconnect(info) if info.message.is_empty() => {
                format!("the server closed the connection ({:?})", info.reason_code)
            }
            DisconnectReason::ReceivedDisconnect(info) => {
                format!("the server closed the connection: {}", info.message)
            }
            // ServerAliveCountMax keepalives went unanswered: OpenSSH's words for it.
            DisconnectReason::Error(SshError::Protocol(russh::Error::KeepaliveTimeout)) => {
                format!("Timeout, server {} not responding.", self.host)
            }
            DisconnectReason::Error(e) => e.to_string(),
        };
        tracing::debug!(host = %self.host, reason = %why, "ssh session ended");
        self.closed.send_replace(Some(why));
        Ok(())
    }
}

impl Drop for ClientHandler {
    fn drop(&mut self) {
        // The session task is gone; anyone waiting on `closed()` must wake up.
        self.closed.send_if_modified(|state| {
            if state.is_none() {
                *state = Some("the SSH session ended".to_string());
                true
            } else {
                false
            }
        });
    }
}
