//! The seed: which parent accounts the simulator knows (YAML via `--config`, JSON via
//! `POST /_sim/seed`), and the dev seed's credentials, which tests and examples share.

use serde::{Deserialize, Serialize};

/// `Seed::default()` is the dev seed; a parsed file contains exactly what it says (omitted
/// providers get no credentials).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub recoverbiz: RecoverBizSeed,
    #[serde(default)]
    pub vobiz: VobizSeed,
    #[serde(default)]
    pub agentphone: AgentPhoneSeed,
    #[serde(default)]
    pub vobiz_partner: VobizPartnerSeed,
    #[serde(default)]
    pub yardstik: YardstikSeed,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RecoverBizSeed {
    pub partner_keys: Vec<String>,
    /// Optional override of the documented limits (100 creations/hour, 1000 other calls/minute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RateLimits {
    pub account_create_per_hour: u32,
    pub other_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { account_create_per_hour: 100, other_per_minute: 1000 }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct VobizSeed {
    pub accounts: Vec<VobizParentSeed>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct VobizParentSeed {
    pub auth_id: String,
    pub auth_token: String,
    /// Buyable DIDs (E.164) in this parent's inventory.
    pub inventory: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AgentPhoneSeed {
    pub api_keys: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct VobizPartnerSeed {
    pub partners: Vec<VobizPartnerAccountSeed>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct VobizPartnerAccountSeed {
    pub auth_id: String,
    pub auth_token: String,
    pub max_accounts: u32,
    /// Decimal string, e.g. "100000.00000".
    pub balance: String,
    pub currency: String,
}

impl Default for VobizPartnerAccountSeed {
    fn default() -> Self {
        VobizPartnerAccountSeed {
            auth_id: String::new(),
            auth_token: String::new(),
            max_accounts: 100,
            balance: "0.00000".into(),
            currency: "USD".into(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct YardstikSeed {
    pub api_keys: Vec<String>,
    pub permissible_purpose_ids: Vec<String>,
    /// Lists ignore `query[...]` filters, as a platform that allows none does: a client must
    /// page through everything to find one account.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignore_list_filters: bool,
}

pub const DEV_RECOVERBIZ_KEY: &str = "pk_live_sim_recoverbiz_0000000000000000";
pub const DEV_VOBIZ_AUTH_ID: &str = "MA_SIMVOBIZ";
pub const DEV_VOBIZ_AUTH_TOKEN: &str = "sim-vobiz-parent-token";
pub const DEV_AGENTPHONE_KEY: &str = "sk_live_sim_agentphone";
pub const DEV_PARTNER_AUTH_ID: &str = "PA_SIMPARTNER";
pub const DEV_PARTNER_AUTH_TOKEN: &str = "sim-partner-token";
pub const DEV_YARDSTIK_KEY: &str = "sim-yardstik-platform-key";
pub const DEV_PERMISSIBLE_PURPOSE_ID: &str = "3f1c2a9e-7b4d-4e8a-9c21-5d6e7f8a9b0c";

impl Default for Seed {
    /// The dev seed (documented in `tenantline-sim --help` and the README).
    fn default() -> Self {
        Seed {
            recoverbiz: RecoverBizSeed { partner_keys: vec![DEV_RECOVERBIZ_KEY.into()], rate_limits: None },
            vobiz: VobizSeed {
                accounts: vec![VobizParentSeed {
                    auth_id: DEV_VOBIZ_AUTH_ID.into(),
                    auth_token: DEV_VOBIZ_AUTH_TOKEN.into(),
                    inventory: (101..=120).map(|n| format!("+14155550{n}")).collect(),
                }],
            },
            agentphone: AgentPhoneSeed { api_keys: vec![DEV_AGENTPHONE_KEY.into()] },
            vobiz_partner: VobizPartnerSeed {
                partners: vec![VobizPartnerAccountSeed {
                    auth_id: DEV_PARTNER_AUTH_ID.into(),
                    auth_token: DEV_PARTNER_AUTH_TOKEN.into(),
                    max_accounts: 100,
                    balance: "100000.00000".into(),
                    currency: "USD".into(),
                }],
            },
            yardstik: YardstikSeed {
                api_keys: vec![DEV_YARDSTIK_KEY.into()],
                permissible_purpose_ids: vec![DEV_PERMISSIBLE_PURPOSE_ID.into()],
                ignore_list_filters: false,
            },
        }
    }
}

impl Seed {
    /// A seed with no credentials at all.
    pub fn empty() -> Self {
        Seed {
            recoverbiz: Default::default(),
            vobiz: Default::default(),
            agentphone: Default::default(),
            vobiz_partner: Default::default(),
            yardstik: Default::default(),
        }
    }

    /// Appends another seed's credentials (used by POST /_sim/seed so reset re-applies them).
    pub fn merge(&mut self, o: &Seed) {
        self.recoverbiz.partner_keys.extend(o.recoverbiz.partner_keys.iter().cloned());
        if o.recoverbiz.rate_limits.is_some() {
            self.recoverbiz.rate_limits = o.recoverbiz.rate_limits.clone();
        }
        self.vobiz.accounts.extend(o.vobiz.accounts.iter().cloned());
        self.agentphone.api_keys.extend(o.agentphone.api_keys.iter().cloned());
        self.vobiz_partner.partners.extend(o.vobiz_partner.partners.iter().cloned());
        self.yardstik.api_keys.extend(o.yardstik.api_keys.iter().cloned());
        self.yardstik.permissible_purpose_ids.extend(o.yardstik.permissible_purpose_ids.iter().cloned());
        self.yardstik.ignore_list_filters |= o.yardstik.ignore_list_filters;
    }

    pub fn from_yaml(s: &str) -> Result<Seed, String> {
        serde_saphyr::from_str(s).map_err(|e| e.to_string())
    }
}
