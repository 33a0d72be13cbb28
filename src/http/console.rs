//! The admin console at `/console/`: one HTML shell, its script and its
//! stylesheet, embedded in the binary. The script logs in through the
//! authorization-code flow as the public client `roster-console` and calls
//! only the public API with the admin's own token: the console holds no
//! privilege, and the server renders no admin data into it.

use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpResponse, HttpResponseBuilder, web};

use maud::{DOCTYPE, html};

use super::pages;
use crate::error::{Error, Result};
use crate::principals::console::CONSOLE_CLIENT;
use crate::state::AppState;

/// The console's script: vanilla JavaScript, no build step.
pub const SCRIPT: &str = include_str!("console/app.js");
/// The console's stylesheet.
pub const STYLE: &str = include_str!("console/app.css");

/// Scripts and styles from Roster only (no inline script, no inline style,
/// no `eval`), API calls to Roster only, never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes. They are pages, not API: they are not in `ROUTES`
/// nor in the OpenAPI document.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/console", web::get().to(to_shell))
        .route("/console/", web::get().to(shell))
        .route("/console/app.js", web::get().to(script))
        .route("/console/app.css", web::get().to(style));
}

/// Roster's page headers (never framed, never cached, no referrer) with the console's policy.
fn headers(mut resp: HttpResponseBuilder) -> HttpResponseBuilder {
    pages::headers(&mut resp, CSP);
    resp
}

fn enabled(state: &AppState) -> Result<()> {
    if state.settings().console {
        Ok(())
    } else {
        Err(Error::NotFound("/console/ (the admin console is off)".into()))
    }
}

/// `GET /console`: to `/console/`, the address the script and the login
/// return are relative to.
async fn to_shell(state: web::Data<AppState>) -> Result<HttpResponse> {
    enabled(&state)?;
    Ok(headers(HttpResponse::Found())
        .insert_header((LOCATION, "console/"))
        .finish())
}

/// `GET /`: a browser lands on the console; with the console off, where to
/// go instead (the discovery document and the API's description).
async fn root(state: web::Data<AppState>) -> HttpResponse {
    if state.settings().console {
        return headers(HttpResponse::Found())
            .insert_header((LOCATION, "console/"))
            .finish();
    }
    let issuer = state.issuer();
    HttpResponse::Ok().json(serde_json::json!({
        "service": "roster",
        "issuer": issuer,
        "openid_configuration": format!("{issuer}/.well-known/openid-configuration"),
        "openapi": format!("{issuer}/openapi.yaml"),
        "console": serde_json::Value::Null,
    }))
}

/// The page every console view starts from; the script fills `<main>`.
pub fn shell_html(issuer: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (pages::head_common())
                meta name="roster-issuer" content=(issuer);
                meta name="roster-client" content=(CONSOLE_CLIENT);
                title { "Roster console" }
                link rel="stylesheet" href="app.css";
                script src="/oauth/webauthn.js" defer {}
                script src="app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="#/principals" { "Roster console" }
                    nav aria-label="Console" {
                        ul {
                            li { a href="#/principals" { "Principals" } }
                            li { a href="#/registry" { "Registry" } }
                            li { a href="#/modules" { "Modules" } }
                            li { a href="#/audit" { "Audit" } }
                            li { a href="#/federation" { "Issuers" } }
                            li { a href="#/security" { "Security" } }
                        }
                    }
                    div #who .who {}
                }
                main #main tabindex="-1" {
                    noscript {
                        p.error {
                            "The console is a script that calls Roster's API: it needs JavaScript. \
                             The same actions are in the API and the roster CLI."
                        }
                    }
                    p #boot { "Loading…" }
                }
            }
        }
    }
    .into_string()
}

/// `GET /console/`: the shell, never cached (it names the issuer).
async fn shell(state: web::Data<AppState>) -> Result<HttpResponse> {
    enabled(&state)?;
    Ok(headers(HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        .body(shell_html(state.issuer())))
}

/// Assets are revalidated on every load, so a new binary's script is used at once.
fn asset(state: &AppState, content_type: &str, body: &'static str) -> Result<HttpResponse> {
    enabled(state)?;
    Ok(headers(HttpResponse::Ok())
        .insert_header((CACHE_CONTROL, "no-cache"))
        .content_type(content_type)
        .body(body))
}

/// `GET /console/app.js`
async fn script(state: web::Data<AppState>) -> Result<HttpResponse> {
    asset(&state, "text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /console/app.css`
async fn style(state: web::Data<AppState>) -> Result<HttpResponse> {
    asset(&state, "text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script builds every element with `createElement` and sets every
    /// value as text: none of the ways to turn a string into markup or code
    /// appears in it, and it sets no inline style the policy would refuse.
    #[test]
    fn the_script_never_turns_data_into_markup_or_code() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setTimeout('",
            ".style.",
            "javascript:",
        ] {
            assert!(!SCRIPT.contains(sink), "app.js uses {sink}");
        }
        // Attributes named on… are listeners, never strings.
        assert!(SCRIPT.contains("if (k.startsWith('on')) el.addEventListener(k.slice(2), v);"));
    }

    /// The password hints say what the server enforces.
    #[test]
    fn the_password_hints_follow_the_rule() {
        let hint = format!("At least {} characters", crate::auth::password::MIN_PASSWORD_CHARS);
        assert_eq!(SCRIPT.matches(&hint).count(), 2);
        assert_eq!(SCRIPT.matches("At least ").count(), 2);
    }

    #[test]
    fn the_shell_escapes_the_issuer() {
        let html = shell_html("https://x.example/\"><script>alert(1)</script>");
        assert!(html.contains("content=\"https://x.example/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
        assert_eq!(html.matches("<script").count(), 2);
    }
}
