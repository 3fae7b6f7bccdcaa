//! The accept loop: what `axum::serve` with graceful shutdown does (accept, serve each
//! connection on its own task, and on the shutdown signal stop accepting, let every
//! connection finish the request it is answering, and return once all are closed), with
//! hyper's HTTP/1 connections built here, so that they can be configured.
//!
//! The one setting changed from `axum::serve`'s: half-closed connections are allowed. By
//! default hyper reads the socket once more while a request is being answered, to notice a
//! client that hangs up mid-request; that read finds hyper's read buffer still shared with
//! the request's head and body (they are slices of it), so it allocates a fresh 8 KiB buffer
//! for every request, and it is one more `recv` (which finds nothing) per request. With
//! half-closes allowed, a client that hangs up is noticed when its answer is written instead:
//! a handler runs to its end either way once its write is with the storage (an accepted write
//! is applied whether or not its client is still there).
//!
//! It also counts the open connections, for the embedded store's log writer, which stops
//! waiting for more writes to batch once every connection has one queued.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish its request in progress (idle ones are closed) and returns once all are
/// closed. `connections` counts the open connections.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    connections: Arc<AtomicUsize>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Closed (its receiver dropped) once `shutdown` completes.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    // Each connection's task holds a receiver: all dropped once every connection is closed.
    let (close_tx, close_rx) = watch::channel(());
    let mut builder = http1::Builder::new();
    builder.half_close(true);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = signal_tx.closed() => break,
        };
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        let open = Open::new(&connections);
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            // A connection that fails (the client went away, a malformed request) is closed;
            // there is nobody to tell.
            tokio::select! {
                _ = connection.as_mut() => {}
                () = signal_tx.closed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
}

/// One open connection, counted while it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(connections: &Arc<AtomicUsize>) -> Self {
        connections.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(connections))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// After a failed `accept`: a connection reset or aborted before it was accepted is skipped;
/// anything else (out of file descriptors, most likely) is reported and retried in a second,
/// as `axum::serve` does.
async fn accept_failed(error: &io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    eprintln!("profile-service: accept failed: {error}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
