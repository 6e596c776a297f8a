//! The HTTP server: connections accepted and served by hyper (HTTP/1.1) with the bounds every
//! route shares, and a stop that lets requests in flight finish.
//!
//! `axum::serve` sets no header or idle timeout and waits for ever on a graceful stop, so the
//! service runs its own accept loop over hyper, as axum's hyper examples do:
//! - **header timeout**: a request's headers must have arrived `header` after its first byte
//!   (after the connection opened, for the first request), so a client that trickles headers
//!   (slowloris) or opens a connection and sends nothing loses it;
//! - **idle timeout**: a kept-alive connection between requests (no request in progress, no
//!   byte moving) is closed after `idle`;
//! - neither bounds a request in progress, from its headers to its answer's last byte: an
//!   upload or a streamed answer takes as long as it takes;
//! - on stop, the listener closes at once; each connection finishes the request it is serving
//!   and closes (an idle one closes at once); [`Draining::finish`] gives up on those still busy
//!   at the deadline.
//!
//! hyper's own `header_read_timeout` is one timer for both bounds (it starts when a kept-alive
//! connection goes idle), hence a watch of our own: the socket tells it when bytes move, the
//! service when an exchange begins and (through the answer's body) ends.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::TransportArgs;
use crate::http::in_flight::hold;

/// How long the accept loop pauses after a failed accept (out of file descriptors, say).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The bounds on a connection without a request in progress.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

impl Timeouts {
    pub fn of(transport: &TransportArgs) -> Timeouts {
        Timeouts {
            header: transport.header_timeout,
            idle: transport.idle_timeout,
        }
    }

    /// How often a connection checks its bounds: a connection overstays by at most this.
    fn check_every(&self) -> Duration {
        (self.header.min(self.idle) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// Accepts connections and serves `router` on them until `stop` resolves; then closes the
/// listener, tells every connection to finish, and answers them, draining.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    stop: impl Future<Output = ()>,
) -> Draining {
    let (stopping, stop_seen) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let connection = serve_connection(stream, router.clone(), timeouts, stop_seen.clone());
                    connections.spawn(connection);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
            },
            () = &mut stop => break,
        }
        // The set keeps open connections only.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    // No receiver left means no connection left to tell.
    let _ = stopping.send(true);
    Draining {
        connections,
        _stopping: stopping,
    }
}

/// The connections of a server that no longer accepts any, finishing their requests.
pub struct Draining {
    connections: JoinSet<()>,
    _stopping: watch::Sender<bool>,
}

impl Draining {
    /// Waits until every connection has closed, `deadline` passes or `hurry` resolves (a
    /// second signal, say), then closes those still open, abandoning their requests. Answers
    /// how many were abandoned.
    pub async fn finish(mut self, deadline: Instant, hurry: impl Future<Output = ()>) -> usize {
        let connections = &mut self.connections;
        let drained = async move { while connections.join_next().await.is_some() {} };
        tokio::select! {
            () = drained => return 0,
            () = tokio::time::sleep_until(deadline.into()) => {}
            () = hurry => {}
        }
        let abandoned = self.connections.len();
        self.connections.shutdown().await;
        abandoned
    }
}

/// Serves one connection until it closes, its bounds close it, or a stop has let it finish.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
    });
    let service = TowerToHyperService::new(exchanges(router, Arc::clone(&activity)));
    let connection = http1::Builder::new()
        // The watch below bounds headers; hyper's timer would also bound idleness with it.
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let mut check = tokio::time::interval(timeouts.check_every());
    let mut stopping = false;
    loop {
        tokio::select! {
            outcome = connection.as_mut() => {
                if let Err(error) = outcome {
                    tracing::debug!(%error, "connection ended");
                }
                return;
            }
            _ = check.tick() => if let Some(bound) = activity.overstayed(timeouts) {
                tracing::debug!(bound, "connection closed");
                return;
            },
            _ = stop.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The service of one connection: `router`, with each exchange counted on the connection
/// from its request's headers to its answer's last byte.
fn exchanges(
    router: Router,
    activity: Arc<Activity>,
) -> impl tower::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    tower::service_fn(move |request: Request<Incoming>| {
        let exchange = Exchange::begin(&activity);
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(Body::new)).await?;
            Ok(hold(response, exchange))
        }
    })
}

/// What a connection is doing, as its bounds need it: milliseconds since it opened. Only the
/// connection's own task touches it (hyper polls the socket, the service and the answer's
/// body there), so the atomics are for `Send`, not for races.
struct Activity {
    opened: Instant,
    /// Exchanges in progress: from a request's headers to its answer's last byte.
    exchanges: AtomicUsize,
    /// When a byte last moved either way.
    last_io: AtomicU64,
    /// When the headers being read began, plus one (0: none are being read).
    head_began: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            exchanges: AtomicUsize::new(0),
            last_io: AtomicU64::new(0),
            // The first request's headers are due from the opening.
            head_began: AtomicU64::new(1),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn moved(&self, bytes: usize, read: bool) {
        if bytes == 0 {
            return;
        }
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if read && self.exchanges.load(Ordering::Relaxed) == 0 {
            // The first byte of the next request's headers (a later one changes nothing).
            let _ = self.head_began.compare_exchange(
                0,
                now.saturating_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Which bound, if any, the connection has overstayed.
    fn overstayed(&self, timeouts: Timeouts) -> Option<&'static str> {
        if self.exchanges.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match self.head_began.load(Ordering::Relaxed) {
            0 => {
                let idle = now.saturating_sub(self.last_io.load(Ordering::Relaxed));
                (idle > millis(timeouts.idle)).then_some("idle timeout")
            }
            began => {
                let reading = now.saturating_sub(began - 1);
                (reading > millis(timeouts.header)).then_some("header timeout")
            }
        }
    }
}

/// One exchange in progress on a connection; it ends when dropped with its answer's body.
struct Exchange(Arc<Activity>);

impl Exchange {
    fn begin(activity: &Arc<Activity>) -> Exchange {
        activity.exchanges.fetch_add(1, Ordering::Relaxed);
        activity.head_began.store(0, Ordering::Relaxed);
        Exchange(Arc::clone(activity))
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // Idle from the answer's end.
        self.0.last_io.store(self.0.now(), Ordering::Relaxed);
        self.0.exchanges.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's socket, telling the connection's activity when bytes move.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        this.activity.moved(buf.filled().len() - before, true);
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, data);
        if let Poll::Ready(Ok(written)) = polled {
            this.activity.moved(written, false);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, data);
        if let Poll::Ready(Ok(written)) = polled {
            this.activity.moved(written, false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
