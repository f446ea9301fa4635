//! known_hosts with OpenSSH semantics.
//!
//! russh's own `keys::known_hosts` helpers were not enough: they split on single spaces only
//! (tabs or double spaces hide an entry), a comment line shifts every later line number in
//! the "changed" error, one malformed key aborts the whole check, and patterns with `*`, `?`
//! or `!` negation and the `@revoked` / `@cert-authority` markers are not understood. This
//! module is a small reimplementation of what `ssh` does with `UserKnownHostsFile`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

/// What known_hosts says about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key is recorded for this host.
    Known,
    /// No key of this type is recorded for this host.
    Unknown,
    /// Another key of the same type is recorded (1-based line of the first one).
    Changed {
        /// Line of the offending entry.
        line: usize,
    },
    /// The key is marked `@revoked` (1-based line).
    Revoked {
        /// Line of the `@revoked` entry.
        line: usize,
    },
}

/// The name known_hosts uses for a host: `host`, or `[host]:port` when the port is not 22.
pub fn host_port_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// Key type and SHA256 fingerprint, e.g. `ssh-ed25519 SHA256:abc…`, as users compare them.
pub fn fingerprint(key: &PublicKey) -> String {
    format!(
        "{} {}",
        key.algorithm().as_str(),
        key.fingerprint(HashAlg::Sha256)
    )
}

struct Entry {
    line: usize,
    revoked: bool,
    key: PublicKey,
}

/// All entries (plain and `@revoked`; `@cert-authority` is skipped) naming this host.
fn entries_for(path: &Path, name: &str) -> io::Result<Vec<Entry>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (idx, line) in BufReader::new(file).lines().enumerate() {
        // A non-UTF-8 line cannot name our host; OpenSSH would skip it too.
        let Ok(line) = line else { continue };
        if let Some(entry) = parse_line(&line, idx + 1, name) {
            out.push(entry);
        }
    }
    Ok(out)
}

fn parse_line(line: &str, line_no: usize, name: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if let Some(marker) = first.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            // Certificates are not used; a CA line must not count as the host's own key.
            _ => return None,
        }
        first = fields.next()?;
    }
    if !host_field_matches(first, name) {
        return None;
    }
    let key_type = fields.next()?;
    let key_b64 = fields.next()?;
    match PublicKey::from_openssh(&format!("{key_type} {key_b64}")) {
        Ok(key) => Some(Entry {
            line: line_no,
            revoked,
            key,
        }),
        Err(e) => {
            tracing::debug!(line = line_no, error = %e, "skipping unparsable known_hosts key");
            None
        }
    }
}

/// OpenSSH's `match_hostname` on a comma-separated pattern list, or a `|1|salt|hash` entry.
fn host_field_matches(field: &str, name: &str) -> bool {
    if let Some(rest) = field.strip_prefix("|1|") {
        return hashed_matches(rest, name);
    }
    pattern_list_matches(field.split(','), name)
}

/// OpenSSH's pattern-list rule (known_hosts host fields, ssh_config `Host`): a negated
/// pattern (`!pat`) that matches rules `name` out; otherwise any positive pattern that
/// matches rules it in. Patterns are compared in lower case; `name` is taken as given.
pub(crate) fn pattern_list_matches<'a>(
    patterns: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> bool {
    let mut matched = false;
    for pattern in patterns {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob_matches(pattern.to_ascii_lowercase().as_bytes(), name.as_bytes()) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

fn hashed_matches(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// `*` and `?` wildcards, iteratively (no recursion depth to exhaust on hostile patterns).
pub(crate) fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Looks the key up for `host`/`port`; a missing file is an empty one.
pub fn check(path: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<HostKeyStatus> {
    let name = host_port_name(host, port);
    let entries = entries_for(path, &name)?;
    if let Some(e) = entries
        .iter()
        .find(|e| e.revoked && e.key.key_data() == key.key_data())
    {
        return Ok(HostKeyStatus::Revoked { line: e.line });
    }
    let plain = entries.iter().filter(|e| !e.revoked);
    let mut changed = None;
    for e in plain {
        if e.key.key_data() == key.key_data() {
            return Ok(HostKeyStatus::Known);
        }
        if changed.is_none() && same_type(&e.key.algorithm(), &key.algorithm()) {
            changed = Some(e.line);
        }
    }
    Ok(match changed {
        Some(line) => HostKeyStatus::Changed { line },
        None => HostKeyStatus::Unknown,
    })
}

fn same_type(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        _ => a == b,
    }
}

/// Key algorithms recorded for this host, so they can be preferred in the key exchange
/// (OpenSSH does the same: otherwise a server with several host keys may present one we
/// do not know and look "unknown").
pub fn known_algorithms(path: &Path, host: &str, port: u16) -> Vec<Algorithm> {
    let name = host_port_name(host, port);
    let mut algs: Vec<Algorithm> = Vec::new();
    for e in entries_for(path, &name).unwrap_or_default() {
        let alg = e.key.algorithm();
        if !e.revoked && !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    algs
}

/// Appends `host key` like OpenSSH does on first contact; with `hash`, the name is
/// written as `|1|salt|HMAC-SHA1(salt, name)` (`HashKnownHosts yes`).
pub fn append(path: &Path, host: &str, port: u16, key: &PublicKey, hash: bool) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut needs_newline = false;
    if file.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        needs_newline = last[0] != b'\n';
    }
    let key_text = key
        .to_openssh()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    // The server's key carries no meaningful comment; keep only "type base64".
    let key_text = key_text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let mut line = String::new();
    if needs_newline {
        line.push('\n');
    }
    let name = host_port_name(host, port);
    if hash {
        line.push_str(&hashed_name(&name, &rand_salt()?));
    } else {
        line.push_str(&name);
    }
    line.push(' ');
    line.push_str(&key_text);
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.flush()
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, OpenSSH's hashed host name.
pub fn hashed_name(name: &str, salt: &[u8; 20]) -> String {
    let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt)
        .map(|m| {
            m.chain_update(name.as_bytes())
                .finalize()
                .into_bytes()
                .to_vec()
        })
        .unwrap_or_default();
    format!("|1|{}|{}", BASE64.encode(salt), BASE64.encode(&mac))
}

/// 20 random bytes from the kernel (SHA-1's block of salt, as OpenSSH uses).
fn rand_salt() -> io::Result<[u8; 20]> {
    let mut salt = [0u8; 20];
    File::open("/dev/urandom")?.read_exact(&mut salt)?;
    Ok(salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const K2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";
    // From russh's tests: the hashed name is example.com.
    const HASHED: &str = "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).expect("test key")
    }

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        f.write_all(content.as_bytes()).expect("write");
        f
    }

    #[test]
    fn plain_port_and_hashed_entries() {
        let f = file(&format!(
            "# comment\n\n[localhost]:2222\t{K1}\npijul.org,37.120.161.53  {K2} comment here\n{HASHED}\n"
        ));
        let p = f.path();
        assert_eq!(
            check(p, "localhost", 2222, &key(K1)).unwrap(),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(p, "LOCALHOST", 2222, &key(K1)).unwrap(),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(p, "localhost", 22, &key(K1)).unwrap(),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(p, "37.120.161.53", 22, &key(K2)).unwrap(),
            HostKeyStatus::Known
        );
        let hashed_key = key(HASHED.split_once(' ').unwrap().1);
        assert_eq!(
            check(p, "example.com", 22, &hashed_key).unwrap(),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(p, "example.com", 22, &key(K1)).unwrap(),
            HostKeyStatus::Changed { line: 5 }
        );
        // Line numbers count comment and blank lines, as editors do.
        assert_eq!(
            check(p, "localhost", 2222, &key(K2)).unwrap(),
            HostKeyStatus::Changed { line: 3 }
        );
    }

    #[test]
    fn patterns_negation_revoked_and_garbage() {
        let f = file(&format!(
            "garbage\n*.example.org,!bad.example.org {K1}\nhost?.lan ssh-ed25519 notbase64\n@revoked * {K2}\n@cert-authority * {K1}\n"
        ));
        let p = f.path();
        assert_eq!(
            check(p, "a.example.org", 22, &key(K1)).unwrap(),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(p, "bad.example.org", 22, &key(K1)).unwrap(),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(p, "x", 22, &key(K2)).unwrap(),
            HostKeyStatus::Revoked { line: 4 }
        );
        assert_eq!(
            check(p, "host1.lan", 22, &key(K1)).unwrap(),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn append_then_known_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("known_hosts");
        assert_eq!(
            check(&p, "h", 2200, &key(K1)).unwrap(),
            HostKeyStatus::Unknown
        );
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "other ssh-ed25519 AAAA").unwrap(); // no trailing newline
        append(&p, "h", 2200, &key(K1), false).unwrap();
        assert_eq!(
            check(&p, "h", 2200, &key(K1)).unwrap(),
            HostKeyStatus::Known
        );
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.ends_with(&format!("\n[h]:2200 {K1}\n")), "{text}");
        assert_eq!(known_algorithms(&p, "h", 2200), vec![Algorithm::Ed25519]);
    }

    #[test]
    fn hashed_append_matches_and_hides_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("known_hosts");
        append(&p, "gw.example.net", 2222, &key(K1), true).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("|1|") && !text.contains("gw.example"),
            "{text}"
        );
        assert_eq!(
            check(&p, "gw.example.net", 2222, &key(K1)).unwrap(),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&p, "gw.example.net", 22, &key(K1)).unwrap(),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn glob() {
        assert!(glob_matches(b"*", b"anything"));
        assert!(glob_matches(b"a*c", b"abbbc"));
        assert!(glob_matches(b"[h]:2?", b"[h]:22"));
        assert!(!glob_matches(b"a*c", b"abbb"));
        assert!(glob_matches(b"**a", b"a"));
        assert!(!glob_matches(b"", b"a"));
    }
}
