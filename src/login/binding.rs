//! Which browser a pending login or a pending link belongs to: ONE rule for both, here.
//!
//! The answers that finish a login (the IdP's SAMLResponse with its RelayState) and a link
//! (the app's `link_response`) pass through the browser, so whoever sees one (a proxy log, a
//! browser history, a student's screenshot) can send it again from elsewhere. The browser that
//! started got a cookie named for the pending entry (its RelayState, its `jti`) holding the
//! entry's random nonce (128 bits); only that browser has it. So:
//!
//! - **Which cookie values prove it is this browser**: any of the first
//!   [`MAX_COOKIES_LOOKED_AT`] values the browser presents under the entry's cookie name,
//!   compared with the nonce in constant time. Not only the first: a cookie tossed by a
//!   sibling path, or a nameless `=eb_login_x=…` that even `__Host-` cannot keep out, may be
//!   sent before the real one and must neither shadow nor replace it. Not more than four: more
//!   is an attack. The entry must also be of the app it comes back to.
//! - **What happens to an entry that does not match**: it goes back to the store unchanged
//!   (same nonce, same expiry) and the request is refused (`login_browser_mismatch`,
//!   `link_browser_mismatch`). This is the safe choice: whoever holds someone else's answer
//!   without the cookie gets nothing either way, but if a mismatch threw the entry away, they
//!   could end the real student's login or link with it (a RelayState is in a URL). Put back,
//!   the student's own browser still finishes. It gives an attacker nothing to retry: the nonce
//!   cannot be guessed, and at the ACS the response is not validated and its assertion ID not
//!   recorded before the browser is known, so nothing about the entry changes. The expiry is
//!   the original one: a put-back never prolongs an entry. (Until issue 16 the ACS threw a
//!   mismatched login away while link completion put the link back; the two now agree.)
//!
//! The store has no "compare and take", so the entry is taken and, on a mismatch, put back:
//! the real browser's own answer arriving in that instant finds nothing and is refused as
//! expired. A put-back that fails (the store is down, or the pending-login budget is spent)
//! is answered as the store failure it is; the entry is then lost, as it would be to a crash.

use crate::store::{LoginStateStore, PendingLink, PendingLogin, StoreFuture};

use super::LoginFailure;

/// At most this many cookie values of one name are compared (as for session cookies).
pub const MAX_COOKIES_LOOKED_AT: usize = 4;

/// The values of the cookies a browser presents for pending entries, by the entry's id (the
/// RelayState of a login cookie, the `jti` of a link cookie), in the order the browser sent
/// them. The http layer reads them from the Cookie header: the login cookies at the ACS, the
/// link cookies at link completion.
#[derive(Debug, Clone, Default)]
pub struct BrowserCookies {
    presented: Vec<(String, String)>,
}

impl BrowserCookies {
    /// The browser presented `value` in the cookie of entry `id`.
    pub fn add(&mut self, id: &str, value: &str) {
        self.presented.push((id.to_string(), value.to_string()));
    }

    fn values_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.presented
            .iter()
            .filter(move |(entry, _)| entry == id)
            .map(|(_, value)| value.as_str())
    }
}

/// Whether one of the presented values is the entry's nonce: the rule's first half.
fn this_browser(nonce: &str, presented: impl Iterator<Item = impl AsRef<str>>) -> bool {
    presented
        .take(MAX_COOKIES_LOOKED_AT)
        .any(|value| same_secret(value.as_ref(), nonce))
}

/// Compares secrets in constant time.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

/// A pending entry a browser is bound to: a login waiting for the IdP, a link waiting for
/// the app.
pub(crate) trait PendingEntry: Sized + Send + 'static {
    fn app(&self) -> &str;
    fn browser_nonce(&self) -> &str;
    fn take<'s>(store: &'s dyn LoginStateStore, id: &str) -> StoreFuture<'s, Option<Self>>;
    fn put_back<'s>(self, store: &'s dyn LoginStateStore, id: &str) -> StoreFuture<'s, ()>;
    /// The refusal when the entry is not this browser's.
    fn mismatch() -> LoginFailure;
}

impl PendingEntry for PendingLogin {
    fn app(&self) -> &str {
        &self.app
    }
    fn browser_nonce(&self) -> &str {
        &self.browser_nonce
    }
    fn take<'s>(store: &'s dyn LoginStateStore, id: &str) -> StoreFuture<'s, Option<Self>> {
        store.take_pending(id)
    }
    fn put_back<'s>(self, store: &'s dyn LoginStateStore, id: &str) -> StoreFuture<'s, ()> {
        store.put_pending(id, self)
    }
    fn mismatch() -> LoginFailure {
        LoginFailure::BrowserMismatch
    }
}

impl PendingEntry for PendingLink {
    fn app(&self) -> &str {
        &self.app
    }
    fn browser_nonce(&self) -> &str {
        &self.browser_nonce
    }
    fn take<'s>(store: &'s dyn LoginStateStore, id: &str) -> StoreFuture<'s, Option<Self>> {
        store.take_pending_link(id)
    }
    fn put_back<'s>(self, store: &'s dyn LoginStateStore, id: &str) -> StoreFuture<'s, ()> {
        store.put_pending_link(id, self)
    }
    fn mismatch() -> LoginFailure {
        LoginFailure::LinkBrowserMismatch
    }
}

/// THE rule: takes the pending entry `id` for this browser and `app`. `None`: there is no
/// such entry (expired, used, never started; the caller names that). A pending entry of
/// another browser or app goes back to the store, and the answer is its mismatch refusal.
pub(crate) async fn take_for_browser<P: PendingEntry>(
    store: &dyn LoginStateStore,
    app: &str,
    id: &str,
    cookies: &BrowserCookies,
) -> Result<Option<P>, LoginFailure> {
    let Some(pending) = P::take(store, id)
        .await
        .map_err(|e| LoginFailure::StoreUnavailable(e.to_string()))?
    else {
        return Ok(None);
    };
    if pending.app() == app && this_browser(pending.browser_nonce(), cookies.values_of(id)) {
        return Ok(Some(pending));
    }
    // A put-back that fails is the store failing (as the take would), not a full budget
    // answered to a student who did nothing.
    pending
        .put_back(store, id)
        .await
        .map_err(|e| LoginFailure::StoreUnavailable(e.to_string()))?;
    tracing::info!(
        app,
        "a pending entry was presented by another browser and kept for its own"
    );
    Err(P::mismatch())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_of_the_first_four_values_of_the_entry_may_prove_the_browser() {
        let mut cookies = BrowserCookies::default();
        cookies.add("rs1", "tossed");
        cookies.add("other", "nonce");
        cookies.add("rs1", "nonce");
        assert!(this_browser("nonce", cookies.values_of("rs1")));
        assert!(
            !this_browser("nonce", cookies.values_of("rs2")),
            "another entry's cookie proves nothing"
        );
        assert!(!this_browser("nonc", cookies.values_of("rs1")));
        let many = ["a", "b", "c", "d", "nonce"];
        assert!(!this_browser("nonce", many.iter()), "a fifth value is not looked at");
        assert!(this_browser("nonce", many[1..].iter()));
    }
}
