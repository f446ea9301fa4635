//! Connections from a chosen local address (a "stranger" next to the FTP client), and the
//! check that the tunnel shut one out: closed or reset, with nothing sent.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::rawftp::RawFtp;
use crate::{Error, Result};

/// Connects to `to` from the local IPv4 address `from` (another loopback address than the
/// FTP client's own, for instance).
pub fn connect_from(from: [u8; 4], to: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect_timeout(&to.into(), timeout)?;
    Ok(socket.into())
}

/// Succeeds once the peer has closed or reset `stream` within `timeout` without sending a
/// byte; fails if bytes arrive or the connection is still open at the deadline.
pub fn closed_with_nothing_sent(stream: &mut TcpStream, timeout: Duration) -> Result<()> {
    stream.set_read_timeout(Some(timeout))?;
    let started = Instant::now();
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => {
            return Err(Error::Ftp(format!(
                "neither closed nor reset within {:?}: {error}",
                started.elapsed()
            )));
        }
    }
    if got.is_empty() {
        Ok(())
    } else {
        Err(Error::Ftp(format!("received {} bytes", got.len())))
    }
}

/// Succeeds once `ftp`'s control connection ends within `within`, after its transfer was
/// cut short: closed, or a final reply that is not a success. Fails on a `2xx` (no transfer
/// can have completed) or when nothing happens in time (a hang).
pub fn control_ends_promptly(ftp: &mut RawFtp, within: Duration) -> Result<()> {
    let started = Instant::now();
    let end = ftp.read_reply();
    if started.elapsed() >= within {
        return Err(Error::Ftp(format!(
            "the control connection hung for {:?}: {end:?}",
            started.elapsed()
        )));
    }
    match end {
        Ok(reply) if reply.class() == 2 => Err(Error::Ftp(format!(
            "a success reply although the transfer was cut short: {reply:?}"
        ))),
        _ => Ok(()),
    }
}
