//! Browser login end to end over real HTTP: the authorization endpoint, the
//! login page and its form, codes with PKCE through the `oauth2` crate, ID
//! tokens checked against the JWKS, single sign-on, logout and CORS, and
//! what an attacker would try against each.

use chrono::Duration;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse};
use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, t0};
use roster::clock::Clock;

const APP: &str = "http://localhost:5173/callback";
const APP2: &str = "http://127.0.0.1:4200/signed-in";
const BYE: &str = "http://localhost:5173/bye";
const PASSWORD: &str = "correct horse battery";

on_both_backends!(
    the_oauth2_crate_completes_code_and_pkce_with_an_id_token,
    single_sign_on_then_logout_ends_the_session,
    a_wrong_redirect_uri_is_a_page_never_a_redirect,
    pkce_is_required_and_checked,
    a_reused_code_revokes_what_it_issued,
    a_reused_code_revokes_its_family_when_its_token_was_revoked_first,
    codes_expire_and_belong_to_their_client,
    prompt_none_and_max_age,
    the_login_form_refuses_forged_posts_and_wrong_passwords_alike,
    disabling_a_person_ends_their_session,
    frontends_are_registered_by_admins_only,
    cors_answers_registered_origins_only,
    the_password_grant_can_be_switched_off,
    a_session_is_honoured_by_every_instance,
    https_issuers_get_secure_host_only_cookies,
    cors_follows_changes_to_the_registered_uris,
    the_audit_log_names_the_clients_of_the_password_grant,
);

/// A browser without JavaScript: no automatic redirects, cookies kept by hand.
pub(crate) struct Browser {
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

/// What a browser got back.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) html: String,
}

impl Page {
    /// The value of the hidden or text input `name` on the page.
    pub(crate) fn input(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.html.find(&marker)? + marker.len();
        let end = self.html[start..].find('"')? + start;
        Some(
            self.html[start..end]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        )
    }

    /// Every hidden field of the page's first form (the login form; a
    /// passkey button's form follows it).
    pub(crate) fn hidden(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let first = self.html.split("</form>").next().unwrap_or("");
        for chunk in first.split("<input type=\"hidden\" name=\"").skip(1) {
            let name = chunk.split('"').next().unwrap().to_string();
            let value = self.input(&name).unwrap();
            out.push((name, value));
        }
        out
    }

    /// The TOTP key an enrolment page shows.
    pub(crate) fn totp_secret(&self) -> String {
        assert!(self.html.contains("Set up two-step verification"), "{}", self.html);
        let after = self.html.split("id=\"totp-secret\">").nth(1).unwrap();
        after.split('<').next().unwrap().to_string()
    }

    /// The first link's target, unescaped (the recovery codes page's "continue").
    pub(crate) fn first_link(&self) -> String {
        let after = self.html.split("href=\"").nth(1).unwrap();
        after.split('"').next().unwrap().replace("&amp;", "&")
    }

    /// A query parameter of the redirect.
    pub(crate) fn redirect_param(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(self.location.as_deref()?).ok()?;
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

impl Browser {
    pub(crate) fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, resp: reqwest::Response) -> Page {
        for set in resp.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (k, v) = pair.split_once('=').unwrap();
            assert!(attrs.contains("HttpOnly"), "{set}");
            assert!(attrs.contains("SameSite=Lax"), "{set}");
            assert!(attrs.contains("Path=/"), "{set}");
            assert!(!attrs.to_ascii_lowercase().contains("domain"), "host-only: {set}");
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: resp.status(),
            location: resp.headers().get("location").map(|v| v.to_str().unwrap().to_string()),
            headers: resp.headers().clone(),
            html: resp.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, url: &str) -> Page {
        let resp = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(resp).await
    }

    pub(crate) async fn post(&mut self, url: &str, form: &[(String, String)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(resp).await
    }

    /// Answer the TOTP enrolment of `page` (a login's second step) at
    /// `base` with the code of its key at `unix`: the recovery codes page
    /// shows ten codes; follow its link, and return where it leads.
    pub(crate) async fn finish_enrolment(&mut self, base: &str, page: &Page, unix: i64) -> Page {
        let secret = roster::auth::totp::from_base32(&page.totp_secret()).unwrap();
        let mut form = page.hidden();
        form.push((
            "code".into(),
            roster::auth::totp::code_at(&secret, unix as u64).unwrap(),
        ));
        let codes = self.post(&format!("{base}/oauth/login/second"), &form).await;
        assert_eq!(codes.status, StatusCode::OK, "{}", codes.html);
        assert_eq!(codes.html.matches("<li><code>").count(), 10, "{}", codes.html);
        self.get(&format!("{base}{}", codes.first_link())).await
    }

    /// Fill in and send the login form of `page`.
    pub(crate) async fn log_in(&mut self, app: &TestApp, page: &Page, user: &str, password: &str) -> Page {
        let mut form = page.hidden();
        form.push(("username".into(), user.into()));
        form.push(("password".into(), password.into()));
        self.post(&app.url("/oauth/login"), &form).await
    }
}

/// A frontend registered as a public client, and a person who may use it.
async fn setup(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    for (name, uri) in [("spa", APP), ("console", APP2)] {
        let r = app
            .call(
                reqwest::Method::POST,
                "/api/v1/principals",
                Some(&admin),
                Some(json!({
                    "kind": "service",
                    "name": name,
                    "public_client": true,
                    "redirect_uris": [uri],
                    "post_logout_redirect_uris": [BYE],
                })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let id = app.create_human("alice", PASSWORD, &["registry:read"]).await;
    app.tick().await;
    id
}

/// An authorization request URL with PKCE.
fn authorize_url(app: &TestApp, client: &str, redirect: &str, extra: &[(&str, &str)]) -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile registry:read admin")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    (url.to_string(), verifier.secret().to_string())
}

/// Log in through the page and return the code and the verifier.
async fn code_for(app: &TestApp, browser: &mut Browser, client: &str, redirect: &str) -> (String, String) {
    let (url, verifier) = authorize_url(app, client, redirect, &[]);
    let page = browser.get(&url).await;
    let done = if page.status == StatusCode::OK {
        browser.log_in(app, &page, "alice", PASSWORD).await
    } else {
        page
    };
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    (done.redirect_param("code").unwrap(), verifier)
}

/// The public client `spa` refreshes, with its bare client_id.
async fn refresh(app: &TestApp, token: &str) -> crate::support::FormReply {
    app.post_form(
        "/oauth/token",
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", token),
        ],
    )
    .await
}

pub(crate) async fn exchange(
    app: &TestApp,
    client: &str,
    redirect: &str,
    code: &str,
    verifier: Option<&str>,
) -> crate::support::FormReply {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("code", code),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    app.post_form("/oauth/token", None, &form).await
}

fn decode_id_token(app: &TestApp, jwks: &jsonwebtoken::jwk::JwkSet, token: &str, aud: &str) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[app.issuer()]);
    v.set_audience(&[aud]);
    v.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap()
        .claims
}

async fn the_oauth2_crate_completes_code_and_pkce_with_an_id_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = setup(&app).await;
    let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new("spa".into()))
        .set_auth_uri(oauth2::AuthUrl::new(app.url("/oauth/authorize")).unwrap())
        .set_token_uri(oauth2::TokenUrl::new(app.url("/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(APP.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("registry:read".into()))
        .add_extra_param("nonce", "n-42")
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new();
    let page = browser.get(url.as_str()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("to continue to <strong>spa</strong>"),
        "{}",
        page.html
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self' http://localhost:5173;"), "{csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let done = browser.log_in(&app, &page, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert!(
        done.location.as_deref().unwrap().starts_with(APP),
        "{:?}",
        done.location
    );
    assert_eq!(done.redirect_param("state").as_deref(), Some(csrf.secret().as_str()));
    assert_eq!(done.redirect_param("iss"), Some(app.issuer()), "RFC 9207");
    let code = done.redirect_param("code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&crate::support::oauth_http())
        .await
        .unwrap();
    assert_eq!(
        tokens
            .scopes()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        vec!["openid", "registry:read"]
    );
    let access = tokens.access_token().secret().to_string();
    assert!(tokens.refresh_token().is_some());
    let jwks = app.jwks().await;
    let at = crate::support::verify_with_jwks(&jwks, &access, &app.issuer(), &app.issuer());
    assert_eq!(
        (at["sub"].as_str(), at["client_id"].as_str()),
        (Some(alice.as_str()), Some("spa"))
    );

    // The ID token, as an OpenID relying party checks it (Core §3.1.3.7).
    // (oauth2's BasicTokenResponse drops unknown fields: ask once more and
    // read the whole body, as a relying party's library does.)
    let reply = {
        let mut browser = Browser::new();
        let (code, verifier) = code_for(&app, &mut browser, "spa", APP).await;
        exchange(&app, "spa", APP, &code, Some(&verifier)).await
    };
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = decode_id_token(&app, &jwks, reply.body["id_token"].as_str().unwrap(), "spa");
    assert_eq!(id["sub"], alice.as_str());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["iss"], app.issuer());
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());
    let alg = jsonwebtoken::decode_header(reply.body["id_token"].as_str().unwrap())
        .unwrap()
        .alg;
    let expected = roster::oauth::oidc::at_hash(
        if alg == jsonwebtoken::Algorithm::ES256 {
            roster::auth::keys::SigningAlg::Es256
        } else {
            roster::auth::keys::SigningAlg::EdDsa
        },
        reply.body["access_token"].as_str().unwrap(),
    );
    assert_eq!(id["at_hash"], expected.as_str());
    assert_eq!(
        reply.body["scope"], "openid profile registry:read",
        "admin was asked for but alice does not hold it: dropped"
    );

    // UserInfo and /me answer for the person.
    let token = reply.body["access_token"].as_str().unwrap();
    let info = app
        .call(reqwest::Method::GET, "/oauth/userinfo", Some(token), None)
        .await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(
        info.body,
        json!({"sub": alice, "preferred_username": "alice", "name": "alice"})
    );
    let me = app.call(reqwest::Method::GET, "/api/v1/me", Some(token), None).await;
    assert_eq!(me.body["name"], "alice");
    assert_eq!(me.body["client_id"], "spa");
    // Without openid, UserInfo refuses.
    let svc = app.create_service("worker", &[]).await;
    let svc_token = app.client_token("worker", &svc.secret).await;
    let denied = app
        .call(reqwest::Method::GET, "/oauth/userinfo", Some(&svc_token), None)
        .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert!(denied.header("www-authenticate").contains("insufficient_scope"));

    // The refresh token rotates for the public client with its bare client_id.
    let refreshed = refresh(&app, reply.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.body["scope"], "openid profile registry:read");
}

async fn single_sign_on_then_logout_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let mut browser = Browser::new();
    let (code, verifier) = code_for(&app, &mut browser, "spa", APP).await;
    let first = exchange(&app, "spa", APP, &code, Some(&verifier)).await;
    assert_eq!(first.status, 200, "{}", first.body);

    // A second frontend: a code at once, no login page.
    let (url, verifier2) = authorize_url(&app, "console", APP2, &[]);
    let sso = browser.get(&url).await;
    assert_eq!(sso.status, StatusCode::SEE_OTHER, "{}", sso.html);
    assert!(sso.location.as_deref().unwrap().starts_with(APP2));
    let second = exchange(
        &app,
        "console",
        APP2,
        &sso.redirect_param("code").unwrap(),
        Some(&verifier2),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    let jwks = app.jwks().await;
    let sid1 = decode_id_token(&app, &jwks, first.body["id_token"].as_str().unwrap(), "spa")["sid"].clone();
    let sid2 = decode_id_token(&app, &jwks, second.body["id_token"].as_str().unwrap(), "console")["sid"].clone();
    assert_eq!(sid1, sid2, "one session");

    // A logout without a hint asks first (another site cannot log the person out).
    let ask = browser.get(&app.url("/oauth/logout")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.html.contains("Log out?"), "{}", ask.html);
    let (url, _) = authorize_url(&app, "console", APP2, &[]);
    assert_eq!(browser.get(&url).await.status, StatusCode::SEE_OTHER, "still logged in");

    // RP-initiated logout with the ID token: ended, and sent to the registered page.
    let mut logout = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", first.body["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", BYE)
        .append_pair("state", "bye-1");
    let out = browser.get(logout.as_str()).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.html);
    assert_eq!(out.location.as_deref(), Some(format!("{BYE}?state=bye-1").as_str()));
    assert!(!browser.cookies.contains_key("roster_session"), "the cookie is cleared");

    // The session is over everywhere: even its old cookie gets the login page,
    // and the refresh tokens issued in it are revoked.
    let (url, _) = authorize_url(&app, "console", APP2, &[]);
    let again = browser.get(&url).await;
    assert_eq!(again.status, StatusCode::OK, "login page again");
    let refresh = refresh(&app, first.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refresh.error(), "invalid_grant", "{}", refresh.body);
    assert!(app.audit_types().await.iter().any(|e| e.0 == "session.ended"));

    // A post-logout address that is not registered is never followed.
    logout.set_query(None);
    logout
        .query_pairs_mut()
        .append_pair("client_id", "spa")
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    let evil = browser.get(logout.as_str()).await;
    assert_eq!(evil.status, StatusCode::BAD_REQUEST);
    assert_eq!(evil.location, None);
}

async fn a_wrong_redirect_uri_is_a_page_never_a_redirect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let mut browser = Browser::new();
    for (client, redirect) in [
        ("spa", "http://localhost:5173/callback/../evil"),
        ("spa", "http://localhost:5173/callbackx"),
        ("spa", "http://localhost:5173/"),
        ("spa", "https://evil.example/callback"),
        ("spa", APP2),
        ("nobody", APP),
        ("alice", APP),
    ] {
        let (url, _) = authorize_url(&app, client, redirect, &[]);
        let page = browser.get(&url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{client} {redirect}");
        assert_eq!(page.location, None, "never redirected");
        assert!(page.html.contains("This login cannot continue"), "{}", page.html);
    }
    // Repeated parameters, a missing client: pages too.
    let page = browser
        .get(&app.url("/oauth/authorize?client_id=spa&client_id=console"))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = browser.get(&app.url("/oauth/authorize")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // Hostile values are escaped on the page.
    let (url, _) = authorize_url(&app, "spa", APP, &[]);
    let url = url.replace("state=st-1", "state=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    let page = browser.get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains("<script>"), "{}", page.html);
}

async fn pkce_is_required_and_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let mut browser = Browser::new();
    let base = app.url("/oauth/authorize?response_type=code&client_id=spa&state=s&redirect_uri=");
    let base = format!(
        "{base}{}",
        url::form_urlencoded::byte_serialize(APP.as_bytes()).collect::<String>()
    );
    for (extra, error) in [
        ("", "invalid_request"),
        (
            "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
            "invalid_request",
        ),
        (
            "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "invalid_request",
        ),
        ("&code_challenge=short&code_challenge_method=S256", "invalid_request"),
    ] {
        let page = browser.get(&format!("{base}{extra}")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{extra}");
        assert_eq!(page.redirect_param("error").as_deref(), Some(error), "{extra}");
        assert_eq!(page.redirect_param("state").as_deref(), Some("s"));
        assert_eq!(page.redirect_param("iss"), Some(app.issuer()));
    }
    let page = browser
        .get(&base.replace("response_type=code", "response_type=token"))
        .await;
    assert_eq!(
        page.redirect_param("error").as_deref(),
        Some("unsupported_response_type")
    );

    let (code, verifier) = code_for(&app, &mut browser, "spa", APP).await;
    let missing = exchange(&app, "spa", APP, &code, None).await;
    assert_eq!(
        (missing.status, missing.error()),
        (400, "invalid_grant"),
        "{}",
        missing.body
    );
    let wrong = exchange(&app, "spa", APP, &code, Some(&format!("{}x", &verifier[1..]))).await;
    assert_eq!((wrong.status, wrong.error()), (400, "invalid_grant"), "{}", wrong.body);
    assert_eq!(
        wrong.body["error_description"],
        "code_verifier does not match the code_challenge"
    );
    let other_redirect = exchange(&app, "spa", APP2, &code, Some(&verifier)).await;
    assert_eq!(other_redirect.error(), "invalid_grant");
    // The right verifier still works: a failed attempt does not burn the code.
    let ok = exchange(&app, "spa", APP, &code, Some(&verifier)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

async fn a_reused_code_revokes_what_it_issued(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let mut browser = Browser::new();
    let (code, verifier) = code_for(&app, &mut browser, "spa", APP).await;
    let first = exchange(&app, "spa", APP, &code, Some(&verifier)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.call(reqwest::Method::GET, "/api/v1/me", Some(access), None)
            .await
            .status,
        200
    );

    let second = exchange(&app, "spa", APP, &code, Some(&verifier)).await;
    assert_eq!(second.status, 400);
    assert_eq!(
        second.body,
        json!({"error": "invalid_grant", "error_description": "the authorization code is invalid, expired or already used"})
    );
    // RFC 6749 §4.1.2: the tokens of the first use are revoked.
    assert_eq!(
        app.call(reqwest::Method::GET, "/api/v1/me", Some(access), None)
            .await
            .status,
        401
    );
    let refresh = refresh(&app, first.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refresh.error(), "invalid_grant");
    assert!(
        app.audit_types()
            .await
            .iter()
            .any(|e| e.0 == "code.reused" && e.1 == "failed")
    );
    // A code that never existed is the same answer.
    let bogus = exchange(&app, "spa", APP, "not-a-code", Some(&verifier)).await;
    assert_eq!(bogus.body, second.body);
}

/// The first use's access token was already revoked (by its client, say):
/// the replay still revokes the refresh family, and answers invalid_grant,
/// not a 500 (on PostgreSQL the duplicate deny-list row used to abort the
/// transaction and roll the family's revocation back).
async fn a_reused_code_revokes_its_family_when_its_token_was_revoked_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let mut browser = Browser::new();
    let (code, verifier) = code_for(&app, &mut browser, "spa", APP).await;
    let first = exchange(&app, "spa", APP, &code, Some(&verifier)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.body["access_token"].as_str().unwrap().to_string();
    let claims = crate::support::claims_of(&access);
    let jti = claims["jti"].as_str().unwrap().to_string();
    let exp = chrono::DateTime::from_timestamp(claims["exp"].as_i64().unwrap(), 0).unwrap();
    let now = chrono::Utc::now();
    app.query(move |c| roster::db::transaction(c, |tx| roster::models::revoked_token::insert(tx, &jti, exp, now)))
        .await;

    let second = exchange(&app, "spa", APP, &code, Some(&verifier)).await;
    assert_eq!(
        (second.status, second.body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "the authorization code is invalid, expired or already used"})
        )
    );
    let refresh = refresh(&app, first.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (refresh.status, refresh.body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": "the refresh token is invalid, expired or revoked"})
        )
    );
    let reused: Vec<_> = app
        .audit_types()
        .await
        .into_iter()
        .filter(|e| e.0 == "code.reused")
        .collect();
    assert_eq!(reused.len(), 1, "{reused:?}");
}

async fn codes_expire_and_belong_to_their_client(backend: Backend) {
    let clock = Clock::manual(t0());
    let app = TestApp::builder(backend).clock(clock.clone()).spawn().await;
    setup(&app).await;
    let mut browser = Browser::new();
    let (code, verifier) = code_for(&app, &mut browser, "spa", APP).await;
    // Another client, even a registered one, cannot redeem it.
    let stolen = exchange(&app, "console", APP, &code, Some(&verifier)).await;
    assert_eq!(stolen.error(), "invalid_grant", "{}", stolen.body);
    // A client with a secret must authenticate: its bare client_id is not enough.
    app.create_service("server-app", &[]).await;
    let bare = exchange(&app, "server-app", APP, &code, Some(&verifier)).await;
    assert_eq!((bare.status, bare.error()), (401, "invalid_client"), "{}", bare.body);
    clock.advance(Duration::seconds(61));
    let late = exchange(&app, "spa", APP, &code, Some(&verifier)).await;
    assert_eq!(late.error(), "invalid_grant", "expired after 60 s: {}", late.body);

    // Within 60 s it works.
    let (code, verifier) = code_for(&app, &mut browser, "spa", APP).await;
    clock.advance(Duration::seconds(59));
    assert_eq!(exchange(&app, "spa", APP, &code, Some(&verifier)).await.status, 200);
}

async fn prompt_none_and_max_age(backend: Backend) {
    let clock = Clock::manual(t0());
    let app = TestApp::builder(backend).clock(clock.clone()).spawn().await;
    setup(&app).await;
    let mut browser = Browser::new();
    let (url, _) = authorize_url(&app, "spa", APP, &[("prompt", "none")]);
    let page = browser.get(&url).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.redirect_param("error").as_deref(), Some("login_required"));
    assert_eq!(page.redirect_param("state").as_deref(), Some("st-1"));

    code_for(&app, &mut browser, "spa", APP).await;
    let (url, _) = authorize_url(&app, "spa", APP, &[("prompt", "none")]);
    assert!(
        browser.get(&url).await.redirect_param("code").is_some(),
        "a session answers prompt=none"
    );
    let (url, _) = authorize_url(&app, "spa", APP, &[("prompt", "login")]);
    assert_eq!(
        browser.get(&url).await.status,
        StatusCode::OK,
        "prompt=login asks again"
    );
    clock.advance(Duration::seconds(120));
    let (url, _) = authorize_url(&app, "spa", APP, &[("max_age", "60")]);
    assert_eq!(
        browser.get(&url).await.status,
        StatusCode::OK,
        "the login is older than max_age"
    );
    let (url, _) = authorize_url(&app, "spa", APP, &[("max_age", "600")]);
    assert_eq!(browser.get(&url).await.status, StatusCode::SEE_OTHER);
    // Idle for the idle timeout (1 h): the session is over.
    clock.advance(Duration::hours(1));
    let (url, _) = authorize_url(&app, "spa", APP, &[("prompt", "none")]);
    assert_eq!(
        browser.get(&url).await.redirect_param("error").as_deref(),
        Some("login_required")
    );
}

async fn the_login_form_refuses_forged_posts_and_wrong_passwords_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let mut browser = Browser::new();
    let (url, _) = authorize_url(&app, "spa", APP, &[]);
    let page = browser.get(&url).await;

    // CSRF: a form posted from elsewhere has no cookie, or a token of another browser.
    let mut attacker = Browser::new();
    let forged = attacker.log_in(&app, &page, "alice", PASSWORD).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
    assert!(forged.html.contains("This form expired"), "{}", forged.html);
    assert!(!attacker.cookies.contains_key("roster_session"));
    let mut tampered = page.hidden();
    for f in tampered.iter_mut().filter(|(k, _)| k == "csrf") {
        f.1 = "0".repeat(64);
    }
    tampered.push(("username".into(), "alice".into()));
    tampered.push(("password".into(), PASSWORD.into()));
    assert_eq!(
        browser.post(&app.url("/oauth/login"), &tampered).await.status,
        StatusCode::FORBIDDEN
    );

    // A wrong password and an unknown user read the same.
    let wrong = browser.log_in(&app, &page, "alice", "wrong password!").await;
    let unknown = browser.log_in(&app, &page, "mallory", "wrong password!").await;
    assert_eq!(
        (wrong.status, unknown.status),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert!(wrong.html.contains("Invalid username or password."));
    assert_eq!(
        wrong.html.replace("value=\"alice\"", ""),
        unknown.html.replace("value=\"mallory\"", ""),
        "same page for both"
    );
    assert!(!browser.cookies.contains_key("roster_session"));
    let failures: Vec<_> = app
        .audit_types()
        .await
        .into_iter()
        .filter(|e| e.0 == "login.browser")
        .collect();
    // Newest first: the unknown name, then the wrong password (with whose it was).
    assert_eq!(
        failures
            .iter()
            .map(|e| (e.1.as_str(), e.2.is_some(), e.3.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("failed", false, Some("unknown user")),
            ("failed", true, Some("wrong password"))
        ],
        "{failures:?}"
    );

    // Throttled like the password grant.
    let mut last = wrong;
    for _ in 0..10 {
        last = browser.log_in(&app, &page, "alice", "wrong password!").await;
        if last.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS, "{}", last.html);
    assert!(last.headers.contains_key("retry-after"));

    // Garbage bodies are a page, not a 5xx.
    let resp = reqwest::Client::new()
        .post(app.url("/oauth/login"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

async fn disabling_a_person_ends_their_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = setup(&app).await;
    let mut browser = Browser::new();
    code_for(&app, &mut browser, "spa", APP).await;
    let admin = app.login("root-admin", "admin-password-123").await.0;
    let off = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/principals/{alice}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    let on = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/principals/{alice}"),
            Some(&admin),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(on.status, 200);
    let (url, _) = authorize_url(&app, "spa", APP, &[("prompt", "none")]);
    assert_eq!(
        browser.get(&url).await.redirect_param("error").as_deref(),
        Some("login_required"),
        "re-enabling does not revive the old session"
    );
}

async fn frontends_are_registered_by_admins_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let created = app
        .call(
            reqwest::Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "shop", "redirect_uris": ["https://shop.example/cb"], "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["redirect_uris"], json!(["https://shop.example/cb"]));
    assert_eq!(created.body["post_logout_redirect_uris"], json!([]));
    assert_eq!(created.body["public_client"], false);
    assert!(
        created.body["client_secret"].is_string(),
        "a server-side app gets its secret"
    );
    let id = created.body["id"].as_str().unwrap().to_string();
    let public = app
        .call(
            reqwest::Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "spa", "public_client": true, "redirect_uris": [APP]})),
        )
        .await;
    assert_eq!(public.status, 201, "{}", public.body);
    assert!(public.body.get("client_secret").is_none(), "{}", public.body);
    let secret = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/principals/{}/secrets", public.body["id"].as_str().unwrap()),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(secret.status, 409, "{}", secret.body);

    for bad in [
        json!(["http://shop.example/cb"]),
        json!(["/cb"]),
        json!(["https://shop.example/#x"]),
    ] {
        let r = app
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v1/principals/{id}"),
                Some(&admin),
                Some(json!({"redirect_uris": bad})),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.body["field"], "redirect_uris");
    }
    // Even holding admin, a service never sets its own redirect URIs.
    let shop_token = app
        .client_token("shop", created.body["client_secret"].as_str().unwrap())
        .await;
    let own = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/principals/{id}"),
            Some(&shop_token),
            Some(json!({"redirect_uris": ["https://evil.example/cb"]})),
        )
        .await;
    assert_eq!(own.status, 403, "{}", own.body);
    let view = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/principals/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(view.body["redirect_uris"], json!(["https://shop.example/cb"]));
    let fine = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/principals/{id}"),
            Some(&admin),
            Some(json!({"post_logout_redirect_uris": ["https://shop.example/bye"]})),
        )
        .await;
    assert_eq!(fine.status, 200, "{}", fine.body);
    assert_eq!(
        fine.body["post_logout_redirect_uris"],
        json!(["https://shop.example/bye"])
    );
    assert_eq!(fine.body["redirect_uris"], json!(["https://shop.example/cb"]));
}

async fn cors_answers_registered_origins_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let http = reqwest::Client::new();
    for (origin, allowed) in [
        ("http://localhost:5173", true),
        ("http://127.0.0.1:4200", true),
        ("https://evil.example", false),
        ("http://localhost:5174", false),
        ("null", false),
    ] {
        for path in [
            "/oauth/token",
            "/oauth/userinfo",
            "/oauth/revoke",
            "/.well-known/openid-configuration",
            "/api/v1/modules",
        ] {
            let pre = http
                .request(reqwest::Method::OPTIONS, app.url(path))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .send()
                .await
                .unwrap();
            assert_eq!(pre.status(), 204, "{origin} {path}");
            assert_eq!(
                pre.headers()
                    .get("access-control-allow-origin")
                    .map(|v| v.to_str().unwrap()),
                allowed.then_some(origin),
                "{origin} {path}"
            );
            assert!(pre.headers().get("access-control-allow-credentials").is_none());
        }
        let get = http
            .get(app.url("/.well-known/openid-configuration"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            get.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            allowed.then_some(origin)
        );
    }
    // Admin endpoints are never open cross-origin.
    let pre = http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/principals"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(pre.headers().get("access-control-allow-origin").is_none());
}

async fn the_password_grant_can_be_switched_off(backend: Backend) {
    let app = TestApp::builder(backend)
        .settings(|mut s| {
            s.token.password_grant = false;
            s
        })
        .spawn()
        .await;
    app.create_human("alice", PASSWORD, &[]).await;
    let r = app.password_grant("alice", PASSWORD).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error(), "unsupported_grant_type");
    let (_, meta) = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        meta["grant_types_supported"],
        json!([
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        meta["authorization_endpoint"],
        format!("{}/oauth/authorize", app.issuer())
    );
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["end_session_endpoint"], format!("{}/oauth/logout", app.issuer()));
    assert_eq!(meta["userinfo_endpoint"], format!("{}/oauth/userinfo", app.issuer()));
    assert_eq!(meta["response_types_supported"], json!(["code"]));
}

/// Sessions live in the database: an instance that never saw the login
/// honours the cookie (single sign-on behind a load balancer), and a logout
/// on one ends it on all.
async fn a_session_is_honoured_by_every_instance(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    setup(&a).await;
    let b = TestApp::builder(backend).same_database_as(&a).spawn().await;
    let mut browser = Browser::new();
    let (code, verifier) = code_for(&a, &mut browser, "spa", APP).await;
    let tokens = exchange(&b, "spa", APP, &code, Some(&verifier)).await;
    assert_eq!(
        tokens.status, 200,
        "a code of one instance redeems at another: {}",
        tokens.body
    );
    let (url, _) = authorize_url(&b, "console", APP2, &[("prompt", "none")]);
    let sso = browser.get(&url).await;
    assert!(sso.redirect_param("code").is_some(), "{:?} {}", sso.location, sso.html);
    let old_cookie = browser.cookies["roster_session"].clone();
    let mut logout = url::Url::parse(&b.url("/oauth/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", tokens.body["id_token"].as_str().unwrap());
    assert_eq!(browser.get(logout.as_str()).await.status, StatusCode::OK);
    // The old cookie, replayed at the first instance, is dead there too.
    browser.cookies.insert("roster_session".into(), old_cookie);
    let (url, _) = authorize_url(&a, "spa", APP, &[("prompt", "none")]);
    assert_eq!(
        browser.get(&url).await.redirect_param("error").as_deref(),
        Some("login_required")
    );
}

async fn https_issuers_get_secure_host_only_cookies(backend: Backend) {
    let app = TestApp::builder(backend)
        .settings(|mut s| {
            s.token.issuer = roster::auth::jwt::Issuer::new("https://id.example");
            s
        })
        .spawn()
        .await;
    setup(&app).await;
    let mut browser = Browser::new();
    let (url, _) = authorize_url(&app, "spa", APP, &[]);
    let page = browser.get(&url).await;
    let set: Vec<_> = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set.iter()
            .all(|c| c.starts_with("__Host-roster_csrf=") && c.contains("; Secure")),
        "{set:?}"
    );
    let done = browser.log_in(&app, &page, "alice", PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let set = done.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.starts_with("__Host-roster_session=") && set.contains("; Secure"),
        "{set}"
    );
    assert_eq!(done.redirect_param("iss").as_deref(), Some("https://id.example"));
}

async fn cors_follows_changes_to_the_registered_uris(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let admin = app.login("root-admin", "admin-password-123").await.0;
    let allowed = |origin: &'static str| {
        let http = reqwest::Client::new();
        let url = app.url("/oauth/token");
        async move {
            let r = http
                .request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .send()
                .await
                .unwrap();
            r.headers().contains_key("access-control-allow-origin")
        }
    };
    assert!(allowed("http://127.0.0.1:4200").await);
    assert!(!allowed("https://new.example").await);
    let list = app
        .call(reqwest::Method::GET, "/api/v1/principals?q=console", Some(&admin), None)
        .await;
    let id = list.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/principals/{id}"),
            Some(&admin),
            Some(json!({"redirect_uris": ["https://new.example/cb"], "post_logout_redirect_uris": []})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.tick().await;
    assert!(allowed("https://new.example").await, "the new origin, after the tick");
    assert!(!allowed("http://127.0.0.1:4200").await, "the old one is gone");
    // A disabled frontend's origins are refused.
    let off = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/principals/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(off.status, 200);
    app.tick().await;
    assert!(!allowed("https://new.example").await);
}

/// RFC 9700 §2.4 wants the password grant gone: the audit log says which
/// client still uses it, so admins know whom to move before `--password-grant off`.
async fn the_audit_log_names_the_clients_of_the_password_grant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_human("alice", PASSWORD, &[]).await;
    let cli = app.create_service("legacy-cli", &[]).await;
    let r = app
        .post_form(
            "/oauth/token",
            Some(("legacy-cli", &cli.secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = app.query(|conn| roster::models::audit::recent(conn, 100)).await;
    let login = events
        .iter()
        .find(|e| e.event_type == "login.password" && e.outcome == "ok")
        .expect("the login is audited");
    let details: serde_json::Value = serde_json::from_str(login.details.as_deref().unwrap()).unwrap();
    assert_eq!(details["grant_type"], "password");
    assert_eq!(details["client_id"], "legacy-cli");
}

/// The database drops Roster's connections in the middle of logins: the
/// request that meets a dead connection gets the 503 page with Retry-After
/// (never a 500 or a redirect), and the next one is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "PostgreSQL only: set TEST_DATABASE_URL (see README)"
)]
async fn a_dying_database_is_a_503_login_page_then_recovers() {
    use diesel::{Connection, RunQueryDsl};
    let admin_url = crate::support::require_postgres();
    let app = TestApp::spawn(Backend::Postgres).await;
    setup(&app).await;
    let mut browser = Browser::new();
    let (url, _) = authorize_url(&app, "spa", APP, &[]);
    for _ in 0..4 {
        assert_eq!(browser.get(&url).await.status, StatusCode::OK);
    }
    let dbname = url::Url::parse(&app.db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let mut admin = diesel::PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}' AND pid <> pg_backend_pid()"
    ))
    .execute(&mut admin)
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let page = browser.get(&url).await;
        if page.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(page.headers["retry-after"], "1");
            assert_eq!(page.location, None);
            assert!(page.html.contains("Login is unavailable for a moment"), "{}", page.html);
        }
        statuses.push(page.status.as_u16());
    }
    assert_eq!(statuses[0], 503, "the dead connection was used: {statuses:?}");
    assert!(!statuses.contains(&500), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 200, "recovered: {statuses:?}");
}
