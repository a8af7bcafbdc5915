//! Day-2 behaviour: spec changes reach the provider, changes made behind tenantline's back are
//! corrected (or reported where the provider cannot update), activation toggles, adoption.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tenantline::api::SubAccount;

use tenantline_sim::seed::{DEV_AGENTPHONE_KEY, DEV_RECOVERBIZ_KEY as RB_KEY, DEV_VOBIZ_AUTH_ID, DEV_VOBIZ_AUTH_TOKEN};

use crate::harness::Env;
use crate::support::eventually;

/// The example ProviderConfig of `dir`, polling every 2 s so drift is seen quickly.
pub fn fast_provider(env: &Env, dir: &str) {
    let path = format!("{}/examples/{dir}/provider.yaml", env!("CARGO_MANIFEST_DIR"));
    env.apply_ok(
        &std::fs::read_to_string(path)
            .unwrap()
            .replace("pollInterval: 10m", "")
            .replace("  credentialsSecretRef:", "  pollInterval: 2s\n  credentialsSecretRef:"),
    );
}

pub fn sub_account(name: &str, config: &str, extra: &str) -> String {
    format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata:\n  name: {name}\nspec:\n  providerConfigRef: {{name: {config}}}\n  displayName: {name}\n{extra}"
    )
}

async fn merge(env: &Env, name: &str, spec: Value) {
    env.api::<SubAccount>()
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(json!({
                "apiVersion": "tenantline.io/v1alpha1", "kind": "SubAccount", "metadata": {"name": name}, "spec": spec
            })),
        )
        .await
        .unwrap();
}

async fn recoverbiz_account(env: &Env, id: &str) -> Value {
    env.sim
        .http()
        .get(env.sim.url(&format!("/recoverbiz/v1/accounts/{id}")))
        .header("X-Partner-Key", RB_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn spec_changes_reach_the_provider_and_drift_is_corrected_or_reported() {
    let env = Env::start("e2e-drift").await;
    fast_provider(&env, "recoverbiz");
    fast_provider(&env, "vobiz-partner");
    env.apply_ok(&sub_account("lending", "recoverbiz", "  companyName: Acme Lending Corp\n"));
    let sa = env.wait_ready::<SubAccount>("lending").await;
    let id = sa.status.unwrap().managed.external_id.unwrap();

    // A spec change is applied in place.
    merge(
        &env,
        "lending",
        json!({"providerConfigRef": {"name": "recoverbiz"}, "displayName": "lending", "companyName": "Acme Financial"}),
    )
    .await;
    let updated = eventually(Duration::from_secs(30), || async {
        (recoverbiz_account(&env, &id).await["company_name"] == "Acme Financial").then_some(())
    })
    .await;
    assert!(updated.is_some(), "companyName never reached RecoverBiz\n{}", env.operator.log_tail(30));

    // Someone changes it at the provider: the next poll puts the spec back.
    let r = env
        .sim
        .http()
        .patch(env.sim.url(&format!("/recoverbiz/v1/accounts/{id}")))
        .header("X-Partner-Key", RB_KEY)
        .json(&json!({"company_name": "Changed Behind Our Back"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let corrected = eventually(Duration::from_secs(30), || async {
        (recoverbiz_account(&env, &id).await["company_name"] == "Acme Financial").then_some(())
    })
    .await;
    assert!(corrected.is_some(), "drift at RecoverBiz was not corrected\n{}", env.operator.log_tail(30));

    // Vobiz Partner cannot update a customer: the change is reported, not hidden.
    let extra = "  owner: {email: drift@acme.example, phone: \"+14155550100\"}\n  address: {country: US}\n";
    env.apply_ok(&sub_account("collections", "vobiz-partner", extra));
    env.wait_ready::<SubAccount>("collections").await;
    env.apply_ok(&sub_account("collections", "vobiz-partner", &format!("{extra}  companyName: Renamed Corp\n")));
    let sa = env.wait_condition::<SubAccount>("collections", "Stalled", "True", Duration::from_secs(30)).await;
    let ready = sa.status.unwrap().managed.common.conditions.into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.reason, "DriftDetected");
    assert!(ready.message.contains("companyName") && ready.message.contains("VobizPartner"), "{}", ready.message);
    env.finish().await;
}

/// Sends `request`, which must succeed.
async fn send(request: reqwest::RequestBuilder) {
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn drift_is_corrected_at_vobiz_agentphone_and_yardstik() {
    let mut env = Env::start("e2e-drift-all").await;
    for dir in ["vobiz", "agentphone", "yardstik"] {
        fast_provider(&env, dir);
    }
    env.apply_ok(&sub_account("vz", "vobiz", ""));
    env.apply_ok(&sub_account("ap", "agentphone", ""));
    env.apply_ok(&sub_account("ys", "yardstik", &crate::safety::yardstik_owner()));
    let mut ids = Vec::new();
    for name in ["vz", "ap", "ys"] {
        ids.push(env.wait_ready::<SubAccount>(name).await.status.unwrap().managed.external_id.unwrap());
    }
    let (vz, ap, ys) = (&ids[0], &ids[1], &ids[2]);
    // Yardstik takes changes only with the sub-account's own token, from its Secret.
    let ys_token = crate::safety::data(&env.secret("ys-credentials").await.unwrap())["apiToken"].clone();

    // Someone changes each account at its provider, while the operator runs and nothing changes
    // in the cluster: only its polls (every 2 s) can see it.
    let writes_before = account_writes(&env).await;
    let http = env.sim.http();
    let vobiz = env.sim.url(&format!("/vobiz/api/v1/accounts/{DEV_VOBIZ_AUTH_ID}/sub-accounts/{vz}"));
    send(
        http.put(vobiz)
            .header("X-Auth-ID", DEV_VOBIZ_AUTH_ID)
            .header("X-Auth-Token", DEV_VOBIZ_AUTH_TOKEN)
            .json(&json!({"name": "Renamed"})),
    )
    .await;
    let agentphone = env.sim.url(&format!("/agentphone/v1/sub-accounts/{ap}"));
    send(http.patch(agentphone).bearer_auth(DEV_AGENTPHONE_KEY).json(&json!({"name": "Renamed"}))).await;
    let yardstik = env.sim.url(&format!("/yardstik/accounts/{ys}"));
    send(
        http.patch(yardstik)
            .header("Authorization", format!("Account {ys_token}"))
            .json(&json!({"first_name": "Changed", "address": {"city": "Dallas"}})),
    )
    .await;

    // Its polls put each spec back at its provider.
    let corrected = eventually(Duration::from_secs(60), || async {
        let state = env.sim.state().await;
        let item = |pointer: &str, key: &str, id: &str| {
            state.pointer(pointer)?.as_array()?.iter().find(|i| i[key] == id).cloned()
        };
        let vobiz = item("/vobiz/subAccounts", "auth_id", vz)?["name"] == "vz";
        let agentphone = item("/agentphone/subAccounts", "id", ap)?["name"] == "ap";
        let ys = item("/yardstik/subAccounts", "id", ys)?;
        let yardstik = ys["first_name"] == "Ana" && ys["address"]["city"] == "Austin";
        (vobiz && agentphone && yardstik).then_some(())
    })
    .await;
    let ys_status = env.api::<SubAccount>().get("ys").await.map(|s| serde_json::to_string(&s.status)).ok();
    assert!(
        corrected.is_some(),
        "drift not corrected: {}\nys: {ys_status:?}\nevents: {:?}\n{}",
        env.sim.state().await,
        env.events().await,
        env.operator.log_tail(30)
    );
    // Each account was written twice since: by the person, then by the operator.
    let (before, after) = (writes_before, account_writes(&env).await);
    let written = [after.0 - before.0, after.1 - before.1, after.2 - before.2];
    assert!(written.iter().all(|w| *w >= 2), "writes to (Vobiz, AgentPhone, Yardstik) since the change: {written:?}");
    assert!(env.operator.running(), "the operator exited:\n{}", env.operator.log_tail(30));
    env.finish().await;
}

/// The writes to a Vobiz sub-account, an AgentPhone sub-account and a Yardstik account so far.
async fn account_writes(env: &Env) -> (u64, u64, u64) {
    let calls = env.sim.control().calls().await;
    (
        calls.count("vobiz", "PUT", "/api/v1/accounts/{auth_id}/sub-accounts/{sub_auth_id}"),
        calls.count("agentphone", "PATCH", "/v1/sub-accounts/{sub_account_id}"),
        calls.count("yardstik", "PATCH", "/accounts/{account_id}"),
    )
}

#[tokio::test]
async fn active_false_deactivates_and_true_reactivates() {
    let env = Env::start("e2e-active").await;
    fast_provider(&env, "recoverbiz");
    fast_provider(&env, "vobiz");
    env.apply_ok(&sub_account("rb", "recoverbiz", ""));
    env.apply_ok(&sub_account("vz", "vobiz", ""));
    let rb = env.wait_ready::<SubAccount>("rb").await.status.unwrap().managed.external_id.unwrap();
    let vz = env.wait_ready::<SubAccount>("vz").await.status.unwrap().managed.external_id.unwrap();

    let vobiz_enabled = |state: &Value| {
        state["vobiz"]["subAccounts"].as_array().unwrap().iter().find(|s| s["auth_id"] == vz.as_str()).unwrap()["enabled"]
            .as_bool()
            .unwrap()
    };
    for (active, rb_status, state) in [(false, "deactivated", "Deactivated"), (true, "active", "Active")] {
        env.apply_ok(&sub_account("rb", "recoverbiz", &format!("  active: {active}\n")));
        env.apply_ok(&sub_account("vz", "vobiz", &format!("  active: {active}\n")));
        let done = eventually(Duration::from_secs(30), || async {
            let rb_ok = recoverbiz_account(&env, &rb).await["status"] == rb_status;
            let vz_ok = vobiz_enabled(&env.sim.state().await) == active;
            (rb_ok && vz_ok).then_some(())
        })
        .await;
        assert!(done.is_some(), "active: {active} did not reach both providers\n{}", env.operator.log_tail(30));
        for name in ["rb", "vz"] {
            let seen = eventually(Duration::from_secs(20), || async {
                let sa = env.api::<SubAccount>().get(name).await.ok()?;
                (sa.status?.state.as_deref() == Some(state)).then_some(())
            })
            .await;
            assert!(seen.is_some(), "{name}: status.state never became {state}");
        }
    }
    env.finish().await;
}

#[tokio::test]
async fn an_existing_account_named_by_annotation_is_adopted_without_a_create() {
    let env = Env::start("e2e-adopt").await;
    fast_provider(&env, "recoverbiz");
    let created: Value = env
        .sim
        .http()
        .post(env.sim.url("/recoverbiz/v1/accounts"))
        .header("X-Partner-Key", RB_KEY)
        .json(&json!({"name": "Existing Customer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let creates_before = env.sim.calls("recoverbiz", "POST", "/v1/accounts").await;

    let yaml = sub_account("existing", "recoverbiz", "")
        .replace(
            "  name: existing\n",
            &format!("  name: existing\n  annotations: {{tenantline.io/external-id: {id}}}\n"),
        )
        .replace("displayName: existing", "displayName: Existing Customer");
    env.apply_ok(&yaml);
    let sa = env.wait_ready::<SubAccount>("existing").await;
    assert_eq!(sa.status.unwrap().managed.external_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        env.sim.calls("recoverbiz", "POST", "/v1/accounts").await,
        creates_before,
        "adoption created an account"
    );
    assert_eq!(env.sim.state().await["recoverbiz"]["accounts"].as_array().unwrap().len(), 1);
    env.finish().await;
}
