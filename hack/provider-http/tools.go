//go:build tools

// Package tools pins Crossplane's provider-http, the peer `make bench PEER=1` measures the
// operator against (benches/peer.rs): hack/tools.sh builds its cmd/provider from this module, and
// the bench reads its CRDs (package/crds) from the module cache. Built only when asked
// (`hack/tools.sh provider-http`), never by a bare `hack/tools.sh`.
package tools

import (
	_ "github.com/crossplane-contrib/provider-http/cmd/provider"
)
