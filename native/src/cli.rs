//! The command line, in OpenSSH's spellings: `-p -l -i -o -L -R`, `[USER@]HOST`.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

use crate::admin::AdminSettings;
use crate::audit::LogFormat;
use crate::config_file;
use crate::own_options::{OwnOptionError, apply_own_option};
use crate::policy::PolicySpec;
use crate::resolve::{LoginArgs, ResolveError, resolve};
use crate::settings::FtpSettings;
use crate::spec::ForwardSpec;
use crate::ssh::AddressFamily;
use crate::ssh_config::Context;
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

  # Through a bastion, with the alias and settings of ~/.ssh/config, in the background:
  ftp-tunnel -f -N -J admin@bastion.example.net -L ftp/2121:ftp.internal:21 gw

Logging in, as ssh does: ssh-agent keys first (SSH_AUTH_SOCK or IdentityAgent), then identity
files (-i, IdentityFile, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa; passphrases asked on the
terminal, or through SSH_ASKPASS without one or with SSH_ASKPASS_REQUIRE=force), then
keyboard-interactive and password. ~/.ssh/config (or -F FILE) is read with OpenSSH's rules:
the first value wins, Host patterns with * ? !, Include; Match is refused.

Options for -o and ~/.ssh/config (case-insensitive, Option=value or \"Option value\"):
  HostName, User, Port, ConnectTimeout=SECONDS, IdentityFile=FILE, IdentitiesOnly=yes|no,
  IdentityAgent=SOCKET|none|SSH_AUTH_SOCK, ProxyJump=[USER@]HOST[:PORT][,...]|none,
  ServerAliveInterval=SECONDS, ServerAliveCountMax=N, Ciphers, MACs, KexAlgorithms,
  HostKeyAlgorithms (OpenSSH's list syntax: a,b  +a  -a  ^a), Compression=yes|no,
  AddressFamily=any|inet|inet6, UserKnownHostsFile=FILE (default ~/.ssh/known_hosts),
  StrictHostKeyChecking=yes|accept-new|no|ask (default ask on a terminal, refuse without),
  HashKnownHosts=yes|no, PreferredAuthentications=publickey,keyboard-interactive,password,
  NumberOfPasswordPrompts=N, BatchMode=yes|no, PubkeyAuthentication,
  PasswordAuthentication, KbdInteractiveAuthentication=yes|no,
  LocalForward / RemoteForward [ftp/|tcp/][BIND:]PORT HOST:HOSTPORT, ForwardAgent=yes|no
  Other ssh_config keywords are skipped (shown with -v).
ftp-tunnel's own options (-o, or options = [...] in the --config file):
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

Admin control (see policies/README.md; also policies = [...] in the --config file):
  --policy FILE.wasm[,NAME=VALUE...]   a policy component; repeatable, all must allow
  --plugin FILE.wasm                   run this rewrite component instead of the built-in one
  --log-format text|json               write the audit log (to stderr unless AuditLog=FILE)

Exit status: 0 after SIGINT/SIGTERM; 255 when the SSH connection fails or is lost (or the
login fails); 2 on bad usage (a bad configuration file, policy, plugin or audit log
included). Log detail: -v/-vv, -q, or RUST_LOG.";

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

    // --- OpenSSH client flags (issue 9) ---
    /// Accepted for OpenSSH compatibility: ftp-tunnel never runs a remote command.
    #[arg(short = 'N')]
    pub no_command: bool,

    /// Accepted for OpenSSH compatibility: ftp-tunnel never allocates a terminal.
    #[arg(short = 'T')]
    pub no_tty: bool,

    /// Go to the background once authenticated and every forward is up.
    #[arg(short = 'f')]
    pub background: bool,

    /// Ciphers, in OpenSSH's list syntax (`a,b`, `+a`, `-a`, `^a`).
    #[arg(short = 'c', value_name = "CIPHERS")]
    pub ciphers: Option<String>,

    /// MACs, in OpenSSH's list syntax.
    #[arg(short = 'm', value_name = "MACS")]
    pub macs: Option<String>,

    /// Use IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Compress the SSH connection (zlib).
    #[arg(short = 'C')]
    pub compression: bool,

    /// Append the log to LOGFILE instead of standard error.
    #[arg(short = 'E', value_name = "LOGFILE")]
    pub log_file: Option<PathBuf>,

    /// The ssh client configuration file (default ~/.ssh/config; `none` for none).
    #[arg(short = 'F', value_name = "CONFIGFILE")]
    pub ssh_config: Option<PathBuf>,

    /// Reach the SSH server through these jump hosts: `[user@]host[:port][,...]`.
    #[arg(short = 'J', value_name = "DESTINATION")]
    pub jump: Option<String>,

    /// Agent forwarding (accepted; needs a session channel, which ftp-tunnel never opens,
    /// as `ssh -N`).
    #[arg(short = 'A')]
    pub forward_agent: bool,

    /// ftp-tunnel's own settings file (TOML; default ~/.config/ftp-tunnel/config.toml).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    // --- end of OpenSSH client flags ---
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

    /// The SSH server, `[USER@]HOST`, an alias of `~/.ssh/config`, or a tunnel named in the
    /// `--config` file.
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
    /// The ssh client configuration file (`-F`, `~/.ssh/config`), with file and line.
    #[error("{0}")]
    Config(String),
}

impl Cli {
    /// Builds the tunnel configuration from the arguments, `~/.ssh/config` (or `-F`).
    pub fn tunnel_config(&self) -> Result<TunnelConfig, CliError> {
        self.tunnel_config_in(&Context::from_env())
    }

    /// [`tunnel_config`](Self::tunnel_config) with another home directory (tests).
    pub fn tunnel_config_in(&self, ctx: &Context) -> Result<TunnelConfig, CliError> {
        let destination = self
            .destination
            .as_deref()
            .ok_or_else(|| CliError::Usage("no SSH server given".to_owned()))?;
        // ftp-tunnel's settings file: a destination that names one of its tunnels takes
        // that tunnel's settings; the command line overrides them.
        let settings = match &self.config {
            Some(path) => config_file::load(path, true),
            None => config_file::load(&config_file::default_path(&ctx.home), false),
        }
        .map_err(|e| CliError::Config(e.to_string()))?;
        let entry = settings.tunnel.get(destination);
        let mut ftp = FtpSettings::default();
        settings.ftp.apply(&mut ftp);
        let mut admin = AdminSettings::default();
        // `SeparateDataConnections`, when an own option gives it.
        let mut separate_data_connections = None;
        let mut local = self.local.clone();
        let mut remote = self.remote.clone();
        let mut file_options = Vec::new();
        let destination = match entry {
            Some(entry) => {
                entry.ftp.apply(&mut ftp);
                entry.apply_admin(&mut admin);
                // Forwards on the command line replace the file's.
                if local.is_empty() && remote.is_empty() {
                    local = parse_specs(&entry.local)?;
                    remote = parse_specs(&entry.remote)?;
                }
                file_options = entry.options.clone();
                entry.destination.as_str()
            }
            None => destination,
        };
        // Own options: the file's first, then the command line's over them. OpenSSH
        // options go to the resolver with the command line's first: there the first value
        // wins.
        let mut file_ssh_options = Vec::new();
        for option in &file_options {
            if !apply_own_option(option, &mut ftp, &mut admin, &mut separate_data_connections)? {
                file_ssh_options.push(option.clone());
            }
        }
        let mut ssh_options = Vec::new();
        for option in &self.options {
            if !apply_own_option(option, &mut ftp, &mut admin, &mut separate_data_connections)? {
                ssh_options.push(option.clone());
            }
        }
        ssh_options.extend(file_ssh_options);
        // Command-line admin settings: policies add to the file's (all must allow); a plugin
        // or log format replaces the file's.
        admin.layer(&self.policies, self.plugin.as_ref(), self.log_format);
        let args = LoginArgs {
            destination: destination.to_owned(),
            login: self.login.clone(),
            port: self.port,
            identity: self.identity.clone(),
            options: ssh_options,
            ciphers: self.ciphers.clone(),
            macs: self.macs.clone(),
            family: match (self.ipv4, self.ipv6) {
                (true, _) => Some(AddressFamily::Inet),
                (_, true) => Some(AddressFamily::Inet6),
                _ => None,
            },
            compression: self.compression,
            ssh_config: self.ssh_config.clone(),
            jump: self.jump.clone(),
            forward_agent: self.forward_agent,
        };
        let resolved = resolve(&args, ctx).map_err(|e| match e {
            ResolveError::Config(e) => CliError::Config(e.to_string()),
            ResolveError::Usage(e) => CliError::Usage(e),
        })?;
        let mut ssh = resolved.ssh;
        if let Some(separate) = separate_data_connections {
            ssh.separate_data_connections = separate;
        }
        // Command-line forwards first, then the configuration's, as ssh adds them.
        let mut forwards = local;
        forwards.extend(resolved.local_forwards);
        let mut remote_forwards = remote;
        remote_forwards.extend(resolved.remote_forwards);
        if forwards.is_empty() && remote_forwards.is_empty() {
            return Err(CliError::Usage(
                "nothing to forward: give at least one -L ftp/PORT:HOST:HOSTPORT or -R ftp/PORT:HOST:HOSTPORT"
                    .to_owned(),
            ));
        }
        if self.gateway {
            for spec in &mut forwards {
                if spec.bind_address.is_none() {
                    spec.bind_address = Some(GATEWAY_BIND.to_owned());
                }
            }
        }
        Ok(TunnelConfig {
            ssh,
            forwards,
            remote_forwards,
            ftp,
            admin,
        })
    }
}

/// Where `-g` makes `-L` listeners bind when their spec names no address.
const GATEWAY_BIND: &str = "0.0.0.0";

fn parse_specs(specs: &[String]) -> Result<Vec<ForwardSpec>, CliError> {
    specs
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e: crate::spec::SpecError| CliError::Usage(e.to_string()))
        })
        .collect()
}

impl From<OwnOptionError> for CliError {
    fn from(e: OwnOptionError) -> Self {
        CliError::BadOption {
            option: e.option,
            reason: e.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ssh::StrictHostKeyChecking;

    fn parse(args: &[&str]) -> Result<TunnelConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("ftp-tunnel").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        // A home without ~/.ssh/config, whatever the machine's.
        let ctx = Context {
            home: PathBuf::from("/nonexistent-home"),
        };
        cli.tunnel_config_in(&ctx).map_err(|e| e.to_string())
    }

    #[test]
    fn openssh_flags_are_accepted() {
        let config = parse(&[
            "-N",
            "-T",
            "-C",
            "-4",
            "-A",
            "-c",
            "aes128-gcm@openssh.com",
            "-m",
            "hmac-sha2-256-etm@openssh.com",
            "-L",
            "ftp/2121:ftp:21",
            "gw",
        ])
        .unwrap();
        let ssh = &config.ssh;
        assert!(ssh.compression);
        assert_eq!(ssh.address_family, AddressFamily::Inet);
        assert_eq!(
            ssh.algorithms.ciphers.as_deref(),
            Some("aes128-gcm@openssh.com")
        );
        assert!(parse(&["-4", "-6", "-L", "ftp/0:h:21", "gw"]).is_err());
        let e = parse(&["-c", "rot13", "-L", "ftp/0:h:21", "gw"]).unwrap_err();
        assert!(e.contains("Ciphers") && e.contains("rot13"), "{e}");
        let e = parse(&["-F", "/nonexistent/config", "-L", "ftp/0:h:21", "gw"]).unwrap_err();
        assert!(e.contains("/nonexistent/config"), "{e}");
        let jumped = parse(&["-J", "admin@bastion:2200", "-L", "ftp/0:h:21", "gw"]).unwrap();
        let jump = jumped.ssh.jump.expect("jump");
        assert_eq!((jump.host.as_str(), jump.port), ("bastion", 2200));
    }

    #[test]
    fn help_lists_every_flag() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "-N", "-T", "-f", "-c", "-m", "-4", "-6", "-C", "-E", "-F", "-J", "-A", "-p", "-l",
            "-i", "-o", "-L", "-R", "--config",
        ] {
            assert!(help.contains(flag), "--help lacks {flag}");
        }
        for option in [
            "ProxyJump",
            "IdentityAgent",
            "PreferredAuthentications",
            "HashKnownHosts",
        ] {
            assert!(help.contains(option), "--help lacks {option}");
        }
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
