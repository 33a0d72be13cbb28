//! The menu frontends build from `/api/v1/modules`: the pages of the
//! services that are up, filtered by the caller's scopes and sorted, answered
//! with an ETag so that an unchanged menu costs a 304.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::RegistryContext;
use super::manifest::{Manifest, Page};
use super::service;
use super::watch::{Block, read_view};
use crate::auth::access::Caller;
use crate::error::{Error, Result};
use crate::models::principal;
use crate::models::registration::MODULES_KEY;
use crate::page::Page as ListPage;

/// One service's module as a frontend sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MenuModule {
    pub service: String,
    #[serde(flatten)]
    pub manifest: Manifest,
}

fn page_key(p: &Page) -> (i64, String) {
    (p.menu_position.unwrap_or(i64::MAX), p.name.clone())
}

/// Build the menu from the manifests of services that are up: keep the pages
/// the caller's scopes allow (anonymous callers: `None`), sort pages by
/// `menu_position` then name, and modules by their first page, then name.
pub fn menu(manifests: Vec<(String, Manifest)>, scopes: Option<&[String]>) -> Vec<MenuModule> {
    let allowed = |p: &Page| match (&p.required_scope, scopes) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(req), Some(have)) => have.iter().any(|s| s == req),
    };
    let mut modules: Vec<MenuModule> = manifests
        .into_iter()
        .filter_map(|(service, mut manifest)| {
            manifest.pages.retain(allowed);
            manifest.pages.sort_by_key(page_key);
            (!manifest.pages.is_empty()).then_some(MenuModule { service, manifest })
        })
        .collect();
    modules.sort_by(|a, b| {
        let ka = a.manifest.pages.first().map(page_key);
        let kb = b.manifest.pages.first().map(page_key);
        (ka, &a.manifest.name, &a.service).cmp(&(kb, &b.manifest.name, &b.service))
    });
    modules
}

/// The menu as it goes on the wire, with its entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMenu {
    /// A strong entity tag (RFC 9110 §8.8.3) of the body.
    pub etag: String,
    /// The JSON body; `None` when the caller's `If-None-Match` already
    /// names this menu (RFC 9110 §13.1.2: answer 304).
    pub body: Option<bytes::Bytes>,
}

/// A strong tag of the body: the first 128 bits of its SHA-256.
pub fn etag_of(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    format!("\"{}\"", &crate::auth::secrets::hex(digest.as_ref())[..32])
}

/// RFC 9110 §13.1.2: does `If-None-Match` name `etag` (weak comparison), or `*`?
pub fn matches(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
    })
}

/// The menu as the JSON list body, with its entity tag.
fn serialize(modules: Vec<MenuModule>) -> Result<(String, bytes::Bytes)> {
    let body = serde_json::to_vec(&ListPage {
        items: modules,
        next_cursor: None,
    })
    .map_err(Error::internal)?;
    Ok((etag_of(&body), bytes::Bytes::from(body)))
}

/// Decide between 200 and 304 for a rendered body.
fn answer(etag: String, body: bytes::Bytes, if_none_match: Option<&str>) -> RenderedMenu {
    let fresh = !matches(if_none_match, &etag);
    RenderedMenu {
        etag,
        body: fresh.then_some(body),
    }
}

/// Render the menu as the JSON list body, and decide between 200 and 304.
pub fn render(modules: Vec<MenuModule>, if_none_match: Option<&str>) -> Result<RenderedMenu> {
    let (etag, body) = serialize(modules)?;
    Ok(answer(etag, body, if_none_match))
}

/// How long a rendered menu is served without asking the database, at most.
/// A change made on this instance moves the change index and is seen at
/// once; one made elsewhere reaches this instance's index within a tick.
/// The bound also covers what the index does not count.
pub const MENU_CACHE_TTL_MS: i64 = 1000;

/// Most scope sets whose menus are kept at once.
const MENU_CACHE_ENTRIES: usize = 256;

/// The menus last rendered, per scope set, at one change index: the module
/// list is read on every page load of every frontend, and changes rarely.
#[derive(Default)]
pub struct MenuCache {
    state: Mutex<MenuCacheState>,
}

#[derive(Default)]
struct MenuCacheState {
    index: i64,
    built_at: Option<DateTime<Utc>>,
    /// Sorted scopes (`None`: anonymous) -> (ETag, body).
    /// `Bytes`: every answer shares the one rendered body, never a copy.
    menus: HashMap<Option<Vec<String>>, (String, bytes::Bytes)>,
}

impl MenuCacheState {
    /// Are the menus held for `index`, and younger than the TTL at `now`?
    fn serves(&self, index: i64, now: DateTime<Utc>) -> bool {
        self.index == index
            && self
                .built_at
                .is_some_and(|t| now >= t && now - t < Duration::milliseconds(MENU_CACHE_TTL_MS))
    }
}

impl MenuCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, MenuCacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &Option<Vec<String>>, index: i64, now: DateTime<Utc>) -> Option<(String, bytes::Bytes)> {
        let state = self.lock();
        if !state.serves(index, now) {
            return None;
        }
        state.menus.get(key).cloned()
    }

    fn put(&self, key: Option<Vec<String>>, index: i64, now: DateTime<Utc>, etag: String, body: bytes::Bytes) {
        let mut state = self.lock();
        if index < state.index {
            return; // built from data older than what the cache holds
        }
        if !state.serves(index, now) || state.menus.len() >= MENU_CACHE_ENTRIES {
            state.menus.clear();
            state.index = index;
            state.built_at = Some(now);
        }
        state.menus.insert(key, (etag, body));
    }
}

impl RegistryContext {
    /// `GET /api/v1/modules`: the menu for a caller with `scopes` (`None`:
    /// anonymous, who sees only pages without a `required_scope`), from the
    /// cache while the change index has not moved (see [`MenuCache`]). With
    /// `block`, it answers once this caller's menu changed, so a change to a
    /// page the caller may not see wakes nobody. Returns the menu and the
    /// change index.
    pub async fn modules(
        &self,
        scopes: Option<Vec<String>>,
        if_none_match: Option<String>,
        now: DateTime<Utc>,
        block: Option<Block>,
    ) -> Result<(RenderedMenu, i64)> {
        let key = scopes.map(|mut s| {
            s.sort();
            s.dedup();
            s
        });
        let read = || {
            let key = key.clone();
            async move { cached(self, key, now).await }
        };
        let ((etag, body), index) = read_view(self, vec![MODULES_KEY.to_string()], block, read).await?;
        Ok((answer(etag, body, if_none_match.as_deref()), index))
    }
}

impl RegistryContext {
    /// The scopes a menu is built for: the caller's token's (none for an
    /// anonymous caller), or, when an admin asks `as` a principal, every scope
    /// that principal holds, as its own token could carry them.
    pub async fn viewer_scopes(
        &self,
        caller: Option<&Caller>,
        as_principal: Option<String>,
    ) -> Result<Option<Vec<String>>> {
        let Some(name) = as_principal else {
            return Ok(caller.map(Caller::scopes));
        };
        match caller {
            Some(c) if c.is_admin() => {}
            Some(_) => {
                return Err(Error::Forbidden(
                    "only an admin may see the menu as another principal".into(),
                ));
            }
            None => {
                return Err(Error::Unauthorized(
                    "the menu as another principal is for admins".into(),
                ));
            }
        }
        let scopes = self
            .db
            .run(move |c| match principal::find_by_name(c, &name)? {
                Some(p) => principal::scopes_of(c, &p.id),
                None => Err(Error::NotFound(format!("principal {name}"))),
            })
            .await?;
        Ok(Some(scopes))
    }
}

/// The menu for one scope set as (ETag, body), from the cache when it holds it.
async fn cached(ctx: &RegistryContext, key: Option<Vec<String>>, now: DateTime<Utc>) -> Result<(String, bytes::Bytes)> {
    // Read before the database: a change that lands meanwhile moves the
    // index, so a menu built from older data is never filed under the new one.
    let index = ctx.feed.current();
    if let Some(hit) = ctx.menus.get(&key, index, now) {
        return Ok(hit);
    }
    let manifests = ctx.db.run(service::up_manifests).await?;
    let (etag, body) = serialize(menu(manifests, key.as_deref()))?;
    ctx.menus.put(key, index, now, etag.clone(), body.clone());
    Ok((etag, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::manifest::tests::{manifest, page};
    use serde_json::json;

    #[test]
    fn menu_filters_by_scope_and_sorts() {
        let a = manifest(json!({"name": "A", "code": "a", "pages": [page("a2", Some(20), None), page("a1", Some(5), Some("admin"))]})).unwrap();
        let b =
            manifest(json!({"name": "B", "code": "b", "pages": [page("b1", Some(10), None), page("b0", None, None)]}))
                .unwrap();
        let c = manifest(json!({"name": "C", "code": "c", "pages": [page("c1", Some(1), Some("secret"))]})).unwrap();
        let all = vec![
            ("svc-a".to_string(), a),
            ("svc-b".to_string(), b),
            ("svc-c".to_string(), c),
        ];

        let anon = menu(all.clone(), None);
        let names: Vec<_> = anon.iter().map(|m| m.service.as_str()).collect();
        assert_eq!(
            names,
            ["svc-b", "svc-a"],
            "C has no public page; B's first page (10) precedes A's (20)"
        );
        let b_pages: Vec<_> = anon[0].manifest.pages.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(b_pages, ["b1", "b0"], "pages without a position come last");

        let admin = menu(all, Some(&["admin".to_string()]));
        let names: Vec<_> = admin.iter().map(|m| m.service.as_str()).collect();
        assert_eq!(names, ["svc-a", "svc-b"]);
        assert_eq!(admin[0].manifest.pages[0].code, "a1");
    }

    #[test]
    fn the_etag_follows_the_body_and_if_none_match_is_honoured() {
        let m = manifest(json!({"name": "A", "code": "a", "pages": [page("a1", Some(1), None)]})).unwrap();
        let first = render(menu(vec![("svc-a".into(), m.clone())], None), None).unwrap();
        let body = first.body.clone().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["items"][0]["service"], "svc-a");
        assert_eq!(v["next_cursor"], serde_json::Value::Null);
        assert_eq!(first.etag, etag_of(&body));
        assert!(first.etag.starts_with('"') && first.etag.len() == 34);

        let again = render(menu(vec![("svc-a".into(), m.clone())], None), Some(&first.etag)).unwrap();
        assert_eq!(
            again,
            RenderedMenu {
                etag: first.etag.clone(),
                body: None
            }
        );
        let weak = format!("\"x\", W/{}", first.etag);
        assert!(
            render(menu(vec![("svc-a".into(), m.clone())], None), Some(&weak))
                .unwrap()
                .body
                .is_none()
        );
        assert!(render(vec![], Some("*")).unwrap().body.is_none());

        let other = render(menu(vec![("svc-b".into(), m)], None), Some(&first.etag)).unwrap();
        assert_ne!(other.etag, first.etag);
        assert!(other.body.is_some(), "a changed menu is sent in full");
    }
}
