//! The command line, in OpenSSH's spellings: `-p -l -i -o -L -R`, `[USER@]HOST`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};

use crate::admin::AdminSettings;
use crate::audit::LogFormat;
use crate::policy::PolicySpec;
use crate::settings::FtpSettings;
use crate::spec::ForwardSpec;
use crate::ssh::{SshOptions, StrictHostKeyChecking};
use crate::tunnel::TunnelConfig;

const EXAMPLES: &str = "\
Examples:
  # FTP server 127.0.0.1:21 as seen from gateway.example.net, reached on local port 2121:
  ftp-tunnel -i ~/.ssh/id_ed25519 -L ftp/2121:127.0.0.1:21 admin@gateway.example.net
  curl -T report.csv ftp://user:pass@127.0.0.1:2121/        # passive (EPSV, then PASV)
  curl -P - ftp://user:pass@127.0.0.1:2121/report.csv       # active (EPRT, then PORT)
  lftp -u user,pass -p 2121 127.0.0.1

  # An FTP server on another host behind the gateway, SSH on port 2222, a pinned known_hosts:
  ftp-tunnel -p 2222 -o UserKnownHostsFile=./known_hosts -o StrictHostKeyChecking=yes \\
             -L ftp/2121:ftp.internal:21 admin@gateway.example.net

  # Try it all locally, with an embedded SSH and FTP server:
  ftp-tunnel demo

Options for -o (case-insensitive, Option=value or \"Option value\"):
  UserKnownHostsFile=FILE          known_hosts to verify against (default ~/.ssh/known_hosts)
  StrictHostKeyChecking=yes|accept-new|no|ask
                                   as OpenSSH; default ask on a terminal, refuse without one
  IdentityFile=FILE, Port=N, User=NAME, ConnectTimeout=SECONDS
  TrustPassiveAddress=yes|no       connect passive data to the host the server's 227/229 names
                                   (default no: always the tunnel's FTP server host; SSRF)
  AllowForeignDataAddress=yes|no   relay PORT/EPRT naming another host than the client's
                                   (default no: FTP bounce, RFC 2577)
  PassiveBindAddress=IP            where passive-mode listeners bind (default: the address
                                   the FTP client connected to)
  ActiveBindAddress=HOST           where active-mode remote forwards bind on the SSH server
                                   (default 127.0.0.1)
  DataTimeout=SECONDS              how long a data forward waits for its connection (60)
  SeparateDataConnections=yes|no   an SSH connection per data transfer instead of a channel
                                   on the one connection (default no; see README)
  MaxSessions=N                    FTP control sessions (and tcp/ connections) alive at once;
                                   past it a client gets 421 (default 256)
  MaxDataPathsPerSession=N         data connections one FTP session may have open (8)
  MaxDataPaths=N                   data connections of all sessions together (1024)
  PolicyTimeout=DURATION           deadline of each policy call: 10ms (default), 1s, 500us
  PolicyMemory=SIZE                memory cap of each policy instance: 16M (default), 64M
  AuditLog=FILE                    append the audit log to FILE (implies --log-format text)

Admin control (see policies/README.md):
  --policy FILE.wasm[,NAME=VALUE...]   a policy component; repeatable, all must allow
  --plugin FILE.wasm                   run this rewrite component instead of the built-in one
  --log-format text|json               write the audit log (to stderr unless AuditLog=FILE)

Exit status: 0 after SIGINT/SIGTERM; 255 when the SSH connection fails or is lost; 2 on
bad usage (a policy, plugin or audit log that cannot be used included). Log detail:
-v/-vv, -q, or RUST_LOG.";

/// ftp-tunnel: carry FTP, data channels included, through one SSH connection.
#[derive(Debug, Parser)]
#[command(
    name = "ftp-tunnel",
    version,
    about = "Carry FTP, data channels included, through an SSH connection",
    long_about = "Carry FTP, data channels included, through an SSH connection.\n\n\
        `-L ftp/PORT:HOST:HOSTPORT` listens on PORT here; each FTP control connection accepted \
        there is carried through SSH to HOST:HOSTPORT as the SSH server sees it, and every data \
        connection of that FTP session (passive PASV/EPSV/LPSV and active PORT/EPRT/LPRT) is \
        carried through SSH too, with forwards opened as the FTP conversation announces them \
        and closed when each transfer ends.",
    after_help = "Examples and every -o option: ftp-tunnel --help",
    after_long_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// Run a self-contained demonstration (embedded SSH and FTP servers, real transfers).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// SSH server port.
    #[arg(short = 'p', value_name = "SSH_PORT")]
    pub port: Option<u16>,

    /// User to log in as on the SSH server.
    #[arg(short = 'l', value_name = "USER")]
    pub login: Option<String>,

    /// Private key file for public-key authentication (repeatable).
    #[arg(short = 'i', value_name = "KEYFILE", action = ArgAction::Append)]
    pub identity: Vec<PathBuf>,

    /// Option in OpenSSH's `-o Option=value` form (listed under --help; repeatable).
    #[arg(short = 'o', value_name = "OPTION", action = ArgAction::Append)]
    pub options: Vec<String>,

    /// Local forward: `[ftp/|tcp/][BIND_ADDR:]PORT:HOST:HOSTPORT` (PORT 0 = any free port).
    #[arg(short = 'L', value_name = "SPEC", action = ArgAction::Append)]
    pub local: Vec<ForwardSpec>,

    /// Remote forward: `[ftp/|tcp/][BIND_ADDR:]PORT:HOST:HOSTPORT`; the SSH server listens on
    /// BIND_ADDR:PORT (default 127.0.0.1) and each connection there is carried to HOST:HOSTPORT
    /// as seen from here.
    #[arg(short = 'R', value_name = "SPEC", action = ArgAction::Append)]
    pub remote: Vec<ForwardSpec>,

    /// Gateway mode, as OpenSSH's `-g`: `-L` forwards without a bind address listen on every
    /// IPv4 address (0.0.0.0) instead of loopback, so FTP clients on other hosts can connect.
    #[arg(short = 'g')]
    pub gateway: bool,

    /// More log detail (-v: debug, -vv: trace).
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors.
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Policy component deciding what may pass: `FILE.wasm[,NAME=VALUE...]` (repeatable).
    #[arg(long = "policy", value_name = "FILE.wasm[,NAME=VALUE...]", action = ArgAction::Append)]
    pub policies: Vec<PolicySpec>,

    /// Rewrite component to run instead of the built-in one.
    #[arg(long, value_name = "FILE.wasm")]
    pub plugin: Option<PathBuf>,

    /// Write the audit log in this format (`text` or `json`).
    #[arg(long = "log-format", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// The SSH server, `[USER@]HOST`.
    #[arg(value_name = "[USER@]SSH_HOST", required = true)]
    pub destination: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an embedded SSH server and FTP server on loopback and run real transfers
    /// through the tunnel in passive and active mode.
    #[cfg(feature = "demo")]
    Demo(crate::demo::DemoOptions),
}

/// A command line that parses but does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `-o` with an unknown name or a bad value.
    #[error("-o {option}: {reason}")]
    BadOption {
        /// The option as given.
        option: String,
        /// What is wrong.
        reason: String,
    },
    /// Something else.
    #[error("{0}")]
    Usage(String),
}

impl Cli {
    /// Builds the tunnel configuration from the arguments.
    pub fn tunnel_config(&self) -> Result<TunnelConfig, CliError> {
        let destination = self
            .destination
            .as_deref()
            .ok_or_else(|| CliError::Usage("no SSH server given".to_owned()))?;
        if self.local.is_empty() && self.remote.is_empty() {
            return Err(CliError::Usage(
                "nothing to forward: give at least one -L ftp/PORT:HOST:HOSTPORT or -R ftp/PORT:HOST:HOSTPORT"
                    .to_owned(),
            ));
        }
        let (user_from_destination, host) = match destination.rsplit_once('@') {
            Some((user, host)) => (Some(user.to_owned()), host.to_owned()),
            None => (None, destination.to_owned()),
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host)
            .to_owned();
        if host.is_empty() {
            return Err(CliError::Usage("empty SSH host".to_owned()));
        }
        let default_user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        let mut ssh = SshOptions::new(host, 22, default_user);
        let mut ftp = FtpSettings::default();
        let mut option_port = None;
        let mut option_user = None;
        for option in &self.options {
            apply_option(
                option,
                &mut ssh,
                &mut ftp,
                &mut option_port,
                &mut option_user,
            )?;
        }
        // Command-line flags win over -o, as in OpenSSH.
        ssh.port = self.port.or(option_port).unwrap_or(22);
        if let Some(user) = self.login.clone().or(user_from_destination).or(option_user) {
            ssh.user = user;
        }
        ssh.identity_files.extend(self.identity.iter().cloned());
        Ok(TunnelConfig {
            ssh,
            forwards: self
                .local
                .iter()
                .cloned()
                .map(|mut spec| {
                    if self.gateway && spec.bind_address.is_none() {
                        spec.bind_address = Some(GATEWAY_BIND.to_owned());
                    }
                    spec
                })
                .collect(),
            remote_forwards: self.remote.clone(),
            ftp,
            admin: self.admin_settings()?,
        })
    }
}

/// Where `-g` makes `-L` listeners bind when their spec names no address.
const GATEWAY_BIND: &str = "0.0.0.0";

impl Cli {
    /// The admin control settings: policies, plugin, audit log and their `-o` options.
    pub fn admin_settings(&self) -> Result<AdminSettings, CliError> {
        let mut admin = AdminSettings {
            policies: self.policies.clone(),
            plugin: self.plugin.clone(),
            log_format: self.log_format,
            ..AdminSettings::default()
        };
        for option in &self.options {
            let Some((name, value)) = split_option(option) else {
                continue;
            };
            if crate::admin::is_option(name) {
                admin
                    .apply_option(name, value)
                    .map_err(|reason| CliError::BadOption {
                        option: option.clone(),
                        reason,
                    })?;
            }
        }
        Ok(admin)
    }
}

/// `Option=value` or `Option value`, trimmed.
fn split_option(option: &str) -> Option<(&str, &str)> {
    option
        .split_once('=')
        .or_else(|| option.split_once(char::is_whitespace))
        .map(|(n, v)| (n.trim(), v.trim()))
}

fn apply_option(
    option: &str,
    ssh: &mut SshOptions,
    ftp: &mut FtpSettings,
    port: &mut Option<u16>,
    user: &mut Option<String>,
) -> Result<(), CliError> {
    let bad = |reason: String| CliError::BadOption {
        option: option.to_owned(),
        reason,
    };
    let (name, value) = option
        .split_once('=')
        .or_else(|| option.split_once(char::is_whitespace))
        .map(|(n, v)| (n.trim(), v.trim()))
        .ok_or_else(|| bad("expected Option=value".to_owned()))?;
    let yes_no = |value: &str| match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(bad(format!("expected yes or no, got {value:?}"))),
    };
    let at_least_one = |value: &str| match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(bad(format!(
            "expected a whole number of at least 1, got {value:?}"
        ))),
    };
    match name.to_ascii_lowercase().as_str() {
        "userknownhostsfile" => ssh.known_hosts = expand_tilde(value),
        "stricthostkeychecking" => {
            ssh.strict_host_key_checking = value.parse::<StrictHostKeyChecking>().map_err(bad)?
        }
        "identityfile" => ssh.identity_files.push(expand_tilde(value)),
        "port" => *port = Some(value.parse().map_err(|_| bad("not a port".to_owned()))?),
        "user" => *user = Some(value.to_owned()),
        "connecttimeout" => {
            let seconds: u64 = value
                .parse()
                .map_err(|_| bad("expected whole seconds".to_owned()))?;
            ssh.connect_timeout = Duration::from_secs(seconds.max(1));
        }
        "trustpassiveaddress" => ftp.trust_passive_address = yes_no(value)?,
        "allowforeigndataaddress" => ftp.allow_foreign_data_address = yes_no(value)?,
        "passivebindaddress" => {
            ftp.passive_bind = Some(
                value
                    .parse::<IpAddr>()
                    .map_err(|_| bad("expected an IP address".to_owned()))?,
            )
        }
        "activebindaddress" => ftp.active_bind = Some(value.to_owned()),
        "datatimeout" => {
            let seconds: u64 = value
                .parse()
                .map_err(|_| bad("expected whole seconds".to_owned()))?;
            ftp.data_timeout = Duration::from_secs(seconds.max(1));
        }
        "separatedataconnections" => ssh.separate_data_connections = yes_no(value)?,
        "maxsessions" => ftp.limits.max_sessions = at_least_one(value)?,
        "maxdatapathspersession" => ftp.limits.max_data_paths_per_session = at_least_one(value)?,
        "maxdatapaths" => ftp.limits.max_data_paths = at_least_one(value)?,
        // Admin control options: read by `Cli::admin_settings`.
        admin if crate::admin::is_option(admin) => {}
        _ => return Err(bad(format!("unknown option {name:?}"))),
    }
    Ok(())
}

fn expand_tilde(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => std::env::home_dir().unwrap_or_default().join(rest),
        None => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<TunnelConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("ftp-tunnel").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.tunnel_config().map_err(|e| e.to_string())
    }

    #[test]
    fn openssh_style_arguments() {
        let config = parse(&[
            "-p",
            "2222",
            "-i",
            "key",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "UserKnownHostsFile=kh",
            "-L",
            "ftp/2121:127.0.0.1:21",
            "admin@gw",
        ])
        .unwrap();
        assert_eq!(config.ssh.port, 2222);
        assert_eq!(config.ssh.user, "admin");
        assert_eq!(config.ssh.host, "gw");
        assert_eq!(config.ssh.known_hosts, PathBuf::from("kh"));
        assert_eq!(
            config.ssh.strict_host_key_checking,
            StrictHostKeyChecking::AcceptNew
        );
        assert_eq!(config.forwards.len(), 1);
    }

    #[test]
    fn bad_input_is_one_clear_error() {
        assert!(
            parse(&["-L", "ftp/x:h:21", "gw"])
                .unwrap_err()
                .contains("ftp/x:h:21")
        );
        assert!(
            parse(&["-o", "Bogus=1", "-L", "ftp/0:h:21", "gw"])
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(parse(&["gw"]).unwrap_err().contains("nothing to forward"));
        assert!(
            parse(&["-o", "MaxSessions=0", "-L", "ftp/0:h:21", "gw"])
                .unwrap_err()
                .contains("at least 1")
        );
    }

    #[test]
    fn gateway_mode_binds_unaddressed_local_forwards_on_every_address() {
        let config = parse(&[
            "-g",
            "-L",
            "ftp/2121:h:21",
            "-L",
            "ftp/127.0.0.2:2122:h:21",
            "gw",
        ])
        .unwrap();
        let binds: Vec<_> = config
            .forwards
            .iter()
            .map(|f| f.bind_address.as_deref())
            .collect();
        assert_eq!(binds, [Some("0.0.0.0"), Some("127.0.0.2")]);
        let config = parse(&["-L", "ftp/2121:h:21", "gw"]).unwrap();
        assert_eq!(config.forwards[0].bind_address, None);
    }

    #[test]
    fn limits_are_set_with_options() {
        let config = parse(&[
            "-o",
            "MaxSessions=3",
            "-o",
            "maxdatapathspersession 2",
            "-o",
            "MaxDataPaths=5",
            "-L",
            "ftp/0:h:21",
            "gw",
        ])
        .unwrap();
        let limits = config.ftp.limits;
        assert_eq!(
            (
                limits.max_sessions,
                limits.max_data_paths_per_session,
                limits.max_data_paths
            ),
            (3, 2, 5)
        );
    }
}
