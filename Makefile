# tenantline — see README.md. Everything built or downloaded goes to .cache/ and target/.
SHELL := /bin/bash
export PATH := $(CURDIR)/.cache/bin:$(PATH)
VERSION := $(shell awk -F'"' '/^version = / {print $$2; exit}' Cargo.toml)
IMAGE_ARCHIVE := .cache/image/tenantline-$(VERSION).tar
SIM_IMAGE_ARCHIVE := .cache/image/tenantline-sim-$(VERSION).tar
NODE ?= 0

.PHONY: test go-test demo tools up down env crds lint image load unit e2e previous-operator bench soak

## make test: build what is missing (tools, the image, the previous release's operator), start a
## local cluster with a node (or use $KUBECONFIG), put the image on it and run every test; the
## same targets as the CI workflow.
test: tools image previous-operator
	cargo build --workspace --bins
	TENANTLINE_NODE=1 hack/with-cluster.sh $(MAKE) --no-print-directory load unit e2e

## make go-test: the health contract (Argo CD's Lua evaluator and kstatus) over tests/fixtures/health.
go-test:
	cd hack/health && go test -count=1 -v ./...

## make demo: a local cluster with a node, both images on it, the chart, the simulator in the
## cluster (examples/simulator) and examples/in-cluster, ending in Ready resources; the cluster
## stays up (make down stops it), KEEP=0 stops it at the end. With KUBECONFIG set, that cluster.
KEEP ?= 1
demo: tools image
	KEEP=$(KEEP) hack/demo.sh

## make tools: the cluster's parts, kubectl, helm, crictl, actionlint, Flux's source- and
## kustomize-controller and controller-gen from their Go modules.
tools:
	hack/tools.sh

## make image: the operator's and the simulator's images as docker-archives in .cache/image (no
## registry, no daemon).
image:
	hack/image.sh >/dev/null

## make load: put both images on the cluster's nodes: `kind load` with KIND_CLUSTER set, else the
## local node's containerd.
load: image
	@for archive in $(IMAGE_ARCHIVE) $(SIM_IMAGE_ARCHIVE); do \
	  if [ -n "$(KIND_CLUSTER)" ]; then kind load image-archive $$archive --name $(KIND_CLUSTER); \
	  else hack/node.sh load $$archive; fi || exit 1; \
	done

## make unit: unit, simulator, provider-contract and health-contract tests (no cluster).
unit: go-test
	cargo test -p tenantline-sim
	cargo test -p tenantline --lib --bins --test contract

## make e2e: the end-to-end tests against the cluster KUBECONFIG names; then, alone, the cluster-wide
## operator (it would reconcile the other tests' configs) and the test that restarts the control
## plane under the operator. No test passes without running: with TENANTLINE_E2E_STRICT=1 the node
## tests fail without a Ready node, the upgrade tests without the previous release's binary, and
## hack/e2e-require.sh fails the restart test on any cluster but the local control plane.
## TENANTLINE_E2E_SKIP=node,restart,upgrade (any of them) skips those on purpose, said loudly.
e2e: export TENANTLINE_E2E_STRICT = 1
e2e: previous-operator
	@hack/e2e-require.sh
	cargo test -p tenantline --test e2e
	cargo test -p tenantline --test cluster_wide
	hack/e2e-require.sh restart cargo test -p tenantline --test restart
	@hack/e2e-require.sh

## make previous-operator: the last release's operator binary (a pinned commit, from git), for the
## upgrade tests: built once per commit into .cache/previous (hack/previous-operator.sh).
previous-operator:
	@hack/previous-operator.sh >/dev/null

## make bench: the benchmark table (BENCHMARKS.md) against the cluster KUBECONFIG names, or a local
## one started for it. N=10000 for the large run; BENCH_ARGS for the rest (cargo bench --bench bench -- --help).
## PEER=1: instead, the operator beside Crossplane's provider-http (built first; benches/peer.rs).
## SHARDS=2: instead, that many operators split N SubAccounts by --label-selector (benches/shards.rs).
N ?= 1000
PEER ?= 0
SHARDS ?=
bench: tools
	$(if $(filter 1,$(PEER)),hack/tools.sh provider-http)
	hack/with-cluster.sh cargo bench --bench bench -- --n $(N) $(if $(filter 1,$(PEER)),--peer) $(if $(SHARDS),--shards $(SHARDS)) $(BENCH_ARGS)

## make soak: SOAK_MINUTES (default 30) of SubAccounts, TeamMembers and PhoneNumbers polled every 5 s
## with about 15% of provider calls failing; a table of the operator's RSS and error rate per minute
## and a verdict (benches/soak.rs). Not part of make test.
SOAK_MINUTES ?= 30
soak: tools
	hack/with-cluster.sh cargo bench --bench bench -- --soak-minutes $(SOAK_MINUTES) $(BENCH_ARGS)

## make up / make down / make env: a persistent local cluster for development (NODE=1: with a node
## and the image on it).
up: tools
	TENANTLINE_NODE=$(NODE) hack/cluster.sh up
	@[ "$(NODE)" != 1 ] || $(MAKE) --no-print-directory load

down:
	hack/cluster.sh down
	hack/node.sh leftovers

env:
	@hack/cluster.sh env

## make crds: regenerate crds/ (and the chart's copy) from the Rust types.
crds:
	cargo run -q -- crds > crds/tenantline.io.yaml
	cp crds/tenantline.io.yaml charts/tenantline/crds/tenantline.io.yaml

## make lint: rustfmt, clippy, actionlint (which runs shellcheck over the workflow's steps too),
## shellcheck over hack/*.sh and .ci/run, and go vet in the Go modules under hack/ with code of
## their own. hack/tools.sh builds actionlint and installs Debian's shellcheck when it is missing.
## The other Go modules hold only a tools.go behind the `tools` build tag, blank imports that pin
## what hack/tools.sh builds: nothing to vet (go vet finds no package in them), and `-tags tools`
## would compile Kubernetes, helm, Flux and provider-http to check import lines. Each module is
## vetted with the flags that build or test it elsewhere, so the compiled dependencies are shared:
## hack/health as make go-test tests it, the commands (etcd, pause) as hack/tools.sh and node.sh
## build them.
GO_VET_MODULES = $(sort $(patsubst %/,%,$(dir $(shell grep -L '^//go:build tools' hack/*/*.go))))
lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings
	hack/tools.sh actionlint shellcheck
	actionlint .github/workflows/*.yml
	shellcheck hack/*.sh .ci/run
	cd hack/health && go vet ./...
	@for dir in $(filter-out hack/health,$(GO_VET_MODULES)); do \
	  echo "cd $$dir && CGO_ENABLED=0 go vet -trimpath ./..."; \
	  (cd "$$dir" && CGO_ENABLED=0 go vet -trimpath ./...) || exit 1; \
	done
