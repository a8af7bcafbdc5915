//! A customer's account is never destroyed, replaced or touched by mistake: a lost credentials
//! Secret, an ObserveOnly resource and a provider's "not found" each leave the account as it is
//! and say what happened.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, SubAccount};

use tenantline_sim::seed::{
    DEV_AGENTPHONE_KEY, DEV_PARTNER_AUTH_ID, DEV_PARTNER_AUTH_TOKEN, DEV_PERMISSIBLE_PURPOSE_ID, DEV_RECOVERBIZ_KEY,
    DEV_VOBIZ_AUTH_ID, DEV_VOBIZ_AUTH_TOKEN, DEV_YARDSTIK_KEY,
};

use crate::harness::Env;
use crate::lifecycle::{fast_provider, sub_account};
use crate::support::eventually;

/// The spec lines a Yardstik SubAccount needs beyond a name: its owner, address and purpose.
pub fn yardstik_owner() -> String {
    format!(
        "  owner: {{email: o@acme.example, firstName: Ana, lastName: Diaz}}\n  address: {{line1: 1 Main St, city: Austin, \
         state: TX, postalCode: \"78701\", country: US}}\n  yardstik: {{permissiblePurposeIds: [\"{DEV_PERMISSIBLE_PURPOSE_ID}\"]}}\n"
    )
}

pub fn data(secret: &Secret) -> BTreeMap<String, String> {
    secret.data.iter().flatten().map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap())).collect()
}

pub fn condition(sa: &SubAccount, type_: &str) -> Condition {
    let conditions = sa.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
    conditions.into_iter().find(|c| c.type_ == type_).unwrap_or_else(|| panic!("no {type_} condition: {sa:?}"))
}

/// The `examples/<dir>/sub-account.yaml` a user copies.
pub fn example_sub_account(dir: &str) -> String {
    std::fs::read_to_string(format!("{}/examples/{dir}/sub-account.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub fn items<'a>(state: &'a Value, pointer: &str) -> &'a Vec<Value> {
    state.pointer(pointer).and_then(Value::as_array).unwrap_or_else(|| panic!("{pointer} in {state}"))
}

/// A SubAccount with these annotations.
pub fn annotated(name: &str, config: &str, annotations: &str, extra: &str) -> String {
    sub_account(name, config, extra)
        .replace(&format!("  name: {name}\n"), &format!("  name: {name}\n  annotations: {{{annotations}}}\n"))
}

/// Wait until `check` holds for SubAccount `name`; returns it.
pub async fn wait_for(env: &Env, name: &str, what: &str, check: impl Fn(&SubAccount) -> bool) -> SubAccount {
    let api = env.api::<SubAccount>();
    let found = eventually(Duration::from_secs(60), || async {
        let sa = api.get_opt(name).await.ok()??;
        check(&sa).then_some(sa)
    })
    .await;
    found.unwrap_or_else(|| {
        panic!("SubAccount {name}: never {what}\noperator log tail:\n{}", env.operator.log_tail(40));
    })
}

fn is(sa: &SubAccount, type_: &str) -> bool {
    sa.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

#[tokio::test]
async fn deleting_a_delivered_credentials_secret_never_replaces_the_account() {
    let env = Env::start("e2e-lostsecret").await;
    for dir in ["vobiz", "vobiz-partner", "yardstik"] {
        fast_provider(&env, dir);
        env.apply_ok(&example_sub_account(dir));
    }
    let vobiz = env.wait_ready::<SubAccount>("acme-support").await.status.unwrap().managed.external_id.unwrap();
    let number = env.wait_ready::<PhoneNumber>("acme-support-main").await.status.unwrap().number.unwrap();
    let partner = env.wait_ready::<SubAccount>("acme-collections").await.status.unwrap().managed.external_id.unwrap();
    let yardstik = env.wait_ready::<SubAccount>("acme-screening").await.status.unwrap().managed.external_id.unwrap();
    let vobiz_secret = data(&env.secret("acme-support-credentials").await.unwrap());
    let partner_secret = data(&env.secret("acme-collections-credentials").await.unwrap());
    let yardstik_secret = data(&env.secret("acme-screening-credentials").await.unwrap());

    // An accident, a cleanup script, a namespace migration.
    for name in ["acme-support-credentials", "acme-collections-credentials", "acme-screening-credentials"] {
        env.api::<Secret>().delete(name, &DeleteParams::default()).await.unwrap();
    }

    // Each wait below is for a state none of them was in before the deletion.
    let lost_or_replaced = |id: &str| {
        let id = id.to_owned();
        move |sa: &SubAccount| {
            let ready = sa.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
            ready.is_some_and(|c| c.reason == "CredentialsLost")
                || sa.status.as_ref().and_then(|s| s.external_id.as_deref()) != Some(id.as_str())
        }
    };

    // Vobiz shows the token only once: the account stays, and the resource says what to do.
    let sa = wait_for(&env, "acme-support", "CredentialsLost or replaced", lost_or_replaced(&vobiz)).await;
    let state = env.sim.state().await;
    let subs = items(&state, "/vobiz/subAccounts");
    assert!(
        subs.iter().any(|s| s["auth_id"] == vobiz.as_str()),
        "Vobiz no longer holds {vobiz}: the live account was deleted; now {:?}",
        subs.iter().map(|s| &s["auth_id"]).collect::<Vec<_>>()
    );
    assert_eq!(subs.len(), 1, "a second Vobiz account was created");
    let held = items(&state, "/vobiz/numbers").iter().find(|n| n["e164"] == number.as_str()).unwrap();
    assert_eq!(held["sub_account_id"], vobiz.as_str(), "the number moved");
    let ready = condition(&sa, "Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "CredentialsLost"), "{ready:?}");
    assert!(ready.message.contains("authToken") && ready.message.contains("tenantline.io/allow-replace"), "{ready:?}");

    // Vobiz Partner shows its token again, but the login password was ours: never a new one.
    let sa = wait_for(&env, "acme-collections", "CredentialsLost or replaced", lost_or_replaced(&partner)).await;
    let now = env.secret("acme-collections-credentials").await.map(|s| data(&s)).unwrap_or_default();
    assert!(
        now.get("password").is_none_or(|p| *p == partner_secret["password"]),
        "a new password that the account does not have was written to the Secret"
    );
    assert_eq!(condition(&sa, "Ready").reason, "CredentialsLost");
    assert_eq!(items(&env.sim.state().await, "/vobizPartner/accounts").len(), 1);
    assert_eq!(sa.status.unwrap().external_id.as_deref(), Some(partner.as_str()));

    // Yardstik re-issues: same account, new token in the Secret (written before the status),
    // an Event says so.
    let reissued = eventually(Duration::from_secs(60), || async {
        let secret = data(&env.secret("acme-screening-credentials").await?);
        secret.get("apiToken").is_some_and(|t| *t != yardstik_secret["apiToken"]).then_some(secret)
    })
    .await;
    let secret =
        reissued.unwrap_or_else(|| panic!("no new Yardstik token in the Secret\n{}", env.operator.log_tail(40)));
    let sa = env.wait_ready::<SubAccount>("acme-screening").await;
    assert_eq!(sa.status.unwrap().external_id.as_deref(), Some(yardstik.as_str()));
    let state = env.sim.state().await;
    let account = items(&state, "/yardstik/subAccounts").iter().find(|s| s["id"] == yardstik.as_str()).unwrap();
    assert_eq!(secret["apiToken"], account["api_token"].as_str().unwrap(), "the Secret's token is Yardstik's");
    assert_eq!(items(&state, "/yardstik/subAccounts").len(), 1, "a second Yardstik account was created");
    assert!(env.wait_event("CredentialsReissued", &yardstik).await, "no CredentialsReissued Event for {yardstik}");

    // The person follows the message: the token goes back into the Secret, and all is well.
    let restore = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "acme-support-credentials"},
                         "stringData": {"authToken": vobiz_secret["authToken"]}});
    env.api::<Secret>()
        .patch("acme-support-credentials", &PatchParams::apply("person").force(), &Patch::Apply(restore))
        .await
        .unwrap();
    let sa = env.wait_ready::<SubAccount>("acme-support").await;
    assert_eq!(sa.status.unwrap().external_id.as_deref(), Some(vobiz.as_str()));
    env.assert_no_leak(&[vobiz_secret["authToken"].clone(), partner_secret["password"].clone()]).await;
    env.finish().await;
}

#[tokio::test]
async fn allow_replace_names_the_one_account_that_may_be_replaced() {
    let env = Env::start("e2e-replace").await;
    fast_provider(&env, "vobiz");
    env.apply_ok(&sub_account("support", "vobiz", ""));
    let old = env.wait_ready::<SubAccount>("support").await.status.unwrap().managed.external_id.unwrap();
    env.api::<Secret>().delete("support-credentials", &DeleteParams::default()).await.unwrap();
    env.wait_condition::<SubAccount>("support", "Stalled", "True", Duration::from_secs(60)).await;

    env.apply_ok(&annotated("support", "vobiz", &format!("tenantline.io/allow-replace: {old}"), ""));
    let sa = wait_for(&env, "support", "replaced", |sa| {
        is(sa, "Ready") && sa.status.as_ref().and_then(|s| s.external_id.as_deref()) != Some(old.as_str())
    })
    .await;
    let new = sa.status.unwrap().managed.external_id.unwrap();
    let state = env.sim.state().await;
    let subs = items(&state, "/vobiz/subAccounts");
    assert_eq!(subs.len(), 1, "exactly the replacement is left: {subs:?}");
    assert_eq!(subs[0]["auth_id"], new.as_str());
    let secret = data(&env.secret("support-credentials").await.unwrap());
    assert_eq!(secret["authToken"], subs[0]["auth_token"].as_str().unwrap());

    // The annotation named the old account: losing the new one's Secret does not replace it.
    env.api::<Secret>().delete("support-credentials", &DeleteParams::default()).await.unwrap();
    let sa = env.wait_condition::<SubAccount>("support", "Stalled", "True", Duration::from_secs(60)).await;
    assert_eq!(condition(&sa, "Ready").reason, "CredentialsLost");
    assert_eq!(sa.status.unwrap().external_id.as_deref(), Some(new.as_str()));
    assert_eq!(items(&env.sim.state().await, "/vobiz/subAccounts").len(), 1);
    env.finish().await;
}

async fn post(env: &Env, path: &str, headers: &[(&str, &str)], body: Value) -> Value {
    let mut request = env.sim.http().post(env.sim.url(path)).json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

async fn yardstik_reissue(env: &Env, account_name: &str) -> Value {
    let auth = format!("Account {DEV_YARDSTIK_KEY}");
    post(env, "/yardstik/sub_accounts", &[("authorization", &auth)], json!({"account_name": account_name})).await
}

#[tokio::test]
async fn observe_only_never_reissues_a_live_yardstik_token_and_a_dead_token_is_not_ready() {
    let env = Env::start("e2e-observe-ys").await;
    fast_provider(&env, "yardstik");
    env.apply_ok(&sub_account("owner", "yardstik", &yardstik_owner()));
    let id = env.wait_ready::<SubAccount>("owner").await.status.unwrap().managed.external_id.unwrap();
    let creates = env.sim.calls("yardstik", "POST", "/sub_accounts").await;

    // Someone looks at the same account, carefully.
    let annotations = format!("tenantline.io/external-id: {id}, tenantline.io/management-policy: ObserveOnly");
    env.apply_ok(
        &annotated("watcher", "yardstik", &annotations, &yardstik_owner())
            .replace("displayName: watcher", "displayName: owner"),
    );
    wait_for(&env, "watcher", "settled", |sa| is(sa, "Ready") || is(sa, "Stalled")).await;
    // A few more polls of both.
    let gets = env.sim.calls_by_kind("yardstik", true).await;
    eventually(Duration::from_secs(30), || async {
        (env.sim.calls_by_kind("yardstik", true).await >= gets + 6).then_some(())
    })
    .await
    .expect("the operator keeps polling");

    let state = env.sim.state().await;
    let account = items(&state, "/yardstik/subAccounts").iter().find(|s| s["id"] == id.as_str()).unwrap().clone();
    let owner = data(&env.secret("owner-credentials").await.unwrap());
    assert_eq!(
        owner["apiToken"],
        account["api_token"].as_str().unwrap_or_default(),
        "the owner's token was revoked: ObserveOnly re-issued it"
    );
    assert_eq!(env.sim.calls("yardstik", "POST", "/sub_accounts").await, creates, "ObserveOnly wrote to Yardstik");
    assert_eq!(condition(&env.api::<SubAccount>().get("owner").await.unwrap(), "Ready").status, "True");

    // The token is re-issued behind the owner's back: the owner stops claiming to be Ready.
    yardstik_reissue(&env, "owner").await;
    let sa = wait_for(&env, "owner", "not Ready", |sa| !is(sa, "Ready")).await;
    let ready = condition(&sa, "Ready");
    assert_eq!(ready.reason, "CredentialsRejected", "{ready:?}");
    assert!(ready.message.contains("apiToken") && ready.message.contains("owner-credentials"), "{ready:?}");
    env.finish().await;
}

#[tokio::test]
async fn observe_only_makes_no_provider_write_at_any_provider() {
    let env = Env::start("e2e-observe").await;
    for dir in ["recoverbiz", "vobiz", "agentphone", "vobiz-partner", "yardstik"] {
        fast_provider(&env, dir);
    }
    // Accounts someone else made.
    let rb =
        post(&env, "/recoverbiz/v1/accounts", &[("X-Partner-Key", DEV_RECOVERBIZ_KEY)], json!({"name": "Observed RB"}))
            .await["id"]
            .clone();
    let vz = post(
        &env,
        &format!("/vobiz/api/v1/accounts/{DEV_VOBIZ_AUTH_ID}/sub-accounts/"),
        &[("X-Auth-ID", DEV_VOBIZ_AUTH_ID), ("X-Auth-Token", DEV_VOBIZ_AUTH_TOKEN)],
        json!({"name": "Observed VZ"}),
    )
    .await["auth_credentials"]["auth_id"]
        .clone();
    let ap = post(
        &env,
        "/agentphone/v1/sub-accounts",
        &[("authorization", &format!("Bearer {DEV_AGENTPHONE_KEY}"))],
        json!({"name": "Observed AP"}),
    )
    .await["id"]
        .clone();
    let vp = post(
        &env,
        "/vobiz-partner/api/v1/partner/accounts",
        &[("X-Auth-ID", DEV_PARTNER_AUTH_ID), ("X-Auth-Token", DEV_PARTNER_AUTH_TOKEN)],
        json!({"name": "Observed VP", "email": "vp@acme.example", "password": "S3cure!pass-1", "country": "US",
               "phone": "+14155550100"}),
    )
    .await["auth_id"]
        .clone();
    let ys = post(
        &env,
        "/yardstik/sub_accounts",
        &[("authorization", &format!("Account {DEV_YARDSTIK_KEY}"))],
        json!({"account_name": "Observed YS", "email_address": "o@acme.example", "first_name": "Ana",
               "last_name": "Diaz", "address": {"line1": "1 Main St", "city": "Austin", "state": "TX", "zip_code": "78701"},
               "permissible_purpose_ids": [DEV_PERMISSIBLE_PURPOSE_ID]}),
    )
    .await["id"]
        .clone();
    env.sim.clear_calls().await;

    // Each one asks for a write ObserveOnly must not make: a different name, `active: false`,
    // credentials that only a write would bring, a number that only a purchase would bring.
    let observe = |id: &Value| {
        format!("tenantline.io/external-id: {}, tenantline.io/management-policy: ObserveOnly", id.as_str().unwrap())
    };
    let cases = [
        ("rb", "recoverbiz", observe(&rb), "  active: false\n".to_owned()),
        ("vz", "vobiz", observe(&vz), "  active: false\n".to_owned()),
        ("ap", "agentphone", observe(&ap), String::new()),
        (
            "vp",
            "vobiz-partner",
            observe(&vp),
            "  owner: {email: vp@acme.example, phone: \"+14155550100\"}\n  address: {country: US}\n".to_owned(),
        ),
        ("ys", "yardstik", observe(&ys), yardstik_owner()),
    ];
    for (name, config, annotations, extra) in &cases {
        // AgentPhone's matches, so that its ObserveOnly PhoneNumber gets to look.
        let yaml = annotated(name, config, annotations, extra).replace("displayName: ap", "displayName: Observed AP");
        env.apply_ok(&yaml);
    }
    env.apply_ok(
        "apiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata:\n  name: ap-line\n  annotations: {tenantline.io/management-policy: ObserveOnly}\nspec:\n  subAccountRef: {name: ap}\n  search: {country: US, areaCode: \"415\"}\n",
    );
    for (name, ..) in &cases {
        wait_for(&env, name, "settled", |sa| is(sa, "Ready") || is(sa, "Stalled")).await;
    }
    env.wait_condition::<PhoneNumber>("ap-line", "Stalled", "True", Duration::from_secs(60)).await;

    // Several polls later, still no write anywhere.
    let providers = ["recoverbiz", "vobiz", "agentphone", "vobizPartner", "yardstik"];
    let mut gets = Vec::new();
    for p in providers {
        gets.push(env.sim.calls_by_kind(p, true).await);
    }
    for (p, before) in providers.iter().zip(&gets) {
        let polled = eventually(Duration::from_secs(30), || async {
            (env.sim.calls_by_kind(p, true).await >= before + 3).then_some(())
        })
        .await;
        assert!(polled.is_some(), "{p}: the operator stopped reading");
    }
    let mut writes = BTreeMap::new();
    for p in providers {
        writes.insert(p, env.sim.calls_by_kind(p, false).await);
    }
    assert!(writes.values().all(|n| *n == 0), "ObserveOnly made provider writes: {writes:?}");
    env.finish().await;
}

#[tokio::test]
async fn a_provider_not_found_during_apply_is_looked_at_again() {
    let env = Env::start("e2e-notfound").await;
    fast_provider(&env, "agentphone");
    let not_found = json!({"kind": "status", "status": 404});
    env.sim.fault("agentphone", "POST", Some("/v1/sub-accounts"), not_found, json!({})).await;
    env.apply_ok(&sub_account("marketing", "agentphone", ""));
    let sa = env.wait_condition::<SubAccount>("marketing", "Reconciling", "True", Duration::from_secs(30)).await;
    assert!(condition(&sa, "Ready").message.contains("looking again"), "{:?}", condition(&sa, "Ready"));
    eventually(Duration::from_secs(30), || async {
        (env.sim.calls("agentphone", "POST", "/v1/sub-accounts").await >= 2).then_some(())
    })
    .await
    .expect("a second attempt");
    env.sim.clear_faults().await;
    // Nothing about the resource changes now: only the operator's own retry can make it Ready.
    env.wait_ready::<SubAccount>("marketing").await;
    assert_eq!(items(&env.sim.state().await, "/agentphone/subAccounts").len(), 1);
    env.finish().await;
}

#[tokio::test]
async fn two_resources_never_silently_share_one_named_account() {
    let env = Env::start("e2e-samename").await;
    fast_provider(&env, "agentphone");
    fast_provider(&env, "yardstik");
    env.apply_ok(&sub_account("first", "agentphone", "").replace("displayName: first", "displayName: Shared"));
    env.apply_ok(
        &sub_account("owner", "yardstik", &yardstik_owner()).replace("displayName: owner", "displayName: Shared"),
    );
    let ap = env.wait_ready::<SubAccount>("first").await.status.unwrap().managed.external_id.unwrap();
    let ys = env.wait_ready::<SubAccount>("owner").await.status.unwrap().managed.external_id.unwrap();
    let token = data(&env.secret("owner-credentials").await.unwrap())["apiToken"].clone();

    // The same names again, by mistake.
    env.apply_ok(&sub_account("second", "agentphone", "").replace("displayName: second", "displayName: Shared"));
    env.apply_ok(
        &sub_account("copy", "yardstik", &yardstik_owner()).replace("displayName: copy", "displayName: Shared"),
    );
    for (name, id, owner) in [("second", &ap, "first"), ("copy", &ys, "owner")] {
        let sa = env.wait_condition::<SubAccount>(name, "Stalled", "True", Duration::from_secs(60)).await;
        let ready = condition(&sa, "Ready");
        assert_eq!(ready.reason, "ExternalObjectInUse", "{ready:?}");
        assert!(ready.message.contains(id.as_str()) && ready.message.contains(owner), "{ready:?}");
    }
    let state = env.sim.state().await;
    assert_eq!(items(&state, "/agentphone/subAccounts").len(), 1);
    let account = items(&state, "/yardstik/subAccounts").iter().find(|s| s["id"] == ys.as_str()).unwrap();
    assert_eq!(account["api_token"].as_str(), Some(token.as_str()), "the owner's token still works");

    // Sharing on purpose is a choice a person makes with the annotation.
    let adopt = format!("tenantline.io/external-id: {ap}");
    env.apply_ok(&annotated("second", "agentphone", &adopt, "").replace("displayName: second", "displayName: Shared"));
    let sa = env.wait_ready::<SubAccount>("second").await;
    assert_eq!(sa.status.unwrap().external_id.as_deref(), Some(ap.as_str()));
    assert_eq!(items(&env.sim.state().await, "/agentphone/subAccounts").len(), 1);
    env.finish().await;
}
