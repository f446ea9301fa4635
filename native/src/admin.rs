//! Admin control settings: policy components, a replacement rewrite component, and the
//! audit log. Filled from the command line (`--policy`, `--plugin`, `--log-format`, `-o
//! PolicyTimeout= / PolicyMemory= / AuditLog=`) and serde-friendly for the config file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditLog, LogFormat};
use crate::policy::{PolicyError, PolicyLimits, PolicySet, PolicySpec};

/// The `-o` names this module handles (lower case).
const OPTIONS: [&str; 3] = ["policytimeout", "policymemory", "auditlog"];

/// Policies, plugin and audit log, as the admin configured them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct AdminSettings {
    /// Policy components, asked in this order; all must allow.
    pub policies: Vec<PolicySpec>,
    /// Deadline and memory cap of every policy call.
    pub policy_limits: PolicyLimits,
    /// A rewrite component to run instead of the built-in one (same `ftp-tunnel` world).
    pub plugin: Option<PathBuf>,
    /// The audit log's format; setting it (or `audit_log`) turns the audit log on.
    pub log_format: Option<LogFormat>,
    /// Where the audit log goes; standard error if unset.
    pub audit_log: Option<PathBuf>,
}

/// Why the admin settings could not be put to use.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A policy was refused.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The audit log file could not be opened.
    #[error("cannot open the audit log {path}: {source}", path = .path.display())]
    AuditLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plugin is not a component of the `ftp-tunnel` world (or does not compile).
    #[error("plugin {path}: not a usable ftp-tunnel:plugin component: {reason}", path = .path.display())]
    PluginRefused {
        /// The file.
        path: PathBuf,
        /// What wasmtime found wrong with it.
        reason: String,
    },
    /// The plugin file could not be read.
    #[error("cannot read the plugin {path}: {source}", path = .path.display())]
    Plugin {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether `-o NAME=...` is one of this module's options.
pub fn is_option(name: &str) -> bool {
    OPTIONS.contains(&name.to_ascii_lowercase().as_str())
}

impl AdminSettings {
    /// Lays a later source's settings (the config file's tunnel, then the command line) over
    /// these: its policies are added (all must allow), its plugin and log format, when
    /// given, replace the earlier ones.
    pub fn layer(
        &mut self,
        policies: &[PolicySpec],
        plugin: Option<&PathBuf>,
        log_format: Option<LogFormat>,
    ) {
        self.policies.extend(policies.iter().cloned());
        if let Some(plugin) = plugin {
            self.plugin = Some(plugin.clone());
        }
        if let Some(format) = log_format {
            self.log_format = Some(format);
        }
    }

    /// Applies `-o NAME=VALUE` for one of [`is_option`]'s names; the error says what is wrong
    /// with the value.
    pub fn apply_option(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name.to_ascii_lowercase().as_str() {
            "policytimeout" => self.policy_limits.timeout = crate::policy::parse_timeout(value)?,
            "policymemory" => self.policy_limits.memory = crate::policy::parse_memory(value)?,
            "auditlog" if value.is_empty() => return Err("expected a file name".to_owned()),
            "auditlog" => self.audit_log = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {name:?}")),
        }
        Ok(())
    }

    /// Whether an audit log is to be written.
    pub fn audit_enabled(&self) -> bool {
        self.log_format.is_some() || self.audit_log.is_some()
    }

    /// Whether sessions must ask the host about every command (policies or audit log on).
    pub fn check_commands(&self) -> bool {
        !self.policies.is_empty() || self.audit_enabled()
    }

    /// Opens the audit log, if one is configured.
    pub fn open_audit_log(&self) -> Result<Option<AuditLog>, AdminError> {
        if !self.audit_enabled() {
            return Ok(None);
        }
        let format = self.log_format.unwrap_or_default();
        match &self.audit_log {
            None => Ok(Some(AuditLog::stderr(format))),
            Some(path) => {
                AuditLog::to_file(path, format)
                    .map(Some)
                    .map_err(|source| AdminError::AuditLog {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    /// Loads and configures the policies (an empty set if there are none).
    pub async fn load_policies(&self) -> Result<PolicySet, AdminError> {
        Ok(PolicySet::load(&self.policies, self.policy_limits).await?)
    }

    /// Loads the policies and opens the audit log: what sessions share.
    pub async fn controls(&self) -> Result<crate::gate::Controls, AdminError> {
        Ok(crate::gate::Controls {
            policies: std::sync::Arc::new(self.load_policies().await?),
            audit: self.open_audit_log()?.map(std::sync::Arc::new),
        })
    }

    /// The replacement rewrite component's bytes, if one is configured (checked against the
    /// `ftp-tunnel` world when the runtime compiles it).
    pub fn read_plugin(&self) -> Result<Option<Vec<u8>>, AdminError> {
        self.plugin
            .as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|source| AdminError::Plugin {
                    path: path.clone(),
                    source,
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_apply() {
        let mut settings = AdminSettings::default();
        assert!(is_option("PolicyTimeout") && is_option("AUDITLOG") && !is_option("Port"));
        settings.apply_option("PolicyTimeout", "25ms").unwrap();
        settings.apply_option("policymemory", "8M").unwrap();
        settings.apply_option("AuditLog", "audit.log").unwrap();
        assert_eq!(settings.policy_limits.timeout.as_millis(), 25);
        assert_eq!(settings.policy_limits.memory, 8 << 20);
        assert!(settings.audit_enabled() && settings.check_commands());
        assert!(settings.apply_option("PolicyTimeout", "soon").is_err());
        assert!(!AdminSettings::default().check_commands());
    }

    #[test]
    fn settings_round_trip_through_toml() {
        let settings = AdminSettings {
            policies: vec![
                "ro.wasm".parse().unwrap(),
                "hosts.wasm,allow=*:21".parse().unwrap(),
            ],
            log_format: Some(LogFormat::Json),
            ..AdminSettings::default()
        };
        let text = toml::to_string(&settings).unwrap();
        assert_eq!(toml::from_str::<AdminSettings>(&text).unwrap(), settings);
    }
}
