//! ftp-tunnel's own settings file (TOML): named tunnels and FTP options, so that
//! `ftp-tunnel NAME` starts what the file describes. The command line overrides it.
//!
//! ```toml
//! [ftp]                          # defaults for every tunnel
//! data_timeout = 60
//!
//! [tunnel.prod]
//! destination = "admin@gw.example.net"
//! local = ["ftp/2121:ftp.internal:21"]
//! options = ["ServerAliveInterval=30"]   # as -o
//! ftp = { trust_passive_address = true }
//! log_format = "json"                    # as --log-format
//!
//! [[tunnel.prod.policies]]               # as --policy; all must allow
//! path = "read-only.wasm"                # relative to this file's directory
//! settings = [["allow", "RETR"]]
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::admin::AdminSettings;
use crate::audit::LogFormat;
use crate::policy::PolicySpec;
use crate::settings::FtpSettings;
use crate::spec::ForwardSpec;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    /// FTP options for every tunnel.
    #[serde(default)]
    pub ftp: FtpOptions,
    /// Named tunnels.
    #[serde(default)]
    pub tunnel: BTreeMap<String, TunnelEntry>,
}

/// One named tunnel.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelEntry {
    /// `[user@]host` (or an alias of `~/.ssh/config`).
    pub destination: String,
    /// `-L` specifications.
    #[serde(default)]
    pub local: Vec<String>,
    /// `-R` specifications.
    #[serde(default)]
    pub remote: Vec<String>,
    /// `-o` options, in `Option=value` form.
    #[serde(default)]
    pub options: Vec<String>,
    /// FTP options for this tunnel (over the file's `[ftp]`).
    #[serde(default)]
    pub ftp: FtpOptions,
    /// Policy components, as `--policy`, asked in this order; all must allow. A relative
    /// path is relative to the settings file's directory.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    /// A rewrite component to run instead of the built-in one, as `--plugin`.
    pub plugin: Option<PathBuf>,
    /// The audit log's format, as `--log-format`.
    pub log_format: Option<LogFormat>,
}

impl TunnelEntry {
    /// Applies this tunnel's policies, plugin and log format onto `admin`.
    pub fn apply_admin(&self, admin: &mut AdminSettings) {
        admin.layer(&self.policies, self.plugin.as_ref(), self.log_format);
    }

    /// Makes relative component paths relative to `dir`, the settings file's directory.
    fn anchor(&mut self, dir: &Path) {
        for policy in &mut self.policies {
            if policy.path.is_relative() {
                policy.path = dir.join(&policy.path);
            }
        }
        if let Some(plugin) = self.plugin.as_mut().filter(|p| p.is_relative()) {
            *plugin = dir.join(&*plugin);
        }
    }
}

/// FTP options; unset ones keep the default (or the file-wide value).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpOptions {
    /// Like `-o TrustPassiveAddress`.
    pub trust_passive_address: Option<bool>,
    /// Like `-o AllowForeignDataAddress`.
    pub allow_foreign_data_address: Option<bool>,
    /// Like `-o PassiveBindAddress`.
    pub passive_bind_address: Option<IpAddr>,
    /// Like `-o ActiveBindAddress`.
    pub active_bind_address: Option<String>,
    /// Like `-o DataTimeout`, in seconds.
    pub data_timeout: Option<u64>,
}

impl FtpOptions {
    /// Applies the options that are set onto `ftp`.
    pub fn apply(&self, ftp: &mut FtpSettings) {
        if let Some(v) = self.trust_passive_address {
            ftp.trust_passive_address = v;
        }
        if let Some(v) = self.allow_foreign_data_address {
            ftp.allow_foreign_data_address = v;
        }
        if let Some(v) = self.passive_bind_address {
            ftp.passive_bind = Some(v);
        }
        if let Some(v) = &self.active_bind_address {
            ftp.active_bind = Some(v.clone());
        }
        if let Some(v) = self.data_timeout {
            ftp.data_timeout = Duration::from_secs(v.max(1));
        }
    }
}

/// A settings file that cannot be used; the message names the file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// Unreadable.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// Not valid TOML or not the expected shape.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// `line N, column M: ...` and the key.
        message: String,
    },
}

/// `~/.config/ftp-tunnel/config.toml` (or under `$XDG_CONFIG_HOME`).
pub fn default_path(home: &Path) -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    base.join("ftp-tunnel").join("config.toml")
}

/// Reads the file; a missing default file is an empty one, a missing `--config` file is
/// an error.
pub fn load(path: &Path, required: bool) -> Result<SettingsFile, ConfigFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SettingsFile::default());
        }
        Err(e) => {
            return Err(ConfigFileError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    parse(&text, path)
}

/// Parses the text of `path`, checking every forward specification.
pub fn parse(text: &str, path: &Path) -> Result<SettingsFile, ConfigFileError> {
    let fail = |message: String| ConfigFileError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let mut file: SettingsFile = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: ")
            })
            .unwrap_or_default();
        fail(format!("{at}{}", e.message()))
    })?;
    for (name, tunnel) in &file.tunnel {
        for (key, specs) in [("local", &tunnel.local), ("remote", &tunnel.remote)] {
            for spec in specs {
                if let Err(e) = spec.parse::<ForwardSpec>() {
                    let line = line_of(text, spec);
                    return Err(fail(format!("line {line}: tunnel.{name}.{key}: {e}")));
                }
            }
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    for tunnel in file.tunnel.values_mut() {
        tunnel.anchor(dir);
    }
    Ok(file)
}

/// The line where `needle` first appears (1 if nowhere).
fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map(|i| text[..i].matches('\n').count() + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[ftp]
data_timeout = 30

[tunnel.prod]
destination = "admin@gw"
local = ["ftp/2121:ftp:21"]
options = ["Port=2222"]
ftp = { trust_passive_address = true }
"#;

    #[test]
    fn tunnels_and_ftp_options() {
        let f = parse(GOOD, Path::new("c.toml")).unwrap();
        let prod = &f.tunnel["prod"];
        assert_eq!(prod.destination, "admin@gw");
        let mut ftp = FtpSettings::default();
        f.ftp.apply(&mut ftp);
        prod.ftp.apply(&mut ftp);
        assert_eq!(ftp.data_timeout, Duration::from_secs(30));
        assert!(ftp.trust_passive_address);
    }

    #[test]
    fn policies_are_listed_per_tunnel_relative_to_the_file() {
        let text = format!(
            "{GOOD}log_format = \"json\"\n\n[[tunnel.prod.policies]]\npath = \"ro.wasm\"\nsettings = [[\"allow\", \"RETR\"], [\"allow\", \"LIST\"]]\n\n[[tunnel.prod.policies]]\npath = \"/abs/hosts.wasm\"\n"
        );
        let f = parse(&text, Path::new("/etc/ftp-tunnel/config.toml")).unwrap();
        let mut admin = AdminSettings::default();
        f.tunnel["prod"].apply_admin(&mut admin);
        let paths: Vec<_> = admin.policies.iter().map(|p| p.path.clone()).collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("/etc/ftp-tunnel/ro.wasm"),
                PathBuf::from("/abs/hosts.wasm")
            ]
        );
        assert_eq!(admin.policies[0].settings.len(), 2);
        assert_eq!(admin.log_format, Some(LogFormat::Json));
        let e = parse(
            &format!("{GOOD}\n[[tunnel.prod.policies]]\nfile = \"x.wasm\"\n"),
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line") && e.contains("path"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("[ftp]\n\ndata_timout = 3\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml: line 3: ") && e.contains("data_timout"),
            "{e}"
        );
        let e = parse("[ftp]\ndata_timeout = \"x\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let bad = GOOD.replace("ftp/2121:ftp:21", "ftp/x:ftp:21");
        let e = parse(&bad, Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("line 7: tunnel.prod.local"), "{e}");
        assert!(load(Path::new("/nonexistent/x.toml"), true).is_err());
        assert!(load(Path::new("/nonexistent/x.toml"), false).is_ok());
    }
}
