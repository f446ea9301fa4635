//! The core's [`Action`]s as the plain JavaScript objects the package hands out:
//! `{type: "toServer", bytes}`, `{type: "openDataPath", id, mode, ...}`, and so on (the
//! TypeScript `Action` type in `lib.rs` lists them all).

use ftp_tunnel_core::session::{Action, DataMode, NoteKind};
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::JsValue;

/// The `type` field of each action, contract 0.2's variant names in camelCase.
pub fn type_name(action: &Action) -> &'static str {
    match action {
        Action::ToServer(_) => "toServer",
        Action::ToClient(_) => "toClient",
        Action::OpenForward { .. } => "openDataPath",
        Action::CloseForward { .. } => "closeDataPath",
        Action::CheckCommand(_) => "checkCommand",
        Action::Note(_) => "note",
    }
}

/// A note's `kind`, contract 0.2's `note-kind` in camelCase.
pub fn note_kind(kind: NoteKind) -> &'static str {
    match kind {
        NoteKind::Rewrite => "rewrite",
        NoteKind::Refused => "refused",
        NoteKind::Malformed => "malformed",
        NoteKind::ForwardFailed => "forwardFailed",
        NoteKind::Denied => "denied",
        NoteKind::Transfer => "transfer",
    }
}

/// A data path's `mode`.
pub fn mode(mode: DataMode) -> &'static str {
    mode.as_str()
}

/// One action as a fresh plain object.
pub fn to_js(action: Action) -> JsValue {
    let object = Object::new();
    set(&object, "type", type_name(&action).into());
    match action {
        Action::ToServer(bytes) | Action::ToClient(bytes) => {
            set(&object, "bytes", Uint8Array::from(bytes.as_slice()).into());
        }
        Action::OpenForward { id, request } => {
            set(&object, "id", id.into());
            set(&object, "mode", mode(request.mode).into());
            set(&object, "targetHost", request.target_host.into());
            set(&object, "targetPort", request.target_port.into());
            let peer = request
                .expect_peer
                .map_or(JsValue::NULL, |ip| ip.to_string().into());
            set(&object, "expectPeer", peer);
        }
        Action::CloseForward { id } => set(&object, "id", id.into()),
        Action::CheckCommand(check) => {
            set(&object, "id", check.id.into());
            set(&object, "verb", check.verb.into());
            set(&object, "argument", check.argument.into());
        }
        Action::Note(note) => {
            set(&object, "kind", note_kind(note.kind).into());
            set(&object, "original", note.original.into());
            set(&object, "replacement", note.replacement.into());
            set(
                &object,
                "forward",
                note.forward.map_or(JsValue::NULL, JsValue::from),
            );
        }
    }
    object.into()
}

fn set(object: &Object, key: &str, value: JsValue) {
    // Defining a property on a fresh, unfrozen plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), &value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftp_tunnel_core::session::{CommandCheck, DataPathRequest, Note};

    #[test]
    fn type_names_are_contract_names_in_camel_case() {
        let request = DataPathRequest {
            mode: DataMode::Passive,
            target_host: "h".into(),
            target_port: 1,
            expect_peer: None,
        };
        let cases = [
            (Action::ToServer(vec![]), "toServer"),
            (Action::ToClient(vec![]), "toClient"),
            (Action::OpenForward { id: 1, request }, "openDataPath"),
            (Action::CloseForward { id: 1 }, "closeDataPath"),
            (
                Action::CheckCommand(CommandCheck {
                    id: 1,
                    verb: "STOR".into(),
                    argument: "x".into(),
                }),
                "checkCommand",
            ),
            (
                Action::Note(Note {
                    kind: NoteKind::Rewrite,
                    original: String::new(),
                    replacement: String::new(),
                    forward: None,
                }),
                "note",
            ),
        ];
        for (action, name) in cases {
            assert_eq!(type_name(&action), name);
        }
    }

    #[test]
    fn note_kinds_follow_the_wit_names() {
        for kind in [
            NoteKind::Rewrite,
            NoteKind::Refused,
            NoteKind::Malformed,
            NoteKind::ForwardFailed,
            NoteKind::Denied,
            NoteKind::Transfer,
        ] {
            let wit = kind.as_str();
            let camel: String = wit
                .split('-')
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        part.to_owned()
                    } else {
                        part[..1].to_uppercase() + &part[1..]
                    }
                })
                .collect();
            assert_eq!(note_kind(kind), camel);
        }
        assert_eq!(mode(DataMode::Active), "active");
    }
}
