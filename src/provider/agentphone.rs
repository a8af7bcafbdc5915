//! AgentPhone: named sub-accounts (at most 25) and numbers bought for one
//! sub-account through `X-Sub-Account-Id`.
//!
//! A sub-account has nothing but a name, so `find` matches the exact name, and there is no GET
//! by id: `observe` reads the list.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use super::drift::Drift;
use super::error::Absent;
use super::http::{Call, HttpClient};
use super::ids::{self, IdKind, IdShape};
use super::{
    AuthHeader, Capabilities, Created, Credentials, Descriptor, Error, External, NumberSpec, Observation, Ownership,
    ProviderClients, ProviderKind, Result, SubAccountSpec,
};

const PAGE: u32 = 100;
const SUB_ACCOUNT: &str = "X-Sub-Account-Id";

pub(super) static PROVIDER: Descriptor = Descriptor {
    kind: ProviderKind::AgentPhone,
    name: "AgentPhone",
    default_endpoint: "https://api.agentphone.ai",
    parent_credential_keys: &["apiKey"],
    auth: &[AuthHeader { name: "authorization", prefix: "Bearer ", key: "apiKey" }],
    sub_accounts: Capabilities {
        update: true,
        delete: true,
        lookup: true,
        issued_credential_keys: &["subAccountId"],
        ..Capabilities::NONE
    },
    ids: &[
        // Sub-account ids are not documented (the simulator's are `sub_…`): any plain token.
        IdShape { kind: IdKind::SubAccount, shape: "letters, digits, '_' and '-'", matches: ids::token },
        IdShape {
            kind: IdKind::Number,
            shape: "num_ followed by letters, digits, '_' and '-'",
            matches: |id| ids::prefixed_token(id, "num_"),
        },
    ],
    missing_field: |_| None,
    clients,
};

fn clients(http: HttpClient) -> ProviderClients {
    ProviderClients {
        sub_accounts: Arc::new(SubAccounts(http.clone())),
        members: None,
        numbers: Some(Arc::new(Numbers(http))),
    }
}

struct SubAccounts(HttpClient);

impl SubAccounts {
    async fn all(&self) -> Result<Vec<Value>> {
        self.0.list_offset(|| Call::get("/v1/sub-accounts"), "data", PAGE).await
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

#[async_trait]
impl External<SubAccountSpec> for SubAccounts {
    fn capabilities(&self) -> Capabilities {
        PROVIDER.sub_accounts
    }

    async fn verify(&self) -> Result<()> {
        self.0.send(Call::get("/v1/sub-accounts").query("limit", 1).with_operation("verify")).await.map(drop)
    }

    async fn find(&self, d: &SubAccountSpec) -> Result<Option<String>> {
        Ok(self.all().await?.iter().find(|s| s["name"] == d.display_name.as_str()).map(id_of))
    }

    async fn observe(&self, id: &str, d: &SubAccountSpec) -> Result<Option<Observation>> {
        let Some(s) = self.all().await?.into_iter().find(|s| s["id"] == id) else {
            return Ok(None);
        };
        Ok(Some(Observation {
            active: true,
            drift: Drift::default().text("displayName", Some(&d.display_name), &s["name"]).fields(),
            credentials: Credentials::default().with("subAccountId", id),
            ..Default::default()
        }))
    }

    async fn create(&self, d: &SubAccountSpec) -> Result<Created> {
        let call = Call::new(Method::POST, "/v1/sub-accounts", "create").json(json!({"name": d.display_name}));
        let id = id_of(&self.0.send(call).await?);
        Ok(Created { credentials: Credentials::default().with("subAccountId", id.clone()), id, ..Default::default() })
    }

    async fn update(&self, id: &str, d: &SubAccountSpec, _: &Credentials) -> Result<()> {
        let call = Call::new(Method::PATCH, format!("/v1/sub-accounts/{}", self.0.segment(id)?), "update")
            .json(json!({"name": d.display_name}));
        self.0.send(call).await.map(drop)
    }

    async fn set_active(&self, _: &str, _: bool) -> Result<()> {
        Err(Error::unsupported(ProviderKind::AgentPhone, "deactivating sub-accounts"))
    }

    async fn delete(&self, id: &str, _: &SubAccountSpec) -> Result<()> {
        let call = Call::new(Method::DELETE, format!("/v1/sub-accounts/{}", self.0.segment(id)?), "delete");
        self.0.send(call).await.absent_ok().map(drop)
    }
}

struct Numbers(HttpClient);

/// Whether the number is what the spec asks for: that number, or one of the searched country and
/// area code.
fn matches(d: &NumberSpec, n: &Value) -> bool {
    let phone = n["phoneNumber"].as_str().unwrap_or_default();
    if let Some(number) = &d.number {
        return number == phone;
    }
    let Some(search) = &d.search else { return false };
    let area = search.area_code.as_deref();
    n["country"].as_str().is_some_and(|c| c.eq_ignore_ascii_case(&search.country))
        && area.is_none_or(|a| phone.strip_prefix("+1").is_some_and(|rest| rest.starts_with(a)))
}

#[async_trait]
impl External<NumberSpec> for Numbers {
    fn capabilities(&self) -> Capabilities {
        Capabilities { delete: true, lookup: true, provable: true, ..Capabilities::NONE }
    }

    async fn find(&self, d: &NumberSpec) -> Result<Option<String>> {
        let call = || Call::get("/v1/numbers").header(SUB_ACCOUNT, d.sub_account_id.clone());
        let numbers = self.0.list_offset(call, "data", PAGE).await.absent_ok()?.unwrap_or_default();
        Ok(numbers
            .iter()
            .filter(|n| !d.claimed.iter().any(|c| n["phoneNumber"] == c.as_str() || n["id"] == c.as_str()))
            .find(|n| matches(d, n))
            .map(id_of))
    }

    async fn observe(&self, id: &str, d: &NumberSpec) -> Result<Option<Observation>> {
        let call =
            Call::get(format!("/v1/numbers/{}", self.0.segment(id)?)).header(SUB_ACCOUNT, d.sub_account_id.clone());
        let Some(n) = self.0.send(call).await.absent_ok()?.filter(|n| n["status"] == "active") else {
            return Ok(None);
        };
        Ok(Some(Observation {
            active: true,
            drift: Vec::new(),
            credentials: Credentials::default(),
            number: n["phoneNumber"].as_str().map(str::to_owned),
            // Read through the sub-account, which sees only its own numbers.
            ownership: Ownership::Ours,
        }))
    }

    async fn create(&self, d: &NumberSpec) -> Result<Created> {
        let Some(search) = &d.search else {
            return Err(Error::unsupported(ProviderKind::AgentPhone, "buying a specific number (use spec.search)"));
        };
        let body = json!({"country": search.country, "areaCode": search.area_code});
        let call = Call::new(Method::POST, "/v1/numbers", "create").header(SUB_ACCOUNT, d.sub_account_id.clone());
        let n = self.0.send(call.json(body)).await?;
        Ok(Created { id: id_of(&n), number: n["phoneNumber"].as_str().map(str::to_owned), ..Default::default() })
    }

    async fn update(&self, _: &str, _: &NumberSpec, _: &Credentials) -> Result<()> {
        Err(Error::unsupported(ProviderKind::AgentPhone, "changing numbers"))
    }

    async fn set_active(&self, _: &str, _: bool) -> Result<()> {
        Err(Error::unsupported(ProviderKind::AgentPhone, "deactivating numbers"))
    }

    async fn delete(&self, id: &str, d: &NumberSpec) -> Result<()> {
        let call = Call::new(Method::DELETE, format!("/v1/numbers/{}", self.0.segment(id)?), "delete")
            .header(SUB_ACCOUNT, d.sub_account_id.clone());
        self.0.send(call).await.absent_ok().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::NumberSearch;

    #[test]
    fn a_search_matches_country_and_area_code() {
        let d = NumberSpec {
            search: Some(NumberSearch { country: "US".into(), area_code: Some("415".into()) }),
            ..Default::default()
        };
        assert!(matches(&d, &json!({"phoneNumber": "+14155550123", "country": "US"})));
        assert!(!matches(&d, &json!({"phoneNumber": "+12125550123", "country": "US"})));
        assert!(!matches(&d, &json!({"phoneNumber": "+14155550123", "country": "CA"})));
        let named = NumberSpec { number: Some("+14155550123".into()), ..Default::default() };
        assert!(matches(&named, &json!({"phoneNumber": "+14155550123"})));
    }
}
