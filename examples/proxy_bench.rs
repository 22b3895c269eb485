//! Sets up the proxy benchmark: a minimal upstream, a bridge with one headers-mode app in
//! front of it, and a logged-in session (through the development IdP). Prints the two URLs
//! and the session cookie for a load generator, then serves until stopped.
//!
//!     cargo run --release --example proxy_bench -- [memory|redis|redis-cached]
//!
//! `scripts/bench-proxy.sh` runs it with wrk; see BENCHMARKS.md.

#[path = "bench_setup/mod.rs"]
mod bench_setup;

use base64::Engine;
use bench_setup::{sessions_section, Error, Setup};
use entree_bridge::demo::idp::ResponseSpec;

/// The upstream: answers every request with a small fixed body (so the bridge is measured).
async fn upstream() -> Result<std::net::SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        axum::body::Bytes::from_static(b"hello from the app\n"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A reverse proxy made of nothing but hyper (HTTP/1 server, pooled legacy client), in front
/// of the same upstream: the floor of what the bridge's HTTP stack costs per request, with
/// none of the bridge's own work.
async fn bare_hyper_proxy(up: std::net::SocketAddr) -> Result<std::net::SocketAddr, Error> {
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let client: Client<HttpConnector, hyper::body::Incoming> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let _ = tcp.set_nodelay(true);
            let client = client.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let client = client.clone();
                    async move {
                        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                        if let Ok(uri) = format!("http://{up}{path}").parse() {
                            *req.uri_mut() = uri;
                        }
                        client.request(req).await
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let store = std::env::args().nth(1).unwrap_or_else(|| "memory".into());
    let up = upstream().await?;
    let setup = Setup::new(
        &sessions_section(&store)?,
        &format!("[apps.bench.handoff]\nmode = \"headers\"\nupstream = \"http://{up}\"\n"),
    )
    .await?;
    let (_dir, idp, base) = setup.serve().await?;

    // One login through the development IdP gives the session the load generator uses.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()?;
    let login = client.get(format!("{base}/bench/saml2/kennisnet/login")).send().await?;
    let location = login.headers()["location"].to_str()?.to_string();
    let query = location.split_once('?').ok_or("no query")?.1;
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let deflated = base64::engine::general_purpose::STANDARD.decode(param("SAMLRequest").ok_or("no request")?)?;
    let request = String::from_utf8(entree_bridge::saml::redirect::inflate_bounded(&deflated, 1 << 16)?)?;
    let request_id = roxmltree::Document::parse(&request)?
        .root_element()
        .attribute("ID")
        .ok_or("no ID")?
        .to_string();
    let spec = ResponseSpec::new(
        &format!("{base}/bench/saml2/kennisnet/metadata"),
        &format!("{base}/bench/saml2/kennisnet/acs"),
        Some(&request_id),
    )
    .attribute("nlEduPersonRealId", &["100231@school-a.nl"])
    .attribute("nlEduPersonHomeOrganizationId", &["99XX"])
    .attribute("eduPersonAffiliation", &["student"]);
    let xml = idp.response(&spec)?;
    let acs = client
        .post(format!("{base}/bench/saml2/kennisnet/acs"))
        .form(&[
            ("SAMLResponse", base64::engine::general_purpose::STANDARD.encode(xml)),
            ("RelayState", param("RelayState").ok_or("no relay")?),
        ])
        .send()
        .await?;
    let cookie = acs.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .ok_or("no cookie")?
        .to_string();

    let floor = bare_hyper_proxy(up).await?;
    println!("DIRECT http://{up}/bench/page");
    println!("FLOOR http://{floor}/bench/page");
    println!("PROXIED {base}/bench/page");
    println!("COOKIE {cookie}");
    println!("READY");
    std::future::pending::<()>().await;
    Ok(())
}
