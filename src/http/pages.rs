//! Roster's own HTML pages (the login page, logout, errors): server-rendered
//! with maud (which escapes every value), embedded in the binary, working
//! without JavaScript, and served with a strict Content-Security-Policy.

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use actix_web::{HttpResponse, HttpResponseBuilder};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The one stylesheet, inline and allowed by its hash (CSP Level 2 §4.2.4).
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f4f5f7;color:#1b1f24;margin:0}\
main{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 4px rgba(0,0,0,.15)}\
h1{font-size:1.4rem;margin:0 0 .25rem}\
p.lead{margin:0 0 1.5rem;color:#4a5361}\
label{display:block;font-weight:600;margin:1rem 0 .3rem}\
input[type=text],input[type=password]{box-sizing:border-box;width:100%;padding:.6rem;font-size:1rem;border:1px solid #8a94a3;border-radius:.3rem}\
input:focus,button:focus{outline:3px solid #3b82f6;outline-offset:1px}\
button{margin-top:1.5rem;width:100%;padding:.7rem;font-size:1rem;font-weight:600;color:#fff;background:#1d4ed8;border:0;border-radius:.3rem;cursor:pointer}\
.qr{display:block;margin:1rem auto;width:12rem;height:12rem}\
code.secret{display:block;word-break:break-all;background:#f4f5f7;padding:.5rem;border-radius:.3rem;font-size:.95rem}\
ul.codes{columns:2;font-family:ui-monospace,monospace;padding-left:1.2rem}\
a.button{display:block;text-align:center;margin-top:1.5rem;padding:.7rem;font-weight:600;color:#fff;background:#1d4ed8;border-radius:.3rem;text-decoration:none}\
p.error:empty{display:none}\
.error{background:#fdecec;color:#8a1111;border:1px solid #f3b4b4;padding:.6rem .8rem;border-radius:.3rem;margin:0 0 1rem}\
footer{margin-top:1.5rem;font-size:.8rem;color:#6b7480}";

/// `'sha256-…'` of [`STYLE`].
fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        use base64::Engine as _;
        let digest = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
        format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
    })
}

/// What the head of every Roster page starts with (the console's shell
/// too): the charset, the viewport, and no referrer.
pub fn head_common() -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="referrer" content="no-referrer";
    }
}

/// A whole page around `body`. maud escapes every value it is given; only
/// the stylesheet above is inserted as it is.
fn document(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (head_common())
                title { (title) " · Roster" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    (body)
                    footer { "Roster identity service" }
                }
            }
        }
    }
    .into_string()
}

/// A page response: never cached, never framed, no script, forms only to
/// Roster and to `form_targets` (a browser checks a form's redirects too).
pub fn respond(status: StatusCode, html: String, form_targets: &[String]) -> HttpResponse {
    let mut form_action = String::from("'self'");
    for t in form_targets {
        form_action.push(' ');
        form_action.push_str(t);
    }
    let csp = format!(
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src {}; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
        style_hash()
    );
    let mut resp = HttpResponseBuilder::new(status);
    headers(&mut resp, &csp);
    resp.content_type("text/html; charset=utf-8").body(html)
}

/// The headers of every Roster page: its policy, never framed, never cached, no referrer.
pub(crate) fn headers(resp: &mut HttpResponseBuilder, csp: &str) {
    resp.insert_header((CONTENT_SECURITY_POLICY, csp.to_string()))
        .insert_header((X_FRAME_OPTIONS, "DENY"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((REFERRER_POLICY, "no-referrer"));
}

fn hidden(fields: &[(&str, String)]) -> Markup {
    html! {
        @for (name, value) in fields {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// The login page. `error` is shown above the form, announced to screen readers.
pub fn login(
    client: &str,
    carried: &[(&str, String)],
    csrf: &str,
    username: Option<&str>,
    error: Option<&str>,
    passkeys: bool,
) -> String {
    let body = html! {
        h1 { "Log in" }
        p.lead { "to continue to " strong { (client) } }
        @if let Some(e) = error {
            p.error role="alert" id="login-error" { (e) }
        }
        form method="post" action="/oauth/login" aria-describedby=[error.map(|_| "login-error")] {
            (hidden(carried))
            input type="hidden" name="csrf" value=(csrf);
            label for="username" { "Username" }
            input type="text" id="username" name="username" autocomplete="username" autocapitalize="none"
                spellcheck="false" required maxlength="255" value=(username.unwrap_or("")) autofocus[username.is_none()];
            label for="password" { "Password" }
            input type="password" id="password" name="password" autocomplete="current-password" required
                autofocus[username.is_some()];
            button type="submit" { "Log in" }
        }
        @if passkeys {
            (passkey("discoverable", "Sign in with a passkey", carried, csrf))
        }
    };
    document("Log in", body)
}

/// The passkey script of the login pages.
pub const PASSKEY_SCRIPT: &str = include_str!("pages_assets/passkey.js");

/// WebAuthn's JSON both ways, for every page that calls WebAuthn (the
/// console's too); loaded before the page's own script.
pub const WEBAUTHN_SCRIPT: &str = include_str!("pages_assets/webauthn.js");

/// A passkey button (hidden until the script finds WebAuthn) and the form
/// the script sends its answer in, carrying the authorization request.
fn passkey(mode: &str, label: &str, carried: &[(&str, String)], csrf: &str) -> Markup {
    html! {
        button type="button" id="passkey" data-mode=(mode) hidden { (label) }
        p.error role="status" id="passkey-status" {}
        form method="post" action="/oauth/passkey/finish" id="passkey-form" {
            (hidden(carried))
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="ceremony" value="";
            input type="hidden" name="credential" value="";
        }
        script src="/oauth/webauthn.js" defer {}
        script src="/oauth/passkey.js" defer {}
    }
}

/// What the second-step page asks for.
pub enum SecondStep<'a> {
    /// A TOTP or recovery code.
    Code,
    /// Enrol a TOTP factor: its id, base32 secret and `otpauth://` URI.
    Enrol {
        id: &'a str,
        secret: &'a str,
        otpauth_uri: &'a str,
    },
}

/// The `otpauth://` URI as a QR code, an inline SVG.
fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::svg::Color<'_>>().quiet_zone(true).build())
}

/// The second step of a login: a code, or enrolling a first factor.
pub fn second_step(
    client: &str,
    person: &str,
    carried: &[(&str, String)],
    csrf: &str,
    step: &SecondStep<'_>,
    error: Option<&str>,
    passkeys: bool,
) -> String {
    let body = html! {
        @match step {
            SecondStep::Code => {
                h1 { "Two-step verification" }
                p.lead { "Signed in as " strong { (person) } ". Enter the code from your authenticator app, or one of your recovery codes, to continue to " strong { (client) } "." }
            }
            SecondStep::Enrol { secret, otpauth_uri, .. } => {
                h1 { "Set up two-step verification" }
                p.lead { "Your account " strong { (person) } " needs a second factor. Scan this code with an authenticator app, or type the key, then enter the six-digit code it shows." }
                @if let Some(svg) = qr_svg(otpauth_uri) {
                    div.qr role="img" aria-label="QR code of the authenticator key" { (PreEscaped(svg)) }
                }
                label for="totp-secret" { "Key" }
                code.secret id="totp-secret" { (secret) }
            }
        }
        @if let Some(e) = error {
            p.error role="alert" id="step-error" { (e) }
        }
        form method="post" action="/oauth/login/second" aria-describedby=[error.map(|_| "step-error")] {
            (hidden(carried))
            input type="hidden" name="csrf" value=(csrf);
            @if let SecondStep::Enrol { id, .. } = step {
                input type="hidden" name="enrolment" value=(id);
            }
            label for="code" { "Code" }
            input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" autocapitalize="none"
                spellcheck="false" required maxlength="64" autofocus;
            button type="submit" { "Verify" }
        }
        @if passkeys && matches!(step, SecondStep::Code) {
            (passkey("second", "Use a passkey instead", carried, csrf))
        }
    };
    document("Two-step verification", body)
}

/// The recovery codes, shown once after a first factor is enrolled.
pub fn recovery_codes(codes: &[&str], continue_to: &str) -> String {
    let body = html! {
        h1 { "Save your recovery codes" }
        p.lead { "Each code logs you in once if you lose your authenticator. They are shown only now: keep them somewhere safe." }
        ul.codes id="recovery-codes" {
            @for c in codes {
                li { code { (c) } }
            }
        }
        a.button href=(continue_to) id="continue" { "I have saved them, continue" }
    };
    document("Recovery codes", body)
}

/// The device login: the person types the code their device shows.
pub fn device_enter(person: &str, csrf: &str, error: Option<&str>) -> String {
    let body = html! {
        h1 { "Sign in on a device" }
        p.lead { "Signed in as " strong { (person) } ". Enter the code your device or command line shows." }
        @if let Some(e) = error {
            p.error role="alert" id="device-error" { (e) }
        }
        form method="post" action="/oauth/device" aria-describedby=[error.map(|_| "device-error")] {
            input type="hidden" name="csrf" value=(csrf);
            label for="user_code" { "Code" }
            input type="text" id="user_code" name="user_code" autocomplete="off" autocapitalize="characters"
                spellcheck="false" required maxlength="32" autofocus;
            button type="submit" { "Continue" }
        }
    };
    document("Sign in on a device", body)
}

/// The device login: approve or deny the device's request.
pub fn device_confirm(person: &str, client: &str, scope: &[String], user_code: &str, csrf: &str) -> String {
    let body = html! {
        h1 { "Sign in on a device?" }
        p.lead { strong { (client) } " on a device showing " strong { (user_code) } " asks to act as " strong { (person) } "." }
        @if !scope.is_empty() {
            p { "It asks for: " (scope.join(", ")) }
        }
        p { "Approve only if you started this sign-in yourself and the code matches." }
        form method="post" action="/oauth/device" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="user_code" value=(user_code);
            button type="submit" name="action" value="approve" id="approve" { "Approve" }
            button type="submit" name="action" value="deny" id="deny" { "Deny" }
        }
    };
    document("Sign in on a device", body)
}

/// The device login answered.
pub fn device_done(approved: bool) -> String {
    let body = html! {
        @if approved {
            h1 { "Device signed in" }
            p.lead { "You can return to your device; it continues on its own." }
        } @else {
            h1 { "Sign-in denied" }
            p.lead { "The device was not signed in." }
        }
    };
    document("Sign in on a device", body)
}

/// The invitation script.
pub const INVITATION_SCRIPT: &str = include_str!("pages_assets/invitation.js");

/// The invitation page: the script reads the link's token from the URL
/// fragment (never sent here), registers a passkey with it, then shows
/// `done` (with a link to `sign_in`, when there is a place to sign in).
pub fn invitation(sign_in: Option<&str>, unavailable: Option<&str>) -> String {
    let body = html! {
        h1 { "Welcome to Roster" }
        @if let Some(why) = unavailable {
            p.error role="alert" { (why) }
        } @else {
            div id="invitation" {
                p.lead id="invitation-lead" { "You were invited to sign in with a passkey: your device keeps it, and no password is needed." }
                p.error role="status" id="invitation-status" {}
                noscript { p.error { "This page needs JavaScript to create a passkey." } }
                button type="button" id="invitation-create" hidden { "Create a passkey" }
            }
            div id="invitation-done" hidden {
                p.lead role="status" { "Your passkey is ready. Sign in with it from now on: choose “Sign in with a passkey” on the login page." }
                @if let Some(url) = sign_in {
                    a.button href=(url) id="invitation-sign-in" { "Sign in" }
                }
            }
            script src="/oauth/webauthn.js" defer {}
            script src="/oauth/invitation.js" defer {}
        }
    };
    document("Invitation", body)
}

/// A page that explains why nothing happens, and sends nobody anywhere.
pub fn error(message: &str) -> String {
    let body = html! {
        h1 { "This login cannot continue" }
        p.error role="alert" { (message) }
        p { "Go back to the application and try again. If this keeps happening, tell its administrator." }
    };
    document("Login error", body)
}

/// Ask before ending the session.
pub fn logout_confirm(carried: &[(&str, String)], csrf: &str) -> String {
    let body = html! {
        h1 { "Log out?" }
        p.lead { "You will be logged out of every application that uses this login." }
        form method="post" action="/oauth/logout" {
            (hidden(carried))
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="confirm" value="yes";
            button type="submit" { "Log out" }
        }
    };
    document("Log out", body)
}

pub fn logged_out() -> String {
    let body = html! {
        h1 { "You are logged out" }
        p.lead { "You can close this window." }
    };
    document("Logged out", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_on_the_login_page_is_escaped() {
        let hostile = "\"><script>alert(1)</script>";
        let page = login(
            hostile,
            &[("state", hostile.to_string())],
            hostile,
            Some(hostile),
            Some(hostile),
            false,
        );
        assert!(!page.contains("<script"), "{page}");
        // With passkeys, the only scripts are Roster's own files, and the
        // carried values are escaped in its form too.
        let page = login(hostile, &[("state", hostile.to_string())], hostile, None, None, true);
        assert_eq!(page.matches("<script").count(), 2, "{page}");
        assert!(
            page.contains(
                "<script src=\"/oauth/webauthn.js\" defer></script><script src=\"/oauth/passkey.js\" defer></script>"
            ),
            "{page}"
        );
        assert!(!page.contains("<script>"), "{page}");
        // All five values (client, state, csrf, username, error) appear, each
        // escaped, and nowhere raw.
        let escaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;";
        assert_eq!(page.matches(escaped).count(), 5, "{page}");
        assert_eq!(page.matches("alert(1)").count(), 5, "{page}");
    }

    #[test]
    fn pages_forbid_scripts_frames_and_foreign_forms() {
        let r = respond(StatusCode::OK, error("x"), &["https://app.example".into()]);
        let csp = r.headers().get(CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
        // Roster's own script file only (the passkey button): no inline
        // script, no eval, no other origin.
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.contains("form-action 'self' https://app.example;"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers().get(X_FRAME_OPTIONS).unwrap(), "DENY");
        assert_eq!(r.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    }
}
