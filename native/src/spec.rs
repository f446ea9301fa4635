//! Forward specifications as given to `-L` / `-R`: `[ftp/|tcp/][BIND_ADDR:]PORT:HOST:HOSTPORT`.

use std::fmt;
use std::str::FromStr;

/// Whether a forward understands FTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardKind {
    /// `ftp/`: FTP-aware; data channels follow the control connection.
    Ftp,
    /// `tcp/` (or no prefix): a plain port forward, as `ssh -L`.
    Tcp,
}

/// One `-L`/`-R` specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    /// FTP-aware or plain.
    pub kind: ForwardKind,
    /// Listening address; `None` = loopback.
    pub bind_address: Option<String>,
    /// Listening port; 0 = any free port.
    pub bind_port: u16,
    /// Destination host as the other side resolves it.
    pub host: String,
    /// Destination port.
    pub host_port: u16,
}

/// Why a specification was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad forward specification {spec:?}: {reason} (expected [ftp/|tcp/][BIND_ADDR:]PORT:HOST:HOSTPORT)"
)]
pub struct SpecError {
    spec: String,
    reason: String,
}

impl FromStr for ForwardSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| SpecError {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, rest) = if let Some(rest) = spec.strip_prefix("ftp/") {
            (ForwardKind::Ftp, rest)
        } else if let Some(rest) = spec.strip_prefix("tcp/") {
            (ForwardKind::Tcp, rest)
        } else {
            (ForwardKind::Tcp, spec)
        };
        let fields = split_fields(rest).ok_or_else(|| fail("unbalanced '[' ']'"))?;
        let (bind_address, bind_port, host, host_port) = match fields.as_slice() {
            [port, host, host_port] => (None, port, host, host_port),
            [bind, port, host, host_port] => (Some(bind.clone()), port, host, host_port),
            _ => return Err(fail("wrong number of ':'-separated fields")),
        };
        let bind_port = bind_port
            .parse::<u16>()
            .map_err(|_| fail("listening port must be 0..=65535"))?;
        let host_port = host_port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| fail("destination port must be 1..=65535"))?;
        if host.is_empty() {
            return Err(fail("empty destination host"));
        }
        if bind_address.as_deref() == Some("") {
            return Err(fail("empty bind address"));
        }
        Ok(Self {
            kind,
            bind_address,
            bind_port,
            host: host.clone(),
            host_port,
        })
    }
}

/// Splits on ':' outside brackets and strips the brackets of IPv6 literals.
fn split_fields(text: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut in_brackets = false;
    for c in text.chars() {
        match c {
            '[' if !in_brackets && current.is_empty() => in_brackets = true,
            ']' if in_brackets => in_brackets = false,
            '[' | ']' => return None,
            ':' if !in_brackets => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if in_brackets {
        return None;
    }
    fields.push(current);
    Some(fields)
}

impl fmt::Display for ForwardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ForwardKind::Ftp => "ftp/",
            ForwardKind::Tcp => "tcp/",
        };
        let bracket = |host: &str| {
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            }
        };
        write!(f, "{kind}")?;
        if let Some(bind) = &self.bind_address {
            write!(f, "{}:", bracket(bind))?;
        }
        write!(
            f,
            "{}:{}:{}",
            self.bind_port,
            bracket(&self.host),
            self.host_port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let spec: ForwardSpec = "ftp/2121:127.0.0.1:21".parse().unwrap();
        assert_eq!(spec.kind, ForwardKind::Ftp);
        assert_eq!(spec.bind_address, None);
        assert_eq!(
            (spec.bind_port, spec.host.as_str(), spec.host_port),
            (2121, "127.0.0.1", 21)
        );

        let spec: ForwardSpec = "ftp/[::1]:0:[fd00::5]:2121".parse().unwrap();
        assert_eq!(spec.bind_address.as_deref(), Some("::1"));
        assert_eq!(spec.host, "fd00::5");
        assert_eq!(spec.to_string(), "ftp/[::1]:0:[fd00::5]:2121");

        let spec: ForwardSpec = "8080:web:80".parse().unwrap();
        assert_eq!(spec.kind, ForwardKind::Tcp);
    }

    #[test]
    fn rejects_bad_specs_with_a_reason() {
        for bad in [
            "ftp/2121:host",
            "ftp/70000:h:21",
            "ftp/21:h:0",
            "ftp/21::21",
            "ftp/[::1:0:h:21",
            "a:b:c:d:e",
        ] {
            let error = bad.parse::<ForwardSpec>().unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
    }
}
