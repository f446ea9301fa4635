//! What JavaScript passes in (a session configuration, a data path's answer, a verdict),
//! checked field by field. Anything unexpected is an [`InputError`] that names the field, so
//! that a gateway author sees `config.clientPeer: "localhost" is not an IP address` rather
//! than a session that silently does something else.

use std::net::{IpAddr, SocketAddr};

use ftp_tunnel_core::session::{DataFailure, ForwardError, SessionConfig, Verdict};
use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// Why a value passed in from JavaScript was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// The value has the wrong JavaScript type.
    #[error("{field}: expected {expected}, got {got}")]
    WrongType {
        /// Where, e.g. `config.serverHost`.
        field: String,
        /// What was expected, e.g. `a string`.
        expected: &'static str,
        /// What came, e.g. `undefined` or `"abc"`.
        got: String,
    },
    /// A string that should be an IP address literal is not one.
    #[error("{field}: {value:?} is not an IP address (like \"127.0.0.1\" or \"::1\")")]
    NotAnIp {
        /// Where.
        field: String,
        /// The string given.
        value: String,
    },
    /// A number is not in the range or not whole.
    #[error("{field}: {value} is not a whole number from {min} to {max}")]
    OutOfRange {
        /// Where.
        field: String,
        /// The number given.
        value: f64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// An object has a property this API does not know (most likely a typo).
    #[error("{field}: unknown property {name:?} (known: {known})")]
    UnknownProperty {
        /// The object.
        field: String,
        /// The property.
        name: String,
        /// The properties allowed there.
        known: String,
    },
    /// A string is not one of the allowed words.
    #[error("{field}: {value:?} is not one of {allowed}")]
    NotOneOf {
        /// Where.
        field: String,
        /// The string given.
        value: String,
        /// The words allowed.
        allowed: &'static str,
    },
}

const CONFIG_FIELDS: [&str; 6] = [
    "clientPeer",
    "serverHost",
    "trustPassiveAddress",
    "allowForeignDataAddress",
    "maxLine",
    "checkCommands",
];

/// A `SessionConfig` object. Optional fields left out keep the core's safe defaults; the
/// core's own checks (`maxLine` at least 512, a sane `serverHost`) run afterwards.
pub fn config(value: &JsValue) -> Result<SessionConfig, InputError> {
    let object = object(value, "config")?;
    only_known(object, "config", &CONFIG_FIELDS)?;
    let client_peer = string(&get(object, "clientPeer"), "config.clientPeer")?;
    let client_peer = parse_ip("config.clientPeer", &client_peer)?;
    let server_host = string(&get(object, "serverHost"), "config.serverHost")?;
    let mut config = SessionConfig::new(client_peer, server_host);
    if let Some(flag) = optional_bool(object, "trustPassiveAddress")? {
        config.trust_passive_address = flag;
    }
    if let Some(flag) = optional_bool(object, "allowForeignDataAddress")? {
        config.allow_foreign_data_address = flag;
    }
    if let Some(flag) = optional_bool(object, "checkCommands")? {
        config.check_commands = flag;
    }
    let max_line = get(object, "maxLine");
    if !max_line.is_undefined() {
        let n = number(&max_line, "config.maxLine")?;
        config.max_line = whole("config.maxLine", n, 0, u64::from(u32::MAX))? as usize;
    }
    Ok(config)
}

/// A `ForwardResult`: `{ok: {address, port}}` or `{err: {kind, reason}}`.
pub fn forward_result(value: &JsValue) -> Result<Result<SocketAddr, ForwardError>, InputError> {
    let object = object(value, "result")?;
    only_known(object, "result", &["ok", "err"])?;
    let ok = get(object, "ok");
    let err = get(object, "err");
    match (ok.is_undefined(), err.is_undefined()) {
        (false, true) => {
            let ok = self::object(&ok, "result.ok")?;
            only_known(ok, "result.ok", &["address", "port"])?;
            let address = string(&get(ok, "address"), "result.ok.address")?;
            let address = parse_ip("result.ok.address", &address)?;
            let port = number(&get(ok, "port"), "result.ok.port")?;
            let port = whole("result.ok.port", port, 1, 65535)? as u16;
            Ok(Ok(SocketAddr::new(address, port)))
        }
        (true, false) => {
            let (kind, reason) = kind_and_reason(&err, "result.err")?;
            forward_error("result.err.kind", &kind, reason).map(Err)
        }
        _ => Err(InputError::WrongType {
            field: "result".into(),
            expected: "exactly one of {ok: {address, port}} or {err: {kind, reason}}",
            got: describe(value),
        }),
    }
}

/// A `DataOutcome`: `"ok"` (or `undefined`, as 0.2's one-argument `dataFinished(id)` meant)
/// or `{err: {kind, reason}}` with kind `"notConnected"` or `"broken"`.
pub fn data_outcome(value: &JsValue) -> Result<Result<(), DataFailure>, InputError> {
    if value.is_undefined() {
        return Ok(Ok(()));
    }
    if let Some(word) = value.as_string() {
        return match word.as_str() {
            "ok" => Ok(Ok(())),
            _ => Err(InputError::NotOneOf {
                field: "outcome".into(),
                value: word,
                allowed: "\"ok\" or {err: {kind: \"notConnected\" | \"broken\", reason}}",
            }),
        };
    }
    let object = object(value, "outcome")?;
    only_known(object, "outcome", &["err"])?;
    let (kind, reason) = kind_and_reason(&get(object, "err"), "outcome.err")?;
    match kind.as_str() {
        "notConnected" => Ok(Err(DataFailure::NotConnected(reason))),
        "broken" => Ok(Err(DataFailure::Broken(reason))),
        _ => Err(InputError::NotOneOf {
            field: "outcome.err.kind".into(),
            value: kind,
            allowed: "\"notConnected\", \"broken\"",
        }),
    }
}

/// The `{kind, reason}` object of an `err` answer (`field` names it), both strings.
fn kind_and_reason(value: &JsValue, field: &str) -> Result<(String, String), InputError> {
    let err = object(value, field)?;
    only_known(err, field, &["kind", "reason"])?;
    let kind = string(&get(err, "kind"), &format!("{field}.kind"))?;
    let reason = string(&get(err, "reason"), &format!("{field}.reason"))?;
    Ok((kind, reason))
}

/// A `Verdict`: `"allow"` or `{deny: reason}`.
pub fn verdict(value: &JsValue) -> Result<Verdict, InputError> {
    if let Some(word) = value.as_string() {
        return match word.as_str() {
            "allow" => Ok(Verdict::Allow),
            _ => Err(InputError::NotOneOf {
                field: "verdict".into(),
                value: word,
                allowed: "\"allow\" or {deny: reason}",
            }),
        };
    }
    let object = object(value, "verdict")?;
    only_known(object, "verdict", &["deny"])?;
    let reason = string(&get(object, "deny"), "verdict.deny")?;
    Ok(Verdict::Deny(reason))
}

/// An IP address literal, as Node reports peers (`"127.0.0.1"`, `"::1"`,
/// `"::ffff:127.0.0.1"`). An IPv4-mapped IPv6 address, which is what a dual-stack socket
/// reports for an IPv4 peer, is taken as the IPv4 address it carries: a passive reply to
/// PASV must name an IPv4 address, and `expectPeer` should compare equal to the peer.
pub fn parse_ip(field: &str, text: &str) -> Result<IpAddr, InputError> {
    text.parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| InputError::NotAnIp {
            field: field.into(),
            value: text.into(),
        })
}

/// A whole number in `min..=max`.
pub fn whole(field: &str, value: f64, min: u64, max: u64) -> Result<u64, InputError> {
    if value.fract() == 0.0 && value >= min as f64 && value <= max as f64 {
        Ok(value as u64)
    } else {
        Err(InputError::OutOfRange {
            field: field.into(),
            value,
            min,
            max,
        })
    }
}

/// A `ForwardError` from its `kind` word and reason.
pub fn forward_error(field: &str, kind: &str, reason: String) -> Result<ForwardError, InputError> {
    match kind {
        "refused" => Ok(ForwardError::Refused(reason)),
        "denied" => Ok(ForwardError::Denied(reason)),
        "failed" => Ok(ForwardError::Failed(reason)),
        _ => Err(InputError::NotOneOf {
            field: field.into(),
            value: kind.into(),
            allowed: "\"refused\", \"denied\", \"failed\"",
        }),
    }
}

fn object<'a>(value: &'a JsValue, field: &str) -> Result<&'a Object, InputError> {
    match value.dyn_ref::<Object>() {
        Some(object) if value.is_object() => Ok(object),
        _ => Err(InputError::WrongType {
            field: field.into(),
            expected: "an object",
            got: describe(value),
        }),
    }
}

fn only_known(object: &Object, field: &str, known: &[&str]) -> Result<(), InputError> {
    for key in Object::keys(object).iter() {
        let name = key.as_string().unwrap_or_default();
        if !known.contains(&name.as_str()) {
            return Err(InputError::UnknownProperty {
                field: field.into(),
                name,
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

fn get(object: &Object, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn string(value: &JsValue, field: &str) -> Result<String, InputError> {
    value.as_string().ok_or_else(|| InputError::WrongType {
        field: field.into(),
        expected: "a string",
        got: describe(value),
    })
}

fn number(value: &JsValue, field: &str) -> Result<f64, InputError> {
    value.as_f64().ok_or_else(|| InputError::WrongType {
        field: field.into(),
        expected: "a number",
        got: describe(value),
    })
}

fn optional_bool(object: &Object, key: &str) -> Result<Option<bool>, InputError> {
    let value = get(object, key);
    if value.is_undefined() {
        return Ok(None);
    }
    value
        .as_bool()
        .map(Some)
        .ok_or_else(|| InputError::WrongType {
            field: format!("config.{key}"),
            expected: "a boolean",
            got: describe(&value),
        })
}

/// A short description of a value for an error message.
fn describe(value: &JsValue) -> String {
    if let Some(text) = value.as_string() {
        format!("{text:?}")
    } else if let Some(n) = value.as_f64() {
        n.to_string()
    } else if value.is_null() {
        "null".into()
    } else {
        value
            .js_typeof()
            .as_string()
            .unwrap_or_else(|| "a value".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_as_node_reports_them_parse() {
        for text in ["127.0.0.1", "::1", "2001:db8::7"] {
            assert_eq!(parse_ip("f", text).unwrap().to_string(), text);
        }
        assert_eq!(
            parse_ip("f", "::ffff:127.0.0.1").unwrap().to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn names_and_brackets_are_not_ips() {
        for text in ["localhost", "[::1]", "127.0.0.1:21", "", "1.2.3"] {
            let error = parse_ip("config.clientPeer", text).unwrap_err();
            assert!(
                error.to_string().starts_with("config.clientPeer: "),
                "{error}"
            );
        }
    }

    #[test]
    fn ports_are_whole_and_in_range() {
        assert_eq!(whole("p", 21.0, 1, 65535), Ok(21));
        assert_eq!(whole("p", 65535.0, 1, 65535), Ok(65535));
        for bad in [0.0, 65536.0, 21.5, -1.0, f64::NAN, f64::INFINITY] {
            assert!(whole("p", bad, 1, 65535).is_err(), "{bad}");
        }
    }

    #[test]
    fn forward_error_kinds() {
        assert_eq!(
            forward_error("k", "denied", "no".into()),
            Ok(ForwardError::Denied("no".into()))
        );
        assert_eq!(
            forward_error("k", "refused", "r".into()),
            Ok(ForwardError::Refused("r".into()))
        );
        assert_eq!(
            forward_error("k", "failed", "f".into()),
            Ok(ForwardError::Failed("f".into()))
        );
        let error = forward_error("result.err.kind", "nope", String::new()).unwrap_err();
        assert!(error.to_string().contains("\"nope\""), "{error}");
    }
}
