//! The proxy-wasm glue: root contexts read the plugin configuration, stream contexts are
//! the control filter (one [`ControlSession`] per FTP control connection) or the data filter
//! (routes one data connection by its source address, or closes it).
#![allow(unsafe_code)] // `proxy_wasm::main!` exports `_initialize` with `#[no_mangle]`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use ftp_tunnel_core::contract::{DataPathRequest, ForwardError, ForwardId, Note, SessionConfig};
use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, PeerType, Status};

use crate::config::{ControlConfig, FilterConfig};
use crate::control::{ControlSession, DataPaths};
use crate::filter_state::{ORIGINAL_DST_KEY, SET_FILTER_STATE, encode_set_filter_state};
use crate::routes::{OWNER_COUNTER_KEY, Owner, Route, RouteTable, pick_port, table_key};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { config: None }) });
}}

/// Compare-and-swap retries before a shared-data update gives up (only other sessions'
/// concurrent updates of the same key make it retry).
const CAS_RETRIES: usize = 64;

struct Root {
    config: Option<Rc<FilterConfig>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match FilterConfig::parse(&bytes) {
            Ok(config) => {
                if let FilterConfig::Control(control) = &config {
                    // Create the keys before any connection: a key's first write cannot be
                    // a compare-and-swap.
                    for &port in &control.data_ports {
                        create_if_absent(&table_key(port), b"");
                    }
                    create_if_absent(OWNER_COUNTER_KEY, b"0");
                }
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                log::error!("ftp-tunnel: {e}");
                false
            }
        }
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(match self.config.as_deref()? {
            FilterConfig::Control(control) => Box::new(ControlStream {
                config: Rc::new(control.clone()),
                session: None,
                paths: None,
            }),
            FilterConfig::Data => Box::new(DataStream),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

fn create_if_absent(key: &str, value: &[u8]) {
    if matches!(hostcalls::get_shared_data(key), Ok((None, None))) {
        let _ = hostcalls::set_shared_data(key, Some(value), None);
    }
}

/// Reads, changes and writes back one port's route table, retrying on concurrent updates.
/// `change` may run more than once and must only touch the table.
fn update_table<R>(port: u16, mut change: impl FnMut(&mut RouteTable) -> R) -> Result<R, String> {
    let key = table_key(port);
    for _ in 0..CAS_RETRIES {
        let (bytes, cas) =
            hostcalls::get_shared_data(&key).map_err(|s| format!("shared data {key}: {s:?}"))?;
        let mut table =
            RouteTable::decode(&bytes.unwrap_or_default()).map_err(|e| e.to_string())?;
        let result = change(&mut table);
        match hostcalls::set_shared_data(&key, Some(&table.encode()), cas) {
            Ok(()) => return Ok(result),
            Err(Status::CasMismatch) => continue,
            Err(s) => return Err(format!("shared data {key}: {s:?}")),
        }
    }
    Err(format!("shared data {key}: too many concurrent updates"))
}

/// A token unique to this control connection among all workers' VMs.
fn next_owner() -> Result<u64, String> {
    for _ in 0..CAS_RETRIES {
        let (bytes, cas) = hostcalls::get_shared_data(OWNER_COUNTER_KEY)
            .map_err(|s| format!("owner counter: {s:?}"))?;
        let current: u64 = bytes
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let next = current.wrapping_add(1).max(1);
        match hostcalls::set_shared_data(OWNER_COUNTER_KEY, Some(next.to_string().as_bytes()), cas)
        {
            Ok(()) => return Ok(next),
            Err(Status::CasMismatch) => continue,
            Err(s) => return Err(format!("owner counter: {s:?}")),
        }
    }
    Err("owner counter: too many concurrent updates".into())
}

/// An `IP:PORT` property of the connection (`source.address`, `destination.address`, ...).
fn address_property(path: Vec<&str>) -> Result<SocketAddr, String> {
    let name = path.join(".");
    let bytes = hostcalls::get_property(path)
        .map_err(|s| format!("property {name}: {s:?}"))?
        .ok_or_else(|| format!("property {name} is not set"))?;
    let text = String::from_utf8_lossy(&bytes);
    text.parse()
        .map_err(|_| format!("property {name} is not an address: {text:?}"))
}

// ----- control connections -----------------------------------------------------------------

struct ControlStream {
    config: Rc<ControlConfig>,
    session: Option<ControlSession>,
    paths: Option<EnvoyPaths>,
}

/// The control connection's data paths, as routes in shared data.
struct EnvoyPaths {
    config: Rc<ControlConfig>,
    owner: u64,
    client: IpAddr,
    /// Envoy's address as the client reached it: what passive replies name.
    local: IpAddr,
    /// The data port each open forward's route waits on.
    forwards: BTreeMap<ForwardId, u16>,
}

impl EnvoyPaths {
    /// The FTP server's data address. Only the configured server host: the core already put
    /// it in the request instead of the address the server's reply named (no SSRF); a host
    /// name is replaced by the address Envoy's control cluster actually connected to.
    fn target(&self, request: &DataPathRequest) -> Result<SocketAddr, ForwardError> {
        if request.target_host != self.config.server_host {
            return Err(ForwardError::Denied(format!(
                "data connections go to the FTP server {} only",
                self.config.server_host
            )));
        }
        let ip = match request.target_host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => address_property(vec!["upstream", "address"])
                .map_err(ForwardError::Failed)?
                .ip(),
        };
        Ok(SocketAddr::new(ip, request.target_port))
    }

    fn remove(&mut self, forward: Option<ForwardId>) {
        let ports: Vec<u16> = match forward {
            Some(id) => self.forwards.remove(&id).into_iter().collect(),
            None => std::mem::take(&mut self.forwards).into_values().collect(),
        };
        for port in ports {
            if let Err(e) = update_table(port, |t| t.remove_owned(self.owner, forward)) {
                warn!("ftp-tunnel: cannot withdraw a data route on port {port}: {e}");
            }
        }
    }
}

impl DataPaths for EnvoyPaths {
    fn open_passive(
        &mut self,
        id: ForwardId,
        request: &DataPathRequest,
    ) -> Result<SocketAddr, ForwardError> {
        let target = self.target(request)?;
        let route = Route {
            owner: Owner {
                session: self.owner,
                forward: id,
            },
            client: self.client,
            target,
        };
        let ports = self.config.data_ports.clone();
        // Spread sessions over the listeners; a port with a route pending for this client
        // is skipped (and one taken meanwhile by a concurrent session is tried no more).
        let start = (self.owner as usize).wrapping_add(id as usize) % ports.len();
        let mut tried = Vec::new();
        while let Some(port) = pick_port(&ports, start, |p| {
            tried.contains(&p)
                || hostcalls::get_shared_data(&table_key(p))
                    .ok()
                    .and_then(|(b, _)| RouteTable::decode(&b.unwrap_or_default()).ok())
                    .is_none_or(|t| t.has_client(self.client))
        }) {
            tried.push(port);
            match update_table(port, |t| t.insert(route)) {
                Ok(true) => {
                    self.forwards.insert(id, port);
                    return Ok(SocketAddr::new(self.local, port));
                }
                Ok(false) => continue,
                Err(e) => return Err(ForwardError::Failed(e)),
            }
        }
        Err(ForwardError::Failed(format!(
            "each of the {} data ports already waits for a data connection from {}",
            ports.len(),
            self.client
        )))
    }

    fn close(&mut self, id: ForwardId) {
        self.remove(Some(id));
    }

    fn note(&mut self, note: &Note) {
        info!(
            "ftp-tunnel: client {} {}: {:?} -> {:?}",
            self.client,
            note.kind.as_str(),
            note.original,
            note.replacement
        );
    }
}

impl ControlStream {
    fn start(&mut self) -> Result<(), String> {
        let client = address_property(vec!["source", "address"])?
            .ip()
            .to_canonical();
        let local = address_property(vec!["destination", "address"])?
            .ip()
            .to_canonical();
        let owner = next_owner()?;
        let mut session_config = SessionConfig::new(client, self.config.server_host.clone());
        session_config.max_line = self.config.max_line;
        self.session = Some(ControlSession::new(session_config).map_err(|e| e.to_string())?);
        self.paths = Some(EnvoyPaths {
            config: self.config.clone(),
            owner,
            client,
            local,
            forwards: BTreeMap::new(),
        });
        Ok(())
    }
}

impl Context for ControlStream {}

impl StreamContext for ControlStream {
    fn on_new_connection(&mut self) -> Action {
        match self.start() {
            Ok(()) => Action::Continue,
            Err(e) => {
                // Never relay FTP unfiltered: that would bypass every rule of the core.
                warn!("ftp-tunnel: closing a control connection: {e}");
                self.close_downstream();
                Action::Pause
            }
        }
    }

    fn on_downstream_data(&mut self, size: usize, _end: bool) -> Action {
        let bytes = self.get_downstream_data(0, size).unwrap_or_default();
        let (Some(session), Some(paths)) = (self.session.as_mut(), self.paths.as_mut()) else {
            return Action::Pause;
        };
        let out = session.from_client(&bytes, paths);
        self.set_downstream_data(0, size, &out);
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, end: bool) -> Action {
        let bytes = self.get_upstream_data(0, size).unwrap_or_default();
        let (Some(session), Some(paths)) = (self.session.as_mut(), self.paths.as_mut()) else {
            return Action::Pause;
        };
        let out = session.from_server(&bytes, end, paths);
        self.set_upstream_data(0, size, &out);
        Action::Continue
    }

    fn on_downstream_close(&mut self, _peer: PeerType) {
        if let Some(paths) = self.paths.as_mut() {
            paths.remove(None);
        }
    }

    fn on_log(&mut self) {
        // The connection is over: no route of it may outlive it.
        if let Some(paths) = self.paths.as_mut() {
            paths.remove(None);
        }
    }
}

// ----- data connections --------------------------------------------------------------------

struct DataStream;

impl DataStream {
    /// Takes the route waiting for this connection and points the ORIGINAL_DST cluster at it.
    fn route(&self) -> Result<(SocketAddr, Route), String> {
        let source = address_property(vec!["source", "address"])?;
        let port = address_property(vec!["destination", "address"])?.port();
        let route = update_table(port, |t| t.take_for_client(source.ip()))?.ok_or_else(|| {
            format!(
                "no FTP session of client {} waits for a data connection on port {port}",
                source.ip()
            )
        })?;
        let args = encode_set_filter_state(ORIGINAL_DST_KEY, &route.target.to_string());
        hostcalls::call_foreign_function(SET_FILTER_STATE, Some(&args))
            .map_err(|s| format!("{SET_FILTER_STATE}: {s:?}"))?;
        Ok((source, route))
    }
}

impl Context for DataStream {}

impl StreamContext for DataStream {
    fn on_new_connection(&mut self) -> Action {
        match self.route() {
            Ok((source, route)) => {
                info!(
                    "ftp-tunnel: data connection from {source} to {} (session {}, forward {})",
                    route.target, route.owner.session, route.owner.forward
                );
                Action::Continue
            }
            Err(e) => {
                // Without a route the ORIGINAL_DST cluster would connect back to Envoy itself:
                // stop the filter chain here and close.
                warn!("ftp-tunnel: refusing a data connection: {e}");
                self.close_downstream();
                Action::Pause
            }
        }
    }
}
