//! The plugin configuration each filter instance gets from `envoy.yaml` (a JSON string).

use serde::Deserialize;

/// Upper bound on data listeners: a route table is read per data port for every passive
/// reply, and Envoy has no port ranges, so each one is a listener in the bootstrap file.
pub const MAX_DATA_PORTS: usize = 64;

/// What one filter instance does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case", deny_unknown_fields)]
pub enum FilterConfig {
    /// On the FTP control listener, in front of `tcp_proxy` to the FTP server.
    Control(ControlConfig),
    /// On each data listener, in front of `tcp_proxy` to the ORIGINAL_DST cluster.
    Data,
}

/// The control filter's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// The FTP server's host as the control cluster names it: passive data connections go to
    /// this host only (no SSRF through the address a passive reply names).
    pub server_host: String,
    /// The ports of the data listeners; passive replies name one of them.
    pub data_ports: Vec<u16>,
    /// Longest control line interpreted (the core's `max_line`).
    #[serde(default = "default_max_line")]
    pub max_line: usize,
}

fn default_max_line() -> usize {
    ftp_tunnel_core::framing::LineFramer::DEFAULT_MAX_LINE
}

/// Why a plugin configuration was refused (Envoy then refuses the listener).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not the JSON this filter expects.
    #[error("bad plugin configuration: {0}")]
    Json(#[from] serde_json::Error),
    /// No data port, a port 0, a repeated port, or too many.
    #[error("data_ports must list 1 to {MAX_DATA_PORTS} distinct non-zero ports, got {0:?}")]
    DataPorts(Vec<u16>),
    /// Rejected by the core (empty host, `max_line` below 512, ...).
    #[error(transparent)]
    Core(#[from] ftp_tunnel_core::contract::ConfigError),
}

impl FilterConfig {
    /// Parses and checks a plugin configuration.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config: FilterConfig = serde_json::from_slice(bytes)?;
        if let FilterConfig::Control(control) = &config {
            let ports = &control.data_ports;
            let mut sorted = ports.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if ports.is_empty()
                || ports.len() > MAX_DATA_PORTS
                || sorted.len() != ports.len()
                || ports.contains(&0)
            {
                return Err(ConfigError::DataPorts(ports.clone()));
            }
            // Let the core check the host and line cap now rather than per connection.
            let mut probe = ftp_tunnel_core::contract::SessionConfig::new(
                std::net::Ipv4Addr::LOCALHOST.into(),
                control.server_host.clone(),
            );
            probe.max_line = control.max_line;
            probe.validate()?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_roles() {
        let c = FilterConfig::parse(
            br#"{"role":"control","server_host":"10.0.0.2","data_ports":[30000,30001]}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            FilterConfig::Control(ControlConfig {
                server_host: "10.0.0.2".into(),
                data_ports: vec![30000, 30001],
                max_line: 8192,
            })
        );
        assert_eq!(
            FilterConfig::parse(br#"{"role":"data"}"#).unwrap(),
            FilterConfig::Data
        );
    }

    #[test]
    fn refuses_bad_configurations() {
        for bad in [
            &br#"{"role":"control","server_host":"h","data_ports":[]}"#[..],
            br#"{"role":"control","server_host":"h","data_ports":[1,1]}"#,
            br#"{"role":"control","server_host":"h","data_ports":[0]}"#,
            br#"{"role":"control","server_host":"","data_ports":[1]}"#,
            br#"{"role":"control","server_host":"h","data_ports":[1],"max_line":10}"#,
            br#"{"role":"control","server_host":"h","data_ports":[1],"typo":1}"#,
            br#"{"role":"other"}"#,
            b"not json",
        ] {
            assert!(
                FilterConfig::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
