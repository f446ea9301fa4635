//! The core's [`Action`]s as the plain JavaScript objects the package hands out:
//! `{type: "toServer", bytes}`, `{type: "openDataPath", id, mode, ...}`, and so on (the
//! TypeScript `Action` type in `lib.rs` lists them all).
//!
//! Each object is built by one small JavaScript function, one call per action: the type,
//! mode and kind words are JavaScript constants picked by number, so the common case (a
//! relayed line) crosses the boundary once with its bytes and decodes no string. Setting
//! properties one `Reflect.set` at a time, with each key decoded from UTF-8, cost three times
//! as much per line.

use ftp_tunnel_core::session::{Action, DataMode, NoteKind};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
const NOTE_KINDS = ['rewrite', 'refused', 'malformed', 'forwardFailed', 'denied', 'transfer'];
export function bytesAction(toClient, bytes) {
  return { type: toClient ? 'toClient' : 'toServer', bytes };
}
export function openDataPathAction(id, passive, targetHost, targetPort, expectPeer) {
  return { type: 'openDataPath', id, mode: passive ? 'passive' : 'active', targetHost, targetPort,
    expectPeer: expectPeer ?? null };
}
export function closeDataPathAction(id) {
  return { type: 'closeDataPath', id };
}
export function checkCommandAction(id, verb, argument) {
  return { type: 'checkCommand', id, verb, argument };
}
export function noteAction(kind, original, replacement, forward) {
  return { type: 'note', kind: NOTE_KINDS[kind], original, replacement, forward: forward ?? null };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = bytesAction)]
    fn bytes_action(to_client: bool, bytes: Vec<u8>) -> JsValue;
    #[wasm_bindgen(js_name = openDataPathAction)]
    fn open_data_path_action(
        id: u32,
        passive: bool,
        target_host: String,
        target_port: u16,
        expect_peer: Option<String>,
    ) -> JsValue;
    #[wasm_bindgen(js_name = closeDataPathAction)]
    fn close_data_path_action(id: u32) -> JsValue;
    #[wasm_bindgen(js_name = checkCommandAction)]
    fn check_command_action(id: u32, verb: String, argument: String) -> JsValue;
    #[wasm_bindgen(js_name = noteAction)]
    fn note_action(
        kind: u8,
        original: String,
        replacement: String,
        forward: Option<u32>,
    ) -> JsValue;
}

/// The `type` field of each action, contract 0.3's variant names in camelCase (the strings
/// the JavaScript above writes).
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

/// The note kinds in the order of `NOTE_KINDS` above: contract 0.3's `note-kind` in camelCase.
pub const NOTE_KINDS: [&str; 6] = [
    "rewrite",
    "refused",
    "malformed",
    "forwardFailed",
    "denied",
    "transfer",
];

/// A note kind's index in [`NOTE_KINDS`].
pub fn note_kind_index(kind: NoteKind) -> u8 {
    match kind {
        NoteKind::Rewrite => 0,
        NoteKind::Refused => 1,
        NoteKind::Malformed => 2,
        NoteKind::ForwardFailed => 3,
        NoteKind::Denied => 4,
        NoteKind::Transfer => 5,
    }
}

/// One action as a fresh plain object.
pub fn to_js(action: Action) -> JsValue {
    match action {
        Action::ToServer(bytes) => bytes_action(false, bytes),
        Action::ToClient(bytes) => bytes_action(true, bytes),
        Action::OpenForward { id, request } => open_data_path_action(
            id,
            request.mode == DataMode::Passive,
            request.target_host,
            request.target_port,
            request.expect_peer.map(|ip| ip.to_string()),
        ),
        Action::CloseForward { id } => close_data_path_action(id),
        Action::CheckCommand(check) => check_command_action(check.id, check.verb, check.argument),
        Action::Note(note) => note_action(
            note_kind_index(note.kind),
            note.original,
            note.replacement,
            note.forward,
        ),
    }
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
            assert_eq!(NOTE_KINDS[usize::from(note_kind_index(kind))], camel);
        }
    }
}
