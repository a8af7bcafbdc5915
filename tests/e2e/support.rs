//! Test support: the cluster from `KUBECONFIG`, a fresh namespace per test, the CRDs, service
//! account identities, and polling.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig, NamedAuthInfo};
use kube::{Api, Client, Config};
use tokio::sync::OnceCell;

/// The kubeconfig of the cluster under test.
pub fn kubeconfig_path() -> PathBuf {
    PathBuf::from(std::env::var("KUBECONFIG").expect("KUBECONFIG not set — run the end-to-end tests with `make test`"))
}

pub async fn client() -> Client {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig_path()).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig from KUBECONFIG");
    Client::try_from(config).unwrap()
}

/// A namespace for one test, named `<prefix>-<random>`. Call [`TestNamespace::delete`] at the end; a
/// failed test leaves its namespace behind for inspection.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("tenantline.io/e2e".to_owned(), "true".to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
        Self { name, client: client.clone() }
    }

    pub async fn delete(self) {
        let _ = Api::<Namespace>::all(self.client.clone()).delete(&self.name, &DeleteParams::default()).await;
    }
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Install tenantline's CRDs from `crds/` (server-side apply) and wait until they are served.
pub async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| async {
        let api = Api::<CustomResourceDefinition>::all(client.clone());
        let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/tenantline.io.yaml")).unwrap();
        for doc in yaml.split("\n---\n").map(|d| d.trim_start_matches("---\n")).filter(|d| !d.trim().is_empty()) {
            let crd: CustomResourceDefinition = serde_saphyr::from_str(doc).unwrap();
            apply_crd(&api, &crd).await;
        }
    })
    .await;
}

pub async fn apply_crd(api: &Api<CustomResourceDefinition>, crd: &CustomResourceDefinition) {
    let name = crd.metadata.name.clone().unwrap();
    api.patch(&name, &PatchParams::apply("tenantline-e2e").force(), &Patch::Apply(crd)).await.expect("apply CRD");
    eventually(Duration::from_secs(30), || async {
        let crd = api.get(&name).await.ok()?;
        crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("CRD {name} not established"));
}

/// A kubeconfig for ServiceAccount `name` in `namespace` (created if missing), authenticating with
/// a bound token from the TokenRequest API: the identity the operator runs with in a cluster.
pub async fn service_account_kubeconfig(client: &Client, namespace: &str, name: &str) -> PathBuf {
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    let sa = ServiceAccount {
        metadata: ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
        ..Default::default()
    };
    match sas.create(&PostParams::default(), &sa).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create ServiceAccount: {e}"),
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec { expiration_seconds: Some(3600), ..Default::default() }),
        ..Default::default()
    };
    let token = eventually(Duration::from_secs(20), || async {
        sas.create_token_request(name, &PostParams::default(), &request).await.ok()?.status?.token
    })
    .await
    .expect("token for the ServiceAccount");

    let mut kubeconfig = Kubeconfig::read_from(kubeconfig_path()).unwrap();
    let context = kubeconfig.current_context.clone().unwrap();
    let user = format!("{namespace}-{name}");
    kubeconfig.auth_infos = vec![NamedAuthInfo {
        name: user.clone(),
        auth_info: Some(AuthInfo { token: Some(token.into()), ..Default::default() }),
        other: Default::default(),
    }];
    for c in &mut kubeconfig.contexts {
        if c.name == context {
            c.context.as_mut().unwrap().user = Some(user.clone());
        }
    }
    let dir = std::env::temp_dir().join("tenantline-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    // Per test process: test runs against other clusters on the same machine share temp_dir, and
    // an operator started with their kubeconfig would watch the wrong cluster.
    let path = dir.join(format!("{user}-{}.kubeconfig", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&kubeconfig).unwrap()).unwrap();
    path
}

pub async fn client_from(path: &PathBuf) -> Client {
    let config = Config::from_custom_kubeconfig(Kubeconfig::read_from(path).unwrap(), &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// The groups of tests that need more than a control plane, and can be opted out of by name in
/// `TENANTLINE_E2E_SKIP` (comma-separated): `node` (a Ready node with the images), `restart` (the
/// local control plane, to restart it; checked by hack/e2e-require.sh before its binary runs) and
/// `upgrade` (the previous release's binary, hack/previous-operator.sh).
pub const SKIPPABLE: [&str; 3] = ["node", "restart", "upgrade"];

/// A test of group `what` (one of [`SKIPPABLE`]) cannot run here, because `why`. Under `make
/// e2e` (which sets TENANTLINE_E2E_STRICT=1, as the CI workflow does through it) that fails the
/// test, saying why, unless `TENANTLINE_E2E_SKIP` names the group: a test that passes without
/// running is a skip someone asked for. Run by hand (`cargo test`), it is skipped, said on stderr
/// (`--nocapture` shows it). Returns only when the test is to be skipped.
pub fn cannot_run(what: &str, why: &str) {
    assert!(SKIPPABLE.contains(&what), "{what} is not a group of tests that may be skipped");
    let opted_out = std::env::var("TENANTLINE_E2E_SKIP").unwrap_or_default();
    if opted_out.split(',').any(|s| s.trim() == what) {
        eprintln!("SKIPPED on purpose (TENANTLINE_E2E_SKIP={opted_out}): {why}");
        return;
    }
    if std::env::var("TENANTLINE_E2E_STRICT").is_ok_and(|v| v == "1") {
        panic!(
            "cannot run this {what} test: {why}. Under make e2e (TENANTLINE_E2E_STRICT=1) it fails rather than \
             pass without running; to skip the {what} tests on purpose, set TENANTLINE_E2E_SKIP={what}"
        );
    }
    eprintln!("skipped: {why} (make e2e fails instead)");
}

/// The field managers that wrote `meta`'s object: who touched it (an operator's status, finalizer
/// or annotation write adds its own).
pub fn writers(meta: &ObjectMeta) -> std::collections::BTreeSet<String> {
    meta.managed_fields.iter().flatten().filter_map(|m| m.manager.clone()).collect()
}

/// Poll `check` every 200 ms until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
