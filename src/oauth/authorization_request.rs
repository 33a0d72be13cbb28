//! A checked authorization request (RFC 6749 §4.1.1, OpenID Connect Core
//! §3.1.2.1): what the authorization endpoint accepted, what the login form
//! carries back, and what a code is issued for.

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Log in only if there is no live session.
    Default,
    /// Never show a page: a code, or `login_required`.
    None,
    /// Always ask for the password again.
    Login,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// What the login page calls the client: its display name, else its id.
    pub client_display: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// As asked, syntax checked; narrowed to what the person holds at issuance.
    pub scope: crate::names::Scopes,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    /// `acr_values`, as asked (§3.1.2.1); `mfa` forces a second step.
    pub acr_values: Option<String>,
}

impl AuthorizationRequest {
    /// The parameters the login form carries back (hidden fields).
    pub fn carried(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("response_type", "code".to_string()),
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("code_challenge", self.code_challenge.clone()),
            ("code_challenge_method", "S256".to_string()),
        ];
        if !self.scope.is_empty() {
            v.push(("scope", self.scope.to_string()));
        }
        if let Some(s) = &self.state {
            v.push(("state", s.clone()));
        }
        if let Some(n) = &self.nonce {
            v.push(("nonce", n.clone()));
        }
        if let Some(a) = &self.acr_values {
            v.push(("acr_values", a.clone()));
        }
        v
    }

    /// This request at the authorization endpoint, as a relative URL.
    pub fn authorize_url(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.carried() {
            q.append_pair(k, &v);
        }
        format!("/oauth/authorize?{}", q.finish())
    }

    /// The level of login this request asks for.
    pub fn level(&self) -> crate::auth::amr::Level {
        crate::auth::amr::Level::asked(self.acr_values.as_deref())
    }

    /// The origin of the redirect URI (for the page's `form-action`).
    pub fn redirect_origin(&self) -> Option<String> {
        super::origins::origin_of(&self.redirect_uri)
    }
}
