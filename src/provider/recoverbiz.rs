//! RecoverBiz partner API: accounts with soft delete, and team members.
//!
//! No idempotency key exists, so the resource's key goes into the account's free-form
//! `metadata` and `find` looks for it among the accounts with the same name.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::drift::Drift;
use super::error::Absent;
use super::http::{Call, HttpClient};
use super::ids::{self, IdKind, IdShape};
use super::{
    AuthHeader, Capabilities, Created, Credentials, Descriptor, External, MemberSpec, Observation, Ownership,
    ProviderClients, ProviderKind, Result, SubAccountSpec,
};

pub(super) static PROVIDER: Descriptor = Descriptor {
    kind: ProviderKind::RecoverBiz,
    name: "RecoverBiz",
    default_endpoint: "https://api.recoverbiz.com/v1",
    parent_credential_keys: &["partnerKey"],
    auth: &[AuthHeader { name: "x-partner-key", prefix: "", key: "partnerKey" }],
    // DELETE only deactivates: there is no hard delete.
    sub_accounts: Capabilities {
        update: true,
        deactivate: true,
        lookup: true,
        issued_credential_keys: &["phoneNumber"],
        provable: true,
        ..Capabilities::NONE
    },
    ids: &[
        IdShape {
            kind: IdKind::SubAccount,
            shape: "acc_ followed by letters and digits",
            matches: |id| ids::prefixed(id, "acc_"),
        },
        // Member ids are not documented (the simulator's are `mem_…`): any plain token.
        IdShape { kind: IdKind::Member, shape: "letters, digits, '_' and '-'", matches: ids::token },
    ],
    missing_field: |_| None,
    clients,
};

/// The metadata key that carries the idempotency key.
const KEY: &str = "tenantline.io/key";
/// Where older releases kept the resource UID.
const LEGACY_KEY: &str = "tenantline.io/uid";

/// Whose account `a` is, by the key in its metadata.
fn ownership(d: &SubAccountSpec, a: &Value) -> Ownership {
    let legacy = d.legacy_key.as_deref().filter(|k| !k.is_empty());
    let (key, old) = (&a["metadata"][KEY], &a["metadata"][LEGACY_KEY]);
    if *key == d.idempotency_key.as_str() || legacy.is_some_and(|uid| *old == uid) {
        Ownership::Ours
    } else if key.is_string() || old.is_string() {
        Ownership::Foreign("it carries another resource's tenantline key".to_owned())
    } else {
        Ownership::Unproven
    }
}
const PAGE: u32 = 250;

fn clients(http: HttpClient) -> ProviderClients {
    ProviderClients {
        sub_accounts: Arc::new(Accounts(http.clone())),
        members: Some(Arc::new(Members(http))),
        numbers: None,
    }
}

struct Accounts(HttpClient);

/// The create/PATCH body: every field the spec sets, plus the idempotency key in `metadata`.
fn account_body(d: &SubAccountSpec) -> Value {
    let mut metadata: Map<String, Value> = d.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    metadata.insert(KEY.into(), json!(d.idempotency_key));
    let mut body = json!({"name": d.display_name, "metadata": metadata});
    let mut set = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    };
    set("company_name", &d.company_name);
    set("phone_number", &d.phone_number);
    set("forwarding_number", &d.forwarding_number);
    if let Some(b) = &d.branding {
        body["branding"] = json!({"logo_url": b.logo_url, "accent_color": b.accent_color});
    }
    body
}

fn account_drift(d: &SubAccountSpec, a: &Value) -> Vec<String> {
    let branding = d.branding.clone().unwrap_or_default();
    let metadata_differs = d.metadata.iter().any(|(k, v)| a["metadata"][k].as_str() != Some(v));
    // An account tenantline keyed otherwise (an older release's UID, another owner id) gets this
    // key, so that a rebuilt cluster finds it.
    let keyed = [KEY, LEGACY_KEY].iter().any(|k| a["metadata"].get(k).is_some());
    let rekey = keyed && a["metadata"][KEY] != d.idempotency_key.as_str();
    Drift::default()
        .text("displayName", Some(&d.display_name), &a["name"])
        .text("companyName", d.company_name.as_deref(), &a["company_name"])
        .text("phoneNumber", d.phone_number.as_deref(), &a["phone_number"])
        .text("forwardingNumber", d.forwarding_number.as_deref(), &a["forwarding_number"])
        .text("branding.logoUrl", branding.logo_url.as_deref(), &a["branding"]["logo_url"])
        .text_ci("branding.accentColor", branding.accent_color.as_deref(), &a["branding"]["accent_color"])
        .check("metadata", metadata_differs || rekey)
        .fields()
}

#[async_trait]
impl External<SubAccountSpec> for Accounts {
    fn capabilities(&self) -> Capabilities {
        PROVIDER.sub_accounts
    }

    async fn verify(&self) -> Result<()> {
        self.0.send(Call::get("/accounts").query("limit", 1).with_operation("verify")).await.map(drop)
    }

    async fn find(&self, d: &SubAccountSpec) -> Result<Option<String>> {
        let named =
            self.0.list_offset(|| Call::get("/accounts").query("search", &d.display_name), "accounts", PAGE).await?;
        // The list omits metadata: read each account of that exact name.
        for id in named.iter().filter(|a| a["name"] == d.display_name.as_str()).filter_map(|a| a["id"].as_str()) {
            // An id that cannot be addressed cannot be ours either.
            let Ok(segment) = self.0.segment(id) else { continue };
            let account = self.0.send(Call::get(format!("/accounts/{segment}"))).await.absent_ok()?;
            if account.is_some_and(|a| ownership(d, &a) == Ownership::Ours) {
                return Ok(Some(id.to_owned()));
            }
        }
        Ok(None)
    }

    async fn observe(&self, id: &str, d: &SubAccountSpec) -> Result<Option<Observation>> {
        let Some(a) = self.0.send(Call::get(format!("/accounts/{}", self.0.segment(id)?))).await.absent_ok()? else {
            return Ok(None);
        };
        Ok(Some(Observation {
            active: a["status"] == "active",
            drift: account_drift(d, &a),
            credentials: Credentials::default(),
            number: a["phone_number"].as_str().map(str::to_owned),
            ownership: ownership(d, &a),
        }))
    }

    async fn create(&self, d: &SubAccountSpec) -> Result<Created> {
        let a = self.0.send(Call::new(Method::POST, "/accounts", "create").json(account_body(d))).await?;
        Ok(Created {
            id: a["id"].as_str().unwrap_or_default().to_owned(),
            number: a["phone_number"].as_str().map(str::to_owned),
            ..Default::default()
        })
    }

    async fn update(&self, id: &str, d: &SubAccountSpec, _: &Credentials) -> Result<()> {
        let path = format!("/accounts/{}", self.0.segment(id)?);
        let call = Call::new(Method::PATCH, path, "update").json(account_body(d));
        self.0.send(call).await.map(drop)
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<()> {
        let path = format!("/accounts/{}", self.0.segment(id)?);
        let call = if active {
            Call::new(Method::PATCH, path, "reactivate").json(json!({"status": "active"}))
        } else {
            Call::new(Method::DELETE, path, "deactivate")
        };
        self.0.send(call).await.map(drop)
    }

    async fn delete(&self, _: &str, _: &SubAccountSpec) -> Result<()> {
        Err(super::Error::unsupported(ProviderKind::RecoverBiz, "deleting accounts (only deactivation)"))
    }
}

struct Members(HttpClient);

fn member_drift(d: &MemberSpec, m: &Value) -> Vec<String> {
    Drift::default()
        .text("name", Some(&d.name), &m["name"])
        .text("role", Some(&d.role), &m["role"])
        .text("phoneNumber", d.phone_number.as_deref(), &m["phone_number"])
        .text("forwardingNumber", d.forwarding_number.as_deref(), &m["forwarding_number"])
        .fields()
}

#[async_trait]
impl External<MemberSpec> for Members {
    fn capabilities(&self) -> Capabilities {
        // Members can be invited and removed; nothing documents changing one.
        Capabilities { delete: true, lookup: true, provable: true, ..Capabilities::NONE }
    }

    async fn find(&self, d: &MemberSpec) -> Result<Option<String>> {
        let path = format!("/accounts/{}/team", self.0.segment(&d.sub_account_id)?);
        let members = self.0.list_offset(|| Call::get(path.clone()), "members", PAGE).await.absent_ok()?;
        Ok(members.into_iter().flatten().find_map(|m| {
            let same = m["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(&d.email));
            same.then(|| m["id"].as_str().map(str::to_owned)).flatten()
        }))
    }

    async fn observe(&self, id: &str, d: &MemberSpec) -> Result<Option<Observation>> {
        let path = format!("/accounts/{}/team/{}", self.0.segment(&d.sub_account_id)?, self.0.segment(id)?);
        let Some(m) = self.0.send(Call::get(path)).await.absent_ok()? else {
            return Ok(None);
        };
        Ok(Some(Observation {
            active: true,
            drift: member_drift(d, &m),
            credentials: Credentials::default(),
            number: m["phone_number"].as_str().map(str::to_owned),
            // Read under the sub-account: a member of it.
            ownership: Ownership::Ours,
        }))
    }

    async fn create(&self, d: &MemberSpec) -> Result<Created> {
        let body = json!({
            "email": d.email, "name": d.name, "role": d.role,
            "phone_number": d.phone_number, "forwarding_number": d.forwarding_number,
        });
        let path = format!("/accounts/{}/team/invite", self.0.segment(&d.sub_account_id)?);
        let m = self.0.send(Call::new(Method::POST, path, "create").json(body)).await?;
        Ok(Created {
            id: m["id"].as_str().unwrap_or_default().to_owned(),
            number: m["phone_number"].as_str().map(str::to_owned),
            ..Default::default()
        })
    }

    async fn update(&self, _: &str, _: &MemberSpec, _: &Credentials) -> Result<()> {
        Err(super::Error::unsupported(ProviderKind::RecoverBiz, "changing team members"))
    }

    async fn set_active(&self, _: &str, _: bool) -> Result<()> {
        Err(super::Error::unsupported(ProviderKind::RecoverBiz, "deactivating team members"))
    }

    async fn delete(&self, id: &str, d: &MemberSpec) -> Result<()> {
        let path = format!("/accounts/{}/team/{}", self.0.segment(&d.sub_account_id)?, self.0.segment(id)?);
        let call = Call::new(Method::DELETE, path, "delete");
        self.0.send(call).await.absent_ok().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Branding;

    fn spec() -> SubAccountSpec {
        SubAccountSpec {
            idempotency_key: "uid-1".into(),
            display_name: "Acme".into(),
            company_name: Some("Acme Corp".into()),
            branding: Some(Branding { logo_url: None, accent_color: Some("#1E40AF".into()) }),
            metadata: [("tier".to_owned(), "gold".to_owned())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_body_carries_the_idempotency_key_and_only_set_fields() {
        let body = account_body(&spec());
        assert_eq!(body["metadata"][KEY], "uid-1");
        assert_eq!(body["metadata"]["tier"], "gold");
        assert_eq!(body["company_name"], "Acme Corp");
        assert!(body.get("phone_number").is_none(), "an unset number is auto-provisioned, not sent as null");
    }

    #[test]
    fn drift_names_spec_fields() {
        let same = json!({"name": "Acme", "company_name": "Acme Corp", "phone_number": "+14155550000",
                          "branding": {"accent_color": "#1e40af"}, "metadata": {"tier": "gold", KEY: "uid-1"}});
        assert!(account_drift(&spec(), &same).is_empty());
        let adopted = json!({"name": "Acme", "company_name": "Acme Corp", "branding": {"accent_color": "#1e40af"},
                             "metadata": {"tier": "gold"}});
        assert!(account_drift(&spec(), &adopted).is_empty(), "an adopted account is not keyed behind its owner's back");
        let older = json!({"name": "Acme", "company_name": "Acme Corp", "branding": {"accent_color": "#1e40af"},
                           "metadata": {"tier": "gold", LEGACY_KEY: "3c9e"}});
        assert_eq!(account_drift(&spec(), &older), ["metadata"], "an older release's account gets the new key");
        let changed = json!({"name": "Other", "company_name": "Acme Corp", "branding": {}, "metadata": {}});
        assert_eq!(account_drift(&spec(), &changed), ["displayName", "branding.accentColor", "metadata"]);
    }
}
