//! The control plane is the real thing: CRDs are served, the garbage collector follows owner
//! references, and RBAC denies an identity nobody granted anything.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use crate::support::{self, TestNamespace, eventually};

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.e2e.tenantline.io"},
        "spec": {
            "group": "e2e.tenantline.io",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}}
            }]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn garbage_collector_deletes_dependents_of_a_custom_resource() {
    let client = support::client().await;
    support::apply_crd(&Api::all(client.clone()), &widget_crd()).await;
    let ns = TestNamespace::new(&client, "e2e-gc").await;

    let gvk = GroupVersionKind::gvk("e2e.tenantline.io", "v1", "Widget");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ApiResource::from_gvk(&gvk));
    let mut widget = DynamicObject::new("w1", &ApiResource::from_gvk(&gvk)).within(&ns.name);
    widget.data = json!({"spec": {"size": 3}});
    let widget = widgets.create(&PostParams::default(), &widget).await.expect("create Widget");

    let owner = widget.controller_owner_ref(&ApiResource::from_gvk(&gvk)).unwrap();
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ns.name);
    let dependent = ConfigMap {
        metadata: ObjectMeta {
            name: Some("dependent".into()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps.create(&PostParams::default(), &dependent).await.expect("create dependent ConfigMap");

    widgets.delete(&widget.name_any(), &DeleteParams::default()).await.unwrap();
    let collected = eventually(Duration::from_secs(60), || async {
        config_maps.get_opt("dependent").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(collected.is_some(), "the garbage collector did not delete the ConfigMap owned by the deleted Widget");
    ns.delete().await;
}

#[tokio::test]
async fn rbac_denies_a_service_account_without_bindings() {
    let client = support::client().await;
    let ns = TestNamespace::new(&client, "e2e-rbac").await;
    let kubeconfig = support::service_account_kubeconfig(&client, &ns.name, "nobody").await;
    let nobody = support::client_from(&kubeconfig).await;

    let err = Api::<ConfigMap>::namespaced(nobody, &ns.name)
        .list(&Default::default())
        .await
        .expect_err("an unbound ServiceAccount must not list ConfigMaps");
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden, got {other}"),
    }
    // The admin identity (system:masters) may.
    Api::<ConfigMap>::namespaced(client, &ns.name).list(&Default::default()).await.expect("admin lists ConfigMaps");
    ns.delete().await;
}
