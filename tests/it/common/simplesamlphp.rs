//! SimpleSAMLphp 1.19 (Debian's `simplesamlphp`) as a real IdP for interop tests: `php -S` on a
//! free port serving the package's www dir, its config dir a temp dir written from the
//! templates in tests/interop/simplesamlphp/, and the browser's side of its pages (the login
//! form, the auto-submitting Response form, its redirect chains) for a cookie-keeping client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use entree_bridge::keys::{self, KeyKind};
use serde_json::Value;

const TEMPLATES: &str = "tests/interop/simplesamlphp";
/// Debian keeps the attribute maps here, not under the install dir where 1.19 looks.
const ATTRIBUTEMAP_DIR: &str = "/etc/simplesamlphp/attributemap";

/// SimpleSAMLphp under `php -S`, its config dir a temp dir of its own (killed when dropped).
pub struct SimpleSamlPhp {
    child: Child,
    /// `http://127.0.0.1:<port>`, where `php -S` serves SimpleSAMLphp's www dir.
    pub base: String,
    dir: tempfile::TempDir,
}

impl SimpleSamlPhp {
    /// Checks the install (tests/interop/simplesamlphp/setup.sh), writes the config dir and
    /// starts the server; panics with what is missing when it cannot run.
    pub async fn start() -> SimpleSamlPhp {
        let setup = super::repo_root().join(TEMPLATES).join("setup.sh");
        let out = Command::new("bash").arg(&setup).output().expect("run setup.sh");
        assert!(
            out.status.success(),
            "SimpleSAMLphp cannot run (scripts/system-deps.sh --test installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let install = PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().expect("dir").trim());

        let port = super::services::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let dir = tempfile::tempdir().expect("dir");
        for sub in ["cert", "log", "data", "tmp", "sessions", "metadata/sp"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let template = |name: &str| std::fs::read_to_string(super::repo_root().join(TEMPLATES).join(name)).expect(name);
        let config = template("config.php")
            .replace("@BASE_URL@", &base)
            .replace("@ATTRIBUTEMAP_DIR@", ATTRIBUTEMAP_DIR)
            .replace("@SECRET_SALT@", &keys::random_token())
            .replace("@ADMIN_PASSWORD@", &keys::random_token());
        std::fs::write(dir.path().join("config.php"), config).expect("write");
        std::fs::write(dir.path().join("authsources.php"), template("authsources.php")).expect("write");
        for name in ["saml20-idp-hosted.php", "saml20-sp-remote.php"] {
            std::fs::write(dir.path().join("metadata").join(name), template(name)).expect("write");
        }
        let key = keys::generate_key(KeyKind::Rsa2048).expect("key");
        let cert = keys::self_signed_certificate(&key, "simplesamlphp-idp", 30).expect("cert");
        keys::write_private_key(&dir.path().join("cert/idp.key"), &key).expect("write");
        keys::write_certificate(&dir.path().join("cert/idp.crt"), &cert).expect("write");

        let server_log = std::fs::File::create(dir.path().join("log/php-server.log")).expect("log");
        let child = Command::new("php")
            .args(["-S", &format!("127.0.0.1:{port}"), "-t"])
            .arg(install.join("www"))
            .current_dir(install.join("www"))
            .env("SIMPLESAMLPHP_CONFIG_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(server_log)
            .spawn()
            .expect("php -S starts");
        let ssp = SimpleSamlPhp { child, base, dir };
        ssp.wait_ready().await;
        ssp
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(self.metadata_url()).await {
                assert_eq!(r.status(), 200, "SimpleSAMLphp's metadata: {}", self.logs());
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("SimpleSAMLphp did not answer within 20s:\n{}", self.logs());
    }

    pub fn metadata_url(&self) -> String {
        format!("{}/saml2/idp/metadata.php", self.base)
    }

    /// The IdP's entity ID (`__DYNAMIC:1__`: the URL of its metadata).
    pub fn entity_id(&self) -> String {
        self.metadata_url()
    }

    pub async fn metadata(&self) -> String {
        reqwest::get(self.metadata_url())
            .await
            .expect("metadata")
            .text()
            .await
            .expect("body")
    }

    pub fn certificate(&self) -> samael::crypto::CertificateDer {
        let cert = keys::read_certificate(&self.dir.path().join("cert/idp.crt")).expect("cert");
        samael::crypto::CertificateDer::from(cert.to_der().expect("der"))
    }

    /// Makes the SP whose metadata is `xml` known, with `options` over what SimpleSAMLphp's
    /// parser read from it (the sp-remote file reads sp/ on every request).
    pub fn add_sp(&self, name: &str, xml: &str, options: &Value) {
        let sp = self.dir.path().join("metadata/sp");
        std::fs::write(sp.join(format!("{name}.json")), options.to_string()).expect("write");
        std::fs::write(sp.join(format!("{name}.xml")), xml).expect("write");
    }

    /// Its log and the PHP server's, for a failure message.
    pub fn logs(&self) -> String {
        let read = |p: &str| std::fs::read_to_string(self.dir.path().join(p)).unwrap_or_default();
        let tail = |s: String| {
            s.lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "--- simplesamlphp.log ---\n{}\n--- php -S ---\n{}",
            tail(read("log/simplesamlphp.log")),
            tail(read("log/php-server.log"))
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/simplesamlphp.log")).unwrap_or_default()
    }
}

impl Drop for SimpleSamlPhp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // SSP_INTEROP_LOGS=<dir> keeps each run's log (with `debug.saml`, every
        // message SimpleSAMLphp received and sent) as <dir>/simplesamlphp-<port>.log.
        if let Some(keep) = std::env::var_os("SSP_INTEROP_LOGS") {
            let port = self.base.rsplit(':').next().unwrap_or("0");
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::copy(
                self.dir.path().join("log/simplesamlphp.log"),
                Path::new(&keep).join(format!("simplesamlphp-{port}.log")),
            );
        }
    }
}

impl SimpleSamlPhp {
    /// Answers a login the way a student's browser does: from the IdP's SSO URL (the SP's
    /// redirect), through the UserPass form when there is no IdP session yet (password
    /// `<user>-pass`), to the page SimpleSAMLphp ends on (normally its auto-post form).
    pub async fn sign_in(&self, c: &reqwest::Client, sso_url: &str, user: &str) -> Page {
        let page = follow(c, sso_url).await;
        if !page.body.contains(r#"name="password""#) {
            return page;
        }
        let form = PostForm::parse(&page.body).expect("login form");
        let action = join_url(&page.url, &form.action);
        let resp = c
            .post(&action)
            .form(&[
                ("username", user),
                ("password", &format!("{user}-pass")),
                ("AuthState", form.field("AuthState").expect("AuthState")),
            ])
            .send()
            .await
            .expect("post credentials");
        follow_response(c, action, resp).await
    }

    /// Like [`hop`], following SimpleSAMLphp's own redirects (its logout passes through
    /// `module.php/core/idp/resumelogout.php` before it sends the browser on).
    pub async fn hop_through(&self, c: &reqwest::Client, url: &str) -> (u16, String) {
        let internal = [format!("{}/module.php/", self.base), format!("{}/saml2/", self.base)];
        let (mut status, mut location) = hop(c, url).await;
        for _ in 0..10 {
            if status != 302 || !internal.iter().any(|p| location.starts_with(p.as_str())) {
                break;
            }
            (status, location) = hop(c, &location).await;
        }
        (status, location)
    }
}

/// Follows redirects (on any server) from `url` to the first page that is no redirect.
pub async fn follow(c: &reqwest::Client, url: &str) -> Page {
    let resp = c.get(url).send().await.expect("get");
    follow_response(c, url.to_string(), resp).await
}

/// Follows the redirects that `resp` (the answer from `url`) starts.
pub async fn follow_response(c: &reqwest::Client, mut url: String, mut resp: reqwest::Response) -> Page {
    for _ in 0..10 {
        if !resp.status().is_redirection() {
            let status = resp.status().as_u16();
            let body = resp.text().await.expect("body");
            return Page { url, status, body };
        }
        let location = resp.headers()["location"].to_str().expect("location");
        url = join_url(&url, location);
        resp = c.get(&url).send().await.expect("redirect");
    }
    panic!("more than 10 redirects, at {url}");
}

/// One GET without following: the status and the Location (or the body, when there is none).
pub async fn hop(c: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = c.get(url).send().await.expect("get");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(|l| join_url(url, l));
    match location {
        Some(location) => (status, location),
        None => (
            status,
            format!("(no location) {}", resp.text().await.unwrap_or_default()),
        ),
    }
}

/// A page at the end of a redirect chain.
pub struct Page {
    pub url: String,
    pub status: u16,
    pub body: String,
}

/// The first `<form>` of a page: its action and its inputs' names and values.
#[derive(Debug)]
pub struct PostForm {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl PostForm {
    pub fn parse(html: &str) -> Option<PostForm> {
        let form_tag = regex::Regex::new(r#"(?s)<form\b[^>]*>"#).expect("re");
        let input_tag = regex::Regex::new(r#"(?s)<input\b[^>]*>"#).expect("re");
        let form = form_tag.find(html)?;
        let action = attribute(form.as_str(), "action").unwrap_or_default();
        let fields = input_tag
            .find_iter(&html[form.end()..])
            .filter_map(|tag| {
                Some((
                    attribute(tag.as_str(), "name")?,
                    attribute(tag.as_str(), "value").unwrap_or_default(),
                ))
            })
            .collect();
        Some(PostForm { action, fields })
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The Response XML SimpleSAMLphp is about to post.
    pub fn response_xml(&self) -> String {
        let b64 = self.field("SAMLResponse").expect("SAMLResponse");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.split_ascii_whitespace().collect::<String>())
            .expect("base64");
        String::from_utf8(bytes).expect("utf8")
    }

    /// Posts the form to the bridge's ACS, as the browser's auto-submit does.
    pub async fn submit(&self, c: &reqwest::Client) -> reqwest::Response {
        c.post(&self.action).form(&self.fields).send().await.expect("acs")
    }
}

/// The value of `name="..."` (or '...') in a tag, HTML entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(r#"(?s)\s{name}\s*=\s*(?:"([^"]*)"|'([^']*)')"#)).expect("re");
    let caps = re.captures(tag)?;
    let raw = caps.get(1).or_else(|| caps.get(2))?.as_str();
    Some(
        raw.replace("&quot;", "\"")
            .replace("&#039;", "'")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// `location` resolved against `base`.
pub fn join_url(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(location))
        .expect("url")
        .to_string()
}
