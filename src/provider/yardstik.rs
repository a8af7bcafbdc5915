//! Yardstik sub-accounts: created idempotently on `account_name` (a repeated
//! create returns the same account with a new API token and revokes the old one), updated only
//! with the sub-account's own token, never deleted.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use super::drift::Drift;
use super::error::Absent;
use super::http::{Call, HttpClient};
use super::ids::{self, IdKind, IdShape};
use super::{
    AuthHeader, Capabilities, Created, Credentials, Descriptor, Error, External, Observation, ProviderClients,
    ProviderKind, Result, SubAccountSpec,
};

const PAGE: u32 = 100;

pub(super) static PROVIDER: Descriptor = Descriptor {
    kind: ProviderKind::Yardstik,
    name: "Yardstik",
    default_endpoint: "https://api.yardstik.com",
    parent_credential_keys: &["apiKey"],
    auth: &[AuthHeader { name: "authorization", prefix: "Account ", key: "apiKey" }],
    sub_accounts: Capabilities {
        update: true,
        lookup: true,
        reissue: true,
        issued_credential_keys: &["apiToken"],
        ..Capabilities::NONE
    },
    ids: &[IdShape { kind: IdKind::SubAccount, shape: "a UUID", matches: ids::uuid }],
    missing_field,
    clients,
};

/// A sub-account is created with its owner, its address and at least one permissible purpose.
fn missing_field(d: &SubAccountSpec) -> Option<&'static str> {
    let o = d.owner.clone().unwrap_or_default();
    let purposes = d.yardstik.as_ref().is_some_and(|y| !y.permissible_purpose_ids.is_empty());
    [
        ("owner.email", o.email.is_some()),
        ("owner.firstName", o.first_name.is_some()),
        ("owner.lastName", o.last_name.is_some()),
        ("address", d.address.is_some()),
        ("yardstik.permissiblePurposeIds", purposes),
    ]
    .into_iter()
    .find_map(|(field, set)| (!set).then_some(field))
}

fn clients(http: HttpClient) -> ProviderClients {
    ProviderClients { sub_accounts: Arc::new(SubAccounts(http)), members: None, numbers: None }
}

struct SubAccounts(HttpClient);

/// The fields both create and PATCH take; the account's key (`account_name`) is set separately.
fn fields(d: &SubAccountSpec) -> Value {
    let o = d.owner.clone().unwrap_or_default();
    let a = d.address.clone().unwrap_or_default();
    let y = d.yardstik.clone().unwrap_or_default();
    let mut body = json!({
        "address": {"line1": a.line1, "line2": a.line2, "city": a.city, "state": a.state, "zip_code": a.postal_code},
    });
    let strings = [
        ("first_name", o.first_name),
        ("last_name", o.last_name),
        ("email_address", o.email),
        ("legal_business_name", y.legal_business_name),
        ("url", y.url),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    body
}

fn drift(d: &SubAccountSpec, s: &Value) -> Vec<String> {
    let o = d.owner.clone().unwrap_or_default();
    let a = d.address.clone().unwrap_or_default();
    let y = d.yardstik.clone().unwrap_or_default();
    let addr = &s["address"];
    Drift::default()
        .text("displayName", Some(&d.display_name), &s["account_name"])
        .text("owner.firstName", o.first_name.as_deref(), &s["first_name"])
        .text("owner.lastName", o.last_name.as_deref(), &s["last_name"])
        .text_ci("owner.email", o.email.as_deref(), &s["email_address"])
        .text("yardstik.legalBusinessName", y.legal_business_name.as_deref(), &s["legal_business_name"])
        .text("yardstik.url", y.url.as_deref(), &s["url"])
        .text("address.line1", a.line1.as_deref(), &addr["line1"])
        .text("address.line2", a.line2.as_deref(), &addr["line2"])
        .text("address.city", a.city.as_deref(), &addr["city"])
        .text("address.state", a.state.as_deref(), &addr["state"])
        .text("address.postalCode", a.postal_code.as_deref(), &addr["zip_code"])
        .fields()
}

/// The first API token of a create (or refresh) response.
fn token(r: &Value) -> Credentials {
    let mut c = Credentials::default();
    if let Some(t) = r.pointer("/api_tokens/0/api_token").and_then(Value::as_str) {
        c.insert("apiToken", t);
    }
    c
}

#[async_trait]
impl External<SubAccountSpec> for SubAccounts {
    fn capabilities(&self) -> Capabilities {
        PROVIDER.sub_accounts
    }

    async fn verify(&self) -> Result<()> {
        self.0.send(Call::get("/sub_accounts").query("per_page", 1).with_operation("verify")).await.map(drop)
    }

    async fn find(&self, d: &SubAccountSpec) -> Result<Option<String>> {
        let name = d.display_name.clone();
        let call = || Call::get("/sub_accounts").query("query[account_name_eq]", name.clone());
        let found = self.0.list_pages(call, "data", "per_page", PAGE).await?;
        // The filter is ransack-style and may be ignored: check the name here too.
        Ok(found.iter().find(|s| s["account_name"] == name.as_str()).and_then(|s| s["id"].as_str()).map(str::to_owned))
    }

    async fn observe(&self, id: &str, d: &SubAccountSpec) -> Result<Option<Observation>> {
        let path = format!("/sub_accounts/{}", self.0.segment(id)?);
        let Some(s) = self.0.send(Call::get(path)).await.absent_ok()? else {
            return Ok(None);
        };
        Ok(Some(Observation { active: true, drift: drift(d, &s), ..Default::default() }))
    }

    async fn create(&self, d: &SubAccountSpec) -> Result<Created> {
        let mut body = fields(d);
        body["account_name"] = json!(d.display_name);
        body["create_api_key"] = json!(true);
        body["permissible_purpose_ids"] = json!(d.yardstik.as_ref().map(|y| &y.permissible_purpose_ids));
        let r = self.0.send(Call::new(Method::POST, "/sub_accounts", "create").json(body)).await?;
        Ok(Created {
            id: r["id"].as_str().unwrap_or_default().to_owned(),
            credentials: token(&r),
            ..Default::default()
        })
    }

    async fn update(&self, id: &str, d: &SubAccountSpec, credentials: &Credentials) -> Result<()> {
        let Some(own) = credentials.get("apiToken") else {
            return Err(Error::Auth {
                provider: ProviderKind::Yardstik,
                message: format!("updating {id} needs its own API token, which is not in the Secret"),
            });
        };
        let mut body = fields(d);
        body["account_name"] = json!(d.display_name);
        let call = Call::new(Method::PATCH, format!("/accounts/{}", self.0.segment(id)?), "update")
            .header("authorization", format!("Account {own}"))
            .json(body);
        self.0.send(call).await.map(drop)
    }

    async fn set_active(&self, _: &str, _: bool) -> Result<()> {
        Err(Error::unsupported(ProviderKind::Yardstik, "deactivating sub-accounts"))
    }

    async fn delete(&self, _: &str, _: &SubAccountSpec) -> Result<()> {
        Err(Error::unsupported(ProviderKind::Yardstik, "deleting sub-accounts"))
    }

    /// A create with the account's current name returns it with a fresh token.
    async fn reissue_credentials(&self, id: &str, _: &SubAccountSpec) -> Result<Option<Credentials>> {
        let path = format!("/sub_accounts/{}", self.0.segment(id)?);
        let Some(s) = self.0.send(Call::get(path)).await.absent_ok()? else {
            return Ok(None);
        };
        let body = json!({"account_name": s["account_name"], "create_api_key": true});
        let r = self.0.send(Call::new(Method::POST, "/sub_accounts", "reissue").json(body)).await?;
        if r["id"] != id {
            return Err(Error::Transient {
                provider: ProviderKind::Yardstik,
                message: format!("re-issuing the token of {id} answered for another account"),
            });
        }
        Ok(Some(token(&r)))
    }

    /// A read of the account with its own token: a re-issued (revoked) token gets 401.
    async fn credentials_accepted(&self, id: &str, credentials: &Credentials) -> Result<bool> {
        let Some(own) = credentials.get("apiToken") else { return Ok(false) };
        let path = format!("/accounts/{}", self.0.segment(id)?);
        let call = Call::get(path).header("authorization", format!("Account {own}"));
        match self.0.send(call).await {
            Ok(_) => Ok(true),
            Err(Error::Auth { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Address, Owner};

    fn spec() -> SubAccountSpec {
        SubAccountSpec {
            display_name: "Screening".into(),
            owner: Some(Owner {
                email: Some("o@acme.example".into()),
                first_name: Some("Ana".into()),
                ..Default::default()
            }),
            address: Some(Address {
                city: Some("Austin".into()),
                postal_code: Some("78701".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_body_maps_the_address_and_owner() {
        let b = fields(&spec());
        assert_eq!(b["address"]["zip_code"], "78701");
        assert_eq!(b["first_name"], "Ana");
        assert!(b.get("last_name").is_none());
    }

    #[test]
    fn drift_and_tokens() {
        let s = json!({"account_name": "Screening", "first_name": "Ana", "email_address": "o@acme.example",
                       "address": {"city": "Dallas", "zip_code": "78701"}});
        assert_eq!(drift(&spec(), &s), ["address.city"]);
        let r = json!({"api_tokens": [{"api_token": "ys_abc"}]});
        assert_eq!(token(&r).get("apiToken"), Some("ys_abc"));
        assert!(token(&json!({"api_tokens": []})).get("apiToken").is_none());
    }
}
