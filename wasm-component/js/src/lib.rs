//! The ftp-tunnel rewrite core as an npm package: thin wasm-bindgen glue around
//! [`ftp_tunnel_core`], built for `wasm32-unknown-unknown`.
//!
//! JavaScript sees one class, `Session`, with contract 0.3's calls in camelCase
//! (`fromClient`, `fromServer`, `forwardOpened`, `dataConnected`, `dataFinished`,
//! `commandVerdict`); each returns the core's actions, in order, as plain objects (see
//! [`actions`]). Answers and configurations coming from JavaScript are checked field by field
//! and refused with an `Error` that names the field (see [`input`]), never patched up.
//!
//! Built natively the crate only type-checks (wasm-bindgen's imports abort outside wasm), so
//! `cargo build --workspace` works; the pure conversions are unit-tested natively.
// No `forbid(unsafe_code)` here: the glue `#[wasm_bindgen]` generates needs it, and the lint
// cannot be scoped to it. The files of this crate themselves have none.

pub mod actions;
pub mod input;

use ftp_tunnel_core::session::Session as CoreSession;
use wasm_bindgen::prelude::*;

/// TypeScript declarations of the plain objects crossing the boundary; the generated
/// `.d.ts` refers to them in the `Session` methods' signatures.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/**
 * An IP address literal, e.g. "127.0.0.1" or "::1" (no brackets, no port). An IPv4-mapped
 * "::ffff:a.b.c.d", as Node reports IPv4 peers of dual-stack sockets, is taken as "a.b.c.d".
 */
export type IpAddress = string;

/** Everything a session needs to know about its control connection (contract 0.3 `session-config`). */
export interface SessionConfig {
  /** The FTP client's address: the control connection's peer. PORT/EPRT/LPRT are checked against it. */
  clientPeer: IpAddress;
  /** The FTP server's host as the gateway reaches it (name or IP literal): passive data goes there. */
  serverHost: string;
  /** Carry passive data to the address a 227/228/229 names instead of serverHost. Default false (SSRF). */
  trustPassiveAddress?: boolean;
  /** Accept PORT/EPRT/LPRT naming a host other than clientPeer. Default false (FTP bounce). */
  allowForeignDataAddress?: boolean;
  /** Longest control line interpreted (at least 512); longer lines are relayed untouched. Default 4096. */
  maxLine?: number;
  /** Ask the host about every client command (a "checkCommand" action). Default false. */
  checkCommands?: boolean;
}

/** Which way a data connection is set up. */
export type DataMode = "passive" | "active";

/** What a "note" action records. */
export type NoteKind = "rewrite" | "refused" | "malformed" | "forwardFailed" | "denied" | "transfer";

/** One thing the host must do; carry out a call's actions in the order given. */
export type Action =
  /** Write these bytes to the FTP server's control connection. */
  | { type: "toServer"; bytes: Uint8Array }
  /** Write these bytes to the FTP client's control connection. */
  | { type: "toClient"; bytes: Uint8Array }
  /**
   * Open a data path: a place that accepts one connection (only from expectPeer, if not null),
   * carried to targetHost:targetPort. Answer later with `forwardOpened(id, ...)`.
   * Passive: the FTP client connects to it. Active: the FTP server connects to it.
   */
  | { type: "openDataPath"; id: number; mode: DataMode; targetHost: string; targetPort: number; expectPeer: IpAddress | null }
  /** Close data path `id` (its listener and any data connection of it); report nothing more about it. */
  | { type: "closeDataPath"; id: number }
  /** Allow or deny a client command; answer later with `commandVerdict(id, ...)`. PASS's argument is "***". */
  | { type: "checkCommand"; id: number; verb: string; argument: string }
  /** Log this. `forward` is the data path it is about, if any. */
  | { type: "note"; kind: NoteKind; original: string; replacement: string; forward: number | null };

/** Why a data path could not be opened: "refused" (by a peer), "denied" (by a policy), "failed" (on the host). */
export interface ForwardError {
  kind: "refused" | "denied" | "failed";
  reason: string;
}

/**
 * The answer to an "openDataPath" action: the address the data connection is to be made to
 * (the gateway's listener, as the peer that connects will reach it), or why there is none.
 */
export type ForwardResult =
  | { ok: { address: IpAddress; port: number } }
  | { err: ForwardError };

/**
 * How a data path's connection ended, for `dataFinished(id, outcome)`: "ok" once every byte was
 * delivered, else why not: "notConnected" (nobody came in time, or the target was unreachable)
 * or "broken" (it broke before the end). After a failure the server's 2xx for that transfer
 * reaches the client as 426 (a small file may sit in buffers that nobody read).
 */
export type DataOutcome = "ok" | { err: { kind: "notConnected" | "broken"; reason: string } };

/** The answer to a "checkCommand" action: go on, or refuse with `550 denied by policy: <reason>`. */
export type Verdict = "allow" | { deny: string };
"#;

/// One FTP control connection's rewrite state (contract 0.3 `session`).
#[wasm_bindgen(js_name = Session)]
pub struct JsSession {
    core: CoreSession,
}

#[wasm_bindgen(js_class = Session)]
impl JsSession {
    /// A session for one new control connection. Throws an `Error` naming the field if the
    /// configuration does not make sense (for instance a `clientPeer` that is not an IP address).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "SessionConfig")] config: JsValue,
    ) -> Result<JsSession, JsError> {
        let config = input::config(&config)?;
        let core = CoreSession::try_new(config)
            .map_err(|e| JsError::new(&format!("invalid session config: {e}")))?;
        Ok(JsSession { core })
    }

    /// The same as `new Session(config)`.
    pub fn create(
        #[wasm_bindgen(unchecked_param_type = "SessionConfig")] config: JsValue,
    ) -> Result<JsSession, JsError> {
        JsSession::new(config)
    }

    /// Bytes the FTP client sent on the control connection.
    #[wasm_bindgen(js_name = fromClient, unchecked_return_type = "Action[]")]
    pub fn from_client(&mut self, bytes: &[u8]) -> js_sys::Array {
        self.core.handle_client_bytes(bytes);
        self.drain()
    }

    /// Bytes the FTP server sent on the control connection.
    #[wasm_bindgen(js_name = fromServer, unchecked_return_type = "Action[]")]
    pub fn from_server(&mut self, bytes: &[u8]) -> js_sys::Array {
        self.core.handle_server_bytes(bytes);
        self.drain()
    }

    /// The answer to `openDataPath` `id`: `{ok: {address, port}}` or
    /// `{err: {kind, reason}}`. Throws an `Error` if `result` has neither shape.
    #[wasm_bindgen(js_name = forwardOpened, unchecked_return_type = "Action[]")]
    pub fn forward_opened(
        &mut self,
        id: u32,
        #[wasm_bindgen(unchecked_param_type = "ForwardResult")] result: JsValue,
    ) -> Result<js_sys::Array, JsError> {
        let result = input::forward_result(&result)?;
        self.core.handle_forward_opened(id, result);
        Ok(self.drain())
    }

    /// The data connection of active-mode path `id` has reached the FTP client.
    #[wasm_bindgen(js_name = dataConnected, unchecked_return_type = "Action[]")]
    pub fn data_connected(&mut self, id: u32) -> js_sys::Array {
        self.core.handle_data_connected(id);
        self.drain()
    }

    /// The data connection of path `id` is over: `"ok"` (or no `outcome`) once all its bytes
    /// were delivered, else `{err: {kind: "notConnected" | "broken", reason}}`; after a
    /// failure the server's `2xx` for that transfer reaches the client as `426`. Throws an
    /// `Error` if `outcome` has neither shape.
    #[wasm_bindgen(js_name = dataFinished, unchecked_return_type = "Action[]")]
    pub fn data_finished(
        &mut self,
        id: u32,
        #[wasm_bindgen(unchecked_param_type = "DataOutcome | undefined")] outcome: JsValue,
    ) -> Result<js_sys::Array, JsError> {
        let outcome = input::data_outcome(&outcome)?;
        self.core.handle_data_finished(id, outcome);
        Ok(self.drain())
    }

    /// The answer to `checkCommand` `id`: `"allow"` or `{deny: reason}`. Throws an `Error`
    /// if `verdict` has neither shape.
    #[wasm_bindgen(js_name = commandVerdict, unchecked_return_type = "Action[]")]
    pub fn command_verdict(
        &mut self,
        id: u32,
        #[wasm_bindgen(unchecked_param_type = "Verdict")] verdict: JsValue,
    ) -> Result<js_sys::Array, JsError> {
        let verdict = input::verdict(&verdict)?;
        self.core.handle_command_verdict(id, verdict);
        Ok(self.drain())
    }
}

impl JsSession {
    /// Everything the core asked for since the last call, in order, as JS objects.
    fn drain(&mut self) -> js_sys::Array {
        self.core.drain_actions().map(actions::to_js).collect()
    }
}
