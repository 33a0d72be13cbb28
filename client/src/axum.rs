//! axum integration: the [`Caller`] extractor, its [`Rejection`], and the
//! [`RequireScopeLayer`] tower layer, answering as RFC 6750 §3 says (the
//! same answers as the `actix` feature's).
//!
//! Make a [`Verifier`] reachable from the router's state (`Verifier:
//! FromRef<S>`; a `Router<Verifier>` works as it is), take a `Caller` in a
//! handler, and wrap a route or router in
//! `RequireScopeLayer::new(verifier, "orders:write")`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::VerifyError;
use crate::verify::{Claims, Verifier};

/// A [`VerifyError`] as an axum answer: status, `WWW-Authenticate`,
/// `Retry-After` for 503, and a JSON body `{error, error_description}`.
#[derive(Debug)]
pub struct Rejection(pub VerifyError);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let mut resp = (status, axum::Json(self.0.body())).into_response();
        if let Some(challenge) = self.0.www_authenticate()
            && let Ok(v) = HeaderValue::from_str(&challenge)
        {
            resp.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        if let Some(secs) = self.0.retry_after_secs() {
            resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Verify the request's caller once; a later extraction reuses the answer
/// the layer left in the request's extensions.
async fn caller_of(parts: &mut Parts, verifier: &Verifier) -> Result<Claims, VerifyError> {
    if let Some(c) = parts.extensions.get::<Claims>() {
        return Ok(c.clone());
    }
    let claims = verifier
        .verify_authorization(parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes))
        .await?;
    parts.extensions.insert(claims.clone());
    Ok(claims)
}

/// Who is calling, verified: extract it in a handler to require a valid token.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl std::ops::Deref for Caller {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let verifier = Verifier::from_ref(state);
        caller_of(parts, &verifier).await.map(Caller).map_err(Rejection)
    }
}

/// A tower layer: every request needs a valid token with these scopes (403
/// `insufficient_scope` otherwise). Wrap a route, a router or the app.
#[derive(Clone)]
pub struct RequireScopeLayer {
    verifier: Verifier,
    scopes: std::sync::Arc<Vec<String>>,
}

impl RequireScopeLayer {
    /// Require `scopes` (space-separated: all of them), checked by `verifier`.
    pub fn new(verifier: Verifier, scopes: &str) -> Self {
        Self {
            verifier,
            scopes: std::sync::Arc::new(scopes.split_whitespace().map(str::to_string).collect()),
        }
    }
}

impl<S> tower_layer::Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> RequireScope<S> {
        RequireScope {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`RequireScopeLayer`] wraps around.
#[derive(Clone)]
pub struct RequireScope<S> {
    inner: S,
    layer: RequireScopeLayer,
}

impl<S, B> tower_service::Service<Request<B>> for RequireScope<S>
where
    S: tower_service::Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone is the one made ready; this one serves the next call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let required: Vec<&str> = layer.scopes.iter().map(String::as_str).collect();
            let checked = caller_of(&mut parts, &layer.verifier)
                .await
                .and_then(|c| c.require(&required));
            match checked {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(e) => Ok(Rejection(e).into_response()),
            }
        })
    }
}
