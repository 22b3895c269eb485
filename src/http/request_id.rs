//! The correlation id of a request: made when the request comes in, carried by a tracing span
//! round everything the request does (so every log line it writes names it), and shown on its
//! error page as the reference the support desk looks up.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// A request's correlation id: 16 hex digits, random.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    fn new() -> Self {
        RequestId(
            crate::keys::random_bytes::<8>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// The id of `request`, or a new one for a request that came in without this layer.
    pub fn of(request: &Request) -> Self {
        request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::new)
    }
}

/// The outermost layer of the public router: the id, and the span that carries it.
pub async fn request_span(mut request: Request, next: Next) -> Response {
    let id = RequestId::new();
    let span = tracing::info_span!("request", correlation_id = %id.0);
    request.extensions_mut().insert(id);
    next.run(request).instrument(span).await
}
