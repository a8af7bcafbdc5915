//! Vobiz Partner API: customer accounts that can be created and read, never
//! changed or removed, with a login password we generate and a wallet we fund once.
//!
//! No idempotency key exists: the resource's key goes into the customer's `description`, and
//! `find` looks for it on the account with the owner's email (emails are unique platform-wide,
//! but the account may be another resource's).

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use super::drift::Drift;
use super::error::Absent;
use super::http::{Call, HttpClient};
use super::ids::{IdKind, IdShape};
use super::{
    Capabilities, Created, Credentials, Descriptor, Error, ExposeSecret, External, Observation, ProviderClients,
    ProviderKind, Result, SubAccountSpec,
};

const PAGE: u32 = 100;

pub(super) static PROVIDER: Descriptor = Descriptor {
    kind: ProviderKind::VobizPartner,
    name: "VobizPartner",
    default_endpoint: "https://api.vobiz.ai/api/v1/partner",
    parent_credential_keys: &["authId", "authToken"],
    auth: super::vobiz::AUTH,
    sub_accounts: Capabilities {
        lookup: true,
        issued_credential_keys: &["authId", "authToken", "password"],
        generated_password: true,
        provable: true,
        ..Capabilities::NONE
    },
    ids: &[IdShape {
        kind: IdKind::SubAccount,
        shape: "MA_ followed by letters and digits",
        matches: |id| super::vobiz::vobiz_id(id, "MA_"),
    }],
    missing_field,
    clients,
};

/// A customer account is created with its owner's email and phone and its country.
fn missing_field(d: &SubAccountSpec) -> Option<&'static str> {
    let o = d.owner.clone().unwrap_or_default();
    let a = d.address.clone().unwrap_or_default();
    [("owner.email", o.email.is_some()), ("owner.phone", o.phone.is_some()), ("address.country", a.country.is_some())]
        .into_iter()
        .find_map(|(field, set)| (!set).then_some(field))
}

fn clients(http: HttpClient) -> ProviderClients {
    ProviderClients { sub_accounts: Arc::new(Customers(http)), members: None, numbers: None }
}

struct Customers(HttpClient);

fn body(d: &SubAccountSpec) -> Value {
    let o = d.owner.clone().unwrap_or_default();
    let a = d.address.clone().unwrap_or_default();
    let street = match (a.line1, a.line2) {
        (Some(l1), Some(l2)) => Some(format!("{l1}, {l2}")),
        (l1, l2) => l1.or(l2),
    };
    let fields = [
        ("name", Some(d.display_name.clone())),
        ("email", o.email),
        ("password", d.password.as_ref().map(|p| p.expose_secret().to_owned())),
        ("phone", o.phone),
        ("company", d.company_name.clone()),
        ("address", street),
        ("city", a.city),
        ("state", a.state),
        ("zip_code", a.postal_code),
        ("country", a.country),
        ("timezone", d.timezone.clone()),
        ("description", Some(d.key_marker())),
    ];
    Value::Object(fields.into_iter().filter_map(|(k, v)| Some((k.to_owned(), Value::from(v?)))).collect())
}

fn drift(d: &SubAccountSpec, c: &Value) -> Vec<String> {
    let o = d.owner.clone().unwrap_or_default();
    let a = d.address.clone().unwrap_or_default();
    Drift::default()
        .text("displayName", Some(&d.display_name), &c["name"])
        .text("companyName", d.company_name.as_deref(), &c["company"])
        .text_ci("owner.email", o.email.as_deref(), &c["email"])
        .text("owner.phone", o.phone.as_deref(), &c["phone"])
        .text("timezone", d.timezone.as_deref(), &c["timezone"])
        .text("address.city", a.city.as_deref(), &c["city"])
        .text("address.state", a.state.as_deref(), &c["state"])
        .text("address.postalCode", a.postal_code.as_deref(), &c["zip_code"])
        .text_ci("address.country", a.country.as_deref(), &c["country"])
        .fields()
}

#[async_trait]
impl External<SubAccountSpec> for Customers {
    fn capabilities(&self) -> Capabilities {
        PROVIDER.sub_accounts
    }

    async fn verify(&self) -> Result<()> {
        self.0.send(Call::get("/me").with_operation("verify")).await.map(drop)
    }

    async fn find(&self, d: &SubAccountSpec) -> Result<Option<String>> {
        let Some(email) = d.owner.as_ref().and_then(|o| o.email.clone()) else { return Ok(None) };
        let call = || Call::get("/accounts").query("search", email.clone());
        let found = self.0.list_pages(call, "accounts", "per_page", PAGE).await?;
        Ok(found.into_iter().find_map(|c| {
            let same = c["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(&email));
            let ours = c["description"].as_str().is_some_and(|t| d.is_marked(t));
            (same && ours).then(|| c["auth_id"].as_str().map(str::to_owned)).flatten()
        }))
    }

    async fn observe(&self, id: &str, d: &SubAccountSpec) -> Result<Option<Observation>> {
        let Some(c) = self.0.send(Call::get(format!("/accounts/{}", self.0.segment(id)?))).await.absent_ok()? else {
            return Ok(None);
        };
        // Unlike the list, a single read shows the token in clear.
        let mut credentials = Credentials::default().with("authId", id);
        if let Some(token) = c["auth_token"].as_str().filter(|t| !t.starts_with('<')) {
            credentials.insert("authToken", token);
        }
        Ok(Some(Observation {
            active: c["is_active"] != false && c["enabled"] != false,
            drift: drift(d, &c),
            credentials,
            number: None,
            ownership: d.ownership_by_marker(c["description"].as_str().unwrap_or_default()),
        }))
    }

    async fn create(&self, d: &SubAccountSpec) -> Result<Created> {
        let c = self.0.send(Call::new(Method::POST, "/accounts", "create").json(body(d))).await?;
        let id = c["auth_id"].as_str().unwrap_or_default().to_owned();
        let mut credentials = Credentials::default().with("authId", id.clone());
        if let Some(token) = c["auth_token"].as_str() {
            credentials.insert("authToken", token);
        }
        if let Some(funding) = &d.vobiz_partner
            && let Some(amount) = funding.opening_balance.filter(|a| *a > 0.0)
        {
            // Transfers have no idempotency key, so the opening one is made exactly once, here;
            // if it fails the account still exists and the id must be kept.
            let body = json!({
                "amount": amount,
                "currency": funding.currency.as_deref().unwrap_or("USD"),
                "description": "opening balance (tenantline)",
            });
            let sent = match self.0.segment(&id) {
                Ok(segment) => {
                    let path = format!("/accounts/{segment}/transfer-balance");
                    self.0.send(Call::new(Method::POST, path, "transfer").json(body)).await.map(drop)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                let warning =
                    format!("the opening balance transfer to {id} failed ({e}); check its wallet and fund it by hand");
                return Ok(Created { id, credentials, warning: Some(warning), ..Default::default() });
            }
        }
        Ok(Created { id, credentials, ..Default::default() })
    }

    async fn update(&self, _: &str, _: &SubAccountSpec, _: &Credentials) -> Result<()> {
        Err(Error::unsupported(ProviderKind::VobizPartner, "changing customer accounts"))
    }

    async fn set_active(&self, _: &str, _: bool) -> Result<()> {
        Err(Error::unsupported(ProviderKind::VobizPartner, "deactivating customer accounts"))
    }

    async fn delete(&self, _: &str, _: &SubAccountSpec) -> Result<()> {
        Err(Error::unsupported(ProviderKind::VobizPartner, "deleting customer accounts"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Address, Owner, SecretString};

    fn spec() -> SubAccountSpec {
        SubAccountSpec {
            display_name: "Collections".into(),
            owner: Some(Owner { email: Some("c@acme.example".into()), ..Default::default() }),
            address: Some(Address {
                line1: Some("1 Main St".into()),
                line2: Some("Floor 2".into()),
                country: Some("US".into()),
                ..Default::default()
            }),
            password: Some(SecretString::from("S3cure!pass-123")),
            ..Default::default()
        }
    }

    #[test]
    fn the_body_flattens_the_address_and_leaves_out_unset_fields() {
        let b = body(&spec());
        assert_eq!(b["address"], "1 Main St, Floor 2");
        assert_eq!(b["password"], "S3cure!pass-123");
        assert!(b.get("company").is_none() && b.get("timezone").is_none());
    }

    #[test]
    fn drift_is_reported_by_spec_field() {
        let c = json!({"name": "Collections", "email": "C@ACME.example", "country": "us"});
        assert!(drift(&spec(), &c).is_empty());
        let c = json!({"name": "Renamed", "email": "c@acme.example", "country": "IN"});
        assert_eq!(drift(&spec(), &c), ["displayName", "address.country"]);
    }
}
