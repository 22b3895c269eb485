//! The config `entree-bridge init` writes: one app at Entree staging on one machine, every
//! choice commented so the admin can read what to change without the docs open.

/// The checked values the text is made from (see `init_cli::plan`).
pub struct Values<'a> {
    pub app: &'a str,
    pub display_name: &'a str,
    /// No trailing `/`: routes are appended to it.
    pub base_url: &'a str,
    pub public_base_url: String,
    pub app_origin: String,
    /// Where a logout lands: the app itself.
    pub post_logout_url: String,
    pub contact: Option<&'a str>,
    /// Where this file lives, for the commands its comments give.
    pub config_path: String,
    pub sp_key: String,
    pub sp_cert: String,
    pub jwt_key: String,
    pub metadata: String,
    pub handoff: HandoffValues<'a>,
}

pub enum HandoffValues<'a> {
    Jwt {
        callback_url: &'a str,
    },
    Headers {
        upstream: &'a str,
    },
    Oidc {
        redirect_uris: Vec<&'a str>,
        client_secret: &'a str,
    },
}

/// A TOML basic string: values come from the command line, so they are escaped, not pasted.
fn q(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

pub fn config_text(v: Values<'_>) -> String {
    let app = v.app;
    let config = v.config_path.as_str();
    let mut out = format!(
        r#"# entree-bridge configuration for {display}, written by `entree-bridge init`.
# One machine: sessions in memory, account links in SQLite. Relative paths resolve against
# this file's folder. Every key is in docs/configuration.md; check with
#   entree-bridge check-config --config <this file>

[server]
listen = "0.0.0.0:8080"                       # where it binds; put TLS in front, or set tls_cert/tls_key
public_base_url = {public}   # the JWT issuer and the address in the pages
# trusted_proxies = ["10.0.0.0/8"]            # the load balancer whose X-Forwarded-* is believed

[sessions]
store = "memory"                              # several instances: "redis" with redis_url
# redis_url = "rediss://bridge@redis.internal:6380"

[links]
store = "sqlite"                              # several instances: "postgres" with postgres_url
sqlite_path = "data/links.sqlite3"
# postgres_url = "postgres://bridge@db.internal/entree_bridge"

[keys]
jwt_signing_key = {jwt_key}     # rolling it: docs/operations.md

[log]
format = "json"                               # to stderr, one JSON object per line ("text" for people);
                                              # RUST_LOG filters (default info; RUST_LOG=debug for more)

# The support desk (schools, links, "why did this login fail"), on an address of its own:
# [admin]
# listen = "127.0.0.1:9091"
# token_file = "keys/admin-tokens"

[federations.kennisnet]
# Entree's staging platform, where a new service is registered and tried. Fetch it with
#   curl -o {metadata_unquoted} https://engine.entree-s.kennisnet.nl/authentication/idp/metadata
# (metadata/README.md: check its signing certificate with Kennisnet). Or fetch it here, refreshed:
#   metadata = "https://engine.entree-s.kennisnet.nl/authentication/idp/metadata"
#   metadata_signing_cert = "metadata/entree-metadata-signing.pem"
# For production, Entree's production metadata, and register the app there too.
metadata = {metadata}
clock_skew = "2m"

[apps.{app}]
display_name = {display_q}
federation = "kennisnet"
base_url = {base}   # elo links: {base_unquoted}/saml2/kennisnet/login
sp_key = {sp_key}
sp_cert = {sp_cert}   # in the SP metadata: Entree checks the app's signatures and encrypts to it;
                                # a new one must reach Kennisnet (docs/operations.md, rollover)
# The BRINs of the schools that activated the app in Mijn Entree Federatie. Empty: none yet;
# activate them as data without editing this file (`entree-bridge schools activate --config {config} --app {app} 99XX`).
schools = []
allowed_targets = [{origin}]   # where an elo link's ?target= may point
post_logout_url = {origin_slash}
"#,
        display = v.display_name,
        public = q(&v.public_base_url),
        jwt_key = q(&v.jwt_key),
        metadata = q(&v.metadata),
        metadata_unquoted = v.metadata,
        display_q = q(v.display_name),
        base = q(v.base_url),
        base_unquoted = v.base_url,
        sp_key = q(&v.sp_key),
        sp_cert = q(&v.sp_cert),
        origin = q(&v.app_origin),
        origin_slash = q(&v.post_logout_url),
    );
    match v.contact {
        Some(contact) => out.push_str(&format!(
            "activation_contact = {}   # shown to a school that has not activated, and on the error pages\n",
            q(contact)
        )),
        None => out.push_str(
            "# activation_contact = \"support@example.nl\"   # shown to a school that has not activated, and on the error pages\n",
        ),
    }
    out.push_str(&format!(
        r#"
[apps.{app}.person]
# The federated id and how the app's person code is read from it. nlEduPersonRealId is the
# elo login name at the school (100231@school-a.nl); "eckId" is the ECK iD.
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"                 # the part before the @ is the person code
# Students whose codes differ: import them (`entree-bridge links import --config {config} --app {app} students.csv`),
# or let them link their account once on first login:
# linking = true
# link_url = "https://app.example.nl/entree/link"
# link_secret = "..."                         # >= 32 characters; set it by environment variable
# mixed_affiliations = "refuse"               # never link an employee to a student's account

[apps.{app}.handoff]
"#
    ));
    out.push_str(&handoff_text(app, &v.public_base_url, &v.handoff));
    out.push_str(&format!(
        r#"
# Extra claims (claim name = attribute name), asked of Entree in the SP metadata:
# [apps.{app}.claims]
# given_name = "givenName"
# family_name = "sn"
"#
    ));
    match v.contact {
        Some(contact) if contact.contains('@') => out.push_str(&format!(
            "\n# In the SP metadata, for Kennisnet to reach the vendor.\n[[apps.{app}.contacts]]\ntype = \"technical\"\ncompany = {}\nemail = {}\n",
            q(v.display_name),
            q(contact.trim_start_matches("mailto:"))
        )),
        _ => out.push_str(&format!(
            "\n# In the SP metadata, for Kennisnet to reach the vendor:\n# [[apps.{app}.contacts]]\n# type = \"technical\"\n# company = \"...\"\n# email = \"support@example.nl\"\n"
        )),
    }
    out
}

fn handoff_text(app: &str, public_base_url: &str, handoff: &HandoffValues<'_>) -> String {
    match handoff {
        HandoffValues::Jwt { callback_url } => format!(
            r#"# The bridge POSTs a signed JWT (`token`) to callback_url; docs/integration.md has the code
# that checks it (signature, iss, aud = "{app}", exp; remember jti until exp).
mode = "jwt"
callback_url = {}
token_lifetime = "60s"
"#,
            q(callback_url)
        ),
        HandoffValues::Headers { upstream } => format!(
            r#"# The bridge proxies the app and adds X-Bridge-Person-Code, -School, -Affiliation,
# -Tenant and -Token; the app must only be reachable through the bridge.
mode = "headers"
upstream = {}
"#,
            q(upstream)
        ),
        HandoffValues::Oidc {
            redirect_uris,
            client_secret,
        } => {
            let uris: Vec<String> = redirect_uris.iter().map(|u| q(u)).collect();
            let secret_advice = match client_secret_env(app) {
                Some(var) => format!(
                    "# Move it to the environment variable {var} and delete this line to keep it out of the file."
                ),
                None => "# Keep this file readable by the bridge's user only.".to_string(),
            };
            format!(
                r#"# The bridge is the app's OpenID Connect provider: discovery at
# {public_base_url}/.well-known/openid-configuration, client_id "{app}", the code flow with PKCE.
mode = "oidc"
client_id = "{app}"
{secret_advice}
client_secret = {}
redirect_uris = [{}]
# post_logout_redirect_uris = ["https://app.example.nl/"]
"#,
                q(client_secret),
                uris.join(", "),
            )
        }
    }
}

/// The environment variable that overrides the app's client secret; none for a name with `-`,
/// which no shell can export.
pub fn client_secret_env(app: &str) -> Option<String> {
    (!app.contains('-')).then(|| format!("ENTREE_BRIDGE_APPS__{}__HANDOFF__CLIENT_SECRET", app.to_uppercase()))
}
