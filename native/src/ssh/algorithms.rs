//! OpenSSH's algorithm lists (`-c`, `-m`, `Ciphers`, `MACs`, `KexAlgorithms`,
//! `HostKeyAlgorithms`) applied to russh's [`Preferred`].
//!
//! The syntax is OpenSSH's: `a,b` replaces the default list, `+a,b` appends to it, `-a,b`
//! removes from it and `^a,b` puts in front of it; `*` and `?` wildcards match names russh
//! supports. The "default" is the tuned list the client would otherwise offer.

use std::borrow::Cow;

use russh::keys::Algorithm;
use russh::{Preferred, cipher, kex, mac};

use super::known_hosts::glob_matches;

/// The user's algorithm lists, as written (validated by [`Algorithms::validate`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Algorithms {
    /// `Ciphers` / `-c`.
    pub ciphers: Option<String>,
    /// `MACs` / `-m`.
    pub macs: Option<String>,
    /// `KexAlgorithms`.
    pub kex: Option<String>,
    /// `HostKeyAlgorithms`.
    pub host_keys: Option<String>,
}

/// A list naming an algorithm russh does not implement, or one that leaves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{keyword}: {reason}")]
pub struct AlgorithmError {
    /// `Ciphers`, `MACs`, …
    pub keyword: &'static str,
    /// What is wrong, with the supported names.
    pub reason: String,
}

impl Algorithms {
    /// Checks every list against what russh supports.
    pub fn validate(&self) -> Result<(), AlgorithmError> {
        self.try_apply(Preferred::DEFAULT).map(|_| ())
    }

    /// `base` with the user's lists applied; lists that do not apply (already refused by
    /// [`validate`](Self::validate)) leave `base` as it is.
    pub fn apply(&self, base: Preferred) -> Preferred {
        match self.try_apply(base.clone()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("{e}; using the default algorithms");
                base
            }
        }
    }

    fn try_apply(&self, base: Preferred) -> Result<Preferred, AlgorithmError> {
        let mut out = base;
        if let Some(spec) = &self.ciphers {
            let all: Vec<cipher::Name> = cipher::ALL_CIPHERS
                .iter()
                .map(|n| **n)
                .filter(|n| *n != cipher::CLEAR && *n != cipher::NONE)
                .collect();
            let list = edit("Ciphers", spec, &out.cipher, &all, |n| n.as_ref())?;
            out.cipher = Cow::Owned(list);
        }
        if let Some(spec) = &self.macs {
            let all: Vec<mac::Name> = mac::ALL_MAC_ALGORITHMS
                .iter()
                .map(|n| **n)
                .filter(|n| *n != mac::NONE)
                .collect();
            let list = edit("MACs", spec, &out.mac, &all, |n| n.as_ref())?;
            out.mac = Cow::Owned(list);
        }
        if let Some(spec) = &self.kex {
            let all: Vec<kex::Name> = kex::ALL_KEX_ALGORITHMS
                .iter()
                .map(|n| **n)
                .filter(|n| *n != kex::NONE)
                .collect();
            // The extension pseudo-algorithms (ext-info-c, strict kex) are not the user's to
            // list; they stay at the end whatever the list says.
            let (extensions, real): (Vec<kex::Name>, Vec<kex::Name>) =
                out.kex.iter().copied().partition(|n| !all.contains(n));
            let mut list = edit("KexAlgorithms", spec, &real, &all, |n| n.as_ref())?;
            list.extend(extensions);
            out.kex = Cow::Owned(list);
        }
        if let Some(spec) = &self.host_keys {
            let mut all: Vec<Algorithm> = Preferred::DEFAULT.key.to_vec();
            all.push(Algorithm::Rsa { hash: None });
            let list = edit("HostKeyAlgorithms", spec, &out.key, &all, |a| a.as_str())?;
            out.key = Cow::Owned(list);
        }
        Ok(out)
    }
}

/// One OpenSSH list edit of `default`, names taken from `all`.
fn edit<T: Clone + PartialEq>(
    keyword: &'static str,
    spec: &str,
    default: &[T],
    all: &[T],
    name: impl Fn(&T) -> &str,
) -> Result<Vec<T>, AlgorithmError> {
    let fail = |reason: String| AlgorithmError { keyword, reason };
    let (op, list) = match spec.as_bytes().first() {
        Some(b'+' | b'-' | b'^') => (spec.as_bytes()[0], &spec[1..]),
        _ => (b'=', spec),
    };
    // Every name or pattern must match something russh supports.
    let mut named: Vec<T> = Vec::new();
    for pattern in list.split(',').map(str::trim) {
        if pattern.is_empty() {
            return Err(fail(format!("empty name in {spec:?}")));
        }
        let lower = pattern.to_ascii_lowercase();
        let matching: Vec<&T> = all
            .iter()
            .filter(|a| glob_matches(lower.as_bytes(), name(a).as_bytes()))
            .collect();
        if matching.is_empty() {
            let supported: Vec<&str> = all.iter().map(&name).collect();
            return Err(fail(format!(
                "unsupported algorithm {pattern:?} (supported: {})",
                supported.join(",")
            )));
        }
        for m in matching {
            if !named.contains(m) {
                named.push(m.clone());
            }
        }
    }
    let result: Vec<T> = match op {
        b'+' => {
            let mut v = default.to_vec();
            v.extend(named.into_iter().filter(|n| !default.contains(n)));
            v
        }
        b'-' => default
            .iter()
            .filter(|d| !named.contains(d))
            .cloned()
            .collect(),
        b'^' => {
            let mut v = named.clone();
            v.extend(default.iter().filter(|d| !named.contains(d)).cloned());
            v
        }
        _ => named,
    };
    if result.is_empty() {
        return Err(fail(format!("{spec:?} leaves no algorithm to offer")));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[cipher::Name]) -> Vec<&str> {
        list.iter().map(|n| n.as_ref()).collect()
    }

    #[test]
    fn replace_append_remove_prepend() {
        let a = Algorithms {
            ciphers: Some("aes128-gcm@openssh.com".into()),
            ..Algorithms::default()
        };
        assert_eq!(
            names(&a.apply(Preferred::DEFAULT).cipher),
            ["aes128-gcm@openssh.com"]
        );
        let a = Algorithms {
            ciphers: Some("-aes*-ctr".into()),
            ..Algorithms::default()
        };
        let c = a.apply(Preferred::DEFAULT).cipher;
        assert!(names(&c).iter().all(|n| !n.ends_with("-ctr")), "{c:?}");
        let a = Algorithms {
            ciphers: Some("^aes128-ctr".into()),
            ..Algorithms::default()
        };
        assert_eq!(names(&a.apply(Preferred::DEFAULT).cipher)[0], "aes128-ctr");
        let a = Algorithms {
            macs: Some("+hmac-sha1".into()),
            ..Algorithms::default()
        };
        assert_eq!(
            a.apply(Preferred::DEFAULT).mac.last().map(|m| m.as_ref()),
            Some("hmac-sha1")
        );
    }

    #[test]
    fn kex_keeps_extensions_and_host_keys_parse() {
        let a = Algorithms {
            kex: Some("curve25519-sha256".into()),
            host_keys: Some("ssh-ed25519,rsa-sha2-512".into()),
            ..Algorithms::default()
        };
        a.validate().unwrap();
        let p = a.apply(Preferred::DEFAULT);
        assert_eq!(p.kex[0].as_ref(), "curve25519-sha256");
        assert!(p.kex.iter().any(|k| k.as_ref() == "ext-info-c"));
        assert_eq!(p.key.len(), 2);
    }

    #[test]
    fn unknown_or_empty_is_refused() {
        let a = Algorithms {
            ciphers: Some("aes128-gcm,blowfish-cbc".into()),
            ..Algorithms::default()
        };
        let e = a.validate().unwrap_err().to_string();
        assert!(e.contains("Ciphers") && e.contains("aes128-gcm"), "{e}");
        let a = Algorithms {
            macs: Some("-*".into()),
            ..Algorithms::default()
        };
        assert!(a.validate().unwrap_err().to_string().contains("leaves no"));
    }
}
