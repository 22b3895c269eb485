//! The jwt hand-off as data: the browser POSTs the token (and the target, when the login had
//! one) to the app's callback URL. What the fields are called is the contract with the apps
//! (DESIGN.md "Hand-off"); the page that posts them is rendered by `http::pages`.

/// The form field that carries the JWT.
pub const TOKEN_FIELD: &str = "token";
/// The form field that carries the target, when the login had one.
pub const TARGET_FIELD: &str = "target";

/// A form the browser posts to an app: where, and which fields (values unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPost {
    pub action: String,
    pub fields: Vec<(&'static str, String)>,
}

/// The hand-off of `token` to `callback_url`, with the target when there is one.
pub fn jwt_post(callback_url: &str, token: &str, target: Option<&str>) -> FormPost {
    let mut fields = vec![(TOKEN_FIELD, token.to_string())];
    if let Some(t) = target {
        fields.push((TARGET_FIELD, t.to_string()));
    }
    FormPost {
        action: callback_url.to_string(),
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_posted_only_when_there_is_one() {
        let with = jwt_post("https://app.example/cb", "t.o.k", Some("https://app.example/x"));
        assert_eq!(with.action, "https://app.example/cb");
        assert_eq!(
            with.fields,
            vec![
                ("token", "t.o.k".to_string()),
                ("target", "https://app.example/x".to_string())
            ]
        );
        assert_eq!(jwt_post("https://app.example/cb", "t", None).fields.len(), 1);
    }
}
