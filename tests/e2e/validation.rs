//! Bad input is rejected by the API server itself, with a message naming the field, before
//! anything reaches the operator; good input is accepted and defaulted. No operator runs here.

use serde_json::Value;

use crate::harness::kubectl;
use crate::support::{self, TestNamespace};

const SUB: &str = "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {name: s}\nspec:\n  providerConfigRef: {name: pc}\n  displayName: Acme\n";
const NUMBER: &str =
    "apiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {name: num}\nspec:\n  subAccountRef: {name: s}\n";
const MEMBER: &str = "apiVersion: tenantline.io/v1alpha1\nkind: TeamMember\nmetadata: {name: m}\nspec:\n  subAccountRef: {name: s}\n  name: Sarah\n";
const CONFIG: &str = "apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {name: pc}\nspec:\n  credentialsSecretRef: {name: x}\n";
const UUID: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

/// `kubectl apply --server-side` (strict field validation, kubectl's default), the error text on
/// failure.
fn apply(ns: &str, yaml: &str) -> Result<(), String> {
    let out = kubectl(&["apply", "--server-side", "--field-manager=e2e", "-n", ns, "-f", "-"], yaml);
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

fn get(ns: &str, resource: &str) -> Value {
    let out = kubectl(&["get", "-n", ns, resource, "-o", "json"], "");
    assert!(out.status.success(), "get {resource}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn invalid_manifests_are_rejected_with_the_field_named() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-validation").await;

    let cases: Vec<(&str, String, &str)> = vec![
        // SubAccount
        ("owner phone not E.164", format!("{SUB}  owner: {{phone: \"4155550100\"}}\n"), "spec.owner.phone"),
        ("forwarding number not E.164", format!("{SUB}  forwardingNumber: \"+0123\"\n"), "spec.forwardingNumber"),
        ("phone number with spaces", format!("{SUB}  phoneNumber: \"+1 415 555 0100\"\n"), "spec.phoneNumber"),
        ("bad accent colour", format!("{SUB}  branding: {{accentColor: blue}}\n"), "spec.branding.accentColor"),
        ("lower-case country", format!("{SUB}  address: {{country: us}}\n"), "spec.address.country"),
        ("bad owner email", format!("{SUB}  owner: {{email: not-an-email}}\n"), "spec.owner.email"),
        ("empty display name", SUB.replace("displayName: Acme", "displayName: \"\""), "spec.displayName"),
        ("display name too long", SUB.replace("Acme", &"x".repeat(101)), "spec.displayName"),
        ("missing display name", SUB.replace("  displayName: Acme\n", ""), "spec.displayName"),
        ("unknown deletion policy", format!("{SUB}  deletionPolicy: Shred\n"), "spec.deletionPolicy"),
        ("unknown config kind", SUB.replace("{name: pc}", "{name: pc, kind: Other}"), "spec.providerConfigRef.kind"),
        ("misspelt field", format!("{SUB}  dispalyName: Typo\n"), "spec.dispalyName"),
        (
            "bad credentials Secret name",
            format!("{SUB}  credentialsSecretName: Acme_Creds\n"),
            "spec.credentialsSecretName",
        ),
        (
            "Yardstik purposes empty",
            format!("{SUB}  yardstik: {{permissiblePurposeIds: []}}\n"),
            "spec.yardstik.permissiblePurposeIds",
        ),
        (
            "Yardstik purpose not a UUID",
            format!("{SUB}  yardstik: {{permissiblePurposeIds: [tenant-screening]}}\n"),
            "spec.yardstik.permissiblePurposeIds[0]",
        ),
        ("unknown Vobiz KYC mode", format!("{SUB}  vobiz: {{kycMode: business}}\n"), "spec.vobiz.kycMode"),
        ("Vobiz rate limit zero", format!("{SUB}  vobiz: {{rateLimit: 0}}\n"), "spec.vobiz.rateLimit"),
        ("customer_use without owner email", format!("{SUB}  vobiz: {{kycMode: customer_use}}\n"), "spec.owner.email"),
        (
            "negative opening balance",
            format!("{SUB}  vobizPartner: {{openingBalance: -5}}\n"),
            "spec.vobizPartner.openingBalance",
        ),
        // References stay in the object's namespace: a `namespace` key is refused, not ignored.
        (
            "namespace on providerConfigRef",
            SUB.replace("{name: pc}", "{name: pc, namespace: elsewhere}"),
            "spec.providerConfigRef.namespace",
        ),
        (
            "namespace on a PhoneNumber's subAccountRef",
            format!("{NUMBER}  number: \"+14155550100\"\n").replace("{name: s}", "{name: s, namespace: elsewhere}"),
            "spec.subAccountRef.namespace",
        ),
        (
            "namespace on a TeamMember's subAccountRef",
            format!("{MEMBER}  email: s@acme.example\n").replace("{name: s}", "{name: s, namespace: elsewhere}"),
            "spec.subAccountRef.namespace",
        ),
        // ProviderConfig
        ("unknown provider", format!("{CONFIG}  provider: Twilio\n"), "spec.provider"),
        ("missing provider", CONFIG.to_owned(), "spec.provider"),
        (
            "zero requests per second",
            format!("{CONFIG}  provider: Vobiz\n  rateLimit: {{requestsPerSecond: 0}}\n"),
            "spec.rateLimit.requestsPerSecond",
        ),
        ("negative burst", format!("{CONFIG}  provider: Vobiz\n  rateLimit: {{burst: -1}}\n"), "spec.rateLimit.burst"),
        ("bad poll interval", format!("{CONFIG}  provider: Vobiz\n  pollInterval: often\n"), "spec.pollInterval"),
        ("endpoint not a URL", format!("{CONFIG}  provider: Vobiz\n  endpoint: api.vobiz.ai\n"), "spec.endpoint"),
        (
            "Secret namespace on a ProviderConfig",
            format!("{CONFIG}  provider: Vobiz\n").replace("{name: x}", "{name: x, namespace: elsewhere}"),
            "spec.credentialsSecretRef.namespace",
        ),
        // PhoneNumber
        (
            "number and search",
            format!("{NUMBER}  number: \"+14155550100\"\n  search: {{country: US}}\n"),
            "spec.number",
        ),
        ("neither number nor search", NUMBER.to_owned(), "spec.number"),
        ("number not E.164", format!("{NUMBER}  number: \"14155550100\"\n"), "spec.number"),
        ("bad area code", format!("{NUMBER}  search: {{country: US, areaCode: \"41\"}}\n"), "spec.search.areaCode"),
        ("lower-case search country", format!("{NUMBER}  search: {{country: us}}\n"), "spec.search.country"),
        (
            "number deletion policy Delete",
            format!("{NUMBER}  number: \"+14155550100\"\n  deletionPolicy: Delete\n"),
            "spec.deletionPolicy",
        ),
        // TeamMember
        ("bad member role", format!("{MEMBER}  email: s@acme.example\n  role: Boss\n"), "spec.role"),
        ("member without email", MEMBER.to_owned(), "spec.email"),
        ("bad member email", format!("{MEMBER}  email: sarah\n"), "spec.email"),
        (
            "member phone not E.164",
            format!("{MEMBER}  email: s@acme.example\n  phoneNumber: \"555-0100\"\n"),
            "spec.phoneNumber",
        ),
        (
            "member deletion policy Deactivate",
            format!("{MEMBER}  email: s@acme.example\n  deletionPolicy: Deactivate\n"),
            "spec.deletionPolicy",
        ),
    ];
    let mut failures = vec![];
    for (what, yaml, field) in &cases {
        match apply(&ns.name, yaml) {
            Ok(()) => failures.push(format!("{what}: accepted")),
            Err(err) if !err.contains(field) => {
                failures.push(format!("{what}: the rejection does not name {field}: {err}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} invalid manifests:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // Immutable fields: accepted once, refused when changed.
    let immutable: Vec<(&str, String, String, &str)> = vec![(
        "provider",
        format!("{CONFIG}  provider: Vobiz\n"),
        format!("{CONFIG}  provider: Yardstik\n"),
        "spec.provider",
    )];
    for (what, first, changed, field) in &immutable {
        apply(&ns.name, first).unwrap_or_else(|e| panic!("{what}: the valid manifest was refused: {e}"));
        let err = apply(&ns.name, changed).err().unwrap_or_else(|| panic!("changing {what} was accepted"));
        assert!(err.contains(field) && err.contains("immutable"), "changing {what}: {err}");
    }
    // References: fixable while nothing exists at the provider (a typo in a ref), immutable once
    // the object's status records its provider id.
    let refs: Vec<(&str, &str, String, String, &str)> = vec![
        (
            "providerConfigRef",
            "subaccount/s",
            SUB.to_owned(),
            SUB.replace("{name: pc}", "{name: other}"),
            "spec.providerConfigRef",
        ),
        (
            "providerConfigRef.kind",
            "subaccount/s2",
            SUB.replace("name: s}", "name: s2}"),
            SUB.replace("name: s}", "name: s2}").replace("{name: pc}", "{name: pc, kind: ClusterProviderConfig}"),
            "spec.providerConfigRef",
        ),
        (
            "PhoneNumber subAccountRef",
            "phonenumber/num",
            format!("{NUMBER}  number: \"+14155550100\"\n"),
            format!("{NUMBER}  number: \"+14155550100\"\n").replace("{name: s}", "{name: t}"),
            "spec.subAccountRef",
        ),
        (
            "TeamMember subAccountRef",
            "teammember/m",
            format!("{MEMBER}  email: s@acme.example\n"),
            format!("{MEMBER}  email: s@acme.example\n").replace("{name: s}", "{name: t}"),
            "spec.subAccountRef",
        ),
    ];
    for (what, object, first, changed, field) in &refs {
        apply(&ns.name, first).unwrap_or_else(|e| panic!("{what}: the valid manifest was refused: {e}"));
        apply(&ns.name, changed)
            .unwrap_or_else(|e| panic!("{what}: a change before the provider object exists was refused: {e}"));
        apply(&ns.name, first).unwrap_or_else(|e| panic!("{what}: changing it back was refused: {e}"));
        let patch = r#"{"status":{"externalId":"x-1"}}"#;
        let out = kubectl(&["patch", "-n", &ns.name, object, "--subresource=status", "--type=merge", "-p", patch], "");
        assert!(out.status.success(), "{what}: status patch: {}", String::from_utf8_lossy(&out.stderr));
        let err = apply(&ns.name, changed)
            .err()
            .unwrap_or_else(|| panic!("changing {what} after the provider object exists was accepted"));
        assert!(err.contains(field) && err.contains("immutable"), "changing {what}: {err}");
    }
    // Mutable fields stay mutable.
    apply(&ns.name, &SUB.replace("displayName: Acme", "displayName: Acme Renamed\n  active: false"))
        .unwrap_or_else(|e| panic!("changing displayName and active was refused: {e}"));
    ns.delete().await;
}

/// Manifests using every field are accepted as written, and what a user leaves out is defaulted by
/// the API server, `status.observedGeneration: -1` included (so kstatus reads a new object as in
/// progress).
#[tokio::test]
async fn valid_manifests_are_accepted_and_defaulted() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-defaults").await;

    let full = format!(
        r##"apiVersion: tenantline.io/v1alpha1
kind: ProviderConfig
metadata: {{name: vobiz}}
spec:
  provider: Vobiz
  endpoint: https://api.vobiz.ai
  credentialsSecretRef: {{name: vobiz-parent}}
  rateLimit: {{requestsPerSecond: 5, burst: 10}}
  pollInterval: 10m
---
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {{name: acme-lending}}
spec:
  providerConfigRef: {{name: vobiz}}
  displayName: Acme Lending
  companyName: Acme Lending Corp
  active: true
  deletionPolicy: Delete
  owner: {{email: ops@acme.example, firstName: Ana, lastName: Diaz, phone: "+14155550100"}}
  address: {{line1: 1 Main St, city: Austin, state: TX, postalCode: "78701", country: US}}
  timezone: America/Chicago
  phoneNumber: "+14155551234"
  forwardingNumber: "+14155559999"
  branding: {{logoUrl: https://acme.example/logo.png, accentColor: "#1E40AF"}}
  metadata: {{tier: premium}}
  vobiz: {{rateLimit: 500, permissions: {{calls: true, cdr: true}}, kycMode: customer_use, description: Lending}}
  vobizPartner: {{openingBalance: 25.5, currency: USD}}
  agentPhone: {{}}
  yardstik: {{permissiblePurposeIds: ["{UUID}"], legalBusinessName: Acme Lending LLC, url: https://acme.example}}
  credentialsSecretName: acme-lending-credentials
---
apiVersion: tenantline.io/v1alpha1
kind: TeamMember
metadata: {{name: sarah}}
spec:
  subAccountRef: {{name: acme-lending}}
  email: sarah@acme.example
  name: Sarah Lee
  role: Admin
  phoneNumber: "+14155550111"
  forwardingNumber: "+14155550112"
  deletionPolicy: Orphan
---
apiVersion: tenantline.io/v1alpha1
kind: PhoneNumber
metadata: {{name: main}}
spec:
  subAccountRef: {{name: acme-lending}}
  number: "+14155551234"
  forwardingNumber: "+14155559999"
  deletionPolicy: Retain
"##
    );
    apply(&ns.name, &full).unwrap_or_else(|e| panic!("the full manifests were refused: {e}"));

    let minimal = "apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {name: minimal}\nspec:\n  provider: Yardstik\n  credentialsSecretRef: {name: yardstik-key}\n---\napiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {name: minimal}\nspec:\n  providerConfigRef: {name: minimal}\n  displayName: Minimal\n---\napiVersion: tenantline.io/v1alpha1\nkind: TeamMember\nmetadata: {name: minimal}\nspec:\n  subAccountRef: {name: minimal}\n  email: m@acme.example\n  name: M\n---\napiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {name: minimal}\nspec:\n  subAccountRef: {name: minimal}\n  search: {}\n";
    apply(&ns.name, minimal).unwrap_or_else(|e| panic!("the minimal manifests were refused: {e}"));

    let pc = get(&ns.name, "providerconfig/minimal");
    assert_eq!(pc["spec"]["pollInterval"], "10m");
    assert_eq!(pc["spec"]["rateLimit"], serde_json::json!({"requestsPerSecond": 5, "burst": 10}));
    let sa = get(&ns.name, "subaccount/minimal");
    assert_eq!(sa["spec"]["active"], true);
    assert_eq!(sa["spec"]["deletionPolicy"], "Delete");
    assert_eq!(sa["spec"]["providerConfigRef"]["kind"], "ProviderConfig");
    let tm = get(&ns.name, "teammember/minimal");
    assert_eq!((tm["spec"]["role"].as_str(), tm["spec"]["deletionPolicy"].as_str()), (Some("Member"), Some("Delete")));
    let pn = get(&ns.name, "phonenumber/minimal");
    assert_eq!(pn["spec"]["search"]["country"], "US");
    assert_eq!(pn["spec"]["deletionPolicy"], "Release");
    for object in [&pc, &sa, &tm, &pn] {
        assert_eq!(object["status"]["observedGeneration"], -1, "{}", object["kind"]);
    }

    // The category and short names reach everything.
    let out = kubectl(&["get", "tenantline", "-n", &ns.name, "-o", "name"], "");
    let names = String::from_utf8_lossy(&out.stdout);
    // (ClusterProviderConfigs of other tests are listed too: they are cluster-scoped.)
    assert_eq!(names.lines().filter(|l| !l.starts_with("clusterproviderconfig")).count(), 8, "{names}");
    for short in ["tlpc", "subacct", "tmember", "phonenum"] {
        assert!(kubectl(&["get", short, "-n", &ns.name], "").status.success(), "kubectl get {short}");
    }
    ns.delete().await;
}
