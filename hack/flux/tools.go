//go:build tools

// Package tools pins the Flux controllers hack/tools.sh builds from this module: source-controller
// (serves a GitRepository's content) and kustomize-controller (applies it, waits for health,
// prunes). The GitOps e2e (tests/e2e/gitops.rs) runs them as host processes.
package tools

import (
	_ "github.com/fluxcd/kustomize-controller"
	_ "github.com/fluxcd/source-controller"
)
