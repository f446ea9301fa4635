//! What an admin says about policies: which files with which settings, and the limits every
//! call runs under. Serde-friendly, for the config file.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One policy to load: its file and the settings handed to its `configure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// The component file (`.wasm`).
    pub path: PathBuf,
    /// Name/value pairs, in order; a name may repeat.
    #[serde(default)]
    pub settings: Vec<(String, String)>,
}

/// A `--policy` argument that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// No file before the first comma.
    #[error("no policy file given")]
    NoFile,
    /// A setting without `=`.
    #[error("setting {0:?} is not NAME=VALUE")]
    BadSetting(String),
}

impl FromStr for PolicySpec {
    type Err = SpecError;

    /// `FILE.wasm[,NAME=VALUE...]`: the command-line spelling. Values cannot contain commas
    /// there; the config file has no such limit.
    fn from_str(text: &str) -> Result<Self, SpecError> {
        let mut parts = text.split(',');
        let path = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or(SpecError::NoFile)?;
        let settings = parts
            .map(|setting| {
                setting
                    .split_once('=')
                    .filter(|(name, _)| !name.is_empty())
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .ok_or_else(|| SpecError::BadSetting(setting.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            path: PathBuf::from(path),
            settings,
        })
    }
}

/// The limits each policy call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyLimits {
    /// Deadline of one call (instantiation and `configure` included when a fresh instance is
    /// needed).
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Linear memory one instance may grow to, in bytes.
    pub memory: usize,
}

impl PolicyLimits {
    /// 10 ms per call.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10);
    /// 16 MiB per instance.
    pub const DEFAULT_MEMORY: usize = 16 << 20;
}

impl Default for PolicyLimits {
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            memory: Self::DEFAULT_MEMORY,
        }
    }
}

/// Parses `PolicyTimeout=`: `250ms`, `2s`, `500us`, or a bare number of milliseconds.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = split_unit(text);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 10ms or 1s, got {text:?}"))?;
    let duration = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "us" => Duration::from_micros(value),
        other => return Err(format!("unknown unit {other:?} (use us, ms or s)")),
    };
    if duration < Duration::from_millis(1) || duration > Duration::from_secs(60) {
        return Err(format!("{text} is outside 1ms..60s"));
    }
    Ok(duration)
}

/// Parses `PolicyMemory=`: `16M`, `64MiB`, `512K`, `1G`, or a bare number of bytes.
pub fn parse_memory(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = split_unit(text);
    let value: usize = number
        .parse()
        .map_err(|_| format!("expected a size like 16M, got {text:?}"))?;
    let shift = match unit
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return Err(format!("unknown unit in {text:?} (use K, M or G)")),
    };
    let bytes = value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text} is too large"))?;
    if !(1 << 20..=4 << 30).contains(&bytes) {
        return Err(format!("{text} is outside 1M..4G"));
    }
    Ok(bytes)
}

fn split_unit(text: &str) -> (&str, &str) {
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    (&text[..at], text[at..].trim())
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_spelling() {
        let spec: PolicySpec = "p/allow.wasm,allow=127.0.0.1:*,allow=[::1]:21"
            .parse()
            .unwrap();
        assert_eq!(spec.path, PathBuf::from("p/allow.wasm"));
        assert_eq!(
            spec.settings,
            vec![
                ("allow".to_owned(), "127.0.0.1:*".to_owned()),
                ("allow".to_owned(), "[::1]:21".to_owned())
            ]
        );
        assert_eq!("".parse::<PolicySpec>(), Err(SpecError::NoFile));
        assert_eq!(
            "a.wasm,oops".parse::<PolicySpec>(),
            Err(SpecError::BadSetting("oops".to_owned()))
        );
    }

    #[test]
    fn limits_parse() {
        assert_eq!(parse_timeout("10"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_timeout("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1500us"), Ok(Duration::from_micros(1500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("ten").is_err());
        assert_eq!(parse_memory("16M"), Ok(16 << 20));
        assert_eq!(parse_memory("64MiB"), Ok(64 << 20));
        assert_eq!(parse_memory("2097152"), Ok(2 << 20));
        assert!(parse_memory("12").is_err());
        assert!(parse_memory("1T").is_err());
    }

    #[test]
    fn limits_round_trip_through_toml() {
        let limits = PolicyLimits {
            timeout: Duration::from_millis(25),
            memory: 8 << 20,
        };
        let text = toml::to_string(&limits).unwrap();
        assert_eq!(toml::from_str::<PolicyLimits>(&text).unwrap(), limits);
    }
}
