//! Every provider-specific field of a SubAccount (and a TeamMember's) reaches the provider: each
//! is read back from what the simulator holds, not from what tenantline reports. The schema
//! accepting a field proves nothing if the provider never hears of it.

use serde_json::{Value, json};
use tenantline::api::{SubAccount, TeamMember};
use tenantline_sim::seed::{DEV_PARTNER_AUTH_ID, DEV_PERMISSIBLE_PURPOSE_ID};

use crate::harness::Env;
use crate::safety::items;

const SPECS: &str = r##"
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {name: vobiz-all}
spec:
  providerConfigRef: {name: vobiz}
  displayName: Vobiz All Fields
  owner: {email: support@acme.example, phone: "+14155550100"}
  vobiz:
    rateLimit: 321
    permissions: {calls: false, cdr: true}
    kycMode: customer_use
    description: Night support line
---
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {name: partner-all}
spec:
  providerConfigRef: {name: vobiz-partner}
  displayName: Partner All Fields
  companyName: Acme Collections Corp
  owner: {email: collections@acme.example, firstName: Ana, lastName: Diaz, phone: "+14155550111"}
  address: {line1: 1 Main St, line2: Floor 2, city: Austin, state: TX, postalCode: "78701", country: US}
  timezone: America/Chicago
  vobizPartner: {openingBalance: 37.5, currency: USD}
---
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {name: recoverbiz-all}
spec:
  providerConfigRef: {name: recoverbiz}
  displayName: RecoverBiz All Fields
  companyName: Acme Lending Corp
  phoneNumber: "+14155550122"
  forwardingNumber: "+14155559999"
  branding: {logoUrl: "https://acme.example/logo.png", accentColor: "#1E40AF"}
  metadata: {internal_id: lender_42, tier: premium}
---
apiVersion: tenantline.io/v1alpha1
kind: TeamMember
metadata: {name: recoverbiz-admin}
spec:
  subAccountRef: {name: recoverbiz-all}
  email: sarah@acme.example
  name: Sarah Johnson
  role: Admin
  phoneNumber: "+14155555678"
  forwardingNumber: "+14155559998"
---
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {name: yardstik-all}
spec:
  providerConfigRef: {name: yardstik}
  displayName: Yardstik All Fields
  owner: {email: owner@acme.example, firstName: Ana, lastName: Diaz}
  address: {line1: 1 Main St, line2: Suite 5, city: Austin, state: TX, postalCode: "78701", country: US}
  yardstik:
    permissiblePurposeIds: ["PURPOSE"]
    legalBusinessName: Acme Screening LLC
    url: https://screening.acme.example
---
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {name: agentphone-all}
spec:
  providerConfigRef: {name: agentphone}
  displayName: AgentPhone All Fields
"##;

/// The one object of `list` whose `key` is `id`.
fn by<'a>(list: &'a [Value], key: &str, id: &str) -> &'a Value {
    list.iter().find(|o| o[key] == id).unwrap_or_else(|| panic!("no {key}={id} in {list:?}"))
}

#[tokio::test]
async fn every_provider_specific_field_reaches_the_provider() {
    let env = Env::start("e2e-fields").await;
    for dir in ["vobiz", "vobiz-partner", "recoverbiz", "yardstik", "agentphone"] {
        let path = format!("{}/examples/{dir}/provider.yaml", env!("CARGO_MANIFEST_DIR"));
        env.apply_ok(&std::fs::read_to_string(path).unwrap());
    }
    env.apply_ok(&SPECS.replace("PURPOSE", DEV_PERMISSIBLE_PURPOSE_ID));
    let mut ids = std::collections::BTreeMap::new();
    for name in ["vobiz-all", "partner-all", "recoverbiz-all", "yardstik-all", "agentphone-all"] {
        let sa = env.wait_ready::<SubAccount>(name).await;
        ids.insert(name, sa.status.unwrap().managed.external_id.unwrap());
    }
    let member = env.wait_ready::<TeamMember>("recoverbiz-admin").await.status.unwrap().managed.external_id.unwrap();
    let state = env.sim.state().await;

    // Vobiz: the rate limit, permissions, KYC mode and description (before tenantline's key).
    let v = by(items(&state, "/vobiz/subAccounts"), "auth_id", &ids["vobiz-all"]);
    assert_eq!(v["name"], "Vobiz All Fields");
    assert_eq!(v["email"], "support@acme.example");
    assert_eq!(v["phone"], "+14155550100");
    assert_eq!(v["rate_limit"], 321, "vobiz.rateLimit: {v}");
    assert_eq!(v["permissions"], json!({"calls": false, "cdr": true}), "vobiz.permissions: {v}");
    assert_eq!(v["kyc_mode"], "customer_use", "vobiz.kycMode: {v}");
    let description = v["description"].as_str().unwrap_or_default();
    assert!(description.starts_with("Night support line "), "vobiz.description: {description}");

    // Vobiz Partner: the customer's details, and the opening balance as one transfer of that
    // amount from the partner's wallet to the new account.
    let p = by(items(&state, "/vobizPartner/accounts"), "auth_id", &ids["partner-all"]);
    for (field, want) in [
        ("name", "Partner All Fields"),
        ("company", "Acme Collections Corp"),
        ("email", "collections@acme.example"),
        ("phone", "+14155550111"),
        ("address", "1 Main St, Floor 2"),
        ("city", "Austin"),
        ("state", "TX"),
        ("zip_code", "78701"),
        ("timezone", "America/Chicago"),
    ] {
        assert_eq!(p[field], want, "vobiz partner {field}: {p}");
    }
    assert!(p["country"].as_str().is_some_and(|c| c.eq_ignore_ascii_case("US")), "country: {p}");
    let transfers: Vec<&Value> = items(&state, "/vobizPartner/transactions")
        .iter()
        .filter(|t| t["to_account"] == ids["partner-all"].as_str())
        .collect();
    assert_eq!(transfers.len(), 1, "exactly one opening transfer: {transfers:?}");
    let amount: f64 = match &transfers[0]["amount"] {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    };
    assert!((amount - 37.5).abs() < 1e-9, "the opening balance transferred: {:?}", transfers[0]);
    assert_eq!(transfers[0]["from_account"], DEV_PARTNER_AUTH_ID, "from the partner's wallet: {:?}", transfers[0]);

    // RecoverBiz: branding, metadata (beside tenantline's key), numbers and company.
    let r = by(items(&state, "/recoverbiz/accounts"), "id", &ids["recoverbiz-all"]);
    assert_eq!(r["company_name"], "Acme Lending Corp");
    assert_eq!(r["phone_number"], "+14155550122");
    assert_eq!(r["forwarding_number"], "+14155559999");
    assert_eq!(r["branding"]["logo_url"], "https://acme.example/logo.png", "branding: {r}");
    assert!(r["branding"]["accent_color"].as_str().is_some_and(|c| c.eq_ignore_ascii_case("#1E40AF")), "{r}");
    assert_eq!(r["metadata"]["internal_id"], "lender_42", "metadata: {r}");
    assert_eq!(r["metadata"]["tier"], "premium", "metadata: {r}");
    let m = by(items(&state, "/recoverbiz/members"), "id", &member);
    for (field, want) in [
        ("email", "sarah@acme.example"),
        ("name", "Sarah Johnson"),
        ("phone_number", "+14155555678"),
        ("forwarding_number", "+14155559998"),
    ] {
        assert_eq!(m[field], want, "team member {field}: {m}");
    }
    assert!(m["role"].as_str().is_some_and(|r| r.eq_ignore_ascii_case("admin")), "role: {m}");

    // Yardstik: the owner, address, legal name, URL and permissible purposes.
    let y = by(items(&state, "/yardstik/subAccounts"), "id", &ids["yardstik-all"]);
    for (field, want) in [
        ("account_name", "Yardstik All Fields"),
        ("first_name", "Ana"),
        ("last_name", "Diaz"),
        ("email_address", "owner@acme.example"),
        ("legal_business_name", "Acme Screening LLC"),
        ("url", "https://screening.acme.example"),
    ] {
        assert_eq!(y[field], want, "yardstik {field}: {y}");
    }
    let address = &y["address"];
    for (field, want) in
        [("line1", "1 Main St"), ("line2", "Suite 5"), ("city", "Austin"), ("state", "TX"), ("zip_code", "78701")]
    {
        assert_eq!(address[field], want, "yardstik address.{field}: {y}");
    }
    let purposes =
        serde_json::to_string(&y["permissible_purposes"]).unwrap() + &y["permissible_purpose_ids"].to_string();
    assert!(purposes.contains(DEV_PERMISSIBLE_PURPOSE_ID), "permissiblePurposeIds: {y}");

    // AgentPhone: the name is all it takes.
    let a = by(items(&state, "/agentphone/subAccounts"), "id", &ids["agentphone-all"]);
    assert_eq!(a["name"], "AgentPhone All Fields");
    env.finish().await;
}
