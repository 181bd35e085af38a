//! Dialling a peer for an outbox: resolve and connect on a short-lived thread, then hand the
//! connection to an IO thread and to the outbox.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use crate::address::RpcAddress;
use crate::connection::Direction;
use crate::error::RpcError;
use crate::outbox::Outbox;

use super::EnvShared;

/// Connects `outbox` on a short-lived thread (resolving a name and connecting both block),
/// then hands the connection to an IO thread. A failure fails every ask queued for the peer
/// with the cause; nothing is retried.
pub(super) fn connect_in_background(env: Arc<EnvShared>, outbox: Arc<Outbox>) {
    let name = format!("{}-rpc-connect", env.name);
    let for_thread = Arc::clone(&outbox);
    let env_for_thread = Arc::clone(&env);
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn(move || connect(&env_for_thread, &for_thread));
    if let Err(e) = spawned {
        let error = RpcError::ConnectFailed {
            peer: outbox.address.host_port(),
            reason: format!("cannot start a connect thread: {e}"),
        };
        fail_outbox(&env, &outbox, &error);
    }
}

fn connect(env: &Arc<EnvShared>, outbox: &Arc<Outbox>) {
    match open_stream(&outbox.address, env.connect_timeout) {
        Ok((stream, peer)) => {
            let stream = mio::net::TcpStream::from_std(stream);
            let direction = Direction::Outbound {
                outbox_route: outbox.route,
            };
            let remote = Some(Arc::new(outbox.address.clone()));
            let (conn, io) = env.new_connection(stream, peer, direction, remote);
            io.add(Arc::clone(&conn));
            outbox.connected(conn);
        }
        Err(error) => {
            log::warn!("{error}");
            fail_outbox(env, outbox, &error);
        }
    }
}

fn fail_outbox(env: &Arc<EnvShared>, outbox: &Arc<Outbox>, error: &RpcError) {
    outbox.failed(error);
    env.forget_outbox(outbox.route);
    env.registry.fail_route(outbox.route, error);
}

fn open_stream(
    address: &RpcAddress,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), RpcError> {
    let failed = |reason: String| RpcError::ConnectFailed {
        peer: address.host_port(),
        reason,
    };
    let candidates: Vec<SocketAddr> = (address.socket_host(), address.port())
        .to_socket_addrs()
        .map_err(|e| failed(e.to_string()))?
        .collect();
    let mut last = failed("the host name resolved to no address".into());
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => {
                let configured = stream
                    .set_nodelay(true)
                    .and_then(|()| stream.set_nonblocking(true));
                match configured {
                    Ok(()) => return Ok((stream, candidate)),
                    Err(e) => last = failed(e.to_string()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = failed(format!(
                    "Connecting to {} timed out ({} ms)",
                    address.host_port(),
                    timeout.as_millis()
                ));
            }
            Err(e) => last = failed(e.to_string()),
        }
    }
    Err(last)
}
