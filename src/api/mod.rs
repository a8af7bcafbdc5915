//! The custom resource types of `tenantline.io/v1alpha1`.

/// Every CRD of tenantline, in the order `tenantline crds` prints them.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    Vec::new()
}
