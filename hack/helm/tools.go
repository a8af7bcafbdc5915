//go:build tools

// Package tools pins the helm command hack/tools.sh builds from this module.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
