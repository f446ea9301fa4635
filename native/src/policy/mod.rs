//! Sandboxed policy components (`wit/policy/policy.wit`): admin-supplied WebAssembly
//! components that allow or deny FTP commands and data connections.
//!
//! A policy runs on an engine of its own with no capability at all (every WASI import a
//! std-built guest names traps when called), a deadline per call (epoch interruption) and a
//! memory cap. Whatever goes wrong in a policy denies: the call fails closed, the cause is
//! logged with the policy file and the export, and the next call gets a fresh instance.

mod bindings;
mod fault;
mod instance;
mod limits;
mod sandbox;
mod stubs;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use ftp_tunnel_core::contract::Verdict;

pub use self::bindings::{Command, DataForward, DataMode};
pub use self::fault::Fault;
pub use self::limits::{PolicyLimits, PolicySpec, SpecError, parse_memory, parse_timeout};

use self::bindings::Verdict as PolicyVerdict;
use self::instance::LoadedPolicy;
use self::sandbox::Sandbox;

/// Why a policy could not be loaded: each names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy engine could not start.
    #[error("cannot start the policy engine: {0}")]
    Engine(String),
    /// The file could not be read.
    #[error("policy {path}: cannot read it: {source}", path = .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not WebAssembly at all.
    #[error("policy {path}: not a WebAssembly file (no \\0asm header)", path = .path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// The file is a core module, not a component.
    #[error(
        "policy {path}: a WebAssembly core module, not a component: build it with \
         `cargo build --target wasm32-wasip2` (see policies/README.md)",
        path = .path.display()
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The component does not compile.
    #[error("policy {path}: not a valid component: {reason}", path = .path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// The compiler's words.
        reason: String,
    },
    /// The component lacks exports of the policy world.
    #[error(
        "policy {path}: not a component of the {package} world: it does not export {missing}",
        path = .path.display(),
        package = bindings::PACKAGE
    )]
    NotAPolicy {
        /// The file.
        path: PathBuf,
        /// The missing exports, comma-separated.
        missing: String,
    },
    /// The exports are there but with other types (another version of the world).
    #[error(
        "policy {path}: its exports do not have the types of {package}: {reason}",
        path = .path.display(),
        package = bindings::PACKAGE
    )]
    WrongTypes {
        /// The file.
        path: PathBuf,
        /// wasmtime's words.
        reason: String,
    },
    /// Instantiating it or calling `configure` failed (trap, deadline, memory cap).
    #[error("policy {path}: {export} failed: {cause}", path = .path.display())]
    Start {
        /// The file.
        path: PathBuf,
        /// The export that was running.
        export: &'static str,
        /// What went wrong.
        cause: String,
    },
    /// `configure` refused the settings.
    #[error("policy {path}: refused its settings: {message}", path = .path.display())]
    Configure {
        /// The file.
        path: PathBuf,
        /// The policy's message.
        message: String,
    },
}

/// The policies in force: every one must allow; the first deny wins.
pub struct PolicySet {
    policies: Vec<LoadedPolicy>,
    limits: PolicyLimits,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("policies", &self.paths())
            .field("limits", &self.limits)
            .finish()
    }
}

impl PolicySet {
    /// Loads, checks and configures each policy, in order. Any problem refuses the whole set:
    /// a tunnel never runs with fewer policies than the admin asked for.
    pub async fn load(specs: &[PolicySpec], limits: PolicyLimits) -> Result<Self, PolicyError> {
        let mut policies = Vec::with_capacity(specs.len());
        if !specs.is_empty() {
            let sandbox = Arc::new(
                Sandbox::new(limits.timeout).map_err(|e| PolicyError::Engine(format!("{e:#}")))?,
            );
            for spec in specs {
                policies.push(LoadedPolicy::load(spec, limits, sandbox.clone()).await?);
            }
        }
        Ok(Self { policies, limits })
    }

    /// No policies: everything is allowed.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policy files, in the order they are asked.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.policies.iter().map(|p| p.path().to_owned()).collect()
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> PolicyLimits {
        self.limits
    }

    /// Asks every policy about a client command. `PASS`'s argument is masked here whatever
    /// the caller passed.
    pub async fn check_command(&self, command: &Command) -> Verdict {
        let masked;
        let command = if command.verb.eq_ignore_ascii_case("PASS") && command.argument != "***" {
            masked = Command {
                argument: "***".to_owned(),
                ..command.clone()
            };
            &masked
        } else {
            command
        };
        for policy in &self.policies {
            if let deny @ Verdict::Deny(_) = settle(policy.check_command(command).await) {
                return deny;
            }
        }
        Verdict::Allow
    }

    /// Asks every policy about a data connection before anything is opened for it.
    pub async fn check_forward(&self, forward: &DataForward) -> Verdict {
        for policy in &self.policies {
            if let deny @ Verdict::Deny(_) = settle(policy.check_forward(forward).await) {
                return deny;
            }
        }
        Verdict::Allow
    }
}

/// A policy's answer, or its failure, as the core's verdict with a reply-safe reason.
fn settle(answer: Result<PolicyVerdict, String>) -> Verdict {
    match answer {
        Ok(PolicyVerdict::Allow) => Verdict::Allow,
        Ok(PolicyVerdict::Deny(reason)) => Verdict::Deny(fault::sanitise_reason(&reason)),
        Err(reason) => Verdict::Deny(fault::sanitise_reason(&reason)),
    }
}
