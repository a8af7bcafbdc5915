# tenantline — see README.md. Everything built or downloaded goes to .cache/ and target/.
SHELL := /bin/bash
export PATH := $(CURDIR)/.cache/bin:$(PATH)

.PHONY: test go-test demo tools up down env crds lint

## make test: build what is missing, start a local control plane (or use $KUBECONFIG), run every test.
test: tools go-test
	cargo build --workspace --bins
	hack/with-cluster.sh cargo test --workspace

## make go-test: the health contract (Argo CD's Lua evaluator and kstatus) over tests/fixtures/health.
go-test:
	cd hack/health && go test -count=1 -v ./...

## make demo: control plane, simulator, operator and examples/quickstart, ending in Ready resources.
demo: tools
	cargo build --workspace --bins
	hack/with-cluster.sh hack/demo.sh

## make tools: kube-apiserver, kube-controller-manager, kubectl, etcd, helm, Flux's source- and
## kustomize-controller and controller-gen from their Go modules.
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
