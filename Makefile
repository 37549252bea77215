# meshinit: `make test` runs every test on a Debian-like machine as root; it provisions what the
# tests need (Debian packages, bin/etcd, bin/kube-apiserver) first, and a second run skips that.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
FUZZTIME ?= 10s
# FUZZ_CI_TIME is how long `make test` fuzzes each target hack/fuzz.sh finds (every Fuzz function),
# on top of each one's fuzzing build.
FUZZ_CI_TIME ?= 3s
TEST_TIMEOUT ?= 30m

.PHONY: all build images push provision demo test vet fmt-check lint fuzz clean

all: build

## build: compile every binary under cmd/ into bin/, static and stripped as shipped
build:
	@mkdir -p $(BIN)
	@if compgen -G "cmd/*/main.go" >/dev/null; then CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/ ./cmd/...; fi

## images: build every image of hack/images/table.go (the chart's and the test images) into
## bin/images/<name> as OCI image layouts, in Go, without a container engine; the same sources give
## the same digests. IMAGE_REGISTRY and IMAGE_TAG name them (default: the chart's).
IMAGE_REGISTRY ?=
IMAGE_TAG ?=
image_flags = $(if $(IMAGE_REGISTRY),-registry $(IMAGE_REGISTRY)) $(if $(IMAGE_TAG),-tag $(IMAGE_TAG))
images:
	$(GO) run ./hack/images build $(image_flags)

## push: build the images and push the chart's ones to REGISTRY (credentials: ~/.docker/config.json)
push:
	@[ -n "$(REGISTRY)" ] || { echo "usage: make push REGISTRY=registry.example/meshinit [IMAGE_TAG=0.1.0]" >&2; exit 2; }
	@$(MAKE) --no-print-directory images
	$(GO) run ./hack/images push -registry $(REGISTRY) $(if $(IMAGE_TAG),-tag $(IMAGE_TAG))

## provision: install missing Debian packages, fetch the images' pinned Debian packages and
## build the test control plane into bin/
provision:
	@hack/provision.sh

## vet, fmt-check, lint: static checks, part of `make test`. lint runs staticcheck and deadcode, pinned
## in the tools module hack/lint/go.mod, and fails on any finding hack/lint/pending does not list
## (see hack/lint.sh)
vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

lint:
	@GO=$(GO) hack/lint.sh

## demo: the whole product on this machine (needs root): a one-node cluster, the chart installed,
## the injector running as a pod, an injected pod running on the kubelet, real traffic through it
demo: provision images
	@$(GO) test -c -o $(BIN)/meshinit-demo ./test/e2e
	@CI=true $(BIN)/meshinit-demo -test.run '^TestDemo$$' -test.timeout 5m

## test: every test, against a real kube-apiserver, real network namespaces and a real node, with
## the images of bin/images (needs root)
test: provision build images vet fmt-check lint
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	@# Each benchmark once, so that they keep working; docs/benchmarks.md says how to measure.
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_CI_TIME)

## fuzz: run each fuzz target for FUZZTIME (default 10s; `make test` runs it for FUZZ_CI_TIME) and
## fail if any target failed. go test writes each failing input to the package's
## testdata/fuzz/<target>/ as a seed, which every `go test` runs from then on: fix the bug, and
## commit the new seed with the fix, as the regression test it is.
fuzz:
	@GO=$(GO) hack/fuzz.sh $(FUZZTIME)

clean:
	rm -rf $(BIN)
