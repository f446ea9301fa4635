//! `~/.ssh/config` (or `-F FILE`) read with OpenSSH's rules: the first value wins; `Host`
//! patterns with `*`, `?` and `!`; `Include` with globs, relative to `~/.ssh`; `Match` is
//! refused; values are checked on every line, wherever the block applies or not.
//!
//! Why not a crate: the maintained parser (`ssh2-config`) reports errors without the file
//! and line, which is what an admin needs to fix a configuration, and the rules above are
//! small.

pub mod keywords;

use std::path::{Path, PathBuf};

pub use keywords::{Applied, HostConfig, JumpHost, apply, parse_jump};

use crate::ssh::known_hosts::{glob_matches, pattern_list_matches};

/// OpenSSH's limit on nested `Include`s.
const MAX_INCLUDE_DEPTH: usize = 16;

/// A configuration that cannot be used, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshConfigError {
    /// A line with a bad value, an unsupported construct or bad syntax.
    #[error("{file} line {line}: {message}")]
    Line {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read {file}: {reason}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        reason: String,
    },
}

/// Where relative `Include`s resolve and what `~` means.
#[derive(Debug, Clone)]
pub struct Context {
    /// The user's home directory.
    pub home: PathBuf,
}

impl Context {
    /// `$HOME` (or the password database's idea of it).
    pub fn from_env() -> Self {
        Self {
            home: std::env::home_dir().unwrap_or_default(),
        }
    }

    /// `~/.ssh`.
    pub fn ssh_dir(&self) -> PathBuf {
        self.home.join(".ssh")
    }

    /// `~/` and `~` expanded.
    pub fn expand_tilde(&self, path: &str) -> PathBuf {
        if path == "~" {
            self.home.clone()
        } else if let Some(rest) = path.strip_prefix("~/") {
            self.home.join(rest)
        } else {
            PathBuf::from(path)
        }
    }
}

/// Reads `file` for destination `host` into `cfg` (values already set stay: first wins).
/// A missing file is an error only when `required` (`-F`).
pub fn read_file(
    file: &Path,
    host: &str,
    cfg: &mut HostConfig,
    ctx: &Context,
    required: bool,
) -> Result<(), SshConfigError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(SshConfigError::Read {
                file: file.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    read_text(&text, &file.display().to_string(), host, cfg, ctx, true, 0)
}

/// Applies one `-o` option line (origin `command line`), before any file, so it wins.
pub fn read_option(option: &str, host: &str, cfg: &mut HostConfig) -> Result<Applied, String> {
    let (keyword, args) = split_line(option)
        .map_err(|e| format!("-o {option}: {e}"))?
        .ok_or_else(|| format!("-o {option}: empty option"))?;
    apply(cfg, &keyword, &args, true)
        .map_err(|e| format!("-o {option}: {e}"))
        .inspect(|_| tracing::trace!(%host, option, "command-line option"))
}

fn read_text(
    text: &str,
    name: &str,
    host: &str,
    cfg: &mut HostConfig,
    ctx: &Context,
    enclosing_active: bool,
    depth: usize,
) -> Result<(), SshConfigError> {
    // Lines before the first Host apply to every host (when the Include itself applies).
    let mut active = enclosing_active;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let err = |message: String| SshConfigError::Line {
            file: name.to_owned(),
            line: line_no,
            message,
        };
        let Some((keyword, args)) = split_line(raw).map_err(err)? else {
            continue;
        };
        match keyword.as_str() {
            "host" => {
                if args.is_empty() {
                    return Err(err("Host: missing pattern".to_owned()));
                }
                active = enclosing_active && host_matches(&args, host);
            }
            "match" => {
                return Err(err(
                    "Match is not supported by ftp-tunnel; use Host blocks instead".to_owned(),
                ));
            }
            "include" => {
                if depth + 1 > MAX_INCLUDE_DEPTH {
                    return Err(err(format!(
                        "Include nested too deeply (more than {MAX_INCLUDE_DEPTH} levels)"
                    )));
                }
                if args.is_empty() {
                    return Err(err("Include: missing file name".to_owned()));
                }
                for pattern in &args {
                    let pattern = if pattern.starts_with('/') || pattern.starts_with('~') {
                        ctx.expand_tilde(pattern)
                    } else {
                        ctx.ssh_dir().join(pattern)
                    };
                    for path in expand_glob(&pattern) {
                        let included = std::fs::read_to_string(&path)
                            .map_err(|e| err(format!("Include {}: {e}", path.display())))?;
                        read_text(
                            &included,
                            &path.display().to_string(),
                            host,
                            cfg,
                            ctx,
                            active,
                            depth + 1,
                        )?;
                    }
                }
            }
            _ => match apply(cfg, &keyword, &args, active).map_err(err)? {
                Applied::Known => {}
                Applied::Unknown => {
                    tracing::debug!(
                        "{name} line {line_no}: {keyword} is not used by ftp-tunnel; skipped"
                    )
                }
            },
        }
    }
    Ok(())
}

/// OpenSSH's `Host` rule: a negated pattern that matches rules the block out; otherwise any
/// positive pattern that matches rules it in.
pub fn host_matches(patterns: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    pattern_list_matches(patterns.iter().flat_map(|p| p.split(',')), &host)
}

/// Splits a line into its lower-case keyword and arguments, OpenSSH style: `Keyword value`
/// or `Keyword=value`, double or single quotes group words, `#` starts a comment outside
/// quotes. `None` for blank and comment lines.
fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => current.extend(chars.next()),
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, '\\') => {
                current.extend(chars.next());
                in_word = true;
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_owned());
    }
    if in_word {
        args.push(current);
    }
    Ok(Some((keyword, args)))
}

/// Expands `*` and `?` in any component of an absolute path, sorted as glob(3) sorts; a
/// path without wildcards is returned if it exists (a missing Include is not an error).
fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        let wild = text.contains(['*', '?']);
        let mut next = Vec::new();
        for base in &found {
            if !wild {
                next.push(base.join(component.as_os_str()));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') || text.starts_with('.'))
                .filter(|n| glob_matches(text.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        found = next;
    }
    found.into_iter().filter(|p| p.is_file()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &Path) -> Context {
        Context {
            home: dir.to_path_buf(),
        }
    }

    fn read(text: &str, host: &str, dir: &Path) -> Result<HostConfig, SshConfigError> {
        let file = dir.join("config");
        std::fs::write(&file, text).unwrap();
        let mut cfg = HostConfig::default();
        read_file(&file, host, &mut cfg, &ctx(dir), true)?;
        Ok(cfg)
    }

    #[test]
    fn host_blocks_patterns_and_first_value() {
        let dir = tempfile::tempdir().unwrap();
        let text = "# top\nUser everyone\n\nHost gw gw.example.net\n  HostName 192.0.2.7\n  Port=2222\n\
                    Host *.example.net !bad.example.net\n  User web\n  Port 2200\n\
                    Host gw?\n  User numbered\nHost *\n  Port 22\n  IdentityFile \"~/.ssh/my key\"\n";
        let gw = read(text, "gw", dir.path()).unwrap();
        assert_eq!(gw.host_name.as_deref(), Some("192.0.2.7"));
        assert_eq!(gw.port, Some(2222));
        assert_eq!(gw.user.as_deref(), Some("everyone"));
        assert_eq!(gw.identity_files, ["~/.ssh/my key"]);
        let web = read(text, "a.example.net", dir.path()).unwrap();
        assert_eq!(web.port, Some(2200));
        let bad = read(text, "bad.example.net", dir.path()).unwrap();
        assert_eq!(bad.port, Some(22));
        let gw1 = read(text, "GW1", dir.path()).unwrap();
        assert_eq!(gw1.host_name, None);
        assert_eq!(gw1.port, Some(22));
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let e = read("Host a\n  Port nope\n", "x", dir.path()).unwrap_err();
        let file = dir.path().join("config").display().to_string();
        assert_eq!(
            e.to_string(),
            format!("{file} line 2: expected a port number, got \"nope\"")
        );
        let e = read("\nMatch host x\n", "x", dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains(" line 2: Match is not supported"), "{e}");
        let e = read("User \"open\n", "x", dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: unterminated quote"), "{e}");
        let mut cfg = HostConfig::default();
        let e = read_file(
            &dir.path().join("nope"),
            "x",
            &mut cfg,
            &ctx(dir.path()),
            true,
        );
        assert!(matches!(e, Err(SshConfigError::Read { .. })));
        assert!(
            read_file(
                &dir.path().join("nope"),
                "x",
                &mut cfg,
                &ctx(dir.path()),
                false
            )
            .is_ok()
        );
        // Unknown keywords are skipped.
        assert!(read("ControlMaster auto\nSendEnv LANG LC_*\n", "x", dir.path()).is_ok());
    }

    #[test]
    fn include_globs_relative_to_ssh_dir_and_scoped_to_host() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).unwrap();
        std::fs::write(ssh.join("conf.d/10-a.conf"), "Host a\n  Port 1001\n").unwrap();
        std::fs::write(
            ssh.join("conf.d/20-b.conf"),
            "Host a b\n  Port 1002\n  User b\n",
        )
        .unwrap();
        std::fs::write(ssh.join("conf.d/bad.conf"), "Port x\n").unwrap();
        let cfg = read(
            "Include conf.d/*-?.conf\nHost a\n  Port 9\n",
            "a",
            dir.path(),
        )
        .unwrap();
        assert_eq!((cfg.port, cfg.user.as_deref()), (Some(1001), Some("b")));
        // An Include inside a Host block that does not apply adds nothing.
        let cfg = read("Host zzz\n  Include conf.d/2*\n", "b", dir.path()).unwrap();
        assert_eq!(cfg.port, None);
        let e = read("Include ~/.ssh/conf.d/bad.conf\n", "a", dir.path()).unwrap_err();
        assert!(e.to_string().contains("bad.conf line 1:"), "{e}");
        // A loop ends at the depth limit with a clear error.
        std::fs::write(ssh.join("loop"), "Include loop\n").unwrap();
        let e = read("Include loop\n", "a", dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn split_line_forms() {
        let s = |l: &str| split_line(l).unwrap();
        assert_eq!(s("   # c"), None);
        assert_eq!(s("Port=22"), Some(("port".into(), vec!["22".into()])));
        assert_eq!(s("Port = 22 # x"), Some(("port".into(), vec!["22".into()])));
        assert_eq!(
            s("LocalForward ftp/2121 'ftp host:21'"),
            Some((
                "localforward".into(),
                vec!["ftp/2121".into(), "ftp host:21".into()]
            ))
        );
    }
}
