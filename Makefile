# meshinit: `make test` runs every test on a Debian-like machine as root; it provisions what the
# tests need (Debian packages, bin/etcd, bin/kube-apiserver) first, and a second run skips that.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
FUZZTIME ?= 10s
TEST_TIMEOUT ?= 30m

.PHONY: all build images provision demo test vet fmt-check fuzz clean

all: build

## build: compile every binary under cmd/ into bin/, static and stripped as shipped
build:
	@mkdir -p $(BIN)
	@if compgen -G "cmd/*/main.go" >/dev/null; then CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/ ./cmd/...; fi

## images: build the container images the chart names (needs a Docker daemon; not part of `make test`)
IMAGE_REGISTRY ?= ghcr.io/meshinit
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/meshinit/Chart.yaml)
images:
	@for target in injector kuma-cni kuma-init; do \
	  docker build --target $$target --build-arg VERSION=v$(IMAGE_TAG) -t $(IMAGE_REGISTRY)/$$target:$(IMAGE_TAG) . || exit 1; \
	done

## provision: install missing Debian packages and build the test control plane into bin/
provision:
	@hack/provision.sh

## vet, fmt-check: static checks, part of `make test`
vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## demo: the whole product on this machine (needs root): a local control plane, the injector, an
## injected pod, its kuma-init run as injected in a network namespace, and real traffic through it
demo: provision build
	@$(GO) test -c -o $(BIN)/meshinit-demo ./test/e2e
	@CI=true $(BIN)/meshinit-demo -test.run '^TestDemo$$' -test.timeout 5m

## test: every test, against a real kube-apiserver and real network namespaces (needs root)
test: provision build vet fmt-check
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	@# Each benchmark once, so that they keep working; docs/benchmarks.md says how to measure.
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./...

## fuzz: run each fuzz target for FUZZTIME (default 10s); crashers land in testdata/fuzz as seeds
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | cut -d' ' -f2); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

clean:
	rm -rf $(BIN)
