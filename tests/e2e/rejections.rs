//! A provider's "no" becomes `Stalled` with an actionable message and an Event, and the operator
//! stops calling the provider for that object until its spec changes.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use tenantline::api::{SubAccount, TeamMember};

use tenantline_sim::seed::DEV_AGENTPHONE_KEY;

use crate::harness::Env;
use crate::lifecycle::{fast_provider, sub_account};
use crate::support::eventually;

async fn stalled_reason(env: &Env, name: &str) -> (String, String) {
    let sa = env.wait_condition::<SubAccount>(name, "Stalled", "True", Duration::from_secs(60)).await;
    let c = sa.status.unwrap().managed.common.conditions.into_iter().find(|c| c.type_ == "Stalled").unwrap();
    (c.reason, c.message)
}

#[tokio::test]
async fn provider_rejections_stall_with_an_event_and_no_further_calls() {
    let env = Env::start("e2e-reject").await;
    fast_provider(&env, "vobiz-partner");
    fast_provider(&env, "agentphone");
    fast_provider(&env, "vobiz");

    // Vobiz Partner: an email already in use on the platform.
    let owner = "  owner: {email: taken@acme.example, phone: \"+14155550100\"}\n  address: {country: US}\n";
    env.apply_ok(&sub_account("first", "vobiz-partner", owner));
    env.wait_ready::<SubAccount>("first").await;
    env.apply_ok(&sub_account("second", "vobiz-partner", owner));
    let (reason, message) = stalled_reason(&env, "second").await;
    assert_eq!(reason, "ProviderRejected");
    assert!(message.contains("email"), "the message names the field: {message}");

    // AgentPhone: the 26th sub-account of a master key.
    for i in 0..25 {
        let r = env
            .sim
            .http()
            .post(env.sim.url("/agentphone/v1/sub-accounts"))
            .bearer_auth(DEV_AGENTPHONE_KEY)
            .json(&json!({"name": format!("pre-existing-{i}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    env.apply_ok(&sub_account("twenty-sixth", "agentphone", ""));
    let (reason, message) = stalled_reason(&env, "twenty-sixth").await;
    assert_eq!(reason, "ProviderRejected");
    assert!(message.contains("AgentPhone"), "{message}");

    // A kind the provider does not have.
    env.apply_ok(&sub_account("vz", "vobiz", ""));
    env.wait_ready::<SubAccount>("vz").await;
    env.apply_ok("apiVersion: tenantline.io/v1alpha1\nkind: TeamMember\nmetadata: {name: member}\nspec:\n  subAccountRef: {name: vz}\n  email: m@acme.example\n  name: Member\n");
    let member = env.wait_condition::<TeamMember>("member", "Stalled", "True", Duration::from_secs(60)).await;
    let c = member.status.unwrap().managed.common.conditions.into_iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(c.reason, "UnsupportedByProvider");
    assert!(c.message.contains("Vobiz") && c.message.contains("team members"), "{}", c.message);

    for reason in ["ProviderRejected", "UnsupportedByProvider"] {
        assert!(env.wait_event(reason, "").await, "no {reason} Event");
    }

    // Nothing more is sent for the stalled objects, while the operator keeps polling the healthy
    // one next to them (every 2 s) at the same provider.
    let partner_creates = env.sim.calls("vobizPartner", "POST", "/api/v1/partner/accounts").await;
    let agentphone_creates = env.sim.calls("agentphone", "POST", "/v1/sub-accounts").await;
    assert!(partner_creates >= 2, "the route counts creates: first and the rejected second ({partner_creates})");
    assert!(agentphone_creates >= 26, "25 made here and the rejected 26th ({agentphone_creates})");
    let observe = "/api/v1/partner/accounts/{customer_auth_id}";
    let polls = env.sim.calls("vobizPartner", "GET", observe).await;
    let polled = eventually(Duration::from_secs(30), || async {
        (env.sim.calls("vobizPartner", "GET", observe).await >= polls + 3).then_some(())
    })
    .await;
    assert!(polled.is_some(), "the operator kept polling the Ready SubAccount");
    assert_eq!(env.sim.calls("vobizPartner", "POST", "/api/v1/partner/accounts").await, partner_creates);
    assert_eq!(env.sim.calls("agentphone", "POST", "/v1/sub-accounts").await, agentphone_creates);

    // A spec change is a new attempt.
    env.apply_ok(&sub_account("second", "vobiz-partner", &owner.replace("taken@", "free@")));
    env.wait_ready::<SubAccount>("second").await;
    env.finish().await;
}

#[tokio::test]
async fn a_reconcile_request_retries_a_stalled_sub_account() {
    let env = Env::start("e2e-retry").await;
    fast_provider(&env, "recoverbiz");
    fast_provider(&env, "agentphone");
    // RecoverBiz refuses every create until the test says otherwise.
    let refused = json!({"kind": "status", "status": 422});
    env.sim.fault("recoverbiz", "POST", Some("/v1/accounts"), refused, json!({})).await;
    env.apply_ok(&sub_account("lending", "recoverbiz", ""));
    let (reason, _) = stalled_reason(&env, "lending").await;
    assert_eq!(reason, "ProviderRejected");

    // Left alone it stays Stalled, while the operator polls a healthy neighbour.
    env.apply_ok(&sub_account("neighbour", "agentphone", ""));
    env.wait_ready::<SubAccount>("neighbour").await;
    let creates = env.sim.calls("recoverbiz", "POST", "/v1/accounts").await;
    assert!(creates >= 1, "the refused create");
    let polls = env.sim.calls_by_kind("agentphone", true).await;
    let polled = eventually(Duration::from_secs(30), || async {
        (env.sim.calls_by_kind("agentphone", true).await >= polls + 3).then_some(())
    })
    .await;
    assert!(polled.is_some(), "the operator kept polling the Ready SubAccount");
    env.sim.clear_faults().await;
    assert_eq!(env.sim.calls("recoverbiz", "POST", "/v1/accounts").await, creates, "no create without a request");

    // A reconcile request is a new attempt, without a spec change; now RecoverBiz accepts it.
    let request = json!({"metadata": {"annotations": {"tenantline.io/reconcile-requested-at": "retry-1"}}});
    env.api::<SubAccount>().patch("lending", &PatchParams::default(), &Patch::Merge(request)).await.unwrap();
    let sa = env.wait_ready::<SubAccount>("lending").await;
    let id = sa.status.unwrap().managed.external_id.unwrap();
    assert_eq!(env.sim.calls("recoverbiz", "POST", "/v1/accounts").await, creates + 1, "one create, the requested one");
    let state = env.sim.state().await;
    let accounts = state["recoverbiz"]["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0]["id"], id.as_str());
    env.finish().await;
}
