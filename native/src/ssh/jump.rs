//! `ProxyJump` / `-J`: the SSH connection to the target runs inside a `direct-tcpip`
//! channel of a connection to the jump host, as `ssh -J` does (no `ssh -W` process).

use std::sync::Arc;

use russh::ChannelStream;
use russh::client::Msg;

use super::client::SshConnection;
use super::error::SshError;
use super::options::SshOptions;

/// Connects to `jump` (itself possibly through its own jump host) and opens a channel to
/// host:port; the connection must outlive the stream.
pub(crate) async fn open(
    jump: &SshOptions,
    host: &str,
    port: u16,
) -> Result<(Arc<SshConnection>, ChannelStream<Msg>), SshError> {
    let via = format!("{}@{}:{}", jump.user, jump.host, jump.port);
    let wrap = |source: SshError| SshError::Jump {
        via: via.clone(),
        source: Box::new(source),
    };
    let conn = Box::pin(SshConnection::connect(jump)).await.map_err(wrap)?;
    let originator = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let channel = conn
        .open_direct_tcpip(host, port, originator)
        .await
        .map_err(wrap)?;
    tracing::debug!(%via, host, port, "connected through jump host");
    Ok((conn, channel.into_stream()))
}
