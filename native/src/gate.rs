//! What one FTP control session asks of the admin's controls: the policies' verdicts at the
//! two points the rewrite component defers to the host (a client command, a data path about
//! to be opened) and the audit records. The session loop calls these and nothing else.

use std::sync::Arc;
use std::time::Duration;

use ftp_tunnel_core::contract::{DataMode, Verdict};

use crate::audit::{AuditLog, AuditSession, SessionInfo};
use crate::policy::{self, PolicySet};

/// Policies and audit log shared by all sessions of a process.
#[derive(Debug, Clone)]
pub struct Controls {
    /// The policies in force (possibly none).
    pub policies: Arc<PolicySet>,
    /// The audit log, if one is written.
    pub audit: Option<Arc<AuditLog>>,
}

impl Controls {
    /// Whether sessions must defer every command to the host (`check-commands`).
    pub fn check_commands(&self) -> bool {
        !self.policies.is_empty() || self.audit.is_some()
    }

    /// A control connection was accepted.
    pub fn session(&self, info: SessionInfo) -> SessionGate {
        SessionGate {
            policies: self.policies.clone(),
            audit: self
                .audit
                .as_ref()
                .map(|log| log.session_started(info.clone())),
            info,
            ftp_user: None,
        }
    }
}

/// One control session's view of the controls.
#[derive(Debug)]
pub struct SessionGate {
    policies: Arc<PolicySet>,
    audit: Option<AuditSession>,
    info: SessionInfo,
    ftp_user: Option<String>,
}

impl SessionGate {
    /// A client command the component deferred (`check-command`): recorded, then put to the
    /// policies. `argument` is `***` for PASS already; it is masked again here regardless.
    pub async fn check_command(&mut self, verb: &str, argument: &str) -> Verdict {
        let verb = verb.to_ascii_uppercase();
        if let Some(audit) = &mut self.audit {
            audit.command(&verb, argument);
        }
        let argument = if matches!(verb.as_str(), "PASS" | "ACCT") {
            "***".to_owned()
        } else {
            argument.to_owned()
        };
        let verdict = if self.policies.is_empty() {
            Verdict::Allow
        } else {
            let command = policy::Command {
                session: self.info.session,
                ssh_user: self.info.ssh_user.clone(),
                client: client_ip(&self.info.client),
                server: self.info.server.clone(),
                ftp_user: self.ftp_user.clone(),
                verb: verb.clone(),
                argument: argument.clone(),
            };
            self.policies.check_command(&command).await
        };
        match &verdict {
            Verdict::Allow if verb == "USER" => self.ftp_user = Some(argument),
            Verdict::Allow => {}
            Verdict::Deny(reason) => {
                if let Some(audit) = &mut self.audit {
                    audit.denied_command(&verb, &argument, reason);
                }
            }
        }
        verdict
    }

    /// A data path about to be opened (`open-data-path`), before anything is opened for it.
    pub async fn check_forward(&mut self, mode: DataMode, host: &str, port: u16) -> Verdict {
        if self.policies.is_empty() {
            return Verdict::Allow;
        }
        let forward = policy::DataForward {
            session: self.info.session,
            mode: match mode {
                DataMode::Passive => policy::DataMode::Passive,
                DataMode::Active => policy::DataMode::Active,
            },
            host: host.to_owned(),
            port,
        };
        let verdict = self.policies.check_forward(&forward).await;
        if let (Verdict::Deny(reason), Some(audit)) = (&verdict, &mut self.audit) {
            audit.denied_forward(mode, host, port, reason);
        }
        verdict
    }

    /// A `transfer` note: the command line, its final reply, the data path that carried it.
    pub fn transfer_reply(&mut self, forward: Option<u32>, command: &str, reply: &str) {
        if let Some(audit) = &mut self.audit {
            audit.transfer_reply(forward, command, reply);
        }
    }

    /// A data path's connection ended with these byte counts.
    pub fn data_finished(
        &mut self,
        forward: u32,
        mode: DataMode,
        to_server: u64,
        to_client: u64,
        elapsed: Duration,
    ) {
        if let Some(audit) = &mut self.audit {
            audit.data_finished(forward, mode, to_server, to_client, elapsed);
        }
    }

    /// The session is over: `closed`, or what ended it.
    pub fn ended(self, outcome: &str) {
        if let Some(audit) = self.audit {
            audit.session_ended(outcome);
        }
    }
}

/// The IP part of `client` (policies are given an IP literal).
fn client_ip(client: &str) -> String {
    client
        .parse::<std::net::SocketAddr>()
        .map(|addr| addr.ip().to_canonical().to_string())
        .unwrap_or_else(|_| client.to_owned())
}
