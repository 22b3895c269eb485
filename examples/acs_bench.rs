//! Sets up the ACS benchmark: a bridge with one jwt-mode app that accepts unsolicited
//! responses, on the memory store or on Redis, and a file of pre-generated, signed Entree-like
//! responses (one form body per line, each with its own assertion ID so none is a replay).
//! Prints the ACS URL and the file for a load generator, then serves until stopped.
//!
//!     cargo run --release --example acs_bench -- memory 20000
//!     cargo run --release --example acs_bench -- redis 20000     # ENTREE_BRIDGE_BENCH_REDIS
//!
//! `scripts/bench-acs.sh` runs both with wrk, side by side; see BENCHMARKS.md.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use entree_bridge::demo::idp::{DevIdp, ResponseSpec};
use entree_bridge::http::{self, AppState};
use entree_bridge::keys::{self, KeyKind};
use entree_bridge::store::links::LinkStore;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What Entree sends for a student: about ten attributes.
fn spec(base: &str, n: usize) -> ResponseSpec {
    ResponseSpec::new(
        &format!("{base}/bench/saml2/kennisnet/metadata"),
        &format!("{base}/bench/saml2/kennisnet/acs"),
        None,
    )
    .attribute("uid", &[&format!("leerling{n}")])
    .attribute("givenName", &["Sanne"])
    .attribute("sn", &["de Vries"])
    .attribute("mail", &[&format!("leerling{n}@school-a.nl")])
    .attribute("eduPersonAffiliation", &["student", "member"])
    .attribute("nlEduPersonRealId", &[&format!("{n}@school-a.nl")])
    .attribute("nlEduPersonHomeOrganizationId", &["99XX"])
    .attribute("nlEduPersonHomeOrganization", &["Het Voorbeeld College"])
    .attribute("eckId", &[&format!("https://ketenid.nl/201703/{n:032x}")])
    .attribute("nlEduPersonProfileId", &[&format!("leerling{n}@school-a.nl")])
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let store = args.first().map(String::as_str).unwrap_or("memory").to_string();
    let count: usize = args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let idp = DevIdp::generate("https://idp.bench.invalid/metadata")?;
    let sp_key = keys::generate_key(KeyKind::Rsa2048)?;
    keys::write_private_key(&dir.path().join("sp.key"), &sp_key)?;
    keys::write_certificate(
        &dir.path().join("sp.crt"),
        &keys::self_signed_certificate(&sp_key, "sp", 2)?,
    )?;
    keys::write_private_key(&dir.path().join("jwt.pem"), &keys::generate_key(KeyKind::EcP256)?)?;
    std::fs::write(
        dir.path().join("idp.xml"),
        idp.metadata("https://idp.bench.invalid/sso"),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let redis_url = std::env::var("ENTREE_BRIDGE_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("eb-bench:{}:", keys::random_token());
    let sessions = match store.as_str() {
        "memory" => String::new(),
        "redis" => format!("[sessions]\nstore = \"redis\"\nredis_url = \"{redis_url}\"\nredis_prefix = \"{prefix}\"\n"),
        other => return Err(format!("store {other:?}: use memory or redis").into()),
    };
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_base_url = "{base}"
{sessions}
[links]
sqlite_path = "links.sqlite3"
[keys]
jwt_signing_key = "jwt.pem"
[federations.kennisnet]
metadata = "idp.xml"
[apps.bench]
federation = "kennisnet"
base_url = "{base}/bench"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
allow_unsolicited = true
[apps.bench.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.bench.handoff]
callback_url = "https://bench.example.nl/sso"
[apps.bench.claims]
given_name = "givenName"
"#
    );
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, config)?;
    let settings = Arc::new(entree_bridge::config::load(&path).map_err(|e| e.to_string())?);

    // Sign the responses on every core before the bridge starts taking load.
    let bodies_path = dir.path().join("bodies.txt");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parts: Vec<Result<Vec<String>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (idp, base) = (&idp, &base);
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

    let links = LinkStore::open_target(&settings.links, settings.links_timeout).await?;
    let state_store = entree_bridge::store::open(&settings.session_store)?;
    state_store.ping().await?;
    let state = Arc::new(AppState::new(settings, state_store, links));
    tokio::spawn(http::serve(listener, http::router(state, None), std::future::pending()));

    println!("ACS {base}/bench/saml2/kennisnet/acs");
    println!("BODIES {}", bodies_path.display());
    println!("BODY_BYTES {size}");
    println!("PREFIX {prefix}");
    println!("READY");
    std::future::pending::<()>().await;
    Ok(())
}
