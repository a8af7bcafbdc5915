# tenantline — see README.md. Everything built or downloaded goes to .cache/ and target/.
SHELL := /bin/bash
export PATH := $(CURDIR)/.cache/bin:$(PATH)

.PHONY: test demo tools up down env crds lint

## make test: build what is missing, start a local control plane (or use $KUBECONFIG), run every test.
test: tools
	cargo build --workspace --bins
	hack/with-cluster.sh cargo test --workspace

## make demo: control plane, simulator, operator and examples/quickstart, ending in Ready resources.
demo: tools
	cargo build --workspace --bins
	hack/with-cluster.sh hack/demo.sh

## make tools: kube-apiserver, kube-controller-manager, kubectl, etcd and helm from their Go modules.
tools:
	hack/tools.sh

## make up / make down / make env: a persistent local control plane for development.
up: tools
	hack/cluster.sh up

down:
	hack/cluster.sh down

env:
	@hack/cluster.sh env

## make crds: regenerate crds/ (and the chart's copy) from the Rust types.
crds:
	cargo run -q -- crds > crds/tenantline.io.yaml
	cp crds/tenantline.io.yaml charts/tenantline/crds/tenantline.io.yaml

lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings
