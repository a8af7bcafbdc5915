//! A fleet of SubAccounts across all five providers, with TeamMembers and PhoneNumbers where the
//! provider has them, and the checks that the providers hold exactly what it asks for: one
//! account per SubAccount, each number bought once, every Secret holding the credentials the
//! provider issued for that very account.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::ListParams;
use kube::{Api, Resource};
use serde_json::{Value, json};
use tenantline::api::{PhoneNumber, SubAccount, TeamMember};
use tenantline_sim::seed::{
    DEV_AGENTPHONE_KEY, DEV_PARTNER_AUTH_ID, DEV_PARTNER_AUTH_TOKEN, DEV_RECOVERBIZ_KEY, DEV_VOBIZ_AUTH_ID,
    DEV_VOBIZ_AUTH_TOKEN, DEV_YARDSTIK_KEY,
};

use crate::harness::Env;

/// `(config, provider, endpoint path, Secret, Secret data)`. AgentPhone is split over two master
/// keys: 25 sub-accounts is its limit per key.
type Config = (&'static str, &'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

const CONFIGS: [Config; 6] = [
    ("recoverbiz", "RecoverBiz", "/recoverbiz/v1", "recoverbiz-partner", &[("partnerKey", DEV_RECOVERBIZ_KEY)]),
    (
        "vobiz",
        "Vobiz",
        "/vobiz/api/v1",
        "vobiz-parent",
        &[("authId", DEV_VOBIZ_AUTH_ID), ("authToken", DEV_VOBIZ_AUTH_TOKEN)],
    ),
    ("agentphone", "AgentPhone", "/agentphone", "agentphone-master", &[("apiKey", DEV_AGENTPHONE_KEY)]),
    ("agentphone-2", "AgentPhone", "/agentphone", "agentphone-master-2", &[("apiKey", SECOND_AGENTPHONE_KEY)]),
    (
        "vobiz-partner",
        "VobizPartner",
        "/vobiz-partner/api/v1/partner",
        "vobiz-partner",
        &[("authId", DEV_PARTNER_AUTH_ID), ("authToken", DEV_PARTNER_AUTH_TOKEN)],
    ),
    ("yardstik", "Yardstik", "/yardstik", "yardstik-platform", &[("apiKey", DEV_YARDSTIK_KEY)]),
];

/// A second AgentPhone master key, seeded by the fleet.
const SECOND_AGENTPHONE_KEY: &str = "sk_live_sim_agentphone_chaos_2";

/// `per_provider` SubAccounts at each provider (AgentPhone's split over its two configs).
pub struct Fleet {
    pub per_provider: usize,
}

impl Fleet {
    /// Seed the simulator (Vobiz numbers in 415, the second AgentPhone key) and apply the
    /// ProviderConfigs with their Secrets.
    pub async fn configure(&self, env: &Env, rate: u64, burst: u64, poll: &str) {
        env.sim
            .seed(json!({
                "vobiz": {"accounts": [{"authId": DEV_VOBIZ_AUTH_ID, "authToken": DEV_VOBIZ_AUTH_TOKEN,
                    "inventory": (0..self.per_provider).map(|n| format!("+1415555{:04}", 3000 + n)).collect::<Vec<_>>()}]},
                "agentphone": {"apiKeys": [SECOND_AGENTPHONE_KEY]},
            }))
            .await;
        for (name, provider, path, secret, data) in CONFIGS {
            let data: String = data.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect();
            env.apply_ok(&format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: {secret}}}\nstringData:\n{data}---\n\
                 apiVersion: tenantline.io/v1alpha1\nkind: ProviderConfig\nmetadata: {{name: {name}}}\nspec:\n  \
                 provider: {provider}\n  endpoint: http://{}{path}\n  credentialsSecretRef: {{name: {secret}}}\n  \
                 rateLimit: {{requestsPerSecond: {rate}, burst: {burst}}}\n  pollInterval: {poll}\n",
                env.sim.addr
            ));
        }
    }

    /// Every SubAccount with its children, as one YAML stream.
    pub fn manifests(&self) -> String {
        let n = self.per_provider;
        let per_config = [
            ("recoverbiz", n),
            ("vobiz", n),
            ("agentphone", n / 2),
            ("agentphone-2", n - n / 2),
            ("vobiz-partner", n),
            ("yardstik", n),
        ];
        per_config.iter().flat_map(|(c, n)| (0..*n).map(|i| resources(c, i))).collect::<Vec<_>>().join("---\n")
    }

    /// `(SubAccounts, TeamMembers, PhoneNumbers)` in the fleet.
    pub fn expected(&self) -> (usize, usize, usize) {
        (5 * self.per_provider, self.per_provider, 2 * self.per_provider)
    }

    /// `(ready, total)` of SubAccounts, TeamMembers and PhoneNumbers; nothing while the API
    /// server does not answer.
    pub async fn ready(env: &Env) -> Option<[(usize, usize); 3]> {
        Some([
            ready_count(&env.api::<SubAccount>()).await?,
            ready_count(&env.api::<TeamMember>()).await?,
            ready_count(&env.api::<PhoneNumber>()).await?,
        ])
    }

    pub async fn all_ready(&self, env: &Env) -> bool {
        let (s, t, p) = self.expected();
        Self::ready(env).await.is_some_and(|r| r == [(s, s), (t, t), (p, p)])
    }

    /// A few SubAccounts that are not Ready, with their conditions, for a failure message.
    pub async fn not_ready(env: &Env) -> Vec<(Option<String>, Value)> {
        let list = env.api::<SubAccount>().list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
        list.into_iter()
            .filter(|s| !is_ready(&serde_json::to_value(s).unwrap()))
            .map(|s| (s.metadata.name.clone(), json!(s.status.map(|s| s.managed.common.conditions))))
            .take(5)
            .collect()
    }

    /// Fail unless the providers hold exactly one account per SubAccount, each number was bought
    /// once and is the one its PhoneNumber reports, and every Secret holds the credentials the
    /// provider issued for its account. `label` prefixes the figures printed.
    pub async fn assert_at_providers(&self, env: &Env, label: &str) {
        let n = self.per_provider;
        let state = env.sim.state().await;
        let list = |p: &str| state.pointer(p).and_then(Value::as_array).cloned().unwrap_or_default();
        let accounts = BTreeMap::from([
            ("recoverbiz", list("/recoverbiz/accounts").len()),
            ("vobiz", list("/vobiz/subAccounts").len()),
            ("agentphone", list("/agentphone/subAccounts").len()),
            ("vobizPartner", list("/vobizPartner/accounts").len()),
            ("yardstik", list("/yardstik/subAccounts").len()),
        ]);
        eprintln!("{label}: accounts at the providers {accounts:?}");
        assert!(accounts.values().all(|a| *a == n), "duplicates or losses: {accounts:?}");
        let vobiz_numbers: Vec<String> =
            list("/vobiz/numbers").iter().map(|n| n["e164"].as_str().unwrap().to_owned()).collect();
        let agentphone_numbers: Vec<String> =
            list("/agentphone/numbers").iter().map(|n| n["phoneNumber"].as_str().unwrap().to_owned()).collect();
        eprintln!("{label}: numbers bought: Vobiz {}, AgentPhone {}", vobiz_numbers.len(), agentphone_numbers.len());
        for bought in [&vobiz_numbers, &agentphone_numbers] {
            assert_eq!(bought.len(), n, "a number bought twice or not at all");
            assert_eq!(bought.iter().collect::<BTreeSet<_>>().len(), n);
        }
        let owned: BTreeSet<String> = vobiz_numbers.into_iter().chain(agentphone_numbers).collect();
        for pn in env.api::<PhoneNumber>().list(&ListParams::default()).await.unwrap() {
            let number = pn.status.and_then(|s| s.number).unwrap_or_default();
            assert!(owned.contains(&number), "{:?}: {number} is not at the provider", pn.metadata.name);
        }

        let mut valid = 0;
        for sa in env.api::<SubAccount>().list(&ListParams::default()).await.unwrap() {
            let name = sa.metadata.name.clone().unwrap();
            let id = sa.status.unwrap().managed.external_id.unwrap();
            let secret =
                env.secret(&format!("{name}-credentials")).await.unwrap_or_else(|| panic!("{name}: no Secret"));
            let data: BTreeMap<String, String> =
                secret.data.unwrap().into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect();
            assert_eq!(data["accountId"], id, "{name}");
            assert_accepted(env, &name, name.rsplit_once('-').unwrap().0, &data, &state).await;
            valid += 1;
        }
        eprintln!("{label}: Secrets the providers accept: {valid}/{}", 5 * n);
    }
}

/// Use SubAccount `name`'s credentials Secret (`data`, through config `config`) as a workload
/// would, at the endpoint the Secret names, and fail unless the provider accepts it for the
/// account the Secret names: RecoverBiz's account under the partner key, AgentPhone's
/// sub-account by `X-Sub-Account-Id` under the master key, Yardstik's account with its own
/// `apiToken`. The simulator takes a Vobiz sub-account's or a Vobiz Partner customer's own
/// credentials on no route, so for those two the token must be the one the provider issued
/// (`state`: the simulator's state).
pub async fn assert_accepted(env: &Env, name: &str, config: &str, data: &BTreeMap<String, String>, state: &Value) {
    let (provider, endpoint, id) = (data["provider"].as_str(), &data["endpoint"], &data["accountId"]);
    let http = env.sim.http();
    let request = match provider {
        "RecoverBiz" => http.get(format!("{endpoint}/accounts/{id}")).header("X-Partner-Key", DEV_RECOVERBIZ_KEY),
        "AgentPhone" => {
            let key = if config == "agentphone-2" { SECOND_AGENTPHONE_KEY } else { DEV_AGENTPHONE_KEY };
            http.get(format!("{endpoint}/v1/numbers"))
                .bearer_auth(key)
                .header("X-Sub-Account-Id", &data["subAccountId"])
        }
        "Yardstik" => http
            .get(format!("{endpoint}/accounts/{id}"))
            .header("Authorization", format!("Account {}", data["apiToken"])),
        "Vobiz" | "VobizPartner" => {
            let pointer = if provider == "Vobiz" { "/vobiz/subAccounts" } else { "/vobizPartner/accounts" };
            let items = state.pointer(pointer).and_then(Value::as_array).cloned().unwrap_or_default();
            let item = items.into_iter().find(|i| i["auth_id"] == id.as_str());
            let item = item.unwrap_or_else(|| panic!("{name}: {id} not at {provider}"));
            assert_eq!(data["authId"], id.as_str(), "{name}: authId is not the account's");
            assert_eq!(
                item["auth_token"].as_str(),
                Some(data["authToken"].as_str()),
                "{name}: authToken is not {provider}'s"
            );
            return;
        }
        other => panic!("{name}: unknown provider {other:?} in its Secret"),
    };
    let response = request.send().await.unwrap_or_else(|e| panic!("{name}: {endpoint} does not answer: {e}"));
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert!(status.is_success(), "{name}: {provider} refuses the Secret's credentials ({status}): {body}");
    match provider {
        "RecoverBiz" => {
            assert_eq!((body["id"].as_str(), body["status"].as_str()), (Some(id.as_str()), Some("active")), "{name}")
        }
        "Yardstik" => assert_eq!(body["id"].as_str(), Some(id.as_str()), "{name}"),
        _ => {}
    }
}

/// The SubAccount `i` of `config`, with its TeamMember or PhoneNumber where the provider has them.
fn resources(config: &str, i: usize) -> String {
    let name = format!("{config}-{i}");
    let spec = match config {
        "vobiz-partner" => format!("  owner: {{email: chaos{i}@acme.example, phone: \"+14155550100\"}}\n  address: {{country: US}}\n"),
        "yardstik" => "  owner: {email: o@acme.example, firstName: Ana, lastName: Diaz}\n  address: {line1: 1 Main St, city: Austin, state: TX, postalCode: \"78701\", country: US}\n  yardstik: {permissiblePurposeIds: [\"3f1c2a9e-7b4d-4e8a-9c21-5d6e7f8a9b0c\"]}\n".to_owned(),
        _ => String::new(),
    };
    let mut yaml = format!(
        "apiVersion: tenantline.io/v1alpha1\nkind: SubAccount\nmetadata: {{name: {name}}}\nspec:\n  providerConfigRef: {{name: {config}}}\n  displayName: {name}\n  deletionPolicy: Orphan\n{spec}"
    );
    match config {
        "recoverbiz" => yaml.push_str(&format!(
            "---\napiVersion: tenantline.io/v1alpha1\nkind: TeamMember\nmetadata: {{name: {name}-tm}}\nspec:\n  subAccountRef: {{name: {name}}}\n  email: member{i}@acme.example\n  name: Member {i}\n  role: Member\n  deletionPolicy: Orphan\n"
        )),
        "vobiz" | "agentphone" | "agentphone-2" => yaml.push_str(&format!(
            "---\napiVersion: tenantline.io/v1alpha1\nkind: PhoneNumber\nmetadata: {{name: {name}-pn}}\nspec:\n  subAccountRef: {{name: {name}}}\n  search: {{country: US, areaCode: \"415\"}}\n  deletionPolicy: Retain\n"
        )),
        _ => {}
    }
    yaml
}

pub fn is_ready(v: &Value) -> bool {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

async fn ready_count<K>(api: &Api<K>) -> Option<(usize, usize)>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + serde::Serialize,
{
    let list = api.list(&ListParams::default()).await.ok()?.items;
    let ready = list.iter().filter(|o| is_ready(&serde_json::to_value(o).unwrap())).count();
    Some((ready, list.len()))
}
