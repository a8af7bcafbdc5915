//go:build tools

// Package tools pins the commands hack/tools.sh builds from this module.
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
