//! The reconciler's pure policies, and its rounds run against a mocked API server and an
//! in-memory provider.

use super::*;

fn caps(delete: bool, deactivate: bool) -> Capabilities {
    Capabilities { delete, deactivate, ..Default::default() }
}

#[test]
fn deletion_falls_back_from_delete_to_deactivate_to_retain() {
    use DeletionAction as A;
    use DeletionPolicy as P;
    assert_eq!(deletion_action(P::Delete, &caps(true, true)), A::Delete);
    assert_eq!(deletion_action(P::Delete, &caps(false, true)), A::Deactivate);
    assert_eq!(deletion_action(P::Delete, &caps(false, false)), A::Retain);
    assert_eq!(deletion_action(P::Deactivate, &caps(true, false)), A::Retain);
    assert_eq!(deletion_action(P::Deactivate, &caps(true, true)), A::Deactivate);
    assert_eq!(deletion_action(P::Orphan, &caps(true, true)), A::Orphan);
}

#[test]
fn credentials_count_as_delivered_by_the_record_the_secret_or_for_older_objects_readiness() {
    use crate::api::{SubAccount, SubAccountStatus};
    let with_ready = |status: &str| {
        let mut sa: SubAccount = serde_json::from_value(json!({
            "apiVersion": "tenantline.io/v1alpha1", "kind": "SubAccount", "metadata": {"name": "a"},
            "spec": {"providerConfigRef": {"name": "p"}, "displayName": "A"}}))
        .unwrap();
        if !status.is_empty() {
            sa.status = Some(serde_json::from_value::<SubAccountStatus>(json!({"conditions": [{"type": "Ready",
                "status": status, "reason": "Provisioned", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]})).unwrap());
        }
        sa
    };
    let delivered = credentials::delivered::<SubAccount>;
    let none = Credentials::default();
    assert!(!delivered(&with_ready(""), &none, "SA_1"));
    assert!(!delivered(&with_ready("False"), &none, "SA_1"));
    assert!(delivered(&with_ready("True"), &none, "SA_1"), "made before the record, and Ready: Secret written");
    let written = Credentials::default().with("accountId", "SA_1");
    assert!(delivered(&with_ready(""), &written, "SA_1"), "the Secret was written for this account");
    assert!(!delivered(&with_ready(""), &written, "SA_2"), "a Secret of the account it replaced");
    let password_only = Credentials::default().with("password", "generated before the create");
    assert!(!delivered(&with_ready(""), &password_only, "SA_1"));
    let mut recorded = with_ready("False");
    recorded.metadata.annotations =
        Some([(CREDENTIALS_DELIVERED.to_owned(), "2026-01-01T00:00:00Z".to_owned())].into());
    assert!(delivered(&recorded, &none, "SA_1"));
}
