//! `openapi/openapi.yaml` is valid OpenAPI 3 and describes exactly the routes
//! the server registers: a route added without its spec entry fails here.

use std::collections::BTreeSet;

use crate::support::{Backend, TestApp};

fn spec() -> openapiv3::OpenAPI {
    serde_norway::from_str(roster::http::OPENAPI_YAML).expect("openapi.yaml is OpenAPI 3")
}

#[test]
fn spec_matches_the_registered_routes() {
    let spec = spec();
    assert!(spec.openapi.starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in &spec.paths.paths {
        let item = item.as_item().expect("no $ref path items");
        for (method, _op) in item.iter() {
            documented.insert((method.to_string(), path.clone()));
        }
    }
    let registered: BTreeSet<(String, String)> = roster::http::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "openapi.yaml documents routes the server lacks: {unserved:?}"
    );
}

#[test]
fn every_reference_resolves() {
    let text = roster::http::OPENAPI_YAML;
    let doc: serde_norway::Value = serde_norway::from_str(text).unwrap();
    let mut refs = Vec::new();
    fn walk(v: &serde_norway::Value, out: &mut Vec<String>) {
        match v {
            serde_norway::Value::Mapping(m) => {
                for (k, v) in m {
                    if k.as_str() == Some("$ref") {
                        out.push(v.as_str().unwrap().to_string());
                    }
                    walk(v, out);
                }
            }
            serde_norway::Value::Sequence(s) => s.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let mut node = &doc;
        for part in r.trim_start_matches("#/").split('/') {
            node = node.get(part).unwrap_or_else(|| panic!("dangling $ref {r}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_is_served() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let r = app.client.get(app.url("/openapi.yaml")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), roster::http::OPENAPI_YAML);
}
