//! Sets up the ACS benchmark: a bridge with one jwt-mode app that accepts unsolicited
//! responses, on the memory store or on Redis, and a file of pre-generated, signed Entree-like
//! responses (one form body per line, each with its own assertion ID so none is a replay).
//! Prints the ACS URL and the file for a load generator, then serves until stopped.
//!
//!     cargo run --release --example acs_bench -- memory 20000
//!     cargo run --release --example acs_bench -- redis 20000     # ENTREE_BRIDGE_BENCH_REDIS
//!
//! `scripts/bench-acs.sh` runs both with wrk, side by side; see BENCHMARKS.md.

#[path = "bench_setup/mod.rs"]
mod bench_setup;

use std::io::Write;

use base64::Engine;
use bench_setup::{entree_response as spec, sessions_section, Error, Setup};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let store = args.first().map(String::as_str).unwrap_or("memory");
    let count: usize = args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(20_000);
    let setup = Setup::new(
        &sessions_section(store)?,
        r#"
allow_unsolicited = true
[apps.bench.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.bench.handoff]
callback_url = "https://bench.example.nl/sso"
[apps.bench.claims]
given_name = "givenName"
"#,
    )
    .await?;

    // Sign the responses on every core before the bridge starts taking load.
    let bodies_path = setup.dir.path().join("bodies.txt");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parts: Vec<Result<Vec<String>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (idp, base) = (&setup.idp, &setup.base);
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|n| {
                            let xml = idp.response(&spec(base, n)).map_err(|e| e.to_string())?;
                            let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
                            Ok(format!(
                                "SAMLResponse={}",
                                url::form_urlencoded::byte_serialize(b64.as_bytes()).collect::<String>()
                            ))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "signer panicked".to_string())?)
            .collect()
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(&bodies_path)?);
    let mut size = 0;
    for part in parts {
        for body in part? {
            size = body.len();
            writeln!(out, "{body}")?;
        }
    }
    out.flush()?;

    let (_dir, _idp, base) = setup.serve().await?;
    println!("ACS {base}/bench/saml2/kennisnet/acs");
    println!("BODIES {}", bodies_path.display());
    println!("BODY_BYTES {size}");
    println!("READY");
    std::future::pending::<()>().await;
    Ok(())
}
