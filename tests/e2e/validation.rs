//! Bad input is rejected by the API server itself, with a message naming the field, before
//! anything reaches the operator.

use crate::harness::kubectl;
use crate::support::{self, TestNamespace};

const SUB: &str = "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {name: s}\nspec:\n  providerConfigRef: {name: pc}\n  displayName: Acme\n";
const NUMBER: &str = "apiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {name: num}\nspec:\n  subAccountRef: {name: s}\n";
const MEMBER: &str = "apiVersion: tenantline.io/v1alpha1\nkind: TeamMember\nmetadata: {name: m}\nspec:\n  subAccountRef: {name: s}\n  name: Sarah\n";
const CONFIG: &str = "apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {name: pc}\nspec:\n  credentialsSecretRef: {name: x}\n";

fn apply(ns: &str, yaml: &str) -> Result<(), String> {
    let out = kubectl(&["apply", "--server-side", "--field-manager=e2e", "-n", ns, "-f", "-"], yaml);
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[tokio::test]
async fn invalid_manifests_are_rejected_with_the_field_named() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-validation").await;

    let cases: Vec<(&str, String, &str)> = vec![
        ("owner phone not E.164", format!("{SUB}  owner: {{phone: \"4155550100\"}}\n"), "spec.owner.phone"),
        ("forwarding number not E.164", format!("{SUB}  forwardingNumber: \"+0123\"\n"), "spec.forwardingNumber"),
        ("bad accent colour", format!("{SUB}  branding: {{accentColor: blue}}\n"), "spec.branding.accentColor"),
        ("lower-case country", format!("{SUB}  address: {{country: us}}\n"), "spec.address.country"),
        ("bad owner email", format!("{SUB}  owner: {{email: not-an-email}}\n"), "spec.owner.email"),
        ("empty display name", SUB.replace("displayName: Acme", "displayName: \"\""), "spec.displayName"),
        ("display name too long", SUB.replace("Acme", &"x".repeat(101)), "spec.displayName"),
        ("unknown deletion policy", format!("{SUB}  deletionPolicy: Shred\n"), "spec.deletionPolicy"),
        ("unknown config kind", SUB.replace("{name: pc}", "{name: pc, kind: Other}"), "spec.providerConfigRef.kind"),
        ("unknown provider", format!("{CONFIG}  provider: Twilio\n"), "spec.provider"),
        ("zero requests per second", format!("{CONFIG}  provider: Vobiz\n  rateLimit: {{requestsPerSecond: 0}}\n"), "spec.rateLimit.requestsPerSecond"),
        ("bad poll interval", format!("{CONFIG}  provider: Vobiz\n  pollInterval: often\n"), "spec.pollInterval"),
        ("number and search", format!("{NUMBER}  number: \"+14155550100\"\n  search: {{country: US}}\n"), "spec.number"),
        ("neither number nor search", NUMBER.to_owned(), "spec.number"),
        ("bad area code", format!("{NUMBER}  search: {{country: US, areaCode: \"41\"}}\n"), "spec.search.areaCode"),
        ("bad member role", format!("{MEMBER}  email: s@acme.example\n  role: Boss\n"), "spec.role"),
        ("member without email", MEMBER.to_owned(), "spec.email"),
        ("Yardstik purposes empty", format!("{SUB}  yardstik: {{permissiblePurposeIds: []}}\n"), "spec.yardstik.permissiblePurposeIds"),
    ];
    assert!(cases.len() >= 15);
    for (what, yaml, field) in &cases {
        let err = apply(&ns.name, yaml).err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(err.contains(field), "{what}: the rejection does not name {field}: {err}");
    }

    // Immutable fields: accepted once, refused when changed.
    let immutable: Vec<(&str, String, String, &str)> = vec![
        ("provider", format!("{CONFIG}  provider: Vobiz\n"), format!("{CONFIG}  provider: Yardstik\n"), "spec.provider"),
        ("providerConfigRef", SUB.to_owned(), SUB.replace("{name: pc}", "{name: other}"), "spec.providerConfigRef"),
        (
            "subAccountRef",
            format!("{NUMBER}  number: \"+14155550100\"\n"),
            format!("{NUMBER}  number: \"+14155550100\"\n").replace("{name: s}", "{name: t}"),
            "spec.subAccountRef",
        ),
    ];
    for (what, first, changed, field) in &immutable {
        apply(&ns.name, first).unwrap_or_else(|e| panic!("{what}: the valid manifest was refused: {e}"));
        let err = apply(&ns.name, changed).err().unwrap_or_else(|| panic!("changing {what} was accepted"));
        assert!(err.contains(field) && err.contains("immutable"), "changing {what}: {err}");
    }
    ns.delete().await;
}
