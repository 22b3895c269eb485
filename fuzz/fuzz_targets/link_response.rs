//! An app's `link_response` (HS256, `jws` under `identity::linking`) and a hand-off token
//! checked against a JWKS (`jws` with a public key, as the demo's sample app does).
#![no_main]

use entree_bridge::demo::tokens;
use entree_bridge::identity::linking;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let _ = linking::verify_response(token, SECRET, "https://bridge.example.nl", 1_790_000_000);
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    }]});
    let _ = tokens::verify_with_jwks(token, &jwks);
});
