//! `GET /api/v1/revocations`: the revocation feed, a thin handler over
//! `crate::oauth::revocations`.

use actix_web::HttpResponse;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::web;

use super::extract::Bearer;
use super::query::Query;
use crate::error::Result;
use crate::oauth::revocations::{self, FeedQuery};
use crate::state::AppState;

pub async fn feed(state: web::Data<AppState>, Bearer(caller): Bearer, query: Query<FeedQuery>) -> Result<HttpResponse> {
    let oauth = state.oauth();
    let page = revocations::since(&oauth.db, &oauth.revocations, &caller, query.into_inner()).await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(page))
}
