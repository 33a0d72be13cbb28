//! actix-web integration: the [`Caller`] extractor and the [`RequireScope`]
//! middleware, answering as RFC 6750 §3 says.
//!
//! Put a [`Verifier`] in the app's data (`App::new().app_data(web::Data::new(verifier))`),
//! then take a `Caller` in a handler, and wrap a route or scope in
//! `RequireScope::new("orders:write")`.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use futures_util::future::LocalBoxFuture;

use crate::error::VerifyError;
use crate::verify::{Claims, Verifier};

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A [`VerifyError`] as an actix-web answer: status, `WWW-Authenticate`,
/// `Retry-After` for 503, and a JSON body `{error, error_description}`.
#[derive(Debug)]
pub struct Rejection(pub VerifyError);

impl ResponseError for Rejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.0.status()).unwrap_or(actix_web::http::StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let Some(challenge) = self.0.www_authenticate()
            && let Ok(v) = HeaderValue::from_str(&challenge)
        {
            resp.insert_header((WWW_AUTHENTICATE, v));
        }
        if let Some(secs) = self.0.retry_after_secs() {
            resp.insert_header((RETRY_AFTER, secs));
        }
        resp.json(self.0.body())
    }
}

/// Verify the request's caller once; later extractions reuse the answer.
async fn caller_of(req: HttpRequest) -> Result<Claims, VerifyError> {
    if let Some(c) = req.extensions().get::<Claims>() {
        return Ok(c.clone());
    }
    let verifier = req
        .app_data::<web::Data<Verifier>>()
        .map(|v| v.get_ref().clone())
        .ok_or(VerifyError::Unavailable("no Verifier in the app data"))?;
    let claims = verifier
        .verify_authorization(req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes))
        .await?;
    req.extensions_mut().insert(claims.clone());
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

impl FromRequest for Caller {
    type Error = Rejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { caller_of(req).await.map(Caller).map_err(Rejection) })
    }
}

/// Middleware: every request needs a valid token with these scopes (403
/// `insufficient_scope` otherwise). Wrap a route, a scope or the app.
#[derive(Debug, Clone)]
pub struct RequireScope {
    scopes: Rc<Vec<String>>,
}

impl RequireScope {
    /// Require `scopes` (space-separated: all of them).
    pub fn new(scopes: &str) -> Self {
        Self {
            scopes: Rc::new(scopes.split_whitespace().map(str::to_string).collect()),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireScope
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireScopeMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireScopeMiddleware {
            service: Rc::new(service),
            scopes: self.scopes.clone(),
        }))
    }
}

/// The service [`RequireScope`] wraps around.
pub struct RequireScopeMiddleware<S> {
    service: Rc<S>,
    scopes: Rc<Vec<String>>,
}

impl<S, B> Service<ServiceRequest> for RequireScopeMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let scopes = self.scopes.clone();
        Box::pin(async move {
            let required: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let checked = caller_of(req.request().clone())
                .await
                .and_then(|c| c.require(&required));
            match checked {
                Ok(()) => service.call(req).await.map(ServiceResponse::map_into_left_body),
                Err(e) => Ok(req.into_response(Rejection(e).error_response()).map_into_right_body()),
            }
        })
    }
}
