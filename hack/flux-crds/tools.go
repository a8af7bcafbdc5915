//go:build tools

// Package tools pins controller-gen and the helm-controller API it generates the CRD from.
package tools

import (
	_ "github.com/fluxcd/helm-controller/api/v2"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
