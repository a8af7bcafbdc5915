//! Deleting a whole namespace while the providers are down: the ProviderConfigs and their
//! Secrets stay (in use) so the resources can still finish at the provider; the namespace waits,
//! the resources say why, and it goes once the providers are back — or at once, leaving the
//! provider objects, when the resources are switched to `Orphan`/`Retain`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, ProviderConfig, SubAccount, TeamMember};

use crate::harness::Env;
use crate::support::eventually;

const IN_USE: &str = "tenantline.io/in-use";
/// Short, so the test does not wait out a long backoff once the providers are back.
const MAX_BACKOFF_SECONDS: &str = "5";

/// Two providers' configs, a SubAccount each (`Delete` policy), a PhoneNumber and a TeamMember,
/// all Ready; the ids of the Vobiz account, its number and the RecoverBiz account.
async fn tenant(env: &Env) -> (String, String, String) {
    env.apply_example("vobiz");
    env.apply_example("recoverbiz");
    let vobiz = env.wait_ready::<SubAccount>("acme-support").await.status.unwrap().managed.external_id.unwrap();
    let recoverbiz = env.wait_ready::<SubAccount>("acme-lending").await.status.unwrap().managed.external_id.unwrap();
    let number = env.wait_ready::<PhoneNumber>("acme-support-main").await.status.unwrap().number.unwrap();
    env.wait_ready::<TeamMember>("sarah-johnson").await;
    for (config, secret) in [("vobiz", "vobiz-parent"), ("recoverbiz", "recoverbiz-partner")] {
        let marked = eventually(Duration::from_secs(30), || async {
            let pc = env.api::<ProviderConfig>().get(config).await.ok()?;
            let secret = env.api::<Secret>().get(secret).await.ok()?;
            (has_finalizer(&pc) && has_finalizer(&secret)).then_some(())
        })
        .await;
        assert!(marked.is_some(), "{config} and {secret} are marked in use\n{}", env.operator.log_tail(30));
    }
    (vobiz, number, recoverbiz)
}

fn has_finalizer(obj: &impl Resource) -> bool {
    obj.meta().finalizers.iter().flatten().any(|f| f == IN_USE)
}

/// Every call to either provider answers 503.
async fn providers_down(env: &Env) {
    for provider in ["vobiz", "recoverbiz"] {
        let rule = json!({"provider": provider, "fault": {"kind": "status", "status": 503}});
        let r = env.sim.http().post(env.sim.url("/_sim/faults")).json(&rule).send().await.unwrap();
        assert!(r.status().is_success());
    }
}

async fn delete_namespace(env: &Env) {
    Api::<Namespace>::all(env.client.clone()).delete(&env.ns.name, &DeleteParams::default()).await.unwrap();
}

async fn namespace_gone(env: &Env) -> bool {
    let namespaces = Api::<Namespace>::all(env.client.clone());
    eventually(Duration::from_secs(180), || async {
        namespaces.get_opt(&env.ns.name).await.ok()?.is_none().then_some(())
    })
    .await
    .is_some()
}

/// Wait until `name` is being deleted and its `Ready` condition is False with `reason` and a
/// message containing `says`; returns the message.
async fn deleting_because<K>(env: &Env, name: &str, reason: &str, says: &str) -> String
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + serde::Serialize,
{
    let found = eventually(Duration::from_secs(60), || async {
        let obj = serde_json::to_value(env.api::<K>().get(name).await.ok()?).ok()?;
        obj.pointer("/metadata/deletionTimestamp")?;
        let ready = obj.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == "Ready")?.clone();
        let message = ready["message"].as_str()?.to_owned();
        (ready["status"] == "False" && ready["reason"] == reason && message.contains(says)).then_some(message)
    })
    .await;
    if let Some(message) = found {
        return message;
    }
    let now =
        env.api::<K>().get_opt(name).await.ok().flatten().map(|o| serde_json::to_value(o).unwrap()["status"].clone());
    panic!("{} {name} never said {reason}: …{says}…; now {now:?}\n{}", K::kind(&()), env.operator.log_tail(30))
}

fn find<'a>(state: &'a Value, pointer: &str, key: &str, id: &str) -> Option<&'a Value> {
    state.pointer(pointer).and_then(Value::as_array).and_then(|items| items.iter().find(|i| i[key] == id))
}

#[tokio::test]
async fn a_namespace_deleted_while_the_providers_are_down_waits_says_why_and_finishes_when_they_are_back() {
    let env = Env::start_with("e2e-nsdown", &["--max-backoff-seconds", MAX_BACKOFF_SECONDS]).await;
    let (vobiz, number, recoverbiz) = tenant(&env).await;
    providers_down(&env).await;
    delete_namespace(&env).await;

    // Each resource says why it is still there.
    for (name, message) in [
        ("acme-support-main", deleting_because::<PhoneNumber>(&env, "acme-support-main", "Deleting", "503").await),
        ("sarah-johnson", deleting_because::<TeamMember>(&env, "sarah-johnson", "Deleting", "503").await),
        ("acme-support", deleting_because::<SubAccount>(&env, "acme-support", "Deleting", "dependent").await),
        ("acme-lending", deleting_because::<SubAccount>(&env, "acme-lending", "Deleting", "dependent").await),
    ] {
        eprintln!("{name}: {message}");
    }
    // Their configs and credentials stay, terminating, and say for whom.
    for (config, secret, user) in
        [("vobiz", "vobiz-parent", "acme-support"), ("recoverbiz", "recoverbiz-partner", "acme-lending")]
    {
        let message = deleting_because::<ProviderConfig>(&env, config, "Deleting", user).await;
        eprintln!("ProviderConfig {config}: {message}");
        assert!(message.contains("1 SubAccount(s)"), "{message}");
        let secret = env.api::<Secret>().get(secret).await.expect("the credentials Secret stays while in use");
        assert!(secret.metadata.deletion_timestamp.is_some() && has_finalizer(&secret));
    }
    let namespace = Api::<Namespace>::all(env.client.clone()).get(&env.ns.name).await.unwrap();
    assert_eq!(namespace.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    let state = env.sim.state().await;
    assert!(
        find(&state, "/vobiz/subAccounts", "auth_id", &vobiz).is_some(),
        "nothing went while the provider was down"
    );

    // The providers are back: everything is cleaned up at the provider, then the namespace goes.
    env.sim.clear_faults().await;
    assert!(namespace_gone(&env).await, "the namespace was not deleted\n{}", env.operator.log_tail(40));
    let state = env.sim.state().await;
    assert!(find(&state, "/vobiz/subAccounts", "auth_id", &vobiz).is_none(), "Vobiz: deleted");
    assert!(find(&state, "/vobiz/numbers", "e164", &number).is_none(), "{number} released");
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &recoverbiz).unwrap()["status"], "deactivated");
    assert!(state["recoverbiz"]["members"].as_array().unwrap().is_empty(), "the member was removed");
}

#[tokio::test]
async fn switching_to_orphan_lets_a_namespace_go_at_once_while_the_providers_are_down() {
    let env = Env::start_with("e2e-nsorphan", &["--max-backoff-seconds", MAX_BACKOFF_SECONDS]).await;
    let (vobiz, number, recoverbiz) = tenant(&env).await;
    providers_down(&env).await;
    delete_namespace(&env).await;
    deleting_because::<PhoneNumber>(&env, "acme-support-main", "Deleting", "503").await;

    // As the README says: let go of the provider objects instead of waiting for the provider.
    let patch = |policy: &str| Patch::Merge(json!({"spec": {"deletionPolicy": policy}}));
    let params = PatchParams::default();
    env.api::<SubAccount>().patch("acme-support", &params, &patch("Orphan")).await.unwrap();
    env.api::<SubAccount>().patch("acme-lending", &params, &patch("Orphan")).await.unwrap();
    env.api::<TeamMember>().patch("sarah-johnson", &params, &patch("Orphan")).await.unwrap();
    env.api::<PhoneNumber>().patch("acme-support-main", &params, &patch("Retain")).await.unwrap();
    assert!(namespace_gone(&env).await, "the namespace was not deleted\n{}", env.operator.log_tail(40));

    let state = env.sim.state().await;
    assert!(find(&state, "/vobiz/subAccounts", "auth_id", &vobiz).is_some(), "the Vobiz account stays");
    assert!(find(&state, "/vobiz/numbers", "e164", &number).is_some(), "{number} stays");
    assert_eq!(find(&state, "/recoverbiz/accounts", "id", &recoverbiz).unwrap()["status"], "active");
    assert_eq!(state["recoverbiz"]["members"].as_array().unwrap().len(), 1, "the member stays");
}
