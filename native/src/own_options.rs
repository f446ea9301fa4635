//! The `-o` options that are ftp-tunnel's own rather than OpenSSH's: FTP rules, limits,
//! `SeparateDataConnections` and the admin control options. Everything else given with `-o`
//! goes to the ssh_config resolver, which knows OpenSSH's keywords.

use std::net::IpAddr;
use std::time::Duration;

use crate::admin::AdminSettings;
use crate::settings::FtpSettings;

/// An own option with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-o {option}: {reason}")]
pub struct OwnOptionError {
    /// The option as given.
    pub option: String,
    /// What is wrong.
    pub reason: String,
}

/// `Option=value` or `Option value`, trimmed.
pub fn split_option(option: &str) -> Option<(&str, &str)> {
    option
        .split_once('=')
        .or_else(|| option.split_once(char::is_whitespace))
        .map(|(n, v)| (n.trim(), v.trim()))
}

/// Applies `option` if it is one of ftp-tunnel's own; `Ok(false)` when it is not (it is then
/// an OpenSSH option, or unknown). `SeparateDataConnections` goes to
/// `separate_data_connections`: it belongs to the SSH options, which the resolver builds.
pub fn apply_own_option(
    option: &str,
    ftp: &mut FtpSettings,
    admin: &mut AdminSettings,
    separate_data_connections: &mut Option<bool>,
) -> Result<bool, OwnOptionError> {
    let bad = |reason: String| OwnOptionError {
        option: option.to_owned(),
        reason,
    };
    let Some((name, value)) = split_option(option) else {
        // Not Option=value: the resolver gives the error, in OpenSSH's words.
        return Ok(false);
    };
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
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
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
        "separatedataconnections" => *separate_data_connections = Some(yes_no(value)?),
        "maxsessions" => ftp.limits.max_sessions = at_least_one(value)?,
        "maxdatapathspersession" => ftp.limits.max_data_paths_per_session = at_least_one(value)?,
        "maxdatapaths" => ftp.limits.max_data_paths = at_least_one(value)?,
        admin_option if crate::admin::is_option(admin_option) => {
            admin.apply_option(name, value).map_err(bad)?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(option: &str) -> Result<(bool, FtpSettings, AdminSettings, Option<bool>), String> {
        let mut ftp = FtpSettings::default();
        let mut admin = AdminSettings::default();
        let mut separate = None;
        let own = apply_own_option(option, &mut ftp, &mut admin, &mut separate)
            .map_err(|e| e.to_string())?;
        Ok((own, ftp, admin, separate))
    }

    #[test]
    fn own_options_are_taken_and_others_left() {
        assert!(apply("MaxSessions=3").unwrap().0);
        assert_eq!(apply("maxsessions 3").unwrap().1.limits.max_sessions, 3);
        assert!(
            apply("TrustPassiveAddress=yes")
                .unwrap()
                .1
                .trust_passive_address
        );
        assert_eq!(apply("SeparateDataConnections=yes").unwrap().3, Some(true));
        assert!(apply("AuditLog=/tmp/a.log").unwrap().2.audit_log.is_some());
        assert!(!apply("ServerAliveInterval=5").unwrap().0);
        assert!(!apply("Bogus=1").unwrap().0);
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let e = apply("MaxSessions=0").unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = apply("TrustPassiveAddress=maybe").unwrap_err();
        assert!(e.contains("yes or no"), "{e}");
        let e = apply("PassiveBindAddress=here").unwrap_err();
        assert!(e.contains("IP address"), "{e}");
    }
}
