//! The one server: plain http and https through the same accept loop, so every bound holds
//! for both. Per connection: a slot of the global cap and one of its client address's cap
//! (taken at accept, before any byte is read), the TLS handshake under a deadline, hyper's
//! header timeout, a minimum rate for the request body, an idle timeout for writing the
//! answer; on shutdown a drain of at most [`DRAIN_TIMEOUT`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::response::Response;
use axum::Router;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Metrics, Shared};

/// How long a client may take to send a request's headers (a connection that dribbles them,
/// slowloris-style, is closed), and how long an idle keep-alive connection is kept.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a request's start line and headers may take (hyper answers 431 beyond it).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Connections served at once; beyond it new ones are closed at accept.
pub const MAX_CONNECTIONS: usize = 10_000;
/// How long a shutdown waits for requests in flight (a client that never reads its answer
/// must not keep the process from stopping).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS client may take from connecting to a finished handshake (the header
/// timeout only starts after it). A real handshake takes a few round trips.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body may keep the bridge waiting this long in all, plus 1 s per
/// [`BODY_MIN_BYTES_PER_SECOND`] bytes it has sent. Only the time spent waiting for the
/// client counts (not an upstream that is slow to take a proxied upload), so a body must
/// come at 1 KiB/s on average after a 10 s head start: one byte every 5 s is cut off after
/// some 10 s, a 30 KiB ACS post over a poor school uplink has minutes.
pub const BODY_READ_GRACE: Duration = Duration::from_secs(10);
/// See [`BODY_READ_GRACE`].
pub const BODY_MIN_BYTES_PER_SECOND: u64 = 1024;
/// How long a write of the answer may make no progress at all (the client's receive window
/// stays shut: it does not read) before the connection is closed. Only a stalled write
/// counts: an idle WebSocket tunnel or a slow but moving download is never cut.
pub const WRITE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub use crate::config::DEFAULT_MAX_CONNECTIONS_PER_CLIENT;
/// Refused connections are logged at most once in this interval (with how many there were):
/// a flood must not become a flood of log lines.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The certificate the https listener presents; [`TlsCertificate::replace`] swaps it for the
/// connections that start from then on (open ones keep theirs).
pub struct TlsCertificate(arc_swap::ArcSwap<rustls::ServerConfig>);

impl TlsCertificate {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        TlsCertificate(arc_swap::ArcSwap::new(config))
    }

    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        self.0.store(config);
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.0.load_full())
    }
}

/// The HTTP/1 settings of every connection, plain or TLS.
fn http1_builder() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
}

/// Serves until the shutdown future resolves (SIGINT/SIGTERM in `serve`), then lets the
/// requests in flight finish, for at most [`DRAIN_TIMEOUT`]. https when `shared` holds a
/// certificate ([`Shared::tls`]), else plain http. The per-address cap and the trusted
/// proxies are read from the config in force at each accept, so a reload changes them. The
/// peer address is given to the handlers as `ConnectInfo` (it feeds X-Forwarded-For and
/// trust decisions).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_on(listener, shared, router, shutdown, Listener::Public).await
}

/// Which of the bridge's listeners an accept loop serves. The public one speaks TLS when the
/// config has a certificate and believes `server.trusted_proxies` (a proxy's connections are
/// not capped as one client's). The admin listener is always plain http (it listens on
/// loopback; the certificate is the public name's) and believes no proxy: its per-client
/// bounds count the peer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Public,
    Admin,
}

/// [`serve`] with the transport chosen: the same accept loop, caps and deadlines for every
/// listener the bridge has.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    which: Listener,
) -> io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_client = Arc::new(ClientSlots::default());
    let metrics = shared.current().metrics.clone();
    let mut refusals = RefusalLog::default();
    // Every connection task holds a receiver; shutdown waits until all are gone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let builder = http1_builder();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or memory: wait instead of spinning. A connection
                    // that was reset before it was taken is that connection's problem only.
                    if matches!(e.raw_os_error(), Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)) {
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connection_refused("global");
            refusals.note(peer.ip(), "global", || {
                format!("{MAX_CONNECTIONS} connections open: refusing more")
            });
            continue;
        };
        let client_slot = {
            let state = shared.current();
            let settings = &state.settings;
            let ip = peer.ip().to_canonical();
            // A trusted proxy carries many clients on its connections: it is not one client.
            let trusted_proxy = which == Listener::Public && settings.trusted_proxies.iter().any(|c| c.contains(ip));
            let exempt = settings.max_connections_per_client == 0 || trusted_proxy;
            if exempt {
                None
            } else {
                let key = super::rate_limit::counted_as(ip);
                match per_client.take(key, settings.max_connections_per_client) {
                    Some(s) => Some(s),
                    None => {
                        metrics.connection_refused("per_client");
                        let cap = settings.max_connections_per_client;
                        refusals.note(key, "per_client", || {
                            format!("{cap} connections open from this client address (server.max_connections_per_client): refusing more")
                        });
                        continue;
                    }
                }
            }
        };
        let _ = tcp.set_nodelay(true);
        let io = WriteIdle::new(tcp, WRITE_IDLE_TIMEOUT, metrics.clone());
        let service = connection_service(router.clone(), peer, metrics.clone());
        let tls = match which {
            Listener::Public => shared.tls().map(TlsCertificate::acceptor),
            Listener::Admin => None,
        };
        let (builder, metrics, mut stop) = (builder.clone(), metrics.clone(), stop_rx.clone());
        tokio::spawn(async move {
            match tls {
                None => drive(&builder, hyper_util::rt::TokioIo::new(io), service, &mut stop).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io));
                    let stream = tokio::select! {
                        done = handshake => done,
                        _ = stop.changed() => return,
                    };
                    match stream {
                        Ok(Ok(stream)) => {
                            drive(&builder, hyper_util::rt::TokioIo::new(stream), service, &mut stop).await
                        }
                        Ok(Err(e)) => tracing::debug!(peer = %peer.ip(), "TLS handshake failed: {e}"),
                        Err(_) => {
                            metrics.connection_timeout("tls_handshake");
                            tracing::debug!(peer = %peer.ip(), "no TLS handshake within {}s", TLS_HANDSHAKE_TIMEOUT.as_secs());
                        }
                    }
                }
            }
            drop((slot, client_slot));
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, stop_tx.closed()).await.is_err() {
        tracing::warn!(
            "{} connection(s) still busy {}s after shutdown began: closing them",
            stop_tx.receiver_count(),
            DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}

/// Serves one connection until it ends or the shutdown begins (then its request in flight
/// may finish). An upgraded connection (WebSocket) ends here too: the tunnel lives on in the
/// proxy's own task, outside the connection caps.
async fn drive<I, S>(
    builder: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = axum::body::Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = builder.serve_connection(io, service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The accept errors that mean the process is out of a resource (Linux numbers).
mod libc_errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// The router as one connection's hyper service, with the peer address in every request and
/// the request body under its minimum rate.
fn connection_service(
    router: Router,
    peer: SocketAddr,
    metrics: Arc<Metrics>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let metrics = metrics.clone();
        let mut req = req.map(|body| axum::body::Body::new(PacedBody::new(body, metrics)));
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let mut router = router.clone();
        async move { tower_service::Service::call(&mut router, req).await }
    })
}

/// Open connections per client key (an IPv4 address, an IPv6 /64).
#[derive(Default)]
struct ClientSlots {
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection's place in its client's count, given back when the connection ends.
struct ClientSlot {
    slots: Arc<ClientSlots>,
    key: IpAddr,
}

impl ClientSlots {
    fn take(self: &Arc<Self>, key: IpAddr, cap: u32) -> Option<ClientSlot> {
        // A poisoned lock only means a thread panicked mid-update: the counts are still counts.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Logs refused connections once per [`REFUSAL_LOG_INTERVAL`], with the count since the
/// last line (the accept loop is one task: no lock needed).
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    fn note(&mut self, client: IpAddr, reason: &'static str, message: impl FnOnce() -> String) {
        self.unlogged += 1;
        if self.last.is_some_and(|t| t.elapsed() < REFUSAL_LOG_INTERVAL) {
            return;
        }
        tracing::warn!(
            client = %client,
            reason,
            refused = self.unlogged,
            "{} (refused {} connection(s) since the last such line)",
            message(),
            self.unlogged
        );
        self.last = Some(Instant::now());
        self.unlogged = 0;
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("the request body came slower than {BODY_MIN_BYTES_PER_SECOND} bytes/s after {}s", BODY_READ_GRACE.as_secs())]
    TooSlow,
    #[error(transparent)]
    Read(#[from] hyper::Error),
}

/// A request body that fails once the client has kept the bridge waiting longer than
/// [`BODY_READ_GRACE`] plus one second per [`BODY_MIN_BYTES_PER_SECOND`] bytes received.
/// hyper has no deadline for bodies of its own; its header timeout ends with the headers.
struct PacedBody<B> {
    inner: B,
    grace: Duration,
    min_bytes_per_second: u64,
    received: u64,
    /// Time spent waiting for the client in the periods that have ended.
    waited: Duration,
    /// When the current wait began (the inner body is pending).
    waiting_since: Option<tokio::time::Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    failed: bool,
    metrics: Arc<Metrics>,
}

impl<B> PacedBody<B> {
    fn new(inner: B, metrics: Arc<Metrics>) -> Self {
        Self::with_pace(inner, BODY_READ_GRACE, BODY_MIN_BYTES_PER_SECOND, metrics)
    }

    fn with_pace(inner: B, grace: Duration, min_bytes_per_second: u64, metrics: Arc<Metrics>) -> Self {
        PacedBody {
            inner,
            grace,
            min_bytes_per_second: min_bytes_per_second.max(1),
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
            failed: false,
            metrics,
        }
    }

    /// The waiting the body has earned so far.
    fn allowance(&self) -> Duration {
        self.grace + Duration::from_secs_f64(self.received as f64 / self.min_bytes_per_second as f64)
    }

    fn too_slow(&mut self) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        if !self.failed {
            self.failed = true;
            self.metrics.connection_timeout("request_body");
            tracing::debug!(received = self.received, "request body too slow: cut off");
        }
        Poll::Ready(Some(Err(RequestBodyError::TooSlow)))
    }
}

impl<B> Body for PacedBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.failed {
            // Never a clean end after a failure: a consumer would take a cut body as whole.
            return Poll::Ready(Some(Err(RequestBodyError::TooSlow)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(f)) = &frame {
                    if let Some(data) = f.data_ref() {
                        this.received += data.len() as u64;
                    }
                }
                Poll::Ready(frame.map(|f| f.map_err(RequestBodyError::Read)))
            }
            Poll::Pending => {
                let now = tokio::time::Instant::now();
                let since = *this.waiting_since.get_or_insert(now);
                let Some(left) = this.allowance().checked_sub(this.waited) else {
                    return this.too_slow();
                };
                let deadline = since + left;
                if deadline <= now {
                    return this.too_slow();
                }
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.too_slow(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.failed && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection whose writes fail when they make no progress for `limit`: a client that
/// does not read its answer (its receive window stays shut) gives its connection back.
/// Reads are left alone: hyper bounds the headers, [`PacedBody`] the body, and an idle
/// upgraded tunnel may stay quiet as long as it likes.
struct WriteIdle<T> {
    inner: T,
    limit: Duration,
    /// Armed when a write first returns pending; disarmed by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
    metrics: Arc<Metrics>,
}

impl<T> WriteIdle<T> {
    fn new(inner: T, limit: Duration, metrics: Arc<Metrics>) -> Self {
        WriteIdle {
            inner,
            limit,
            stalled: None,
            armed: false,
            metrics,
        }
    }

    fn guard<R>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match polled {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + self.limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !self.armed {
                    timer.as_mut().reset(deadline);
                    self.armed = true;
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.metrics.connection_timeout("response_write");
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no write progress for {}s", self.limit.as_secs()),
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteIdle<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteIdle<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect<B: Body<Data = Bytes> + Unpin>(body: B) -> Result<Bytes, B::Error> {
        Ok(body.collect().await?.to_bytes())
    }

    /// The pacing of the server, on a scale of milliseconds: 200 ms of grace, 1 KiB/s.
    fn paced<B>(body: B) -> PacedBody<B> {
        PacedBody::with_pace(body, Duration::from_millis(200), 1024, Arc::default())
    }

    /// A body that yields `chunks` with `gap` between them, then ends.
    struct Trickle {
        chunks: std::collections::VecDeque<Bytes>,
        gap: Duration,
        next: Pin<Box<tokio::time::Sleep>>,
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = hyper::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
            if self.chunks.is_empty() {
                return Poll::Ready(None);
            }
            match self.next.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    let gap = self.gap;
                    self.next.as_mut().reset(tokio::time::Instant::now() + gap);
                    let chunk = self.chunks.pop_front().unwrap_or_default();
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
            }
        }
    }

    fn trickle(chunks: usize, size: usize, gap: Duration) -> Trickle {
        Trickle {
            chunks: (0..chunks).map(|_| Bytes::from(vec![b'x'; size])).collect(),
            gap,
            next: Box::pin(tokio::time::sleep(gap)),
        }
    }

    #[tokio::test]
    async fn a_trickle_is_cut_off_after_the_grace() {
        // One byte every 50 ms: far below 1 KiB/s.
        let started = Instant::now();
        let err = collect(paced(trickle(1000, 1, Duration::from_millis(50))))
            .await
            .expect_err("too slow");
        assert!(matches!(err, RequestBodyError::TooSlow), "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_body_above_the_minimum_rate_gets_through() {
        // 16 KiB in 1 KiB chunks, one every 50 ms (20 KiB/s), 800 ms in all: four times the
        // grace alone.
        let body = paced(trickle(16, 1024, Duration::from_millis(50)));
        assert_eq!(collect(body).await.expect("whole").len(), 16 * 1024);
        // A pause longer than the grace, once enough has come to pay for it (2 KiB: 2 s).
        let mut body = trickle(3, 2048, Duration::from_millis(20));
        body.gap = Duration::from_millis(400);
        assert_eq!(collect(paced(body)).await.expect("whole").len(), 3 * 2048);
    }

    #[tokio::test]
    async fn after_a_failure_the_body_never_ends_cleanly() {
        let mut body = paced(trickle(10, 1, Duration::from_secs(5)));
        assert!(matches!(body.frame().await, Some(Err(RequestBodyError::TooSlow))));
        assert!(!body.is_end_stream());
        assert!(matches!(body.frame().await, Some(Err(RequestBodyError::TooSlow))));
    }

    #[test]
    fn the_per_client_count_is_given_back_when_a_connection_ends() {
        let slots = Arc::new(ClientSlots::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let held: Vec<ClientSlot> = (0..3).map(|_| slots.take(a, 3).expect("under the cap")).collect();
        assert!(slots.take(a, 3).is_none(), "the cap holds");
        assert!(slots.take(b, 3).is_some(), "another address has its own count");
        drop(held);
        assert!(slots.take(a, 3).is_some(), "given back");
        assert!(
            slots.open.lock().unwrap().is_empty(),
            "no entry is kept for idle addresses"
        );
    }
}
