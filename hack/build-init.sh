#!/usr/bin/env bash
# Builds hull-init: static, so --init can bind-mount it into any image, and
# with cgo, because its C constructor (internal/runtime/nsenter) enters the
# container's namespaces before the Go runtime starts. It is also what the
# runtime starts every container's first process from, so it is kept small
# and quick to start: it decodes its configuration in hull's wire encoding
# (internal/wire), and uses JSON only for the state it gives hooks.
# GOEXPERIMENT=jsonv2 is the Makefile's, kept so that the packages the init
# shares with hull (internal/runtime) build here as they do in hull and in
# the tests.
#
# Usage: [GO=go] hack/build-init.sh OUTPUT
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1 GOEXPERIMENT=jsonv2
exec "${GO:-go}" build -tags 'netgo osusergo' -trimpath \
	-ldflags "-s -w -linkmode external -extldflags '-static'" -o "$1" ./cmd/hull-init
