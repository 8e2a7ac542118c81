//! A TCP server on 127.0.0.1 whose accept loop runs on its own thread and serves each connection on another:
//! what the fault proxy and the token server are built on. It stops accepting when dropped.

use std::io::BufRead;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use crate::HarnessError;
use crate::http::{self, Head};

/// A running accept loop on a free loopback port.
pub(crate) struct LoopbackServer {
    host: String,
    /// The accept loop's socket (a second handle), shut down on drop to wake the loop.
    listener: TcpListener,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Binds a free port on 127.0.0.1 and hands every connection to `serve` on its own thread. `what` names
    /// the server in errors ("binding the {what}") and in thread names (`kibaship-{what}`).
    pub(crate) fn start(
        what: &str,
        serve: impl Fn(TcpStream) + Send + Sync + 'static,
    ) -> Result<Self, HarnessError> {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into(), what, serve)
    }

    /// [`LoopbackServer::start`] on a free port of `ip` (an address of this host, such as the test cluster's node
    /// address, which Pods reach).
    pub(crate) fn start_on(
        ip: std::net::IpAddr,
        what: &str,
        serve: impl Fn(TcpStream) + Send + Sync + 'static,
    ) -> Result<Self, HarnessError> {
        let listener = TcpListener::bind((ip, 0))
            .map_err(|e| HarnessError::io(format!("binding the {what} on {ip}"), e))?;
        let host = listener
            .local_addr()
            .map_err(|e| HarnessError::io(format!("reading the {what} address"), e))?
            .to_string();
        let wake = listener
            .try_clone()
            .map_err(|e| HarnessError::io(format!("cloning the {what} socket"), e))?;
        let stopping = Arc::new(AtomicBool::new(false));
        let accept_stopping = Arc::clone(&stopping);
        let thread_name = format!("kibaship-{}", what.replace(' ', "-"));
        let connection_thread_name = format!("{thread_name}-conn");
        let serve = Arc::new(serve);
        let acceptor = thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let serve = Arc::clone(&serve);
                    let _ = thread::Builder::new()
                        .name(connection_thread_name.clone())
                        .spawn(move || serve(stream));
                }
            })
            .map_err(|e| HarnessError::io(format!("starting the {what} thread"), e))?;
        Ok(LoopbackServer {
            host,
            listener: wake,
            stopping,
            acceptor: Some(acceptor),
        })
    }

    /// "IP:PORT" ("127.0.0.1:PORT" unless started on another address).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Blocks while the accept loop runs (until the process ends, as nothing else stops it).
    pub(crate) fn join(mut self) {
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag: shutting a listening socket down makes a blocked
        // accept() fail at once on Linux. (Connecting to it instead hangs here for good when the address has
        // gone meanwhile, as the test cluster's node address does at teardown.)
        let _ =
            nix::sys::socket::shutdown(self.listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

/// Reads the next request (head and body) of a connection: `None` at its end or when it is not well-framed
/// HTTP/1, and the server then closes the connection.
pub(crate) fn read_request<R: BufRead>(reader: &mut R) -> Option<(Head, Vec<u8>)> {
    let head = http::read_head(reader).ok()??;
    let kind = http::request_body_kind(&head).ok()?;
    let body = http::read_body(reader, kind).ok()?;
    Some((head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_stops_the_accept_loop_and_frees_the_port() {
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&served);
        let server = LoopbackServer::start("drop test", move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .expect("start");
        let host = server.host().to_string();
        drop(server);
        assert!(
            TcpStream::connect(&host).is_err(),
            "the port still accepts after drop"
        );
        assert_eq!(served.load(Ordering::SeqCst), 0, "drop served a connection");
    }
}
