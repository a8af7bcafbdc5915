//! Hostile tenants and a hostile provider: one tenant never reaches another's account, Secret or
//! money through tenantline, and nothing a tenant writes or a provider answers takes the operator
//! down. Tenants act as tenants (`kubectl --as` a user holding Kubernetes' `edit` role in its own
//! namespace, see [`Tenant`]); configs and their parent Secrets are the platform team's (admin).

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::DeleteParams;
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tenantline::api::{ClusterProviderConfig, PhoneNumber, ProviderConfig, SubAccount};
use tenantline_sim::seed::{
    DEV_AGENTPHONE_KEY, DEV_PARTNER_AUTH_ID, DEV_PARTNER_AUTH_TOKEN, DEV_RECOVERBIZ_KEY, DEV_VOBIZ_AUTH_ID,
    DEV_VOBIZ_AUTH_TOKEN, DEV_YARDSTIK_KEY,
};

use crate::harness::{self, Env, Sim, Tenant, kubectl};
use crate::safety::{data, items, yardstik_owner};
use crate::support::{self, TestNamespace, eventually};

/// The simulator's API path for `provider` and its dev parent credentials as a Secret's
/// `stringData`.
fn parent(provider: &str) -> (&'static str, String) {
    match provider {
        "RecoverBiz" => ("/recoverbiz/v1", format!("{{partnerKey: {DEV_RECOVERBIZ_KEY}}}")),
        "Vobiz" => ("/vobiz/api/v1", format!("{{authId: {DEV_VOBIZ_AUTH_ID}, authToken: {DEV_VOBIZ_AUTH_TOKEN}}}")),
        "AgentPhone" => ("/agentphone", format!("{{apiKey: {DEV_AGENTPHONE_KEY}}}")),
        "VobizPartner" => (
            "/vobiz-partner/api/v1/partner",
            format!("{{authId: {DEV_PARTNER_AUTH_ID}, authToken: {DEV_PARTNER_AUTH_TOKEN}}}"),
        ),
        "Yardstik" => ("/yardstik", format!("{{apiKey: {DEV_YARDSTIK_KEY}}}")),
        other => panic!("no provider {other}"),
    }
}

/// The platform team's ProviderConfig `name` for `provider` at the test's simulator, with its
/// parent Secret `<name>-parent`, polling every 2 s; `extra` adds spec lines.
fn config(env: &Env, name: &str, provider: &str, extra: &str) {
    let (path, credentials) = parent(provider);
    env.apply_ok(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-parent}}\nstringData: {credentials}\n---\n\
         apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {{name: {name}}}\nspec:\n  provider: {provider}\n  \
         endpoint: http://{}{path}\n  credentialsSecretRef: {{name: {name}-parent}}\n  pollInterval: 2s\n{extra}",
        env.sim.addr
    ));
}

/// A ClusterProviderConfig that the platform team shares between tenants: named after the test's
/// namespace and provider, at that test's simulator, its parent Secret in a platform namespace
/// of its own.
struct Shared {
    name: String,
    provider: &'static str,
    endpoint: String,
    platform: TestNamespace,
    client: Client,
}

impl Shared {
    /// `conditions`: the `spec.conditions` flow sequence, or empty for none at all.
    async fn new(env: &Env, provider: &'static str, conditions: &str) -> Self {
        let platform = TestNamespace::new(&env.client, "e2e-h-platform").await;
        let (path, credentials) = parent(provider);
        let secret = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: parent}}\nstringData: {credentials}\n");
        let out = kubectl(&["apply", "--server-side", "--field-manager=e2e", "-n", &platform.name, "-f", "-"], &secret);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let shared = Self {
            name: format!("{}-{}", env.ns.name, provider.to_lowercase()),
            provider,
            endpoint: format!("http://{}{path}", env.sim.addr),
            platform,
            client: env.client.clone(),
        };
        shared.apply(conditions);
        shared
    }

    /// Wait until the config is Ready (its credentials checked at the provider); the calls the
    /// simulator counted for `provider` then.
    async fn ready(&self, sim: &Sim, provider: &str) -> u64 {
        let cpcs = Api::<ClusterProviderConfig>::all(self.client.clone());
        let ok = eventually(Duration::from_secs(60), || async {
            (ready(&cpcs.get(&self.name).await.ok()?).0 == "True").then_some(())
        })
        .await;
        assert!(ok.is_some(), "{} never Ready: {:?}", self.name, cpcs.get(&self.name).await.map(|c| c.status));
        calls(sim, provider).await
    }

    /// Apply the config with these `spec.conditions` (the platform team changing it).
    fn apply(&self, conditions: &str) {
        let conditions = if conditions.is_empty() { String::new() } else { format!("  conditions: {conditions}\n") };
        let yaml = format!(
            "apiVersion: tenantline.io/v1alpha1\nkind: ClusterProviderConfig\nmetadata: {{name: {}}}\nspec:\n  provider: {}\n  \
             endpoint: {}\n  credentialsSecretRef: {{name: parent, namespace: {}}}\n  pollInterval: 2s\n{conditions}",
            self.name, self.provider, self.endpoint, self.platform.name
        );
        let out = kubectl(&["apply", "--server-side", "--field-manager=e2e", "-f", "-"], &yaml);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// `spec.providerConfigRef` of a SubAccount using it.
    fn reference(&self) -> String {
        format!("{{kind: ClusterProviderConfig, name: {}}}", self.name)
    }

    async fn delete(self) {
        let _ =
            Api::<ClusterProviderConfig>::all(self.client.clone()).delete(&self.name, &DeleteParams::default()).await;
        self.platform.delete().await;
    }
}

/// A SubAccount through `config` (a `providerConfigRef` flow map) with `annotations` (flow map
/// entries) and `extra` spec lines.
fn sub_account(name: &str, config: &str, annotations: &str, extra: &str) -> String {
    format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\n\
         spec:\n  providerConfigRef: {config}\n  displayName: {name}\n{extra}"
    )
}

/// What a Vobiz Partner customer needs beyond a name; `who` makes the login email unique.
fn partner_owner(who: &str) -> String {
    format!("  owner: {{email: {who}@acme.example, phone: \"+14155550100\"}}\n  address: {{country: US}}\n")
}

fn phone_number(name: &str, sub_account: &str, annotations: &str, spec: &str) -> String {
    format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\n\
         spec:\n  subAccountRef: {{name: {sub_account}}}\n{spec}"
    )
}

/// Every call the simulator counted for `provider`, of any method and route.
async fn calls(sim: &Sim, provider: &str) -> u64 {
    sim.control().calls().await.matching(|c| c.provider == provider)
}

/// `(status, reason, message)` of the object's `Ready` condition.
fn ready<K: Serialize>(obj: &K) -> (String, String, String) {
    let v = serde_json::to_value(obj).unwrap();
    let conditions = v.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let c = conditions.iter().find(|c| c["type"] == "Ready").cloned().unwrap_or_default();
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    (text("status"), text("reason"), text("message"))
}

/// Wait until `name` is Stalled; returns it.
async fn stalled<K>(env: &Env, name: &str) -> K
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Serialize,
{
    env.wait_condition::<K>(name, "Stalled", "True", Duration::from_secs(60)).await
}

/// Wait until `name` is Ready or Stalled (either way, done for now); returns it.
async fn settled<K>(env: &Env, name: &str) -> K
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Serialize,
{
    let api = env.api::<K>();
    let found = eventually(Duration::from_secs(60), || async {
        let obj = api.get_opt(name).await.ok()??;
        let v = serde_json::to_value(&obj).ok()?;
        let conditions = v.pointer("/status/conditions")?.as_array()?.clone();
        let done = conditions.iter().any(|c| (c["type"] == "Ready" || c["type"] == "Stalled") && c["status"] == "True");
        done.then_some(obj)
    })
    .await;
    match found {
        Some(obj) => obj,
        None => panic!("{name}: neither Ready nor Stalled\noperator log tail:\n{}", env.operator.log_tail(40)),
    }
}

/// Wait until `check` holds for `name`'s `Ready` condition `(status, reason, message)`.
async fn wait_ready_is<K>(env: &Env, name: &str, what: &str, check: impl Fn(&(String, String, String)) -> bool) -> K
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Serialize,
{
    let api = env.api::<K>();
    let found = eventually(Duration::from_secs(60), || async {
        let obj = api.get_opt(name).await.ok()??;
        check(&ready(&obj)).then_some(obj)
    })
    .await;
    match found {
        Some(obj) => obj,
        None => {
            let now = api.get_opt(name).await.ok().flatten().map(|o| ready(&o));
            panic!("{name}: never {what}; Ready now {now:?}\noperator log tail:\n{}", env.operator.log_tail(40))
        }
    }
}

/// The Secret's data, labels and owner references: what a foreign write would change.
async fn secret_contents(env: &Env, name: &str) -> Value {
    let s = env.secret(name).await.unwrap_or_else(|| panic!("Secret {name} is gone"));
    json!({"data": data(&s), "labels": s.metadata.labels, "ownerReferences": s.metadata.owner_references})
}

fn holds(secret: Option<Secret>, value: &str) -> bool {
    secret.is_some_and(|s| data(&s).values().any(|v| v == value))
}

#[tokio::test]
async fn a_sub_account_cannot_take_over_an_apps_secret() {
    let mut env = Env::start("e2e-h-appsecret").await;
    let tenant = env.tenant().await;
    config(&env, "vobiz", "Vobiz", "");
    tenant.apply_ok(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: app-db}\nstringData: {password: app-db-password-1}\n",
    );
    let before = secret_contents(&env, "app-db").await;

    tenant.apply_ok(&sub_account("support", "{name: vobiz}", "", "  credentialsSecretName: app-db\n"));
    let (_, reason, message) = ready(&stalled::<SubAccount>(&env, "support").await);
    assert_eq!(reason, "SecretNotOwned", "{message}");
    assert!(message.contains("app-db"), "{message}");
    assert_eq!(secret_contents(&env, "app-db").await, before, "the app's Secret was written");
    assert_eq!(env.sim.calls_by_kind("vobiz", false).await, 0, "an account was created for it");
    env.assert_no_leak(&["app-db-password-1".to_owned()]).await;
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn a_sub_account_cannot_write_into_its_configs_parent_secret() {
    let mut env = Env::start("e2e-h-parentsecret").await;
    let tenant = env.tenant().await;
    config(&env, "vobiz", "Vobiz", "");
    let before = secret_contents(&env, "vobiz-parent").await;

    tenant.apply_ok(&sub_account("thief", "{name: vobiz}", "", "  credentialsSecretName: vobiz-parent\n"));
    let (_, reason, message) = ready(&stalled::<SubAccount>(&env, "thief").await);
    assert_eq!(reason, "InvalidSpec", "{message}");
    assert!(message.contains("vobiz-parent"), "{message}");

    // The config itself is fine: another SubAccount of it gets its account.
    tenant.apply_ok(&sub_account("honest", "{name: vobiz}", "", ""));
    let honest = env.wait_ready::<SubAccount>("honest").await.status.unwrap().managed.external_id.unwrap();
    assert_eq!(secret_contents(&env, "vobiz-parent").await, before, "the parent Secret was written");
    let state = env.sim.state().await;
    let accounts: Vec<&str> =
        items(&state, "/vobiz/subAccounts").iter().filter_map(|s| s["auth_id"].as_str()).collect();
    assert_eq!(accounts, [honest.as_str()], "only the honest SubAccount has an account");
    assert_eq!(ready(&env.api::<SubAccount>().get("thief").await.unwrap()).1, "InvalidSpec");
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn a_tenant_cannot_adopt_another_tenants_vobiz_partner_account_through_a_shared_config() {
    let mut a = Env::start("e2e-h-vp-a").await;
    let mut b = Env::start("e2e-h-vp-b").await;
    let shared = Shared::new(&a, "VobizPartner", &format!("[{{namespaces: [{}, {}]}}]", a.ns.name, b.ns.name)).await;
    let (tenant_a, tenant_b) = (a.tenant().await, b.tenant().await);
    tenant_a.apply_ok(&sub_account("collections", &shared.reference(), "", &partner_owner("a")));
    let id = a.wait_ready::<SubAccount>("collections").await.status.unwrap().managed.external_id.unwrap();
    let token = data(&a.secret("collections-credentials").await.unwrap())["authToken"].clone();
    let writes = a.sim.calls_by_kind("vobizPartner", false).await;

    // B names A's account.
    let annotation = format!("tenantline.io/external-id: {id}");
    tenant_b.apply_ok(&sub_account("collections", &shared.reference(), &annotation, &partner_owner("b")));
    let sa = stalled::<SubAccount>(&b, "collections").await;
    let (_, reason, message) = ready(&sa);
    assert_eq!(reason, "ExternalObjectNotOwned", "{message}");
    assert_eq!(sa.status.unwrap().managed.external_id, None, "A's id was recorded as B's");
    assert!(!holds(b.secret("collections-credentials").await, &token), "A's authToken reached B's Secret");
    assert_eq!(a.sim.calls_by_kind("vobizPartner", false).await, writes, "B's round wrote to the provider");
    b.assert_no_leak(std::slice::from_ref(&token)).await;

    tenant_b.delete("subaccount/collections");
    assert!(b.wait_gone::<SubAccount>("collections", Duration::from_secs(60)).await);
    let state = a.sim.state().await;
    assert!(items(&state, "/vobizPartner/accounts").iter().any(|acc| acc["auth_id"] == id.as_str()));
    assert_eq!(a.sim.calls_by_kind("vobizPartner", false).await, writes);
    assert!(a.operator.running() && b.operator.running());
    b.finish().await;
    a.finish().await;
    shared.delete().await;
}

#[tokio::test]
async fn a_tenant_cannot_adopt_or_delete_another_tenants_vobiz_account_through_a_shared_config() {
    let mut a = Env::start("e2e-h-vz-a").await;
    let mut b = Env::start("e2e-h-vz-b").await;
    let shared = Shared::new(&a, "Vobiz", &format!("[{{namespaces: [{}, {}]}}]", a.ns.name, b.ns.name)).await;
    let (tenant_a, tenant_b) = (a.tenant().await, b.tenant().await);
    tenant_a.apply_ok(&sub_account("support", &shared.reference(), "", ""));
    let id = a.wait_ready::<SubAccount>("support").await.status.unwrap().managed.external_id.unwrap();
    let token = data(&a.secret("support-credentials").await.unwrap())["authToken"].clone();
    let writes = a.sim.calls_by_kind("vobiz", false).await;

    let annotation = format!("tenantline.io/external-id: {id}");
    tenant_b.apply_ok(&sub_account("support", &shared.reference(), &annotation, "  deletionPolicy: Delete\n"));
    let sa = stalled::<SubAccount>(&b, "support").await;
    let (_, reason, message) = ready(&sa);
    assert_eq!(reason, "ExternalObjectNotOwned", "{message}");
    assert_eq!(sa.status.unwrap().managed.external_id, None, "A's id was recorded as B's");
    assert!(!holds(b.secret("support-credentials").await, &token), "A's authToken reached B's Secret");
    assert_eq!(a.sim.calls_by_kind("vobiz", false).await, writes, "B's round wrote to the provider");

    // Deleting it, with deletionPolicy Delete, leaves A's account alone and says so.
    tenant_b.delete("subaccount/support");
    assert!(b.wait_gone::<SubAccount>("support", Duration::from_secs(60)).await);
    assert!(b.wait_event("Orphaned", &id).await, "no Orphaned Event for {id}: {:?}", b.events().await);
    let state = a.sim.state().await;
    assert!(items(&state, "/vobiz/subAccounts").iter().any(|s| s["auth_id"] == id.as_str()), "A's account was deleted");
    assert_eq!(a.sim.calls_by_kind("vobiz", false).await, writes, "B's deletion wrote to the provider");
    b.assert_no_leak(std::slice::from_ref(&token)).await;
    assert_eq!(ready(&a.api::<SubAccount>().get("support").await.unwrap()).0, "True");
    assert!(a.operator.running() && b.operator.running());
    b.finish().await;
    a.finish().await;
    shared.delete().await;
}

#[tokio::test]
async fn a_tenant_cannot_adopt_another_tenants_yardstik_account_or_reissue_its_token() {
    let mut a = Env::start("e2e-h-ys-a").await;
    let mut b = Env::start("e2e-h-ys-b").await;
    let shared = Shared::new(&a, "Yardstik", &format!("[{{namespaces: [{}, {}]}}]", a.ns.name, b.ns.name)).await;
    let (tenant_a, tenant_b) = (a.tenant().await, b.tenant().await);
    tenant_a.apply_ok(&sub_account("screening", &shared.reference(), "", &yardstik_owner()));
    let id = a.wait_ready::<SubAccount>("screening").await.status.unwrap().managed.external_id.unwrap();
    let token = data(&a.secret("screening-credentials").await.unwrap())["apiToken"].clone();
    let writes = a.sim.calls_by_kind("yardstik", false).await;

    // B names A's account, and B asks for an account of A's name (Yardstik re-issues the token
    // of an existing name on a create).
    let annotation = format!("tenantline.io/external-id: {id}");
    tenant_b.apply_ok(&sub_account("screening", &shared.reference(), &annotation, &yardstik_owner()));
    tenant_b.apply_ok(
        &sub_account("lookalike", &shared.reference(), "", &yardstik_owner())
            .replace("displayName: lookalike", "displayName: screening"),
    );
    for name in ["screening", "lookalike"] {
        let sa = stalled::<SubAccount>(&b, name).await;
        let (_, reason, message) = ready(&sa);
        assert_eq!(reason, "ExternalObjectNotOwned", "{name}: {message}");
        assert_eq!(sa.status.unwrap().managed.external_id, None, "{name}: A's id was recorded as B's");
        assert!(!holds(b.secret(&format!("{name}-credentials")).await, &token), "A's apiToken reached B's Secret");
    }
    assert_eq!(a.sim.calls_by_kind("yardstik", false).await, writes, "B's round wrote to the provider");
    let state = a.sim.state().await;
    let account = items(&state, "/yardstik/subAccounts").iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(account["api_token"].as_str(), Some(token.as_str()), "A's token was re-issued");
    assert_eq!(ready(&a.api::<SubAccount>().get("screening").await.unwrap()).0, "True");
    b.assert_no_leak(std::slice::from_ref(&token)).await;
    assert!(a.operator.running() && b.operator.running());
    b.finish().await;
    a.finish().await;
    shared.delete().await;
}

#[tokio::test]
async fn a_shared_config_serves_only_the_namespaces_its_conditions_name() {
    let mut env = Env::start("e2e-h-nsallow").await;
    let tenant = env.tenant().await;
    let shared = Shared::new(&env, "RecoverBiz", "[{namespaces: [e2e-h-someone-else]}]").await;
    // The config checks its own credentials at the provider once; what follows adds nothing.
    let checked = shared.ready(&env.sim, "recoverbiz").await;
    tenant.apply_ok(&sub_account("lending", &shared.reference(), "", ""));
    let (_, reason, message) = ready(&stalled::<SubAccount>(&env, "lending").await);
    assert_eq!(reason, "NamespaceNotAllowed", "{message}");
    assert!(message.contains(&env.ns.name) && message.contains(&shared.name), "{message}");
    assert_eq!(
        calls(&env.sim, "recoverbiz").await,
        checked,
        "a namespace the config does not serve reached the provider"
    );

    // The platform team opens the config to namespaces with a label, and labels this one.
    let label = format!("e2e.tenantline.io/tenant-of={}", shared.name);
    let out = kubectl(&["label", "namespace", &env.ns.name, &label], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    shared.apply(&format!(
        "[{{namespaces: [e2e-h-someone-else]}}, {{namespaceSelector: {{matchLabels: {{e2e.tenantline.io/tenant-of: {}}}}}}}]",
        shared.name
    ));
    env.wait_ready::<SubAccount>("lending").await;

    // A config without conditions serves no namespace, and says so itself.
    let closed = Shared::new(&env, "Vobiz", "").await;
    let cpcs = Api::<ClusterProviderConfig>::all(env.client.clone());
    let said = eventually(Duration::from_secs(60), || async {
        let (status, reason, message) = ready(&cpcs.get(&closed.name).await.ok()?);
        (status == "False" && reason == "NamespaceNotAllowed").then_some(message)
    })
    .await;
    assert!(
        said.is_some_and(|m| m.contains("spec.conditions")),
        "{:?}",
        cpcs.get(&closed.name).await.map(|c| c.status)
    );
    tenant.apply_ok(&sub_account("support", &closed.reference(), "", ""));
    let (_, reason, message) = ready(&stalled::<SubAccount>(&env, "support").await);
    assert_eq!(reason, "NamespaceNotAllowed", "{message}");
    assert_eq!(calls(&env.sim, "vobiz").await, 0);
    assert!(env.operator.running());
    env.finish().await;
    shared.delete().await;
    closed.delete().await;
}

#[tokio::test]
async fn hostile_manifests_are_refused_by_the_api_server_with_the_field_named() {
    let client = support::client().await;
    support::install_crds(&client).await;
    harness::chart_identity(&client).await;
    let ns = TestNamespace::new(&client, "e2e-h-admission").await;
    let tenant = Tenant::of(&ns.name).await;
    let sub = sub_account("s", "{name: pc}", "", "");
    let many: String = (0..500).map(|i| format!("k{i}: v\n    ")).collect();
    let tenant_cases = [
        ("500 metadata keys", format!("{sub}  metadata:\n    {many}\n"), "spec.metadata"),
        (
            "tenantline's own metadata key",
            format!("{sub}  metadata: {{tenantline.io/key: default/other/s}}\n"),
            "spec.metadata",
        ),
        (
            "tenantline's key marker in a Vobiz description",
            format!("{sub}  vobiz: {{description: \"hi [tenantline.io/key=default/other/s]\"}}\n"),
            "spec.vobiz.description",
        ),
        ("a 70-character name", sub_account(&"s".repeat(70), "{name: pc}", "", ""), "metadata.name"),
        (
            "an opening balance of 1e12",
            format!("{sub}  vobizPartner: {{openingBalance: 1e12}}\n"),
            "spec.vobizPartner.openingBalance",
        ),
    ];
    for (what, yaml, field) in &tenant_cases {
        let out = tenant.apply(yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(stderr.contains(field), "{what}: the refusal does not name {field}: {stderr}");
    }

    let pc = "apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {name: pc}\nspec:\n  provider: Vobiz\n  credentialsSecretRef: {name: x}\n";
    let admin_cases = [
        (
            "a poll interval of 2^64-1 seconds",
            format!("{pc}  pollInterval: 18446744073709551615s\n"),
            "spec.pollInterval",
        ),
        ("a poll interval of ten years", format!("{pc}  pollInterval: 87600h\n"), "spec.pollInterval"),
        (
            "a ClusterProviderConfig without its Secret's namespace",
            format!(
                "apiVersion: tenantline.io/v1alpha1\nkind: ClusterProviderConfig\nmetadata: {{name: {}-nosecretns}}\nspec:\n  \
                 provider: Vobiz\n  credentialsSecretRef: {{name: x}}\n  conditions: [{{namespaces: [{}]}}]\n",
                ns.name, ns.name
            ),
            "spec.credentialsSecretRef.namespace",
        ),
    ];
    for (what, yaml, field) in &admin_cases {
        let out = kubectl(&["apply", "--server-side", "--field-manager=e2e", "-n", &ns.name, "-f", "-"], yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            let _ = Api::<ClusterProviderConfig>::all(client.clone())
                .delete(&format!("{}-nosecretns", ns.name), &DeleteParams::default())
                .await;
        }
        assert!(!out.status.success(), "{what}: accepted");
        assert!(stderr.contains(field), "{what}: the refusal does not name {field}: {stderr}");
    }
    ns.delete().await;
}

#[tokio::test]
async fn max_sub_accounts_caps_the_accounts_made_through_a_config() {
    let mut env = Env::start("e2e-h-maxsub").await;
    let tenant = env.tenant().await;
    config(&env, "vobiz", "Vobiz", "  maxSubAccounts: 2\n");
    // All three at once: the limit holds for creates that race.
    let all: Vec<String> = ["one", "two", "three"].iter().map(|n| sub_account(n, "{name: vobiz}", "", "")).collect();
    tenant.apply_ok(&all.join("---\n"));
    let api = env.api::<SubAccount>();
    let settled = eventually(Duration::from_secs(90), || async {
        let mut outcomes = Vec::new();
        for name in ["one", "two", "three"] {
            let (status, reason, message) = ready(&api.get(name).await.ok()?);
            let done = status == "True" || reason == "LimitReached";
            done.then_some(())?;
            outcomes.push((name, status, reason, message));
        }
        Some(outcomes)
    })
    .await
    .unwrap_or_else(|| panic!("not all settled\n{}", env.operator.log_tail(40)));
    let limited: Vec<_> = settled.iter().filter(|o| o.2 == "LimitReached").collect();
    assert_eq!(settled.iter().filter(|o| o.1 == "True").count(), 2, "{settled:?}");
    assert_eq!(limited.len(), 1, "{settled:?}");
    assert!(limited[0].3.contains("maxSubAccounts"), "{:?}", limited[0]);
    assert_eq!(ready(&stalled::<SubAccount>(&env, limited[0].0).await).1, "LimitReached");
    assert_eq!(items(&env.sim.state().await, "/vobiz/subAccounts").len(), 2);
    let configs = env.api::<ProviderConfig>();
    let counted = eventually(Duration::from_secs(30), || async {
        (configs.get("vobiz").await.ok()?.status?.sub_accounts == Some(2)).then_some(())
    })
    .await;
    assert!(counted.is_some(), "status.subAccounts: {:?}", configs.get("vobiz").await.map(|pc| pc.status));
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn max_opening_balance_refuses_a_larger_transfer_before_any_create() {
    let mut env = Env::start("e2e-h-maxbalance").await;
    let tenant = env.tenant().await;
    config(&env, "partner", "VobizPartner", "  maxOpeningBalance: 100\n");
    let extra = format!("{}  vobizPartner: {{openingBalance: 500, currency: USD}}\n", partner_owner("rich"));
    tenant.apply_ok(&sub_account("rich", "{name: partner}", "", &extra));
    let (_, reason, message) = ready(&stalled::<SubAccount>(&env, "rich").await);
    assert_eq!(reason, "LimitReached", "{message}");
    assert!(message.contains("maxOpeningBalance"), "{message}");
    assert_eq!(env.sim.calls_by_kind("vobizPartner", false).await, 0, "an account was created or money moved");
    let state = env.sim.state().await;
    assert!(
        items(&state, "/vobizPartner/accounts").is_empty() && items(&state, "/vobizPartner/transactions").is_empty()
    );
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn external_ids_that_are_no_provider_id_are_refused_without_a_provider_call() {
    let mut env = Env::start("e2e-h-badid").await;
    let tenant = env.tenant().await;
    config(&env, "vobiz", "Vobiz", "");
    // The config checks its own credentials at the provider once; what follows adds nothing.
    env.wait_ready::<tenantline::api::ProviderConfig>("vobiz").await;
    let checked = calls(&env.sim, "vobiz").await;
    let ids = [("dots", "\"../../x\""), ("encoded", "\"SA_1%2F..%2F..%2FMA_SIMVOBIZ\""), ("control", "\"SA_1\\e[2J\"")];
    for (name, id) in ids {
        tenant.apply_ok(&sub_account(name, "{name: vobiz}", &format!("tenantline.io/external-id: {id}"), ""));
    }
    for (name, _) in ids {
        let (_, reason, message) = ready(&stalled::<SubAccount>(&env, name).await);
        assert_eq!(reason, "InvalidExternalId", "{name}: {message}");
        assert!(!message.contains('\u{1b}'), "{name}: the raw id reached the message: {message:?}");
    }
    assert_eq!(calls(&env.sim, "vobiz").await, checked, "an id that is no id reached the provider");

    for (name, _) in ids {
        tenant.delete(&format!("subaccount/{name}"));
    }
    for (name, _) in ids {
        assert!(env.wait_gone::<SubAccount>(name, Duration::from_secs(60)).await, "{name} stayed");
    }
    assert!(env.wait_event("Orphaned", "nothing was deleted").await, "{:?}", env.events().await);
    assert_eq!(calls(&env.sim, "vobiz").await, checked, "deleting them reached the provider");
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn a_provider_redirect_is_not_followed_and_carries_no_credentials_away() {
    let mut env = Env::start("e2e-h-redirect").await;
    let elsewhere = Sim::start().await;
    let tenant = env.tenant().await;
    config(&env, "vobiz", "Vobiz", "");
    let redirect = json!({"kind": "redirect", "status": 307, "location": elsewhere.sink_url("/stolen")});
    env.sim.add_fault(json!({"provider": "vobiz", "fault": redirect})).await;

    tenant.apply_ok(&sub_account("support", "{name: vobiz}", "", ""));
    let api = env.api::<SubAccount>();
    let said = eventually(Duration::from_secs(60), || async {
        let (status, _, message) = ready(&api.get_opt("support").await.ok()??);
        (status == "False" && message.contains("answered a redirect")).then_some(())
    })
    .await;
    let carried = elsewhere.sink().await;
    assert!(carried.is_empty(), "the redirect was followed, with: {carried:?}");
    let now = api.get("support").await.map(|sa| ready(&sa));
    assert!(said.is_some(), "support never said it was redirected; Ready now {now:?}");
    assert!(env.operator.running());

    env.sim.clear_faults().await;
    env.wait_ready::<SubAccount>("support").await;
    assert!(elsewhere.sink().await.is_empty());
    env.finish().await;
}

#[tokio::test]
async fn a_huge_provider_answer_is_cut_off_at_1_mib() {
    let mut env = Env::start("e2e-h-hugebody").await;
    let tenant = env.tenant().await;
    config(&env, "agentphone", "AgentPhone", "");
    let huge = json!({"kind": "body", "status": 200, "bytes": 64 * 1024 * 1024});
    env.sim.add_fault(json!({"provider": "agentphone", "fault": huge})).await;

    tenant.apply_ok(&sub_account("marketing", "{name: agentphone}", "", ""));
    wait_ready_is::<SubAccount>(&env, "marketing", "said the answer was too large", |(status, _, message)| {
        status == "False" && message.contains("larger than 1 MiB")
    })
    .await;
    assert!(env.operator.running());

    env.sim.clear_faults().await;
    env.wait_ready::<SubAccount>("marketing").await;
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn garbage_json_from_a_provider_is_a_failure_to_retry_not_a_crash() {
    let mut env = Env::start("e2e-h-garbage").await;
    let tenant = env.tenant().await;
    config(&env, "recoverbiz", "RecoverBiz", "");
    let garbage = json!({"kind": "body", "text": "{\"id\": "});
    env.sim.fault("recoverbiz", "POST", Some("/v1/accounts"), garbage, json!({})).await;

    tenant.apply_ok(&sub_account("lending", "{name: recoverbiz}", "", ""));
    wait_ready_is::<SubAccount>(&env, "lending", "ProviderUnavailable", |(status, reason, _)| {
        status == "False" && reason == "ProviderUnavailable"
    })
    .await;
    assert!(env.operator.running());

    env.sim.clear_faults().await;
    env.wait_ready::<SubAccount>("lending").await;
    assert_eq!(items(&env.sim.state().await, "/recoverbiz/accounts").len(), 1);
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn an_endless_retry_after_is_capped_and_the_resource_retries() {
    let mut env = Env::start_with("e2e-h-retryafter", &["--max-backoff-seconds", "5"]).await;
    let tenant = env.tenant().await;
    config(&env, "yardstik", "Yardstik", "");
    let endless = json!({"kind": "headers", "status": 429, "headers": {"Retry-After": "999999999999"}});
    env.sim.add_fault(json!({"provider": "yardstik", "fault": endless, "count": 2})).await;

    tenant.apply_ok(&sub_account("screening", "{name: yardstik}", "", &yardstik_owner()));
    env.wait_ready::<SubAccount>("screening").await;
    assert!(calls(&env.sim, "yardstik").await > 2, "the rate-limited calls were not made");
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn a_rate_limit_reset_at_the_end_of_time_is_capped_and_the_resource_retries() {
    let mut env = Env::start_with("e2e-h-ratereset", &["--max-backoff-seconds", "5"]).await;
    let tenant = env.tenant().await;
    config(&env, "recoverbiz", "RecoverBiz", "");
    let exhausted = json!({"kind": "headers", "status": 200,
                           "headers": {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "18446744073709551615"}});
    env.sim.add_fault(json!({"provider": "recoverbiz", "fault": exhausted, "count": 2})).await;

    tenant.apply_ok(&sub_account("lending", "{name: recoverbiz}", "", ""));
    env.wait_ready::<SubAccount>("lending").await;
    // Calls go on after the provider said none may be made until the end of time: its polls.
    let polled =
        eventually(Duration::from_secs(60), || async { (calls(&env.sim, "recoverbiz").await >= 4).then_some(()) })
            .await;
    assert!(polled.is_some(), "the operator stopped calling the provider\n{}", env.operator.log_tail(30));
    assert_eq!(items(&env.sim.state().await, "/recoverbiz/accounts").len(), 1);
    assert!(env.operator.running());
    env.finish().await;
}

#[tokio::test]
async fn a_hostile_provider_error_message_reaches_conditions_and_events_clean_and_short() {
    let mut env = Env::start("e2e-h-errormsg").await;
    let tenant = env.tenant().await;
    config(&env, "partner", "VobizPartner", "");
    // 8 KB of lines, colour escapes, a terminal title escape and the parent's token, whole and
    // with an escape inside it.
    let line = format!(
        "\u{1b}[31mupstream exploded\u{1b}[0m\r\n\u{1b}]0;owned\u{7}token={DEV_PARTNER_AUTH_TOKEN} sim-partner\u{1b}[0m-token\n"
    );
    let message: String = line.repeat(8192 / line.len() + 1);
    assert!(message.len() >= 8192);
    let error = json!({"kind": "error", "status": 502, "message": message});
    env.sim.add_fault(json!({"provider": "vobizPartner", "fault": error})).await;

    tenant.apply_ok(&sub_account("collections", "{name: partner}", "", &partner_owner("collections")));
    let sa = wait_ready_is::<SubAccount>(&env, "collections", "reported the provider's error", |(status, _, m)| {
        status == "False" && m.contains("upstream exploded")
    })
    .await;
    let clean = |text: &str| {
        assert!(!text.contains(['\n', '\r', '\u{1b}', '\u{7}']), "a control character got through: {text:?}");
        assert!(!text.contains(DEV_PARTNER_AUTH_TOKEN), "the parent's token got through: {text:?}");
        // The provider's text is cut to 512 bytes; the rest is our framing (what failed, and where).
        assert!(text.len() <= 800, "{} bytes: {text:?}", text.len());
    };
    for condition in sa.status.unwrap().managed.common.conditions {
        clean(&condition.message);
    }
    let found = eventually(Duration::from_secs(30), || async {
        let events = env.events().await;
        events.iter().any(|(_, m)| m.contains("upstream exploded")).then_some(events)
    })
    .await;
    let Some(found) = found else { panic!("no Event with the provider's message: {:?}", env.events().await) };
    for (_, message) in found.iter().filter(|(_, m)| m.contains("upstream")) {
        clean(message);
    }
    env.assert_no_leak(&[DEV_PARTNER_AUTH_TOKEN.to_owned()]).await;
    assert!(env.operator.running());

    env.sim.clear_faults().await;
    env.wait_ready::<SubAccount>("collections").await;
    env.finish().await;
}

#[tokio::test]
async fn a_tenant_cannot_take_another_tenants_number_through_a_shared_config() {
    let mut a = Env::start("e2e-h-num-a").await;
    let mut b = Env::start("e2e-h-num-b").await;
    let shared = Shared::new(&a, "Vobiz", &format!("[{{namespaces: [{}, {}]}}]", a.ns.name, b.ns.name)).await;
    let (tenant_a, tenant_b) = (a.tenant().await, b.tenant().await);
    tenant_a.apply_ok(&sub_account("support", &shared.reference(), "", ""));
    tenant_a.apply_ok(&phone_number("main", "support", "", "  search: {country: US, areaCode: \"415\"}\n"));
    let id_a = a.wait_ready::<SubAccount>("support").await.status.unwrap().managed.external_id.unwrap();
    let number = a.wait_ready::<PhoneNumber>("main").await.status.unwrap().number.unwrap();
    tenant_b.apply_ok(&sub_account("support", &shared.reference(), "", ""));
    b.wait_ready::<SubAccount>("support").await;

    // B asks for A's number, by number and by naming it for adoption.
    let wanted = format!("  number: \"{number}\"\n");
    tenant_b.apply_ok(&phone_number("stolen", "support", "", &wanted));
    tenant_b.apply_ok(&phone_number(
        "adopted",
        "support",
        &format!("tenantline.io/external-id: \"{number}\""),
        &wanted,
    ));
    let held_by_a = |state: &Value| {
        let n = items(state, "/vobiz/numbers").iter().find(|n| n["e164"] == number.as_str()).cloned();
        n.is_some_and(|n| n["sub_account_id"] == id_a.as_str() && n["status"] == "active")
    };
    for name in ["stolen", "adopted"] {
        let (status, reason, message) = ready(&settled::<PhoneNumber>(&b, name).await);
        assert_ne!(status, "True", "{name}: B holds A's number {number}: {message}");
        if name == "adopted" {
            assert_eq!(reason, "ExternalObjectNotOwned", "{name}: {message}");
        }
    }
    assert!(held_by_a(&a.sim.state().await), "A's number moved: {:?}", items(&a.sim.state().await, "/vobiz/numbers"));

    // Deleting B's PhoneNumbers (deletionPolicy Release) releases nothing of A's.
    for name in ["stolen", "adopted"] {
        tenant_b.delete(&format!("phonenumber/{name}"));
    }
    for name in ["stolen", "adopted"] {
        assert!(b.wait_gone::<PhoneNumber>(name, Duration::from_secs(60)).await, "{name} stayed");
    }
    assert!(
        held_by_a(&a.sim.state().await),
        "A's number was released: {:?}",
        items(&a.sim.state().await, "/vobiz/numbers")
    );
    assert_eq!(ready(&a.api::<PhoneNumber>().get("main").await.unwrap()).0, "True");
    assert!(a.operator.running() && b.operator.running());
    b.finish().await;
    a.finish().await;
    shared.delete().await;
}

#[tokio::test]
async fn a_tenant_with_edit_uses_tenantline_but_cannot_write_configs_or_status() {
    let client = support::client().await;
    support::install_crds(&client).await;
    harness::chart_identity(&client).await;
    let ns = TestNamespace::new(&client, "e2e-h-rbac").await;
    let tenant = Tenant::of(&ns.name).await;
    for resource in ["subaccounts", "teammembers", "phonenumbers"] {
        for verb in ["create", "patch", "delete"] {
            assert!(tenant.can_i(&[verb, resource]), "a tenant may not {verb} {resource}");
        }
        assert!(!tenant.can_i(&["patch", resource, "--subresource=status"]), "a tenant may patch {resource}/status");
        assert!(!tenant.can_i(&["update", resource, "--subresource=status"]), "a tenant may update {resource}/status");
    }
    assert!(tenant.can_i(&["get", "providerconfigs"]), "a tenant may not read its ProviderConfigs");
    for resource in ["providerconfigs", "clusterproviderconfigs"] {
        for verb in ["create", "patch", "delete"] {
            assert!(!tenant.can_i(&[verb, resource]), "a tenant may {verb} {resource}");
        }
    }
    assert!(!tenant.can_i(&["patch", "providerconfigs", "--subresource=status"]));

    // And in practice: the operator's record (status.externalId, which vouches for an account)
    // cannot be forged.
    tenant.apply_ok(&sub_account("s", "{name: pc}", "", ""));
    let forged = tenant.kubectl(
        &[
            "patch",
            "subaccount",
            "s",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"externalId":"SA_1"}}"#,
        ],
        "",
    );
    assert!(!forged.status.success(), "a tenant wrote a status");
    assert!(
        String::from_utf8_lossy(&forged.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );
    let config = tenant.apply(
        "apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {name: mine}\nspec:\n  provider: Vobiz\n  credentialsSecretRef: {name: x}\n",
    );
    assert!(!config.status.success(), "a tenant created a ProviderConfig");
    assert!(
        String::from_utf8_lossy(&config.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&config.stderr)
    );
    ns.delete().await;
}
