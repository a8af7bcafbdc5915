//! An in-memory provider: objects with an id, an active flag, drift and a one-time token, every
//! call logged, and one call that can be made to fail (before or after it took effect).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::provider::{self, Capabilities, Created, Credentials, External, Observation, ProviderKind};

/// How the chosen call fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The provider is down: nothing happens.
    Down,
    /// The call takes effect but its response is lost.
    LostResponse,
    /// A create takes effect, but a step after it fails (its response carries a warning).
    Incomplete,
}

#[derive(Clone, Debug)]
pub struct Object {
    pub name: String,
    pub active: bool,
    pub drifted: bool,
    pub token: String,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Object>,
    issued: usize,
    calls: Vec<&'static str>,
    fail: Option<(&'static str, Failure)>,
}

pub struct FakeProvider {
    caps: Capabilities,
    state: Mutex<State>,
}

pub const TOKEN: &str = "authToken";

impl FakeProvider {
    pub fn new(caps: Capabilities) -> Self {
        Self { caps: Capabilities { issued_credential_keys: &[TOKEN], ..caps }, state: Mutex::default() }
    }

    /// The next call to `op` fails this way.
    pub fn fail_next(&self, op: &'static str, failure: Failure) {
        self.state.lock().unwrap().fail = Some((op, failure));
    }

    /// An object made out of band (an earlier life of the cluster, or by a person).
    pub fn insert(&self, name: &str) -> String {
        let mut s = self.state.lock().unwrap();
        issue(&mut s, name)
    }

    pub fn objects(&self) -> BTreeMap<String, Object> {
        self.state.lock().unwrap().objects.clone()
    }

    pub fn update_object(&self, id: &str, f: impl FnOnce(&mut Object)) {
        f(self.state.lock().unwrap().objects.get_mut(id).unwrap());
    }

    pub fn calls(&self, op: &str) -> usize {
        self.state.lock().unwrap().calls.iter().filter(|c| **c == op).count()
    }

    /// Log the call; `Err` when it is the one to fail before taking effect, `Ok(lost)` otherwise.
    fn call(&self, op: &'static str) -> provider::Result<bool> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(op);
        match s.fail {
            Some((o, failure)) if o == op => {
                s.fail = None;
                match failure {
                    Failure::Down => Err(unavailable(op)),
                    Failure::LostResponse => Ok(true),
                    Failure::Incomplete => Ok(false),
                }
            }
            _ => Ok(false),
        }
    }
}

fn issue(s: &mut State, name: &str) -> String {
    s.issued += 1;
    let id = format!("SA_ID{}", s.issued);
    let object = Object { name: name.to_owned(), active: true, drifted: false, token: format!("token-{}", s.issued) };
    s.objects.insert(id.clone(), object);
    id
}

fn unavailable(op: &str) -> provider::Error {
    provider::Error::Transient { provider: ProviderKind::Vobiz, message: format!("{op}: connection reset") }
}

/// The response of a call that took effect, unless it was lost.
fn answer<T>(op: &str, lost: bool, value: T) -> provider::Result<T> {
    if lost { Err(unavailable(op)) } else { Ok(value) }
}

#[async_trait]
impl External<String> for FakeProvider {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    async fn find(&self, desired: &String) -> provider::Result<Option<String>> {
        let lost = self.call("find")?;
        let s = self.state.lock().unwrap();
        answer("find", lost, s.objects.iter().find(|(_, o)| &o.name == desired).map(|(id, _)| id.clone()))
    }

    async fn observe(&self, id: &str, _desired: &String) -> provider::Result<Option<Observation>> {
        let lost = self.call("observe")?;
        let s = self.state.lock().unwrap();
        let observation = s.objects.get(id).map(|o| Observation {
            active: o.active,
            drift: if o.drifted { vec!["displayName".to_owned()] } else { vec![] },
            ..Default::default()
        });
        answer("observe", lost, observation)
    }

    async fn create(&self, desired: &String) -> provider::Result<Created> {
        let incomplete = self.state.lock().unwrap().fail == Some(("create", Failure::Incomplete));
        let lost = self.call("create")?;
        let mut s = self.state.lock().unwrap();
        let id = issue(&mut s, desired);
        let credentials = Credentials::default().with(TOKEN, s.objects[&id].token.clone());
        let warning = incomplete.then(|| "the step after the create failed".to_owned());
        answer("create", lost, Created { id, credentials, warning, ..Default::default() })
    }

    async fn update(&self, id: &str, _desired: &String, _credentials: &Credentials) -> provider::Result<()> {
        let lost = self.call("update")?;
        self.state.lock().unwrap().objects.get_mut(id).unwrap().drifted = false;
        answer("update", lost, ())
    }

    async fn set_active(&self, id: &str, active: bool) -> provider::Result<()> {
        let lost = self.call("set_active")?;
        self.state.lock().unwrap().objects.get_mut(id).unwrap().active = active;
        answer("set_active", lost, ())
    }

    async fn delete(&self, id: &str, _desired: &String) -> provider::Result<()> {
        let lost = self.call("delete")?;
        self.state.lock().unwrap().objects.remove(id);
        answer("delete", lost, ())
    }

    async fn reissue_credentials(&self, id: &str, _desired: &String) -> provider::Result<Option<Credentials>> {
        let lost = self.call("reissue")?;
        let mut s = self.state.lock().unwrap();
        s.issued += 1;
        let token = format!("token-{}", s.issued);
        let Some(object) = s.objects.get_mut(id) else { return answer("reissue", lost, None) };
        object.token = token.clone();
        answer("reissue", lost, Some(Credentials::default().with(TOKEN, token)))
    }

    async fn credentials_accepted(&self, id: &str, credentials: &Credentials) -> provider::Result<bool> {
        let s = self.state.lock().unwrap();
        Ok(s.objects.get(id).is_some_and(|o| credentials.get(TOKEN) == Some(o.token.as_str())))
    }
}
