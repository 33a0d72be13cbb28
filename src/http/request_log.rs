//! The request span, and what is logged when a request ends: a client's
//! mistake (4xx) is one short line at debug level; warnings and errors are
//! kept for the server's own trouble (5xx). tracing-actix-web's own event on
//! every error is switched off (its `emit_event_on_error` feature): it logged
//! each 4xx as a long WARN line.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(request)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        match outcome {
            Ok(response) if response.status().is_client_error() => {
                let status = response.status().as_u16();
                span.record("http.status_code", status);
                let _entered = span.enter();
                match response.response().error() {
                    Some(e) => tracing::debug!(status, "client error: {e}"),
                    None => tracing::debug!(status, "client error"),
                }
            }
            Ok(response) if response.status().is_server_error() => {
                let status = response.status().as_u16();
                let _entered = span.enter();
                match response.response().error() {
                    Some(e) => tracing::warn!(status, "request failed: {e}"),
                    None => tracing::warn!(status, "request failed"),
                }
                drop(_entered);
                DefaultRootSpanBuilder::on_request_end(span, outcome);
            }
            other => DefaultRootSpanBuilder::on_request_end(span, other),
        }
    }
}
