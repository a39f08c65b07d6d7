//! The listening side of `serve`: one `SO_REUSEPORT` socket per worker,
//! held by one process alone, and enough file descriptors for the
//! connections it will accept.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpSocket;

/// The workers' sockets, and the address lock that keeps a second instance
/// off the address while they serve.
pub struct WorkerSockets {
    pub sockets: Vec<TcpSocket>,
    pub(super) lock: AddressLock,
}

/// One listening socket per worker, all bound to `address` with
/// `SO_REUSEPORT`, so that the kernel spreads new connections evenly over
/// the workers (nginx's `reuseport`). With one shared socket, whichever
/// worker woke first accepted most of a burst of connections and the other
/// core idled: throughput varied by a third from one load run to the next.
/// Port 0 becomes the port the first socket got.
///
/// `SO_REUSEPORT` would also let a second instance bind the same address and
/// silently take part of its traffic, so the address must be free first (a
/// plain bind, which fails if anything listens there), and the address lock
/// held for as long as it is served closes the race of two instances
/// starting at once.
pub fn bind_workers(address: SocketAddr, workers: usize) -> io::Result<WorkerSockets> {
    if address.port() != 0 {
        new_socket(address)?.bind(address).map_err(|error| match error.kind() {
            io::ErrorKind::AddrInUse => io::Error::new(
                io::ErrorKind::AddrInUse,
                "the address is in use: another process (maybe another alliance-glance) listens on it",
            ),
            _ => error,
        })?;
    }
    let count = workers.max(1);
    let mut sockets: Vec<TcpSocket> = Vec::with_capacity(count);
    let mut address = address;
    for _ in 0..count {
        let socket = new_socket(address)?;
        socket.set_reuseport(true)?;
        socket.bind(address)?;
        address = socket.local_addr()?;
        sockets.push(socket);
    }
    let lock = AddressLock::take(address)?;
    Ok(WorkerSockets { sockets, lock })
}

fn new_socket(address: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Connections of an earlier instance in TIME_WAIT do not block a restart.
    socket.set_reuseaddr(true)?;
    Ok(socket)
}

/// A Unix socket bound to an abstract name made of the listen address, for
/// the life of the serving: the kernel frees it when the process ends, so
/// it is never stale. Abstract names are per network namespace, as ports are.
pub(super) struct AddressLock {
    _socket: std::os::unix::net::UnixDatagram,
}

impl AddressLock {
    fn take(address: SocketAddr) -> io::Result<Self> {
        use std::os::linux::net::SocketAddrExt;
        let name = std::os::unix::net::SocketAddr::from_abstract_name(format!("alliance-glance/{address}"))?;
        let socket = std::os::unix::net::UnixDatagram::bind_addr(&name).map_err(|error| match error.kind() {
            io::ErrorKind::AddrInUse => io::Error::new(
                io::ErrorKind::AddrInUse,
                "another alliance-glance already serves this address",
            ),
            _ => error,
        })?;
        Ok(AddressLock { _socket: socket })
    }
}

/// Raises the soft limit on open files to the hard one, as a server that
/// holds many connections must (nginx's `worker_rlimit_nofile`); returns
/// the soft limit in force.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => Ok(raised),
        Err(error) => {
            tracing::warn!(%error, soft, hard, "cannot raise the open-file limit");
            Ok(soft)
        }
    }
}

/// Client connections allowed with `open_files` descriptors: at most half
/// of them, the rest being for upstream connections, listening sockets and
/// files.
pub fn connection_cap(configured: usize, open_files: u64) -> usize {
    let half = usize::try_from(open_files / 2).unwrap_or(usize::MAX);
    configured.min(half).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_connections_at_half_the_open_files() {
        assert_eq!(connection_cap(10_000, 20_000), 10_000);
        assert_eq!(connection_cap(10_000, 256), 128);
        assert_eq!(connection_cap(10_000, 1), 1);
        assert_eq!(connection_cap(10_000, u64::MAX), 10_000);
    }

    #[test]
    fn a_served_address_cannot_be_bound_again() {
        let first = bind_workers("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        let address = first.sockets[0].local_addr().unwrap();
        assert_eq!(first.sockets[1].local_addr().unwrap(), address);
        // Bound by the lock alone (the sockets here do not listen).
        let error = bind_workers(address, 2).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert!(error.to_string().contains("another alliance-glance"), "{error}");
        drop(first);
        bind_workers(address, 2).unwrap();
    }
}
