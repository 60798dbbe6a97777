# hull's build. Every target installs what it needs first (see hack/deps.sh),
# so `make demo` and `make test` work on a fresh Debian machine.

GO        ?= go
TAGS      ?= libsqlite3
BIN       := bin/hull
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOTESTFLAGS ?= -timeout 15m
# crictl of cri-tools, built from the Go module proxy by hack/critest.sh and
# cached across checkouts: `make test` drives hull-cri with it.
CRI_TOOLS_VERSION ?= v1.37.0
CRICTL    := /var/tmp/hull-critools/$(CRI_TOOLS_VERSION)/crictl
# CRIU for checkpoints, built from Debian trixie's source tarball by
# hack/criu.sh (bookworm's 3.17 cannot read this kernel's vDSO).
CRIU_VERSION := 4.1.1
CRIU      := /var/tmp/hull-criu/$(CRIU_VERSION)/criu

export CGO_ENABLED := 1
# encoding/json's v2 engine (same API) decodes a cold OCI spec in half the
# time: every container's config.json is encoded by hull, and decoded by
# its monitor unless a spare got the spec ahead (the init gets it in the
# wire encoding). Not for hull-shim, which lives as long as its container:
# v1 is smaller there.
export GOEXPERIMENT := jsonv2

.PHONY: all deps build crictl criu test critest faults stress demo demo-registry demo-registry-stop bench fmt vet fuzz clean

all: build

deps:
	@hack/deps.sh

# hull is linked statically (sqlite and libseccomp included; Go's own DNS
# and user lookups instead of glibc's): every container start runs it two
# or three times, and the dynamic loader cost each run 0.7 ms.
build: deps
	$(GO) build -tags '$(TAGS) netgo osusergo' -trimpath \
		-ldflags "$(LDFLAGS) -linkmode external -extldflags '-static -lm'" -o $(BIN) ./cmd/hull
	GO=$(GO) hack/build-init.sh bin/hull-init
	CGO_ENABLED=0 GOEXPERIMENT= $(GO) build -trimpath -ldflags '-s -w' -o bin/hull-shim ./cmd/hull-shim
	$(GO) build -tags '$(TAGS) netgo osusergo nri_no_wasm' -trimpath \
		-ldflags "$(LDFLAGS) -linkmode external -extldflags '-static -lm'" -o bin/hull-cri ./cmd/hull-cri

# Builds crictl only when $(CRICTL) is missing.
crictl: deps
	@CRI_TOOLS_VERSION=$(CRI_TOOLS_VERSION) CRI_TOOLS_DIR=$(dir $(CRICTL)) hack/critest.sh crictl >/dev/null

# Builds CRIU only when $(CRIU) is missing.
criu:
	@CRIU_DIR=$(dir $(CRIU)) hack/criu.sh >/dev/null

vet: deps
	$(GO) vet -tags '$(TAGS)' ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# The test suite runs as root against real registries, namespaces, mounts and
# cgroups. Packages run one at a time: several of them own host-wide state.
# HULL_CRICTL and HULL_CRIU make the tests that drive hull-cri with crictl,
# and those that checkpoint and restore containers, fail, not skip, should
# either be missing.
test: build crictl criu
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet -tags '$(TAGS)' ./...
	HULL_BIN=$(CURDIR)/$(BIN) HULL_INIT=$(CURDIR)/bin/hull-init HULL_SHIM=$(CURDIR)/bin/hull-shim HULL_CRICTL=$(CRICTL) HULL_CRIU=$(CRIU) \
		$(GO) test -tags '$(TAGS)' -p 1 $(GOTESTFLAGS) ./...

# The whole upstream CRI conformance suite (critest) against hull-cri, with
# only the skips docs/cri.md lists; not part of `test` (see README.md).
critest: build
	test/critest.sh

# The fault-injection campaign of test/faults in full: every operation
# killed at each of its stages and after random delays, several rounds
# (HULL_FAULTS_ROUNDS, default 3); `make test` runs its short pass.
faults: build
	HULL_BIN=$(CURDIR)/$(BIN) HULL_INIT=$(CURDIR)/bin/hull-init HULL_SHIM=$(CURDIR)/bin/hull-shim HULL_FAULTS=full \
		$(GO) test -tags '$(TAGS)' -count=1 -timeout 90m -v -run '^TestFaults$$' ./test/faults/

# The churn test: 1000 containers (HULL_STRESS_N) of mixed lifecycles, then
# the count of what leaked.
stress: build
	HULL_BIN=$(CURDIR)/$(BIN) HULL_INIT=$(CURDIR)/bin/hull-init HULL_SHIM=$(CURDIR)/bin/hull-shim HULL_STRESS=1 \
		$(GO) test -tags '$(TAGS)' -count=1 -timeout 90m -v -run '^TestChurn$$' ./test/faults/

# Short fuzzing pass over every fuzz target (each target's seed corpus also
# runs as a normal test under `make test`).
fuzz: deps
	hack/fuzz.sh 20s

demo: build
	hack/demo.sh

# A local registry that stays up with the demo images, and those images in
# hull's store as busybox, alpine and demo/web:1.0 (see hack/demo-registry.sh).
demo-registry: build
	hack/demo-registry.sh start

demo-registry-stop:
	hack/demo-registry.sh stop

bench: build
	bench/pull.sh
	bench/unpack.sh
	bench/engine.sh
	[ ! -x bench/runtime.sh ] || bench/runtime.sh

clean:
	rm -rf bin
