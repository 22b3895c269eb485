//! xmlsec reports every failed check by printing to stderr, outside the structured log and
//! without a correlation id. Route those reports into `tracing` (target `xmlsec`, debug):
//! the bridge's own log line already names the error code of the refusal.

use std::ffi::{c_char, c_int, CStr};
use std::sync::Once;

type ErrorsCallback =
    unsafe extern "C" fn(*const c_char, c_int, *const c_char, *const c_char, *const c_char, c_int, *const c_char);

unsafe extern "C" {
    // libxmlsec1, linked through samael's xmlsec feature.
    fn xmlSecErrorsSetCallback(callback: Option<ErrorsCallback>);
}

/// # Safety
/// Called by xmlsec with NUL-terminated strings or null pointers.
unsafe extern "C" fn forward(
    _file: *const c_char,
    _line: c_int,
    func: *const c_char,
    object: *const c_char,
    _subject: *const c_char,
    reason: c_int,
    msg: *const c_char,
) {
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: xmlsec passes valid NUL-terminated strings when not null.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    let (func, object, msg) = (text(func), text(object), text(msg));
    // Never unwind into C.
    let _ = std::panic::catch_unwind(|| tracing::debug!(target: "xmlsec", func, object, reason, "{msg}"));
}

/// Installs the callback once; safe to call from every verification.
pub fn route_to_tracing() {
    static ONCE: Once = Once::new();
    // SAFETY: `forward` matches xmlsec's xmlSecErrorsCallback signature and never unwinds.
    ONCE.call_once(|| unsafe { xmlSecErrorsSetCallback(Some(forward)) });
}
