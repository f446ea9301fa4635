//! From the command line and `~/.ssh/config` to [`SshOptions`], as `ssh` does it: flags
//! win over `-o` options, which win over the configuration file, where the first value
//! met wins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::spec::ForwardSpec;
use crate::ssh::options::{AddressFamily, AgentSocket, SshOptions, StrictHostKeyChecking};
use crate::ssh_config::{self, Applied, Context, HostConfig, SshConfigError, parse_jump};

/// Longest `ProxyJump` chain followed (a configuration loop ends here).
const MAX_JUMPS: usize = 8;

/// The login-related part of a command line.
#[derive(Debug, Clone, Default)]
pub struct LoginArgs {
    /// `[user@]host` as given.
    pub destination: String,
    /// `-l`.
    pub login: Option<String>,
    /// `-p`.
    pub port: Option<u16>,
    /// `-i`, in order.
    pub identity: Vec<PathBuf>,
    /// `-o` options that are not FTP settings, in order.
    pub options: Vec<String>,
    /// `-c`.
    pub ciphers: Option<String>,
    /// `-m`.
    pub macs: Option<String>,
    /// `-4` / `-6`.
    pub family: Option<AddressFamily>,
    /// `-C`.
    pub compression: bool,
    /// `-F` (`none` = no file).
    pub ssh_config: Option<PathBuf>,
    /// `-J`.
    pub jump: Option<String>,
    /// `-A`.
    pub forward_agent: bool,
}

/// Options for the connection, and the forwards the configuration adds.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// How to reach and log in to the SSH server.
    pub ssh: SshOptions,
    /// `LocalForward` lines that applied.
    pub local_forwards: Vec<ForwardSpec>,
    /// `RemoteForward` lines that applied.
    pub remote_forwards: Vec<ForwardSpec>,
}

/// Why the login settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] SshConfigError),
    /// A `-o` option or a flag.
    #[error("{0}")]
    Usage(String),
}

/// Resolves the destination with the command line and the configuration file.
pub fn resolve(args: &LoginArgs, ctx: &Context) -> Result<Resolved, ResolveError> {
    let (user_at, alias) = split_destination(&args.destination)?;
    let mut hc = HostConfig::default();
    for option in &args.options {
        if ssh_config::read_option(option, &alias, &mut hc).map_err(ResolveError::Usage)?
            == Applied::Unknown
        {
            return Err(ResolveError::Usage(format!(
                "-o {option}: unknown option (see --help for the list)"
            )));
        }
    }
    read_config(args, &alias, &mut hc, ctx)?;
    let family = args.family.or(hc.address_family).unwrap_or_default();
    let jump_spec = args.jump.clone().or(hc.proxy_jump.clone());
    // -l wins over user@host, as before.
    let mut ssh = to_options(&hc, &alias, args.login.clone().or(user_at), args, ctx)?;
    ssh.address_family = family;
    if let Some(c) = &args.ciphers {
        ssh.algorithms.ciphers = Some(c.clone());
    }
    if let Some(m) = &args.macs {
        ssh.algorithms.macs = Some(m.clone());
    }
    ssh.algorithms
        .validate()
        .map_err(|e| ResolveError::Usage(e.to_string()))?;
    ssh.compression |= args.compression;
    if args.forward_agent || hc.forward_agent == Some(true) {
        tracing::debug!(
            "agent forwarding needs a session channel, which ftp-tunnel never opens (as ssh -N)"
        );
    }
    ssh.jump = jump_chain(jump_spec.as_deref(), args, ctx, 0)?;
    Ok(Resolved {
        ssh,
        local_forwards: hc.local_forwards,
        remote_forwards: hc.remote_forwards,
    })
}

fn read_config(
    args: &LoginArgs,
    alias: &str,
    hc: &mut HostConfig,
    ctx: &Context,
) -> Result<(), ResolveError> {
    match &args.ssh_config {
        Some(p) if p.as_os_str() == "none" => {}
        Some(p) => ssh_config::read_file(p, alias, hc, ctx, true)?,
        None => ssh_config::read_file(&ctx.ssh_dir().join("config"), alias, hc, ctx, false)?,
    }
    Ok(())
}

/// `ProxyJump a,b` reaches b through a: the returned hop is b, whose own jump is a.
fn jump_chain(
    spec: Option<&str>,
    args: &LoginArgs,
    ctx: &Context,
    depth: usize,
) -> Result<Option<Box<SshOptions>>, ResolveError> {
    let Some(spec) = spec.filter(|s| !s.eq_ignore_ascii_case("none")) else {
        return Ok(None);
    };
    if depth >= MAX_JUMPS {
        return Err(ResolveError::Usage(format!(
            "ProxyJump: more than {MAX_JUMPS} jump hosts (a loop in the configuration?)"
        )));
    }
    let (before, last) = match spec.rsplit_once(',') {
        Some((b, l)) => (Some(b), l),
        None => (None, spec),
    };
    let hop = parse_jump(last).map_err(ResolveError::Usage)?;
    let mut hc = HostConfig::default();
    if let Some(port) = hop.port {
        hc.port = Some(port);
    }
    read_config(args, &hop.host, &mut hc, ctx)?;
    let hop_args = LoginArgs {
        destination: hop.host.clone(),
        ..LoginArgs::default()
    };
    let mut opts = to_options(&hc, &hop.host, hop.user.clone(), &hop_args, ctx)?;
    opts.address_family = args.family.or(hc.address_family).unwrap_or_default();
    // The earlier hops of this list, or else the hop's own ProxyJump.
    let next = match before {
        Some(b) => Some(b.to_owned()),
        None => hc.proxy_jump.clone(),
    };
    opts.jump = jump_chain(next.as_deref(), args, ctx, depth + 1)?;
    Ok(Some(Box::new(opts)))
}

fn split_destination(destination: &str) -> Result<(Option<String>, String), ResolveError> {
    let destination = destination.strip_prefix("ssh://").unwrap_or(destination);
    let (user, host) = match destination.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_owned()), host),
        None => (None, destination),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(ResolveError::Usage("empty SSH host".to_owned()));
    }
    Ok((user, host.to_owned()))
}

/// What `%` tokens stand for (OpenSSH's TOKENS section, the subset that makes sense here).
struct Tokens<'a> {
    alias: &'a str,
    host: &'a str,
    port: u16,
    remote_user: &'a str,
    local_user: &'a str,
    home: &'a Path,
}

impl Tokens<'_> {
    fn expand(&self, text: &str) -> Result<String, ResolveError> {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('h') => out.push_str(self.host),
                Some('n') => out.push_str(self.alias),
                Some('p') => out.push_str(&self.port.to_string()),
                Some('r') => out.push_str(self.remote_user),
                Some('u') => out.push_str(self.local_user),
                Some('d') => out.push_str(&self.home.display().to_string()),
                other => {
                    return Err(ResolveError::Usage(format!(
                        "unknown %-token %{} in {text:?}",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            }
        }
        Ok(out)
    }

    fn path(&self, text: &str, ctx: &Context) -> Result<PathBuf, ResolveError> {
        Ok(ctx.expand_tilde(&self.expand(text)?))
    }
}

fn to_options(
    hc: &HostConfig,
    alias: &str,
    user: Option<String>,
    args: &LoginArgs,
    ctx: &Context,
) -> Result<SshOptions, ResolveError> {
    let local_user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
    let host = match &hc.host_name {
        Some(h) => h.replace("%h", alias).replace("%%", "%"),
        None => alias.to_owned(),
    };
    let user = user
        .or(hc.user.clone())
        .unwrap_or_else(|| local_user.clone());
    let port = args.port.or(hc.port).unwrap_or(22);
    let tokens = Tokens {
        alias,
        host: &host,
        port,
        remote_user: &user,
        local_user: &local_user,
        home: &ctx.home,
    };
    let mut ssh = SshOptions::new(host.clone(), port, user.clone());
    ssh.identity_files = args.identity.clone();
    for f in &hc.identity_files {
        ssh.identity_files.push(tokens.path(f, ctx)?);
    }
    if let Some(k) = &hc.user_known_hosts_file {
        ssh.known_hosts = tokens.path(k, ctx)?;
    }
    if let Some(s) = hc.strict_host_key_checking {
        ssh.strict_host_key_checking = s;
    }
    if let Some(t) = hc.connect_timeout.filter(|t| *t > 0) {
        ssh.connect_timeout = Duration::from_secs(t);
    }
    ssh.algorithms = hc.algorithms.clone();
    ssh.compression = hc.compression.unwrap_or(false);
    ssh.hash_known_hosts = hc.hash_known_hosts.unwrap_or(false);
    // An interval of 0 turns keepalives off, as in OpenSSH.
    if hc.server_alive_interval.is_some() || hc.server_alive_count_max.is_some() {
        let interval = hc.server_alive_interval.unwrap_or(15);
        let count = hc.server_alive_count_max.unwrap_or(3).max(1) as usize;
        ssh.server_alive = Some((Duration::from_secs(interval), count));
    }
    let auth = &mut ssh.auth;
    auth.agent = match hc.identity_agent.as_deref() {
        None | Some("SSH_AUTH_SOCK") => AgentSocket::FromEnv,
        Some(a) if a.eq_ignore_ascii_case("none") => AgentSocket::Disabled,
        Some(a) if a.starts_with('$') => match std::env::var(&a[1..]) {
            Ok(p) => AgentSocket::Path(PathBuf::from(p)),
            Err(_) => AgentSocket::Disabled,
        },
        Some(a) => AgentSocket::Path(tokens.path(a, ctx)?),
    };
    auth.identities_only = hc.identities_only.unwrap_or(false);
    if let Some(p) = &hc.preferred_authentications {
        auth.preferred = p.clone();
    }
    if let Some(n) = hc.number_of_password_prompts {
        auth.password_prompts = n;
    }
    auth.batch_mode = hc.batch_mode.unwrap_or(false);
    auth.pubkey = hc.pubkey_authentication.unwrap_or(true);
    auth.password = hc.password_authentication.unwrap_or(true);
    auth.kbd_interactive = hc.kbd_interactive_authentication.unwrap_or(true);
    if matches!(ssh.strict_host_key_checking, StrictHostKeyChecking::Ask) && auth.batch_mode {
        // BatchMode never asks: an unknown key is refused, as with `yes`.
        ssh.strict_host_key_checking = StrictHostKeyChecking::Yes;
    }
    Ok(ssh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(config: &str) -> (tempfile::TempDir, Context, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cfg");
        std::fs::write(&file, config).unwrap();
        let ctx = Context {
            home: dir.path().to_path_buf(),
        };
        (dir, ctx, file)
    }

    #[test]
    fn alias_flags_and_options_precedence() {
        let (_d, ctx, file) = setup(
            "Host gw\n HostName 192.0.2.1\n User cfguser\n Port 2200\n IdentityFile ~/.ssh/id_%r_%h\n\
             LocalForward ftp/2121 ftp:21\n Ciphers aes128-ctr\n ProxyJump jumper\n\
             Host jumper\n HostName 192.0.2.2\n User jumpuser\n",
        );
        let args = LoginArgs {
            destination: "gw".into(),
            options: vec!["User=optuser".into()],
            ssh_config: Some(file),
            ciphers: Some("aes256-ctr".into()),
            ..LoginArgs::default()
        };
        let r = resolve(&args, &ctx).unwrap();
        assert_eq!(r.ssh.host, "192.0.2.1");
        assert_eq!(r.ssh.user, "optuser");
        assert_eq!(r.ssh.port, 2200);
        assert_eq!(
            r.ssh.identity_files,
            [ctx.home.join(".ssh/id_optuser_192.0.2.1")]
        );
        assert_eq!(r.ssh.algorithms.ciphers.as_deref(), Some("aes256-ctr"));
        assert_eq!(r.local_forwards.len(), 1);
        let jump = r.ssh.jump.expect("jump host");
        assert_eq!(
            (jump.host.as_str(), jump.user.as_str()),
            ("192.0.2.2", "jumpuser")
        );
        assert!(jump.jump.is_none());
    }

    #[test]
    fn jump_lists_and_loops() {
        let (_d, ctx, file) = setup("Host loop\n ProxyJump loop\n");
        let args = LoginArgs {
            destination: "u@t".into(),
            jump: Some("a@one:2201,two".into()),
            ssh_config: Some(file.clone()),
            ..LoginArgs::default()
        };
        let r = resolve(&args, &ctx).unwrap();
        let two = r.ssh.jump.unwrap();
        assert_eq!(two.host, "two");
        let one = two.jump.unwrap();
        assert_eq!(
            (one.host.as_str(), one.port, one.user.as_str()),
            ("one", 2201, "a")
        );
        let args = LoginArgs {
            destination: "loop".into(),
            ssh_config: Some(file),
            ..LoginArgs::default()
        };
        let e = resolve(&args, &ctx).unwrap_err().to_string();
        assert!(e.contains("more than"), "{e}");
    }

    #[test]
    fn bad_options_are_usage_errors() {
        let (_d, ctx, _f) = setup("");
        let with = |o: &str| LoginArgs {
            destination: "h".into(),
            options: vec![o.into()],
            ssh_config: Some("none".into()),
            ..LoginArgs::default()
        };
        assert!(
            resolve(&with("Bogus=1"), &ctx)
                .unwrap_err()
                .to_string()
                .contains("unknown option")
        );
        assert!(
            resolve(&with("Port=x"), &ctx)
                .unwrap_err()
                .to_string()
                .contains("-o Port=x")
        );
        assert!(resolve(&with("IdentityFile=%z"), &ctx).is_err());
    }
}
