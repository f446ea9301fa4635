//! The `ssh_config` keywords ftp-tunnel understands, their values, and OpenSSH's
//! "first value wins" rule.

use crate::spec::ForwardSpec;
use crate::ssh::StrictHostKeyChecking;
use crate::ssh::algorithms::Algorithms;
use crate::ssh::options::AddressFamily;

/// The settings for one destination, gathered from `-o` options and configuration files.
/// `None` / empty = not set (yet): the first value met wins, as in OpenSSH.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// `HostName` (may contain `%h`).
    pub host_name: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `IdentityFile`, cumulative, as written (`~` and `%` tokens expanded later).
    pub identity_files: Vec<String>,
    /// `IdentitiesOnly`.
    pub identities_only: Option<bool>,
    /// `IdentityAgent` as written (`none`, `SSH_AUTH_SOCK`, `$VAR` or a path).
    pub identity_agent: Option<String>,
    /// `ProxyJump` as written (`none` or `[user@]host[:port],...`).
    pub proxy_jump: Option<String>,
    /// `ServerAliveInterval` in seconds (0 = off).
    pub server_alive_interval: Option<u64>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<u32>,
    /// `ConnectTimeout` in seconds.
    pub connect_timeout: Option<u64>,
    /// `Ciphers`, `MACs`, `KexAlgorithms`, `HostKeyAlgorithms`.
    pub algorithms: Algorithms,
    /// `UserKnownHostsFile` (the first file; OpenSSH's further files are ignored).
    pub user_known_hosts_file: Option<String>,
    /// `StrictHostKeyChecking`.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// `HashKnownHosts`.
    pub hash_known_hosts: Option<bool>,
    /// `LocalForward`, cumulative.
    pub local_forwards: Vec<ForwardSpec>,
    /// `RemoteForward`, cumulative.
    pub remote_forwards: Vec<ForwardSpec>,
    /// `ForwardAgent`.
    pub forward_agent: Option<bool>,
    /// `Compression`.
    pub compression: Option<bool>,
    /// `PreferredAuthentications`.
    pub preferred_authentications: Option<Vec<String>>,
    /// `NumberOfPasswordPrompts`.
    pub number_of_password_prompts: Option<u32>,
    /// `BatchMode`: never ask anything.
    pub batch_mode: Option<bool>,
    /// `AddressFamily`.
    pub address_family: Option<AddressFamily>,
    /// `PubkeyAuthentication`.
    pub pubkey_authentication: Option<bool>,
    /// `PasswordAuthentication`.
    pub password_authentication: Option<bool>,
    /// `KbdInteractiveAuthentication` (and its old name `ChallengeResponseAuthentication`).
    pub kbd_interactive_authentication: Option<bool>,
}

/// Whether a keyword was one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Understood (and stored if the block applies and nothing was set before).
    Known,
    /// Not a keyword ftp-tunnel implements.
    Unknown,
}

/// Authentication methods `PreferredAuthentications` may name.
pub const AUTH_METHODS: &[&str] = &["publickey", "keyboard-interactive", "password"];

fn set<T>(slot: &mut Option<T>, value: T, active: bool) {
    if active && slot.is_none() {
        *slot = Some(value);
    }
}

fn yes_no(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("expected yes or no, got {value:?}")),
    }
}

fn number<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("expected {what}, got {value:?}"))
}

/// Parses one keyword's arguments (`keyword` lower-case) and stores them in `cfg` when
/// `active` and not set before. Values are checked even in blocks that do not apply, as
/// OpenSSH does, so that a typo is reported wherever it is.
pub fn apply(
    cfg: &mut HostConfig,
    keyword: &str,
    args: &[String],
    active: bool,
) -> Result<Applied, String> {
    let single = || -> Result<&str, String> {
        match args {
            [one] => Ok(one.as_str()),
            [] => Err(format!("{keyword}: missing argument")),
            _ => Err(format!(
                "{keyword}: expected one argument, got {}",
                args.len()
            )),
        }
    };
    match keyword {
        "hostname" => set(&mut cfg.host_name, single()?.to_owned(), active),
        "user" => set(&mut cfg.user, single()?.to_owned(), active),
        "port" => {
            let port: u16 = number(single()?, "a port number")?;
            if port == 0 {
                return Err("Port: 0 is not a port".to_owned());
            }
            set(&mut cfg.port, port, active)
        }
        "identityfile" => {
            let file = single()?;
            if active {
                cfg.identity_files.push(file.to_owned());
            }
        }
        "identitiesonly" => set(&mut cfg.identities_only, yes_no(single()?)?, active),
        "identityagent" => set(&mut cfg.identity_agent, single()?.to_owned(), active),
        "proxyjump" => {
            let value = single()?;
            if !value.eq_ignore_ascii_case("none") {
                for hop in value.split(',') {
                    parse_jump(hop)?;
                }
            }
            set(&mut cfg.proxy_jump, value.to_owned(), active)
        }
        "serveraliveinterval" => set(
            &mut cfg.server_alive_interval,
            number(single()?, "seconds")?,
            active,
        ),
        "serveralivecountmax" => set(
            &mut cfg.server_alive_count_max,
            number(single()?, "a count")?,
            active,
        ),
        "connecttimeout" => {
            let value = single()?;
            let seconds = if value.eq_ignore_ascii_case("none") {
                0
            } else {
                number(value, "seconds")?
            };
            set(&mut cfg.connect_timeout, seconds, active)
        }
        "ciphers" | "macs" | "kexalgorithms" | "hostkeyalgorithms" => {
            let value = single()?.to_owned();
            let mut probe = Algorithms::default();
            *algorithm_slot(&mut probe, keyword) = Some(value.clone());
            probe.validate().map_err(|e| e.to_string())?;
            set(algorithm_slot(&mut cfg.algorithms, keyword), value, active);
        }
        "userknownhostsfile" => {
            let first = args
                .first()
                .ok_or_else(|| format!("{keyword}: missing argument"))?;
            set(&mut cfg.user_known_hosts_file, first.clone(), active)
        }
        "stricthostkeychecking" => set(
            &mut cfg.strict_host_key_checking,
            single()?.parse::<StrictHostKeyChecking>()?,
            active,
        ),
        "hashknownhosts" => set(&mut cfg.hash_known_hosts, yes_no(single()?)?, active),
        "localforward" | "remoteforward" => {
            let spec = forward_spec(keyword, args)?;
            if active {
                if keyword == "localforward" {
                    cfg.local_forwards.push(spec);
                } else {
                    cfg.remote_forwards.push(spec);
                }
            }
        }
        "forwardagent" => {
            let value = single()?;
            // OpenSSH also takes a socket path here; only yes/no is implemented.
            set(&mut cfg.forward_agent, yes_no(value)?, active)
        }
        "compression" => set(&mut cfg.compression, yes_no(single()?)?, active),
        "preferredauthentications" => {
            let methods: Vec<String> = single()?
                .split(',')
                .map(|m| m.trim().to_ascii_lowercase())
                .collect();
            for m in &methods {
                if !AUTH_METHODS.contains(&m.as_str()) && m != "gssapi-with-mic" {
                    return Err(format!(
                        "PreferredAuthentications: unknown method {m:?} (known: {})",
                        AUTH_METHODS.join(",")
                    ));
                }
            }
            set(&mut cfg.preferred_authentications, methods, active)
        }
        "numberofpasswordprompts" => set(
            &mut cfg.number_of_password_prompts,
            number(single()?, "a count")?,
            active,
        ),
        "batchmode" => set(&mut cfg.batch_mode, yes_no(single()?)?, active),
        "addressfamily" => {
            let family = match single()?.to_ascii_lowercase().as_str() {
                "any" => AddressFamily::Any,
                "inet" => AddressFamily::Inet,
                "inet6" => AddressFamily::Inet6,
                other => {
                    return Err(format!(
                        "AddressFamily: expected any, inet or inet6, got {other:?}"
                    ));
                }
            };
            set(&mut cfg.address_family, family, active)
        }
        "pubkeyauthentication" => set(&mut cfg.pubkey_authentication, yes_no(single()?)?, active),
        "passwordauthentication" => {
            set(&mut cfg.password_authentication, yes_no(single()?)?, active)
        }
        "kbdinteractiveauthentication" | "challengeresponseauthentication" => set(
            &mut cfg.kbd_interactive_authentication,
            yes_no(single()?)?,
            active,
        ),
        _ => return Ok(Applied::Unknown),
    }
    Ok(Applied::Known)
}

/// The field of `Algorithms` a keyword sets.
fn algorithm_slot<'a>(a: &'a mut Algorithms, keyword: &str) -> &'a mut Option<String> {
    match keyword {
        "ciphers" => &mut a.ciphers,
        "macs" => &mut a.macs,
        "kexalgorithms" => &mut a.kex,
        _ => &mut a.host_keys,
    }
}

/// `LocalForward [bind:]port host:hostport` (two arguments) or our one-argument form; the
/// `ftp/` or `tcp/` prefix goes in front of the first.
fn forward_spec(keyword: &str, args: &[String]) -> Result<ForwardSpec, String> {
    let joined = match args {
        [one] => one.clone(),
        [listen, target] => format!("{listen}:{target}"),
        _ => {
            return Err(format!(
                "{keyword}: expected [ftp/][BIND:]PORT HOST:HOSTPORT"
            ));
        }
    };
    joined.parse::<ForwardSpec>().map_err(|e| e.to_string())
}

/// One ProxyJump hop: `[user@]host[:port]` (or `ssh://[user@]host[:port]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    /// Login name, if given.
    pub user: Option<String>,
    /// Host name or alias (looked up in the configuration like a destination).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
}

/// Parses one ProxyJump hop.
pub fn parse_jump(hop: &str) -> Result<JumpHost, String> {
    let bad = || format!("ProxyJump: bad jump host {hop:?} (expected [user@]host[:port])");
    let rest = hop.trim();
    let rest = rest.strip_prefix("ssh://").unwrap_or(rest);
    let (user, rest) = match rest.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_owned()), r),
        Some(_) => return Err(bad()),
        None => (None, rest),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (h, after) = inner.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        (h, port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(JumpHost {
        user,
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(cfg: &mut HostConfig, line: &str) -> Result<Applied, String> {
        let mut words = line.split_whitespace();
        let kw = words.next().unwrap().to_ascii_lowercase();
        let args: Vec<String> = words.map(str::to_owned).collect();
        apply(cfg, &kw, &args, true)
    }

    #[test]
    fn first_value_wins_and_cumulative_lists() {
        let mut c = HostConfig::default();
        a(&mut c, "Port 2222").unwrap();
        a(&mut c, "Port 22").unwrap();
        a(&mut c, "IdentityFile a").unwrap();
        a(&mut c, "IdentityFile b").unwrap();
        a(&mut c, "LocalForward ftp/2121 ftp:21").unwrap();
        a(&mut c, "LocalForward 127.0.0.1:8080 web:80").unwrap();
        assert_eq!(c.port, Some(2222));
        assert_eq!(c.identity_files, ["a", "b"]);
        assert_eq!(c.local_forwards.len(), 2);
        assert_eq!(c.local_forwards[0].host_port, 21);
        assert_eq!(a(&mut c, "ControlMaster auto"), Ok(Applied::Unknown));
    }

    #[test]
    fn bad_values_are_errors_even_when_inactive() {
        let mut c = HostConfig::default();
        let args = |s: &str| vec![s.to_owned()];
        assert!(apply(&mut c, "port", &args("http"), false).is_err());
        assert!(apply(&mut c, "compression", &args("maybe"), false).is_err());
        assert!(apply(&mut c, "ciphers", &args("rot13"), false).is_err());
        assert!(apply(&mut c, "proxyjump", &args("a@"), false).is_err());
        assert!(apply(&mut c, "port", &args("22"), false).is_ok());
        assert_eq!(c.port, None);
    }

    #[test]
    fn jump_hosts() {
        assert_eq!(
            parse_jump("admin@bastion:2222").unwrap(),
            JumpHost {
                user: Some("admin".into()),
                host: "bastion".into(),
                port: Some(2222)
            }
        );
        assert_eq!(parse_jump("[::1]:22").unwrap().host, "::1");
        assert!(parse_jump("host:port").is_err());
    }
}
