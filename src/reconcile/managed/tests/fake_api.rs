//! A mocked API server behind a real `kube::Client` (tower-test, as kube's controller-rs does):
//! it keeps one custom resource and the Secrets, applies the patches the reconciler sends, logs
//! every write in order, and can fail a chosen write once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

#[derive(Default)]
struct State {
    object: Value,
    secrets: BTreeMap<String, Value>,
    /// `"<what>"` per write, in order: `mark`, `annotate`, `status`, `secret`.
    writes: Vec<String>,
    events: Vec<String>,
    /// The write to fail, and how many writes of its kind to let through first.
    fail: Option<(&'static str, usize)>,
}

#[derive(Clone)]
pub struct FakeApi(Arc<Mutex<State>>);

impl FakeApi {
    /// Serve `object` (and the Secrets) to the returned client.
    pub fn start(object: Value) -> (Self, Client) {
        let api = Self(Arc::new(Mutex::new(State { object, ..Default::default() })));
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = api.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let body = body.collect_bytes().await.unwrap();
                let body: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap() };
                let (code, answer) = server.answer(&parts.method, parts.uri.path(), body);
                let response = Response::builder().status(code).body(Body::from(serde_json::to_vec(&answer).unwrap()));
                send.send_response(response.unwrap());
            }
        });
        (api, Client::new(service, "default"))
    }

    pub fn object(&self) -> Value {
        self.0.lock().unwrap().object.clone()
    }

    pub fn update_object(&self, f: impl FnOnce(&mut Value)) {
        f(&mut self.0.lock().unwrap().object);
    }

    /// The Secret's data, decoded.
    pub fn secret(&self, name: &str) -> BTreeMap<String, String> {
        let s = self.0.lock().unwrap();
        let data = s.secrets.get(name).and_then(|s| s.get("data")).and_then(Value::as_object).cloned();
        let decode = |v: &Value| String::from_utf8(base64_decode(v.as_str().unwrap())).unwrap();
        data.unwrap_or_default().iter().map(|(k, v)| (k.clone(), decode(v))).collect()
    }

    pub fn writes(&self) -> Vec<String> {
        self.0.lock().unwrap().writes.clone()
    }

    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().events.clone()
    }

    /// The `nth` (from 1) next write of this kind (`mark`, `annotate`, `status`, `secret`) fails
    /// with a 500.
    pub fn fail(&self, write: &'static str, nth: usize) {
        self.0.lock().unwrap().fail = Some((write, nth - 1));
    }

    fn answer(&self, method: &Method, path: &str, body: Value) -> (StatusCode, Value) {
        let mut s = self.0.lock().unwrap();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let write = match (method, segments.as_slice()) {
            (&Method::POST, [.., "events"]) | (&Method::PATCH, [.., "events", _]) => {
                if let Some(reason) = body.get("reason").and_then(Value::as_str) {
                    s.events.push(reason.to_owned());
                }
                return (StatusCode::CREATED, body);
            }
            (&Method::GET, [.., "secrets", name]) => {
                return match s.secrets.get(*name) {
                    Some(secret) => (StatusCode::OK, secret.clone()),
                    None => not_found(name),
                };
            }
            (&Method::PATCH, [.., "secrets", _]) => "secret",
            (&Method::PATCH, [.., "fakes", _, "status"]) => "status",
            (&Method::PATCH, [.., "fakes", _]) if body.pointer("/metadata/resourceVersion").is_some() => "mark",
            (&Method::PATCH, [.., "fakes", _]) => "annotate",
            _ => panic!("unexpected request {method} {path}"),
        };
        let fails = match s.fail {
            Some((w, 0)) if w == write => true,
            Some((w, n)) if w == write => {
                s.fail = Some((w, n - 1));
                false
            }
            _ => false,
        };
        if fails {
            s.fail = None;
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "etcd is unhappy", "reason": "InternalError", "code": 500});
            return (StatusCode::INTERNAL_SERVER_ERROR, status);
        }
        if write == "mark" && body.pointer("/metadata/resourceVersion") != s.object.pointer("/metadata/resourceVersion")
        {
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "the object has been modified", "reason": "Conflict", "code": 409});
            return (StatusCode::CONFLICT, status);
        }
        s.writes.push(write.to_owned());
        match write {
            "secret" => {
                let name = body["metadata"]["name"].as_str().unwrap().to_owned();
                let mut secret = s.secrets.get(&name).cloned().unwrap_or_else(|| json!({}));
                merge(&mut secret, &body);
                let version = s.writes.len().to_string();
                secret["metadata"]["resourceVersion"] = json!(version);
                s.secrets.insert(name, secret.clone());
                (StatusCode::OK, secret)
            }
            _ => {
                let mut patch = body;
                if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                }
                merge(&mut s.object, &patch);
                let version = s.writes.len().to_string();
                s.object["metadata"]["resourceVersion"] = json!(version);
                (StatusCode::OK, s.object.clone())
            }
        }
    }
}

fn not_found(name: &str) -> (StatusCode, Value) {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": format!("secrets \"{name}\" not found"), "reason": "NotFound", "code": 404});
    (StatusCode::NOT_FOUND, status)
}

/// A JSON merge patch (RFC 7386): `null` removes a key, objects merge, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().unwrap();
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            merge(target.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    serde_json::from_value::<k8s_openapi::ByteString>(json!(s)).unwrap().0
}
