//! Client authentication at the token endpoint (RFC 6749 2.3.1, OIDC Core 9):
//! `client_secret_basic`, `client_secret_post`, or none (a public client, PKCE alone).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::OidcClient;

/// How a request presents its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    /// `client_secret_basic`: the secret as sent, before form-decoding. RFC 6749 2.3.1 has
    /// clients encode it, but some (Authlib) do not, and a `+` or `%` in a secret would then
    /// decode into another: both spellings are compared.
    pub secret_as_sent: Option<String>,
    pub method: Method,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Basic,
    Post,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    /// No client_id anywhere, an unreadable Basic header, or two methods at once.
    #[error("{0}")]
    Malformed(&'static str),
    #[error("the client is unknown, or its secret is wrong or missing")]
    Failed,
}

/// The client a token request presents: an `Authorization: Basic` header (`authorization`)
/// or the form's `client_id` (and `client_secret`), never both (RFC 6749 2.3: one method).
pub fn presented(
    authorization: Option<&str>,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Presented, ClientAuthError> {
    // RFC 6749 3.2: a parameter without a value is treated as omitted.
    let form_client_id = form_client_id.filter(|v| !v.is_empty());
    let form_secret = form_secret.filter(|v| !v.is_empty());
    if let Some(header) = authorization {
        // RFC 7235 2.1: the scheme is case-insensitive.
        let Some(encoded) = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, rest)| rest)
        else {
            return Err(ClientAuthError::Malformed("the Authorization header is not Basic"));
        };
        if form_secret.is_some() {
            return Err(ClientAuthError::Malformed("two client authentication methods at once"));
        }
        let decoded = B64
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(ClientAuthError::Malformed("the Basic credentials are not base64"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or(ClientAuthError::Malformed("the Basic credentials have no ':'"))?;
        // RFC 6749 2.3.1: both are form-urlencoded before they are joined.
        let (id, secret_as_sent) = (form_decode(id), secret.to_string());
        if form_client_id.is_some_and(|f| f != id) {
            return Err(ClientAuthError::Malformed(
                "client_id differs from the Basic credentials",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(form_decode(&secret_as_sent)),
            secret_as_sent: Some(secret_as_sent),
            method: Method::Basic,
        });
    }
    let client_id = form_client_id
        .filter(|id| !id.is_empty())
        .ok_or(ClientAuthError::Malformed("no client_id and no client authentication"))?;
    Ok(Presented {
        client_id: client_id.to_string(),
        secret: form_secret.map(str::to_string),
        secret_as_sent: None,
        method: if form_secret.is_some() {
            Method::Post
        } else {
            Method::None
        },
    })
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether `presented` authenticates as `client`: a confidential client must present its
/// secret (either method); a public client presents none (a secret it was never given is a
/// misconfigured client, refused rather than ignored).
pub fn authenticate(client: &OidcClient, presented: &Presented) -> Result<(), ClientAuthError> {
    match (&client.secret, &presented.secret) {
        (Some(secret), Some(given))
            if secret.matches(given)
                | presented
                    .secret_as_sent
                    .as_deref()
                    .is_some_and(|raw| secret.matches(raw)) =>
        {
            Ok(())
        }
        (None, None) => Ok(()),
        _ => Err(ClientAuthError::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handoff::oidc::ClientSecret;

    fn client(secret: Option<&str>) -> OidcClient {
        OidcClient {
            client_id: "numo web".into(),
            secret: secret.map(|s| ClientSecret::new(s.into())),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            id_token_alg: crate::jws::Alg::Rs256,
        }
    }

    const SECRET: &str = "a secret of more than 32 chars, with %";

    #[test]
    fn basic_credentials_are_form_decoded_and_checked() {
        // "numo web" and the secret, each form-urlencoded, then joined and base64'd.
        let header = format!(
            "Basic {}",
            B64.encode("numo+web:a+secret+of+more+than+32+chars%2C+with+%25")
        );
        let p = presented(Some(&header), None, None).unwrap();
        assert_eq!(p.client_id, "numo web");
        assert_eq!(p.method, Method::Basic);
        assert_eq!(authenticate(&client(Some(SECRET)), &p), Ok(()));
        // A client that does not form-encode (Authlib) sends the secret as it is.
        let raw = presented(
            Some(&format!("Basic {}", B64.encode(format!("numo+web:{SECRET}")))),
            None,
            None,
        )
        .unwrap();
        assert_eq!(authenticate(&client(Some(SECRET)), &raw), Ok(()));
        let wrong = presented(Some(&format!("Basic {}", B64.encode("numo+web:nope"))), None, None).unwrap();
        assert_eq!(
            authenticate(&client(Some(SECRET)), &wrong),
            Err(ClientAuthError::Failed)
        );
    }

    #[test]
    fn post_public_and_mixed_methods() {
        let p = presented(None, Some("numo web"), Some(SECRET)).unwrap();
        assert_eq!(p.method, Method::Post);
        assert_eq!(authenticate(&client(Some(SECRET)), &p), Ok(()));
        let public = presented(None, Some("numo web"), None).unwrap();
        assert_eq!(authenticate(&client(None), &public), Ok(()));
        // A confidential client without its secret; a public one with a secret.
        assert_eq!(
            authenticate(&client(Some(SECRET)), &public),
            Err(ClientAuthError::Failed)
        );
        assert_eq!(authenticate(&client(None), &p), Err(ClientAuthError::Failed));
        let header = format!("Basic {}", B64.encode("numo+web:x"));
        assert!(matches!(
            presented(Some(&header), None, Some("x")),
            Err(ClientAuthError::Malformed(_))
        ));
        assert!(matches!(
            presented(Some(&header), Some("other"), None),
            Err(ClientAuthError::Malformed(_))
        ));
        assert!(matches!(
            presented(None, None, None),
            Err(ClientAuthError::Malformed(_))
        ));
        assert!(matches!(
            presented(Some("Bearer x"), None, None),
            Err(ClientAuthError::Malformed(_))
        ));
        let upper = format!("BASIC {}", B64.encode(format!("numo+web:{SECRET}")));
        assert_eq!(presented(Some(&upper), None, None).unwrap().method, Method::Basic);
        assert_eq!(
            presented(None, Some("numo web"), Some("")).unwrap().method,
            Method::None
        );
    }
}
