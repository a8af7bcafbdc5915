// Package health holds the health-contract tests (health_test.go); see go.mod.
package health
