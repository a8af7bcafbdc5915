//! Vobiz sub-accounts and numbers: hard delete, `enabled` for activation, and
//! an `auth_token` shown only in the create response.
//!
//! No idempotency key exists, so the resource's key is appended to the sub-account's
//! `description` as a marker that `find` looks for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use super::drift::Drift;
use super::error::Absent;
use super::http::{Call, HttpClient};
use super::ids::{self, IdKind, IdShape};
use super::{
    AuthHeader, Capabilities, Created, Credentials, Descriptor, Error, ErrorClass, External, NumberSpec, Observation,
    Ownership, ProviderClients, ProviderKind, Result, SubAccountSpec,
};

/// Vobiz's auth headers, which its partner API shares.
pub(super) const AUTH: &[AuthHeader] = &[
    AuthHeader { name: "x-auth-id", prefix: "", key: "authId" },
    AuthHeader { name: "x-auth-token", prefix: "", key: "authToken" },
];

pub(super) static PROVIDER: Descriptor = Descriptor {
    kind: ProviderKind::Vobiz,
    name: "Vobiz",
    default_endpoint: "https://api.vobiz.ai/api/v1",
    parent_credential_keys: &["authId", "authToken"],
    auth: AUTH,
    sub_accounts: Capabilities {
        update: true,
        deactivate: true,
        delete: true,
        lookup: true,
        issued_credential_keys: &["authId", "authToken"],
        one_time_credentials: true,
        reissue: false,
        generated_password: false,
        provable: true,
    },
    ids: &[
        IdShape {
            kind: IdKind::SubAccount,
            shape: "SA_ followed by letters and digits",
            matches: |id| vobiz_id(id, "SA_"),
        },
        // Numbers are addressed by their E.164 form.
        IdShape { kind: IdKind::Number, shape: "E.164: + and up to 15 digits", matches: ids::e164 },
    ],
    missing_field,
    clients,
};

/// A Vobiz account id: `prefix` (`SA_`, `MA_`) and letters and digits, or an id of an older
/// scheme (20 to 40 letters and digits: Plivo's `SA…` ids, older docs' 32-character ids).
pub(super) fn vobiz_id(id: &str, prefix: &str) -> bool {
    ids::prefixed(id, prefix) || ids::letters_digits(id, 20, 40)
}

/// A sub-account for customer use must have an owner to do its KYC.
fn missing_field(d: &SubAccountSpec) -> Option<&'static str> {
    let customer_use = d.vobiz.as_ref().and_then(|v| v.kyc_mode.as_deref()) == Some("customer_use");
    let email = d.owner.as_ref().is_some_and(|o| o.email.is_some());
    (customer_use && !email).then_some("owner.email (for kycMode customer_use)")
}

const PAGE: u32 = 100;

fn clients(http: HttpClient) -> ProviderClients {
    ProviderClients {
        sub_accounts: Arc::new(SubAccounts { http: http.clone(), marked: Mutex::default() }),
        members: None,
        numbers: Some(Arc::new(Numbers { http, picks: Mutex::default() })),
    }
}

struct SubAccounts {
    http: HttpClient,
    /// `(description, auth_id)` of every sub-account carrying a tenantline marker, listed once
    /// when a first create needs it and extended with our own creates: Vobiz cannot search, and
    /// a full listing per create would grow with the square of the number of accounts.
    marked: Mutex<Option<Vec<(String, String)>>>,
}

impl SubAccounts {
    /// The sub-accounts collection, or one sub-account's path.
    fn path(&self, sub: Option<&str>) -> Result<String> {
        let parent = self.http.segment(self.http.credential("authId"))?;
        let sub = sub.map(|s| self.http.segment(s)).transpose()?;
        Ok(format!("/accounts/{parent}/sub-accounts/{}", sub.unwrap_or_default()))
    }

    async fn all(&self) -> Result<Vec<Value>> {
        let path = self.path(None)?;
        self.http.list_pages(|| Call::get(path.clone()), "sub_accounts", "size", PAGE).await
    }
}

fn marked(s: &Value) -> Option<(String, String)> {
    let description = s["description"].as_str().filter(|d| d.contains("[tenantline.io/"))?;
    Some((description.to_owned(), s["auth_id"].as_str()?.to_owned()))
}

/// The description as stored: the user's text, then the marker.
fn description(d: &SubAccountSpec) -> String {
    let user = d.vobiz.as_ref().and_then(|v| v.description.as_deref()).filter(|s| !s.is_empty());
    match user {
        Some(text) => format!("{text} {}", d.key_marker()),
        None => d.key_marker(),
    }
}

/// The create/PUT body (PUT is a partial update, so unset fields are left out).
fn body(d: &SubAccountSpec) -> Value {
    let o = d.owner.clone().unwrap_or_default();
    let v = d.vobiz.clone().unwrap_or_default();
    let mut body = json!({"name": d.display_name, "description": description(d), "enabled": d.active});
    let mut set = |k: &str, value: Option<Value>| {
        if let Some(value) = value {
            body[k] = value;
        }
    };
    set("email", o.email.map(Value::from));
    set("phone", o.phone.map(Value::from));
    set("rate_limit", v.rate_limit.map(Value::from));
    set("kyc_mode", v.kyc_mode.map(Value::from));
    if v.permissions_calls.is_some() || v.permissions_cdr.is_some() {
        body["permissions"] =
            json!({"calls": v.permissions_calls.unwrap_or(true), "cdr": v.permissions_cdr.unwrap_or(true)});
    }
    body
}

fn drift(d: &SubAccountSpec, s: &Value) -> Vec<String> {
    let o = d.owner.clone().unwrap_or_default();
    let v = d.vobiz.clone().unwrap_or_default();
    Drift::default()
        .text("displayName", Some(&d.display_name), &s["name"])
        .text_ci("owner.email", o.email.as_deref(), &s["email"])
        .text("owner.phone", o.phone.as_deref(), &s["phone"])
        .text("vobiz.description", Some(&description(d)), &s["description"])
        .value("vobiz.rateLimit", v.rate_limit.map(Value::from), &s["rate_limit"])
        .value("vobiz.permissions.calls", v.permissions_calls.map(Value::from), &s["permissions"]["calls"])
        .value("vobiz.permissions.cdr", v.permissions_cdr.map(Value::from), &s["permissions"]["cdr"])
        .text("vobiz.kycMode", v.kyc_mode.as_deref(), &s["kyc_mode"])
        .fields()
}

#[async_trait]
impl External<SubAccountSpec> for SubAccounts {
    fn capabilities(&self) -> Capabilities {
        PROVIDER.sub_accounts
    }

    async fn verify(&self) -> Result<()> {
        let call = Call::get(self.path(None)?).query("page", 1).query("size", 1).with_operation("verify");
        self.http.send(call).await.map(drop)
    }

    async fn find(&self, d: &SubAccountSpec) -> Result<Option<String>> {
        let all = self.all().await?;
        Ok(all.iter().filter_map(marked).find_map(|(text, id)| d.is_marked(&text).then_some(id)))
    }

    async fn find_made_earlier(&self, d: &SubAccountSpec) -> Result<Option<String>> {
        if self.marked.lock().unwrap().is_none() {
            let listed = self.all().await?.iter().filter_map(marked).collect();
            self.marked.lock().unwrap().get_or_insert(listed);
        }
        let found =
            self.marked.lock().unwrap().iter().flatten().find_map(|(text, id)| d.is_marked(text).then(|| id.clone()));
        let Some(id) = found else { return Ok(None) };
        // The listing may be old: make sure the account is still there.
        if self.http.send(Call::get(self.path(Some(&id))?)).await.absent_ok()?.is_none() {
            if let Some(marked) = self.marked.lock().unwrap().as_mut() {
                marked.retain(|(_, i)| *i != id);
            }
            return Ok(None);
        }
        Ok(Some(id))
    }

    async fn observe(&self, id: &str, d: &SubAccountSpec) -> Result<Option<Observation>> {
        let Some(s) = self.http.send(Call::get(self.path(Some(id))?)).await.absent_ok()? else {
            return Ok(None);
        };
        Ok(Some(Observation {
            active: s["enabled"] != false && s["is_active"] != false,
            drift: drift(d, &s),
            // The token reads back as "<redacted>": only the id is shown again.
            credentials: Credentials::default().with("authId", id),
            number: None,
            ownership: d.ownership_by_marker(s["description"].as_str().unwrap_or_default()),
        }))
    }

    async fn create(&self, d: &SubAccountSpec) -> Result<Created> {
        let r = self.http.send(Call::new(Method::POST, self.path(None)?, "create").json(body(d))).await?;
        let creds = &r["auth_credentials"];
        let id = creds["auth_id"].as_str().or(r["sub_account"]["auth_id"].as_str()).unwrap_or_default().to_owned();
        if let Some(marked) = self.marked.lock().unwrap().as_mut() {
            marked.push((description(d), id.clone()));
        }
        let mut credentials = Credentials::default().with("authId", id.clone());
        if let Some(token) = creds["auth_token"].as_str().or(r["sub_account"]["auth_token"].as_str()) {
            credentials.insert("authToken", token);
        }
        Ok(Created { id, credentials, ..Default::default() })
    }

    async fn update(&self, id: &str, d: &SubAccountSpec, _: &Credentials) -> Result<()> {
        self.http.send(Call::new(Method::PUT, self.path(Some(id))?, "update").json(body(d))).await.map(drop)
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<()> {
        let call = Call::new(Method::PUT, self.path(Some(id))?, "set_active").json(json!({"enabled": active}));
        self.http.send(call).await.map(drop)
    }

    async fn delete(&self, id: &str, _: &SubAccountSpec) -> Result<()> {
        let call = Call::new(Method::DELETE, self.path(Some(id))?, "delete");
        self.http.send(call).await.absent_ok().map(drop)
    }
}

/// Numbers are bought from the parent's inventory, then assigned to the sub-account; the id is
/// the E.164 number.
struct Numbers {
    http: HttpClient,
    /// Numbers picked in this process, until released, and by whom. Between purchase and
    /// assignment a number is the parent's and unassigned, whoever bought it, and until its
    /// resource records it another resource's lookup could take it: this keeps two resources
    /// from picking one number (from listings taken before either purchase) and a resource from
    /// taking a number it did not buy. `NumberSpec::claimed` does the same across restarts.
    picks: Mutex<HashMap<String, Pick>>,
}

struct Pick {
    /// `NumberSpec::buyer`.
    buyer: String,
    standing: Standing,
}

/// What this process knows of a pick's purchase.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Picked here: not bought yet, bought, or sent with its answer lost.
    Open,
    /// Picked before a restart (read from the resource's record): a purchase sent then may land
    /// late, so one refusal here does not prove that the number is not ours.
    Inherited,
    /// The provider refused the purchase: the number was not in the inventory, so not bought by us.
    Refused,
}

impl Numbers {
    /// The parent's auth id as a path segment.
    fn parent(&self) -> Result<String> {
        self.http.segment(self.http.credential("authId"))
    }

    /// The parent's number `e164`, whoever it is assigned to.
    async fn get(&self, e164: &str) -> Result<Option<Value>> {
        let path = format!("/Account/{}/numbers", self.parent()?);
        let numbers = self.http.list_pages(|| Call::get(path.clone()).query("search", e164), "items", "per_page", PAGE);
        Ok(numbers.await?.into_iter().find(|n| n["e164"] == e164))
    }

    /// An inventory number that matches the search and that no other resource picked, noted as
    /// `d.buyer`'s. The buyer's earlier picks go: the lookup before this create found none bought.
    async fn choose(&self, d: &NumberSpec) -> Result<String> {
        let search = d.search.clone().unwrap_or_default();
        let path = format!("/Account/{}/inventory/numbers", self.parent()?);
        let call = Call::get(path).query("country", &search.country).query("per_page", PAGE);
        let call = match &search.area_code {
            Some(area) => call.query("search", area),
            None => call,
        };
        let items = self.http.send(call).await?;
        let items = items["items"].as_array().cloned().unwrap_or_default();
        let matching: Vec<&str> = items.iter().filter_map(|n| n["e164"].as_str()).filter(|e| matches(d, e)).collect();
        if matching.is_empty() {
            return Err(Error::Invalid {
                provider: ProviderKind::Vobiz,
                field: Some("search".into()),
                message: "no number in the inventory matches the search".into(),
            });
        }
        let mut picks = self.picks.lock().unwrap();
        picks.retain(|_, p| p.buyer != d.buyer);
        let taken = |e: &str| picks.contains_key(e) || d.claimed.iter().any(|c| c == e);
        let free: Vec<&str> = matching.into_iter().filter(|e| !taken(e)).collect();
        if free.is_empty() {
            return Err(Error::Transient {
                provider: ProviderKind::Vobiz,
                message: "every number that matches the search is being bought for another PhoneNumber".into(),
            });
        }
        // A random one, so that PhoneNumbers created at the same time rarely race for one number.
        let e164 = free[rand::random_range(0..free.len())].to_owned();
        picks.insert(e164.clone(), Pick { buyer: d.buyer.clone(), standing: Standing::Open });
        Ok(e164)
    }

    /// Whether the parent's unassigned number `e164`, which `d` picked, may be one its purchase
    /// bought: unless this process saw that purchase refused or gave the number to another
    /// resource. A pick this process does not know was made before a restart, and recorded.
    fn may_have_bought(&self, e164: &str, d: &NumberSpec) -> bool {
        self.picks.lock().unwrap().get(e164).is_none_or(|p| p.buyer == d.buyer && p.standing != Standing::Refused)
    }

    /// Whether this process picked `e164` for another resource.
    fn picked_by_another(&self, e164: &str, d: &NumberSpec) -> bool {
        self.picks.lock().unwrap().get(e164).is_some_and(|p| p.buyer != d.buyer)
    }

    async fn assign(&self, e164: &str, sub: &str) -> Result<()> {
        let path = format!("/account/{}/numbers/{}/assign-subaccount", self.parent()?, self.http.segment(e164)?);
        let call = Call::new(Method::POST, path, "assign").json(json!({"sub_account_id": sub}));
        self.http.send(call).await.map(drop)
    }
}

/// Whether `e164` is what the spec asks for: that number, or one in the searched area.
fn matches(d: &NumberSpec, e164: &str) -> bool {
    if let Some(number) = &d.number {
        return number == e164;
    }
    let area = d.search.as_ref().and_then(|s| s.area_code.as_deref());
    // North American numbers put the area code right after +1; elsewhere any position counts.
    area.is_none_or(|a| e164.strip_prefix("+1").map_or(e164.contains(a), |rest| rest.starts_with(a)))
}

#[async_trait]
impl External<NumberSpec> for Numbers {
    fn capabilities(&self) -> Capabilities {
        Capabilities { update: true, delete: true, lookup: true, provable: true, ..Capabilities::NONE }
    }

    async fn find(&self, d: &NumberSpec) -> Result<Option<String>> {
        if let Some(number) = &d.number {
            // A named number the parent already owns is taken over, assigned or not, unless
            // another resource holds it.
            if d.claimed.contains(number) {
                return Ok(None);
            }
            return Ok(self.get(number).await?.filter(|n| n["status"] == "active").map(|_| number.clone()));
        }
        if let Some(picked) = d.picked.as_ref().filter(|p| !d.claimed.contains(p)) {
            // The number picked for an earlier attempt: bought if it is now ours, or the
            // parent's and unassigned (the purchase's answer was lost).
            if let Some(n) = self.get(picked).await?.filter(|n| n["status"] == "active") {
                let assigned = n["sub_account_id"] == d.sub_account_id.as_str();
                if assigned || (n["sub_account_id"].is_null() && self.may_have_bought(picked, d)) {
                    return Ok(Some(picked.clone()));
                }
            }
        }
        // Bought in an earlier life of the cluster: assigned to the sub-account.
        let path = format!("/Account/{}/numbers", self.parent()?);
        let numbers = self.http.list_pages(|| Call::get(path.clone()), "items", "per_page", PAGE).await?;
        Ok(numbers.iter().find_map(|n| {
            let e164 = n["e164"].as_str()?;
            let ours = n["sub_account_id"] == d.sub_account_id.as_str() && n["status"] == "active";
            let others = d.claimed.iter().any(|c| c == e164) || self.picked_by_another(e164, d);
            (ours && !others && matches(d, e164)).then(|| e164.to_owned())
        }))
    }

    async fn observe(&self, id: &str, d: &NumberSpec) -> Result<Option<Observation>> {
        // A number waiting out its release cooldown is as good as gone.
        let Some(n) = self.get(id).await?.filter(|n| n["status"] == "active") else {
            return Ok(None);
        };
        let drift = Drift::default().check("subAccountRef", n["sub_account_id"] != d.sub_account_id.as_str());
        // The parent's own pool, or this sub-account: anywhere else it is another's number.
        let ownership = match n["sub_account_id"].as_str().filter(|s| !s.is_empty()) {
            Some(other) if other != d.sub_account_id => {
                Ownership::Foreign(format!("it is assigned to sub-account {other}"))
            }
            _ => Ownership::Ours,
        };
        Ok(Some(Observation {
            active: true,
            drift: drift.fields(),
            credentials: Credentials::default(),
            number: Some(id.to_owned()),
            ownership,
        }))
    }

    async fn pick(&self, d: &NumberSpec) -> Result<Option<String>> {
        if d.number.is_some() {
            return Ok(None);
        }
        // The number picked before, which the lookup found not bought, is bought again rather
        // than another: a purchase of it sent before a restart may still land.
        if let Some(picked) = d.picked.as_ref().filter(|p| !d.claimed.contains(p)) {
            let mut picks = self.picks.lock().unwrap();
            let pick = picks
                .entry(picked.clone())
                .or_insert_with(|| Pick { buyer: d.buyer.clone(), standing: Standing::Inherited });
            if pick.buyer == d.buyer && pick.standing != Standing::Refused {
                return Ok(Some(picked.clone()));
            }
        }
        self.choose(d).await.map(Some)
    }

    async fn create(&self, d: &NumberSpec) -> Result<Created> {
        let e164 = match d.number.as_ref().or(d.picked.as_ref()) {
            Some(number) => number.clone(),
            None => self.choose(d).await?,
        };
        let path = format!("/Account/{}/numbers/purchase-from-inventory", self.parent()?);
        let purchase = Call::new(Method::POST, path, "create").json(json!({"e164": e164}));
        if let Err(e) = self.http.send(purchase).await {
            // A transient failure can hide a purchase that went through (its answer was lost):
            // the lookup before the next attempt finds the number if so. A refusal says it was
            // not bought, unless by a purchase sent before a restart that landed just before.
            if matches!(e.class(), ErrorClass::NotFound | ErrorClass::Invalid)
                && let Some(p) = self.picks.lock().unwrap().get_mut(&e164)
            {
                p.standing = match p.standing {
                    Standing::Inherited => Standing::Open,
                    _ => Standing::Refused,
                };
            }
            return Err(e);
        }
        // The number is ours now: report it even if the assignment fails, so that the id is
        // kept and the next observe re-assigns it instead of buying another.
        if let Err(e) = self.assign(&e164, &d.sub_account_id).await {
            tracing::warn!(error = %e, "bought {e164} but could not assign it yet");
        }
        Ok(Created { id: e164.clone(), number: Some(e164), ..Default::default() })
    }

    async fn update(&self, id: &str, d: &NumberSpec, _: &Credentials) -> Result<()> {
        self.assign(id, &d.sub_account_id).await
    }

    async fn set_active(&self, _: &str, _: bool) -> Result<()> {
        Err(Error::unsupported(ProviderKind::Vobiz, "deactivating numbers"))
    }

    async fn delete(&self, id: &str, _: &NumberSpec) -> Result<()> {
        let path = format!("/Account/{}/numbers/{}", self.parent()?, self.http.segment(id)?);
        let call = Call::new(Method::DELETE, path, "delete").query("immediate", true);
        self.http.send(call).await.absent_ok()?;
        self.picks.lock().unwrap().remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{NumberSearch, Owner, VobizOptions};

    fn spec() -> SubAccountSpec {
        SubAccountSpec {
            idempotency_key: "default/ns/support".into(),
            display_name: "Support".into(),
            active: true,
            owner: Some(Owner { email: Some("a@x.io".into()), ..Default::default() }),
            vobiz: Some(VobizOptions { rate_limit: Some(500), description: Some("Line".into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn the_description_carries_the_marker_after_the_users_text() {
        let b = body(&spec());
        assert_eq!(b["description"], "Line [tenantline.io/key=default/ns/support]");
        assert_eq!(b["rate_limit"], 500);
        assert!(b.get("permissions").is_none() && b.get("phone").is_none());
    }

    #[test]
    fn the_marker_is_found_and_so_is_an_older_uid_marker() {
        let d = SubAccountSpec { legacy_key: Some("uid-1".into()), ..spec() };
        assert!(d.is_marked("Line [tenantline.io/key=default/ns/support]"));
        assert!(d.is_marked("Line [tenantline.io/uid=uid-1]"));
        assert!(!d.is_marked("Line [tenantline.io/key=default/ns/support-2]"), "another resource's key");
        assert!(!d.is_marked("Line [tenantline.io/key=other/ns/support]"), "another cluster's owner id");
        assert!(!SubAccountSpec { legacy_key: Some(String::new()), ..spec() }.is_marked("[tenantline.io/uid=]"));
    }

    #[test]
    fn drift_compares_what_the_spec_sets() {
        let same = json!({"name": "Support", "email": "A@x.io", "description": "Line [tenantline.io/key=default/ns/support]",
                          "rate_limit": 500, "permissions": {"calls": true, "cdr": true}});
        assert!(drift(&spec(), &same).is_empty());
        let changed = json!({"name": "Support", "email": "b@x.io", "description": "edited", "rate_limit": 1000});
        assert_eq!(drift(&spec(), &changed), ["owner.email", "vobiz.description", "vobiz.rateLimit"]);
    }

    #[test]
    fn area_codes_match_after_the_country_code() {
        let d = NumberSpec {
            search: Some(NumberSearch { country: "US".into(), area_code: Some("415".into()) }),
            ..Default::default()
        };
        assert!(matches(&d, "+14155550101"));
        assert!(!matches(&d, "+12124155555"));
        let named = NumberSpec { number: Some("+14155550101".into()), ..Default::default() };
        assert!(matches(&named, "+14155550101") && !matches(&named, "+14155550102"));
    }
}
