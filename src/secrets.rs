//! Every Secret read and write of the operator. Credentials Secrets are written with server-side
//! apply under one field manager, only into the owning resource's namespace, owned by it (so the
//! garbage collector removes them with it) and labelled so the operator can watch just them.
//!
//! They are read from that watch's cache, so a poll that changes nothing costs the API server
//! nothing: the operator holds its own credentials Secrets in memory (as it holds every
//! credential it writes), and no other Secret.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::listed::Listed;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};

use crate::provider::{self, Credentials, ExposeSecret};
use crate::reconcile::OwnWrites;

pub const FIELD_MANAGER: &str = "tenantline";
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=tenantline";
pub const SUB_ACCOUNT_LABEL: &str = "tenantline.io/sub-account";

/// The keys every credentials Secret may hold, whatever the provider (beside those it issues).
const COMMON_KEYS: [&str; 4] = ["provider", "endpoint", "accountId", "phoneNumber"];

/// Whether tenantline owns `key` in a credentials Secret; other tools may add keys of their own.
fn is_ours(key: &str) -> bool {
    COMMON_KEYS.contains(&key) || provider::issued_credential_keys().any(|k| k == key)
}

/// A credentials Secret as a resource may use it.
#[derive(Debug)]
pub enum Held {
    /// Absent (empty), or written by tenantline for this resource: our keys of it.
    Ours(Credentials),
    /// Someone else's (an app's, a config's, another resource's): never read, never written.
    /// Says whose, as a person reads it.
    Foreign(String),
}

/// Why Secret `name` (foreign, `why`) will not be written, and what a person does about it.
pub fn not_ours(name: &str, why: &str) -> String {
    format!(
        "Secret {name} exists and is not one tenantline wrote for this resource ({why}): it is neither read nor written; set spec.credentialsSecretName to another name, or delete that Secret"
    )
}

/// Whether `meta` is a Secret tenantline may use for resource `owner` (kind, name, uid): labelled
/// as tenantline's for it, and controlled by it or by nothing else (Crossplane's
/// `ConnectionSecretMustBeControllableBy`). A Secret restored from a backup (labels kept, the
/// owner's uid new) or handed over on purpose (labelled by a person) counts; an app's Secret, a
/// config's, or another resource's never does. Otherwise, why not.
fn whose(meta: &ObjectMeta, owner: (&str, &str, &str)) -> Result<(), String> {
    let (kind, name, uid) = owner;
    let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str);
    let labelled =
        label("app.kubernetes.io/managed-by") == Some("tenantline") && label(SUB_ACCOUNT_LABEL) == Some(name);
    let controller = meta.owner_references.iter().flatten().find(|r| r.controller == Some(true));
    match controller {
        Some(c) if c.uid != uid && (c.kind != kind || c.name != name) => {
            Err(format!("it belongs to {} {}", c.kind, c.name))
        }
        _ if labelled => Ok(()),
        _ => Err(format!(
            "tenantline did not write it for {kind} {name}; to hand it over, label it app.kubernetes.io/managed-by=tenantline and {SUB_ACCOUNT_LABEL}={name}"
        )),
    }
}

/// The credentials Secrets: the watch's cache of them, and the resourceVersion of each of our own
/// writes that the watch has not delivered yet.
pub struct Secrets {
    client: Client,
    cache: Listed<Secret>,
    written: Mutex<HashMap<ObjectRef<Secret>, String>>,
    own_writes: Arc<OwnWrites>,
}

impl Secrets {
    pub fn new(client: Client, cache: Store<Secret>, own_writes: Arc<OwnWrites>) -> Self {
        Self { client, cache: Listed::new(cache), written: Mutex::default(), own_writes }
    }

    /// The credentials Secret `name` of `owner`: our keys of it when it is absent or ours, from the
    /// cache when it holds the Secret as we last wrote it (or as it was when the watch started);
    /// otherwise (our write not delivered yet, or a Secret the cache does not hold because it is
    /// not labelled as ours) from the API server — its metadata first, and its data only if ours.
    pub async fn read<K: Resource<DynamicType = ()>>(&self, owner: &K, name: &str) -> Result<Held, kube::Error> {
        self.read_from(owner, name, true).await
    }

    /// Like [`read`](Self::read), for a Secret only this operator can have written keys of ours
    /// into (that of an object it has just created, found absent or ours before the create): one
    /// missing from the cache, with no write of ours pending, is taken as absent without asking
    /// the API server.
    pub async fn read_own<K: Resource<DynamicType = ()>>(&self, owner: &K, name: &str) -> Result<Held, kube::Error> {
        self.read_from(owner, name, false).await
    }

    async fn read_from<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        name: &str,
        unseen_may_exist: bool,
    ) -> Result<Held, kube::Error> {
        let namespace = owner.meta().namespace.clone().unwrap_or_default();
        let (name_, uid) =
            (owner.meta().name.clone().unwrap_or_default(), owner.meta().uid.clone().unwrap_or_default());
        let owner = (K::kind(&()).into_owned(), name_, uid);
        let owner = (owner.0.as_str(), owner.1.as_str(), owner.2.as_str());
        // Before the watch's first listing, "not in the cache" means nothing.
        self.cache.ready().await;
        let key = ObjectRef::new(name).within(&namespace);
        let cached = self.cache.get(&key);
        if let Some(c) = &cached
            && let Err(why) = whose(&c.metadata, owner)
        {
            return Ok(Held::Foreign(why));
        }
        let current = {
            let mut written = self.written.lock().unwrap();
            match (&cached, written.get(&key)) {
                (Some(c), Some(rv)) if c.resource_version().as_ref() == Some(rv) => {
                    written.remove(&key);
                    true
                }
                (Some(_), Some(_)) => false,
                (None, pending) => pending.is_none() && !unseen_may_exist,
                (Some(_), None) => true,
            }
        };
        let secret = match (cached, current) {
            (Some(secret), true) => Some(secret),
            (None, true) => None,
            (cached, false) => {
                let api = Api::<Secret>::namespaced(self.client.clone(), &namespace);
                // One the cache does not hold may be anyone's: its values are read only once its
                // metadata shows it is ours.
                if cached.is_none() {
                    match api.get_metadata_opt(name).await? {
                        None => return Ok(Held::Ours(Credentials::default())),
                        Some(m) => {
                            if let Err(why) = whose(&m.metadata, owner) {
                                return Ok(Held::Foreign(why));
                            }
                        }
                    }
                }
                match api.get_opt(name).await? {
                    Some(s) => match whose(&s.metadata, owner) {
                        Ok(()) => Some(Arc::new(s)),
                        Err(why) => return Ok(Held::Foreign(why)),
                    },
                    None => None,
                }
            }
        };
        let mut credentials = secret.map(|s| credentials(&s)).unwrap_or_default();
        credentials.0.retain(|k, _| is_ours(k));
        Ok(Held::Ours(credentials))
    }

    /// Write `data` into the credentials Secret `name` of `owner` unless `stored` (what the caller
    /// read of it moments ago, and found ours) already holds it. Keys other tools added are left
    /// alone (they belong to other field managers).
    pub async fn apply<K: Resource<DynamicType = ()>>(
        &self,
        owner: &K,
        name: &str,
        data: &Credentials,
        stored: &Credentials,
    ) -> Result<(), kube::Error> {
        let namespace = owner.namespace().unwrap_or_default();
        let unchanged = data.0.iter().all(|(k, v)| stored.get(k) == Some(v.expose_secret()));
        if unchanged && !stored.0.is_empty() {
            return Ok(());
        }
        let written = write(&self.client, owner, &namespace, name, data).await?;
        self.own_writes.record(&written.metadata);
        if let Some(rv) = written.resource_version() {
            self.written.lock().unwrap().insert(ObjectRef::new(name).within(&namespace), rv);
        }
        Ok(())
    }
}

/// A Secret's data as credentials.
pub fn credentials(secret: &Secret) -> Credentials {
    let mut c = Credentials::default();
    for (k, v) in secret.data.iter().flatten() {
        if let Ok(v) = std::str::from_utf8(&v.0) {
            c.insert(k, v);
        }
    }
    c
}

async fn write<K: Resource<DynamicType = ()>>(
    client: &Client,
    owner: &K,
    namespace: &str,
    name: &str,
    data: &Credentials,
) -> Result<Secret, kube::Error> {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/managed-by".to_owned(), "tenantline".to_owned()),
                (SUB_ACCOUNT_LABEL.to_owned(), owner.name_any()),
            ])),
            owner_references: owner.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(
            data.0.iter().map(|(k, v)| (k.clone(), ByteString(v.expose_secret().as_bytes().to_vec()))).collect(),
        ),
        ..Default::default()
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Api::<Secret>::namespaced(client.clone(), namespace).patch(name, &params, &Patch::Apply(&secret)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_ours_only_when_labelled_for_the_resource_and_controlled_by_nothing_else() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        let meta = |labels: &[(&str, &str)], controller: Option<(&str, &str)>| ObjectMeta {
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            owner_references: controller.map(|(name, uid)| {
                vec![OwnerReference {
                    kind: "SubAccount".into(),
                    name: name.into(),
                    uid: uid.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        };
        let ours = [("app.kubernetes.io/managed-by", "tenantline"), (SUB_ACCOUNT_LABEL, "acme")];
        let me = ("SubAccount", "acme", "u1");
        assert_eq!(whose(&meta(&ours, Some(("acme", "u1"))), me), Ok(()), "written by us for it");
        assert_eq!(whose(&meta(&ours, None), me), Ok(()), "restored from a backup, or handed over");
        assert_eq!(whose(&meta(&ours, Some(("acme", "old-uid"))), me), Ok(()), "its predecessor's, restored");
        assert!(whose(&meta(&ours, Some(("other", "u2"))), me).unwrap_err().contains("SubAccount other"));
        let for_another = [("app.kubernetes.io/managed-by", "tenantline"), (SUB_ACCOUNT_LABEL, "other")];
        assert!(whose(&meta(&for_another, None), me).is_err(), "labelled for another SubAccount");
        let app = whose(&meta(&[("app", "web")], None), me).unwrap_err();
        assert!(app.contains("did not write it") && app.contains("to hand it over"), "{app}");
        assert!(whose(&meta(&[], Some(("acme", "u1"))), me).is_err(), "an owner reference alone is not enough");
    }

    #[test]
    fn the_operator_owns_what_it_writes_and_leaves_other_keys_alone() {
        for key in ["provider", "endpoint", "accountId", "phoneNumber", "authToken", "apiToken", "password"] {
            assert!(is_ours(key), "{key}");
        }
        for key in ["ca.crt", "partnerKey", "apiKey", "note"] {
            assert!(!is_ours(key), "{key}");
        }
    }
}
