//! The pending data routes of one data listener, as stored in Envoy's shared data.
//!
//! Envoy runs one wasm VM per worker thread and a data connection may land on another worker
//! than its control connection, so routes live in proxy-wasm shared data (process-wide, per
//! `vm_id`), one key per data port, updated with compare-and-swap. A route says: the next
//! data connection to this port *from this client address* goes to this address of the FTP
//! server. The data filter takes (removes) it when that connection arrives, so each route
//! carries one connection, and a connection from any other address finds none and is closed.
//! Keying the table by port (not by client) keeps shared data bounded: Envoy has no way to
//! delete a key, only to empty it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The shared-data key of a data port's route table.
pub fn table_key(port: u16) -> String {
    format!("ftp-tunnel/routes/{port}")
}

/// The shared-data key of the counter that hands out session owner tokens.
pub const OWNER_COUNTER_KEY: &str = "ftp-tunnel/next-owner";

/// Which control session (and which of its forwards) a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Unique per control connection across all workers (from [`OWNER_COUNTER_KEY`]).
    pub session: u64,
    /// The core's forward id within that session.
    pub forward: u32,
}

/// One pending data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Who asked for it.
    pub owner: Owner,
    /// The only address the data connection may come from (the FTP client).
    pub client: IpAddr,
    /// Where it goes: the FTP server's data port.
    pub target: SocketAddr,
}

/// Why a stored table could not be read (a bug or foreign writer; the table is then
/// treated as empty for reading and never silently overwritten with a guess).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed route table line {0:?}")]
pub struct TableError(pub String);

/// The routes pending on one data port. At most one per client address: that is what lets
/// the data filter pick the route from the connection's source address alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Reads a table as stored (an absent or empty value is an empty table).
    pub fn decode(bytes: &[u8]) -> Result<Self, TableError> {
        let text = std::str::from_utf8(bytes).map_err(|_| TableError("<not UTF-8>".into()))?;
        let mut routes = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let bad = || TableError(line.to_owned());
            let mut f = line.split(' ');
            let (Some(session), Some(forward), Some(client), Some(target), None) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                return Err(bad());
            };
            routes.push(Route {
                owner: Owner {
                    session: session.parse().map_err(|_| bad())?,
                    forward: forward.parse().map_err(|_| bad())?,
                },
                client: client.parse().map_err(|_| bad())?,
                target: target.parse().map_err(|_| bad())?,
            });
        }
        Ok(Self { routes })
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Number of pending routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True if no route is pending.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// True if a route for `client` is pending here (the port is then busy for it).
    pub fn has_client(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.routes.iter().any(|r| r.client == client)
    }

    /// Adds a route; refused (false) if one for the same client is already pending.
    pub fn insert(&mut self, route: Route) -> bool {
        if self.has_client(route.client) {
            return false;
        }
        self.routes.push(Route {
            client: route.client.to_canonical(),
            ..route
        });
        true
    }

    /// Takes the route for a data connection from `client`, if there is one.
    pub fn take_for_client(&mut self, client: IpAddr) -> Option<Route> {
        let client = client.to_canonical();
        let i = self.routes.iter().position(|r| r.client == client)?;
        Some(self.routes.remove(i))
    }

    /// Removes the routes of `session` (all of them, or only forward `forward`); true if any.
    pub fn remove_owned(&mut self, session: u64, forward: Option<u32>) -> bool {
        let before = self.routes.len();
        self.routes.retain(|r| {
            r.owner.session != session || forward.is_some_and(|f| f != r.owner.forward)
        });
        self.routes.len() != before
    }
}

impl fmt::Display for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.routes {
            writeln!(
                f,
                "{} {} {} {}",
                r.owner.session, r.owner.forward, r.client, r.target
            )?;
        }
        Ok(())
    }
}

/// Picks the data port for a new route for `client`: the first port, starting at `start`
/// (rotated so that sessions spread over the listeners), whose table has no route pending
/// for `client`. `None` when every port already has one for it.
pub fn pick_port(
    ports: &[u16],
    start: usize,
    mut busy_for_client: impl FnMut(u16) -> bool,
) -> Option<u16> {
    (0..ports.len())
        .map(|k| ports[(start + k) % ports.len()])
        .find(|&p| !busy_for_client(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(session: u64, forward: u32, client: &str, target: &str) -> Route {
        Route {
            owner: Owner { session, forward },
            client: client.parse().unwrap(),
            target: target.parse().unwrap(),
        }
    }

    #[test]
    fn round_trips_and_takes_by_client() {
        let mut t = RouteTable::default();
        assert!(t.insert(route(1, 1, "10.0.0.1", "127.0.0.1:40000")));
        assert!(t.insert(route(2, 7, "::ffff:10.0.0.9", "[::1]:40001")));
        // One pending route per client per port.
        assert!(!t.insert(route(3, 1, "10.0.0.1", "127.0.0.1:40002")));
        let stored = t.encode();
        let mut back = RouteTable::decode(&stored).unwrap();
        assert_eq!(back, t);
        assert!(back.has_client("10.0.0.9".parse().unwrap()));
        assert_eq!(back.take_for_client("10.0.0.7".parse().unwrap()), None);
        let taken = back.take_for_client("10.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(taken.target, "127.0.0.1:40000".parse().unwrap());
        // Taken once: a second connection from the same client finds nothing.
        assert_eq!(back.take_for_client("10.0.0.1".parse().unwrap()), None);
        assert_eq!(back.len(), 1);
    }

    #[test]
    fn removes_by_owner() {
        let mut t = RouteTable::default();
        t.insert(route(1, 1, "10.0.0.1", "127.0.0.1:1"));
        t.insert(route(1, 2, "10.0.0.2", "127.0.0.1:2"));
        t.insert(route(2, 1, "10.0.0.3", "127.0.0.1:3"));
        assert!(t.remove_owned(1, Some(2)));
        assert!(!t.remove_owned(1, Some(2)));
        assert_eq!(t.len(), 2);
        assert!(t.remove_owned(1, None));
        assert_eq!(t.len(), 1);
        assert!(RouteTable::decode(b"").unwrap().is_empty());
    }

    #[test]
    fn refuses_malformed_tables() {
        for bad in [
            &b"1 2 10.0.0.1"[..],
            b"1 2 10.0.0.1 127.0.0.1:1 extra",
            b"x 2 10.0.0.1 127.0.0.1:1",
            b"1 2 nohost 127.0.0.1:1",
            b"\xff",
        ] {
            assert!(RouteTable::decode(bad).is_err());
        }
    }

    #[test]
    fn picks_free_ports_in_rotation() {
        let ports = [30000, 30001, 30002];
        assert_eq!(pick_port(&ports, 1, |_| false), Some(30001));
        assert_eq!(pick_port(&ports, 2, |p| p == 30002), Some(30000));
        assert_eq!(pick_port(&ports, 0, |_| true), None);
    }
}
