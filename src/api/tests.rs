//! Unit tests of the API types: the generated CRDs (staleness, descriptions, structural schema,
//! defaults), the CEL rules evaluated client-side with kube's `cel` feature (kube-cel, the same
//! rule text the API server runs), and parsing of the API contract's example manifests and of
//! `examples/`.
//!
//! What only a real API server can show (OpenAPI patterns, formats, enums, bounds, the messages
//! `kubectl apply` prints) is in `tests/e2e/validation.rs`.

use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::*;

/// The openAPIV3Schema of a CRD as JSON.
fn schema(crd: &CustomResourceDefinition) -> Value {
    serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap()
}

/// The `enum` of a schema node without the `null` kube adds for optional enums.
fn variants(node: &Value) -> Value {
    node["enum"].as_array().unwrap().iter().filter(|v| !v.is_null()).cloned().collect()
}

/// The schema node at a dotted property path, e.g. `spec.rateLimit.burst`.
fn node<'a>(schema: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(schema, |s, p| s.get("properties").and_then(|ps| ps.get(p)).unwrap_or_else(|| panic!("no {path}")))
}

#[test]
fn crds_folder_and_chart_are_current() {
    let generated = crds_yaml().unwrap();
    for path in ["crds/tenantline.io.yaml", "charts/tenantline/crds/tenantline.io.yaml"] {
        let committed = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            committed == generated,
            "{path} is stale: regenerate with `make crds` (= `cargo run -q -- crds > crds/tenantline.io.yaml` \
             and a copy to charts/tenantline/crds/)"
        );
    }
}

#[test]
fn names_scopes_short_names_and_category() {
    let expected = [
        ("providerconfigs.tenantline.io", "Namespaced", "tlpc"),
        ("clusterproviderconfigs.tenantline.io", "Cluster", "tlcpc"),
        ("subaccounts.tenantline.io", "Namespaced", "subacct"),
        ("teammembers.tenantline.io", "Namespaced", "tmember"),
        ("phonenumbers.tenantline.io", "Namespaced", "phonenum"),
    ];
    let crds = crds();
    assert_eq!(crds.len(), expected.len());
    for (crd, (name, scope, short)) in crds.iter().zip(expected) {
        assert_eq!(crd.metadata.name.as_deref(), Some(name));
        assert_eq!(crd.spec.scope, scope, "{name}");
        assert_eq!(crd.spec.names.short_names.as_deref(), Some(&[short.to_owned()][..]), "{name}");
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["tenantline".to_owned()][..]), "{name}");
        let version = &crd.spec.versions[0];
        assert_eq!((version.name.as_str(), version.served, version.storage), ("v1alpha1", true, true));
        assert!(version.subresources.as_ref().unwrap().status.is_some(), "{name}: status subresource");
        let columns: Vec<_> =
            version.additional_printer_columns.as_ref().unwrap().iter().map(|c| c.name.as_str()).collect();
        for column in ["READY", "REASON", "AGE"] {
            assert!(columns.contains(&column), "{name}: {column} column in {columns:?}");
        }
        let id_column = match short {
            "tlpc" | "tlcpc" => "PROVIDER",
            "phonenum" => "NUMBER",
            _ => "EXTERNAL-ID",
        };
        assert!(columns.contains(&id_column), "{name}: {id_column} column in {columns:?}");
    }
}

/// Every property of every kind has a description, so `kubectl explain` teaches the whole API.
#[test]
fn every_field_is_described() {
    fn walk(path: &str, s: &Value, missing: &mut Vec<String>) {
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                let path = format!("{path}.{name}");
                let top = path.matches('.').count() == 1 && ["apiVersion", "kind", "metadata"].contains(&name.as_str());
                if !top && p.get("description").and_then(Value::as_str).is_none_or(|d| d.trim().is_empty()) {
                    missing.push(path.clone());
                }
                walk(&path, p, missing);
            }
        }
        if let Some(items) = s.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
    }
    let mut missing = vec![];
    for crd in crds() {
        walk(&crd.spec.names.kind, &schema(&crd), &mut missing);
    }
    assert!(missing.is_empty(), "fields without a description: {missing:#?}");
}

/// The API server only accepts structural schemas: every node typed (or int-or-string), no
/// `$ref`, no `anyOf`/`oneOf`/`allOf` carrying types.
#[test]
fn schemas_are_structural() {
    fn walk(path: &str, s: &Value, problems: &mut Vec<String>) {
        let obj = s.as_object().unwrap();
        if obj.contains_key("$ref") {
            problems.push(format!("{path}: $ref"));
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(branches) = obj.get(key).and_then(Value::as_array)
                && branches.iter().any(|b| b.get("type").is_some() || b.get("properties").is_some())
            {
                problems.push(format!("{path}: {key} with types"));
            }
        }
        let typed = obj.get("type").and_then(Value::as_str).is_some()
            || obj.get("x-kubernetes-int-or-string") == Some(&json!(true))
            || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
        if !typed {
            problems.push(format!("{path}: no single type"));
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                walk(&format!("{path}.{name}"), p, problems);
            }
        }
        if let Some(items) = obj.get("items") {
            walk(&format!("{path}[]"), items, problems);
        }
        if let Some(extra) = obj.get("additionalProperties").filter(|a| a.is_object()) {
            walk(&format!("{path}{{}}"), extra, problems);
        }
    }
    let mut problems = vec![];
    for crd in crds() {
        walk(&crd.spec.names.kind, &schema(&crd), &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn schema_defaults() {
    let [pc, cpc, sa, tm, pn]: [Value; 5] = crds().iter().map(schema).collect::<Vec<_>>().try_into().unwrap();
    for config in [&pc, &cpc] {
        assert_eq!(node(config, "spec.pollInterval")["default"], "10m");
        assert_eq!(node(config, "spec.rateLimit")["default"], json!({}), "so that the numbers below always apply");
        assert_eq!(node(config, "spec.rateLimit.requestsPerSecond")["default"], 5);
        assert_eq!(node(config, "spec.rateLimit.burst")["default"], 10);
    }
    assert_eq!(node(&sa, "spec.active")["default"], true);
    assert_eq!(node(&sa, "spec.deletionPolicy")["default"], "Delete");
    assert_eq!(node(&sa, "spec.providerConfigRef.kind")["default"], "ProviderConfig");
    assert_eq!(node(&tm, "spec.role")["default"], "Member");
    assert_eq!(node(&tm, "spec.deletionPolicy")["default"], "Delete");
    assert_eq!(node(&pn, "spec.deletionPolicy")["default"], "Release");
    assert_eq!(node(&pn, "spec.search.country")["default"], "US");
    for s in [&pc, &cpc, &sa, &tm, &pn] {
        // `status: {}` by default, so that a brand-new object reads back with
        // `status.observedGeneration: -1` and kstatus (Flux) sees it as in progress.
        assert_eq!(node(s, "status")["default"], json!({}));
        assert_eq!(node(s, "status.observedGeneration")["default"], -1);
        let conditions = node(s, "status.conditions");
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    }
    // The Rust defaults agree with the schema's.
    let status: SubAccountStatus = serde_json::from_value(json!({})).unwrap();
    assert_eq!(status.observed_generation, -1);
    assert_eq!(serde_json::to_value(RateLimit::default()).unwrap(), json!({"requestsPerSecond": 5, "burst": 10}));
    let rl: RateLimit = serde_json::from_value(json!({})).unwrap();
    assert_eq!(rl, RateLimit::default());
}

#[test]
fn validation_patterns_and_bounds_in_the_schema() {
    let [pc, _, sa, tm, pn]: [Value; 5] = crds().iter().map(schema).collect::<Vec<_>>().try_into().unwrap();
    for (s, path) in [
        (&sa, "spec.owner.phone"),
        (&sa, "spec.phoneNumber"),
        (&sa, "spec.forwardingNumber"),
        (&tm, "spec.phoneNumber"),
        (&tm, "spec.forwardingNumber"),
        (&pn, "spec.number"),
        (&pn, "spec.forwardingNumber"),
    ] {
        assert_eq!(node(s, path)["pattern"], E164, "{path}");
    }
    assert_eq!(node(&sa, "spec.branding.accentColor")["pattern"], HEX_COLOUR);
    assert_eq!(node(&sa, "spec.address.country")["pattern"], ISO_COUNTRY);
    assert_eq!(node(&pn, "spec.search.country")["pattern"], ISO_COUNTRY);
    assert_eq!(node(&pn, "spec.search.areaCode")["pattern"], "^[0-9]{3}$");
    assert_eq!(node(&sa, "spec.owner.email")["format"], "email");
    assert_eq!(node(&tm, "spec.email")["format"], "email");
    assert_eq!(
        (node(&sa, "spec.displayName")["minLength"].clone(), node(&sa, "spec.displayName")["maxLength"].clone()),
        (json!(1), json!(100))
    );
    assert_eq!(node(&sa, "spec.yardstik.permissiblePurposeIds")["minItems"], 1);
    assert_eq!(node(&sa, "spec.yardstik.permissiblePurposeIds")["items"]["pattern"], UUID);
    assert_eq!(variants(node(&sa, "spec.vobiz.kycMode")), json!(["personal_use", "customer_use"]));
    assert_eq!(variants(node(&sa, "spec.deletionPolicy")), json!(["Delete", "Deactivate", "Orphan"]));
    assert_eq!(variants(node(&tm, "spec.role")), json!(["Owner", "Admin", "Member"]));
    assert_eq!(variants(node(&tm, "spec.deletionPolicy")), json!(["Delete", "Orphan"]));
    assert_eq!(variants(node(&pn, "spec.deletionPolicy")), json!(["Release", "Retain"]));
    assert_eq!(
        variants(node(&pc, "spec.provider")),
        json!(["RecoverBiz", "Vobiz", "AgentPhone", "VobizPartner", "Yardstik"])
    );
    assert_eq!(node(&pc, "spec.pollInterval")["pattern"], DURATION);
    for path in ["spec.rateLimit.burst", "spec.rateLimit.requestsPerSecond"] {
        let n = node(&pc, path);
        assert_eq!((n["minimum"].as_f64(), n["maximum"].as_f64()), (Some(1.0), Some(1000.0)), "{path}");
    }
    assert_eq!(node(&sa, "spec.vobizPartner.openingBalance")["minimum"].as_f64(), Some(0.0));
    assert_eq!(variants(node(&sa, "status.state")), json!(["Active", "Deactivated"]));
    assert_eq!(variants(node(&sa, "status.deletion")), json!(["Delete", "Deactivate", "Retain", "Orphan"]));

    // The patterns themselves.
    let matches = |pattern: &str, s: &str| regex_lite_match(pattern, s);
    for good in ["+14155550100", "+442071838750", "+123"] {
        assert!(matches(E164, good), "{good}");
    }
    for bad in ["4155550100", "+0123", "+1 415 555 0100", "+1234567890123456", "+"] {
        assert!(!matches(E164, bad), "{bad}");
    }
    assert!(matches(HEX_COLOUR, "#1E40af") && !matches(HEX_COLOUR, "blue") && !matches(HEX_COLOUR, "#12345"));
    assert!(matches(ISO_COUNTRY, "US") && !matches(ISO_COUNTRY, "us") && !matches(ISO_COUNTRY, "USA"));
    for good in ["10m", "90s", "1h30m", "24h"] {
        assert!(matches(DURATION, good), "{good}");
    }
    for bad in ["often", "10", "-5m", "1.5h", ""] {
        assert!(!matches(DURATION, bad), "{bad}");
    }
    assert!(matches(UUID, "3fa85f64-5717-4562-b3fc-2c963f66afa6") && !matches(UUID, "not-a-uuid"));
    assert!(matches(DNS_LABEL, "acme-lending-credentials") && !matches(DNS_LABEL, "Acme_Creds"));
}

/// Whether `s` matches `pattern`, by CEL's `matches()` (an RE2-compatible engine, like the API
/// server's Go regexp).
fn regex_lite_match(pattern: &str, s: &str) -> bool {
    let rule = format!("self.matches({})", serde_json::to_string(pattern).unwrap());
    let schema = json!({"type": "string", "x-kubernetes-validations": [{"rule": rule}]});
    kube::core::cel::Validator::new().validate(&schema, &json!(s), None).is_ok()
}

// ---- CEL, evaluated client-side by kube's `cel` feature -------------------------------------

fn number(spec: Value) -> PhoneNumber {
    PhoneNumber::new("n", serde_json::from_value(spec).unwrap())
}

fn sub_account(spec: Value) -> SubAccount {
    SubAccount::new("s", serde_json::from_value(spec).unwrap())
}

fn config(spec: Value) -> ProviderConfig {
    ProviderConfig::new("p", serde_json::from_value(spec).unwrap())
}

fn messages(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

#[test]
fn cel_phone_number_needs_exactly_one_of_number_and_search() {
    let sub = json!({"name": "acme"});
    assert!(number(json!({"subAccountRef": sub, "number": "+14155550100"})).validate_cel().is_ok());
    assert!(number(json!({"subAccountRef": sub, "search": {"country": "US"}})).validate_cel().is_ok());
    assert!(number(json!({"subAccountRef": sub, "search": {}})).validate_cel().is_ok(), "country defaults to US");

    let both = number(json!({"subAccountRef": sub, "number": "+14155550100", "search": {"country": "US"}}));
    let err = messages(both.validate_cel().unwrap_err());
    assert!(err.contains("mutually exclusive") && err.contains("spec.number"), "{err}");

    let err = messages(number(json!({"subAccountRef": sub})).validate_cel().unwrap_err());
    assert!(err.contains("exactly one of spec.number or spec.search"), "{err}");
}

#[test]
fn cel_references_can_be_fixed_until_the_provider_object_exists_and_the_provider_never() {
    let held = |mut status: Value| {
        status["externalId"] = json!("SA_1");
        status
    };
    let number = |sub: &str, status: Option<Value>| {
        let mut n = PhoneNumber::new(
            "n",
            serde_json::from_value(json!({"subAccountRef": {"name": sub}, "number": "+14155550100"})).unwrap(),
        );
        n.status = status.map(|s| serde_json::from_value(s).unwrap());
        n
    };
    assert!(number("b", None).validate_cel_update(&number("a", None)).is_ok(), "a typo fixed before it exists");
    let err = messages(number("b", None).validate_cel_update(&number("a", Some(held(json!({}))))).unwrap_err());
    assert!(err.contains("spec.subAccountRef is immutable once"), "{err}");

    let sa = |config: &str, kind: &str, status: Option<Value>| {
        let mut sa = sub_account(json!({"providerConfigRef": {"name": config, "kind": kind}, "displayName": "S"}));
        sa.status = status.map(|s| serde_json::from_value(s).unwrap());
        sa
    };
    let pc = "ProviderConfig";
    assert!(sa("two", pc, None).validate_cel_update(&sa("one", pc, None)).is_ok());
    let created = Some(held(json!({})));
    assert!(sa("one", pc, None).validate_cel_update(&sa("one", pc, created.clone())).is_ok(), "unchanged");
    let err = messages(sa("two", pc, None).validate_cel_update(&sa("one", pc, created.clone())).unwrap_err());
    assert!(err.contains("spec.providerConfigRef is immutable once the account exists"), "{err}");
    // The kind is part of the reference: a ProviderConfig cannot become a ClusterProviderConfig.
    assert!(sa("one", "ClusterProviderConfig", None).validate_cel_update(&sa("one", pc, created.clone())).is_err());
    // Everything else may change.
    let mut renamed = sa("one", pc, None);
    renamed.spec.display_name = "Renamed".into();
    renamed.spec.active = false;
    assert!(renamed.validate_cel_update(&sa("one", pc, created)).is_ok());

    let member = |sub: &str, status: Option<Value>| {
        let mut m = TeamMember::new(
            "m",
            serde_json::from_value(json!({"subAccountRef": {"name": sub}, "email": "a@b.c", "name": "A"})).unwrap(),
        );
        m.status = status.map(|s| serde_json::from_value(s).unwrap());
        m
    };
    assert!(member("b", None).validate_cel_update(&member("a", None)).is_ok());
    let err = messages(member("b", None).validate_cel_update(&member("a", Some(held(json!({}))))).unwrap_err());
    assert!(err.contains("spec.subAccountRef is immutable once"), "{err}");

    let pc = |provider: &str| config(json!({"provider": provider, "credentialsSecretRef": {"name": "x"}}));
    assert!(pc("Vobiz").validate_cel_update(&pc("Vobiz")).is_ok());
    let err = messages(pc("Yardstik").validate_cel_update(&pc("Vobiz")).unwrap_err());
    assert!(err.contains("spec.provider is immutable"), "{err}");

    let cpc = |provider: &str| {
        ClusterProviderConfig::new(
            "c",
            serde_json::from_value(
                json!({"provider": provider, "credentialsSecretRef": {"name": "x", "namespace": "ops"}}),
            )
            .unwrap(),
        )
    };
    assert!(cpc("Vobiz").validate_cel_update(&cpc("Vobiz")).is_ok());
    assert!(cpc("Yardstik").validate_cel_update(&cpc("Vobiz")).is_err());
}

#[test]
fn cel_secret_namespace_only_on_cluster_provider_config() {
    let with_ns = json!({"provider": "Vobiz", "credentialsSecretRef": {"name": "x", "namespace": "ops"}});
    let err = messages(config(with_ns.clone()).validate_cel().unwrap_err());
    assert!(err.contains("spec.credentialsSecretRef.namespace is only for a ClusterProviderConfig"), "{err}");
    assert!(config(json!({"provider": "Vobiz", "credentialsSecretRef": {"name": "x"}})).validate_cel().is_ok());
    let cluster = ClusterProviderConfig::new("c", serde_json::from_value(with_ns).unwrap());
    assert!(cluster.validate_cel().is_ok());
}

#[test]
fn cel_vobiz_customer_use_needs_an_owner_email() {
    let base = json!({"providerConfigRef": {"name": "vobiz"}, "displayName": "S"});
    let with = |extra: Value| {
        let mut spec = base.clone();
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        sub_account(spec)
    };
    assert!(with(json!({})).validate_cel().is_ok());
    assert!(with(json!({"vobiz": {}})).validate_cel().is_ok());
    assert!(with(json!({"vobiz": {"kycMode": "personal_use"}})).validate_cel().is_ok());
    assert!(
        with(json!({"vobiz": {"kycMode": "customer_use"}, "owner": {"email": "o@acme.example"}}))
            .validate_cel()
            .is_ok()
    );
    for bad in
        [json!({"vobiz": {"kycMode": "customer_use"}}), json!({"vobiz": {"kycMode": "customer_use"}, "owner": {}})]
    {
        let err = messages(with(bad).validate_cel().unwrap_err());
        assert!(err.contains("spec.owner.email is required"), "{err}");
    }
}

// ---- Parsing the documented manifests --------------------------------------------------------

/// Every key of `given` is present, with the same value, in `typed`: nothing a user wrote is
/// silently dropped by the types (a misspelt field name in the Rust code would be).
fn assert_kept(given: &Value, typed: &Value, path: &str) {
    match (given, typed) {
        (Value::Object(g), Value::Object(t)) => {
            for (k, v) in g {
                let t = t.get(k).unwrap_or_else(|| panic!("{path}.{k} is dropped by the types"));
                assert_kept(v, t, &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(t)) => {
            assert_eq!(g.len(), t.len(), "{path}");
            for (i, (g, t)) in g.iter().zip(t).enumerate() {
                assert_kept(g, t, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(g), Value::Number(t)) => assert_eq!(g.as_f64(), t.as_f64(), "{path}"),
        (g, t) => assert_eq!(g, t, "{path}"),
    }
}

/// Parse one tenantline manifest into its type, check nothing is lost, that it survives a
/// JSON round trip unchanged, and that it passes the CEL creation rules.
fn check_manifest(doc: &str) -> Option<Value> {
    let given: Value = serde_saphyr::from_str(doc).unwrap();
    if !given["apiVersion"].as_str().is_some_and(|v| v.starts_with("tenantline.io/")) {
        return None;
    }
    fn check<K: serde::de::DeserializeOwned + serde::Serialize + CustomResourceExt>(given: &Value, doc: &str) -> Value {
        let typed: K = serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        let json = serde_json::to_value(&typed).unwrap();
        assert_kept(given, &json, "");
        let again: K = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), json, "round trip");
        kube::core::cel::validate_cel(&typed).unwrap_or_else(|e| panic!("CEL rejects {doc}: {e:?}"));
        json
    }
    Some(match given["kind"].as_str().unwrap() {
        "ProviderConfig" => check::<ProviderConfig>(&given, doc),
        "ClusterProviderConfig" => check::<ClusterProviderConfig>(&given, doc),
        "SubAccount" => check::<SubAccount>(&given, doc),
        "TeamMember" => check::<TeamMember>(&given, doc),
        "PhoneNumber" => check::<PhoneNumber>(&given, doc),
        other => panic!("unknown kind {other}"),
    })
}

const DESIGN_EXAMPLE: &str = r##"
apiVersion: tenantline.io/v1alpha1
kind: ProviderConfig
metadata: {name: vobiz, namespace: acme}
spec:
  provider: Vobiz
  endpoint: https://api.vobiz.ai
  credentialsSecretRef: {name: vobiz-parent}
  rateLimit: {requestsPerSecond: 5, burst: 10}
  pollInterval: 10m
---
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {name: acme-lending, namespace: acme}
spec:
  providerConfigRef: {name: vobiz}
  displayName: Acme Lending
  companyName: Acme Lending Corp
  active: true
  deletionPolicy: Delete
  owner: {email: ops@acme.example, firstName: Ana, lastName: Diaz, phone: "+14155550100"}
  address: {line1: 1 Main St, city: Austin, state: TX, postalCode: "78701", country: US}
  timezone: America/Chicago
  phoneNumber: "+14155551234"
  forwardingNumber: "+14155559999"
  branding: {logoUrl: https://acme.example/logo.png, accentColor: "#1E40AF"}
  metadata: {tier: premium}
  credentialsSecretName: acme-lending-credentials
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "True", reason: Provisioned, message: ready, lastTransitionTime: "2026-11-25T04:00:00Z", observedGeneration: 3}
  externalId: SA_8F3A1B2C
  state: Active
  phoneNumber: "+14155551234"
  credentialsSecretName: acme-lending-credentials
  deletion: Delete
  reconcileRequestedAt: "1"
---
apiVersion: tenantline.io/v1alpha1
kind: SubAccount
metadata: {name: every-block, namespace: acme}
spec:
  providerConfigRef: {kind: ClusterProviderConfig, name: shared}
  displayName: Every Block
  vobiz: {rateLimit: 500, permissions: {calls: true, cdr: false}, kycMode: customer_use, description: d}
  owner: {email: o@acme.example}
  vobizPartner: {openingBalance: 12.5, currency: USD}
  agentPhone: {}
  yardstik: {permissiblePurposeIds: [3fa85f64-5717-4562-b3fc-2c963f66afa6], legalBusinessName: Acme LLC, url: https://acme.example}
---
apiVersion: tenantline.io/v1alpha1
kind: TeamMember
metadata: {name: sarah, namespace: acme}
spec:
  subAccountRef: {name: acme-lending}
  email: sarah@acme.example
  name: Sarah Lee
  role: Admin
  phoneNumber: "+14155550111"
  forwardingNumber: "+14155550112"
  deletionPolicy: Orphan
---
apiVersion: tenantline.io/v1alpha1
kind: PhoneNumber
metadata: {name: main, namespace: acme}
spec:
  subAccountRef: {name: acme-lending}
  search: {country: US, areaCode: "415"}
  forwardingNumber: "+14155559999"
  deletionPolicy: Retain
---
apiVersion: tenantline.io/v1alpha1
kind: ClusterProviderConfig
metadata: {name: shared}
spec:
  provider: RecoverBiz
  credentialsSecretRef: {name: recoverbiz-partner, namespace: tenantline-system}
"##;

fn docs(yaml: &str) -> impl Iterator<Item = &str> {
    yaml.split("\n---\n").filter(|d| d.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
}

#[test]
fn design_examples_parse_completely_and_round_trip() {
    let parsed: Vec<Value> = docs(DESIGN_EXAMPLE).filter_map(check_manifest).collect();
    assert_eq!(parsed.len(), 6);

    let pc: ProviderConfig = serde_json::from_value(parsed[0].clone()).unwrap();
    assert_eq!(pc.spec.provider, Provider::Vobiz);
    assert_eq!(pc.spec.rate_limit, Some(RateLimit { requests_per_second: 5, burst: 10 }));

    let sa: SubAccount = serde_json::from_value(parsed[1].clone()).unwrap();
    assert_eq!(sa.spec.provider_config_ref.kind, ProviderConfigKind::ProviderConfig);
    assert_eq!(sa.spec.branding.as_ref().unwrap().accent_color.as_deref(), Some("#1E40AF"));
    let status = sa.status.unwrap();
    assert_eq!((status.observed_generation, status.external_id.as_deref()), (3, Some("SA_8F3A1B2C")));

    let every: SubAccount = serde_json::from_value(parsed[2].clone()).unwrap();
    assert_eq!(every.spec.vobiz.unwrap().kyc_mode, Some(KycMode::CustomerUse));
    assert_eq!(every.spec.agent_phone, Some(AgentPhoneSettings {}));

    let cpc: ClusterProviderConfig = serde_json::from_value(parsed[5].clone()).unwrap();
    assert_eq!(cpc.spec.config.credentials_secret_ref.namespace.as_deref(), Some("tenantline-system"));
    // The cluster-scoped twin serialises flat, like a ProviderConfig.
    assert_eq!(parsed[5]["spec"]["provider"], "RecoverBiz");
}

#[test]
fn minimal_manifests_take_the_defaults() {
    let sa = sub_account(json!({"providerConfigRef": {"name": "vobiz"}, "displayName": "Acme"}));
    assert!(sa.spec.active);
    assert_eq!(sa.spec.deletion_policy, SubAccountDeletionPolicy::Delete);
    assert_eq!(sa.spec.provider_config_ref.kind, ProviderConfigKind::ProviderConfig);
    // Unset options are left out, not written as null.
    let json = serde_json::to_value(&sa).unwrap();
    assert_eq!(
        json["spec"],
        json!({"providerConfigRef": {"kind": "ProviderConfig", "name": "vobiz"}, "displayName": "Acme", "active": true, "deletionPolicy": "Delete"})
    );
    assert!(json.get("status").is_none());

    let member: TeamMemberSpec =
        serde_json::from_value(json!({"subAccountRef": {"name": "s"}, "email": "a@b.c", "name": "A"})).unwrap();
    assert_eq!((member.role, member.deletion_policy), (Role::Member, TeamMemberDeletionPolicy::Delete));
    let num: PhoneNumberSpec = serde_json::from_value(json!({"subAccountRef": {"name": "s"}, "search": {}})).unwrap();
    assert_eq!(num.search.unwrap().country, "US");
    assert_eq!(num.deletion_policy, PhoneNumberDeletionPolicy::Release);
    let status: PhoneNumberStatus = serde_json::from_value(json!({})).unwrap();
    assert_eq!(status.observed_generation, -1);
    assert_eq!(serde_json::to_value(&status).unwrap(), json!({"observedGeneration": -1, "conditions": []}));
}

/// The manifests under `examples/` (what users copy and `make demo` applies) match the types.
#[test]
fn examples_parse_completely() {
    fn visit(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut files = vec![];
    visit(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"), &mut files);
    let mut count = 0;
    for file in files {
        let yaml = std::fs::read_to_string(&file).unwrap();
        for doc in docs(&yaml) {
            let doc = doc.trim_start_matches("---\n");
            if std::panic::catch_unwind(|| check_manifest(doc))
                .map_err(|_| file.display().to_string())
                .unwrap()
                .is_some()
            {
                count += 1;
            }
        }
    }
    assert!(count >= 10, "only {count} tenantline manifests under examples/");
}

#[test]
fn owner_ids_are_what_the_schema_allows() {
    for ok in ["default", "cluster-eu.1", "A_b", "x"] {
        assert!(valid_owner_id(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "a/b", "a]b", "a b", &"x".repeat(64)] {
        assert!(!valid_owner_id(bad), "{bad}");
    }
}

#[test]
fn poll_intervals_parse_as_go_durations_and_never_overflow() {
    use std::time::Duration;
    assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
    for bad in ["10", "0s", "5d", "h", "", "18446744073709551616s", "99999999999999999999999h", "5124095576030432h"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
    let spec = |p: &str| -> ProviderConfigSpec {
        serde_json::from_value(json!({"provider": "Vobiz", "credentialsSecretRef": {"name": "s"}, "pollInterval": p}))
            .unwrap()
    };
    assert_eq!(spec("24h").poll_interval(), Some(Duration::from_secs(86400)));
    assert_eq!(spec("87600h").poll_interval(), None, "over the 24h the schema allows");
    assert_eq!(spec("18446744073709551615s").poll_interval(), None);
}

#[test]
fn cel_poll_interval_between_a_second_and_a_day() {
    let with = |p: &str| config(json!({"provider": "Vobiz", "credentialsSecretRef": {"name": "x"}, "pollInterval": p}));
    assert!(with("10m").validate_cel().is_ok());
    assert!(with("24h").validate_cel().is_ok());
    for bad in ["87600h", "25h", "18446744073709551615s"] {
        let err = messages(with(bad).validate_cel().unwrap_err());
        assert!(err.contains("pollInterval") || err.contains("duration"), "{bad}: {err}");
    }
}

#[test]
fn cel_tenant_input_cannot_plant_keys_or_overflow_labels() {
    let base = json!({"providerConfigRef": {"name": "vobiz"}, "displayName": "S"});
    let with = |extra: Value| {
        let mut spec = base.clone();
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        sub_account(spec)
    };
    let err = messages(
        with(json!({"vobiz": {"description": "x [tenantline.io/key=default/other/a]"}})).validate_cel().unwrap_err(),
    );
    assert!(err.contains("key marker"), "{err}");
    let err = messages(with(json!({"metadata": {"tenantline.io/key": "default/other/a"}})).validate_cel().unwrap_err());
    assert!(err.contains("tenantline.io/"), "{err}");
    assert!(with(json!({"metadata": {"tier": "gold"}, "vobiz": {"description": "Line"}})).validate_cel().is_ok());

    let mut long = with(json!({}));
    long.metadata.name = Some("a".repeat(64));
    let err = messages(long.validate_cel().unwrap_err());
    assert!(err.contains("at most 63"), "{err}");
}

#[test]
fn cel_a_cluster_provider_config_names_its_secrets_namespace() {
    let cluster = ClusterProviderConfig::new(
        "c",
        serde_json::from_value(json!({"provider": "Vobiz", "credentialsSecretRef": {"name": "x"}})).unwrap(),
    );
    let err = messages(cluster.validate_cel().unwrap_err());
    assert!(err.contains("namespace is required"), "{err}");
}
