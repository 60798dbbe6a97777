#!/usr/bin/env bash
# Networking's share of a container start, before the engine uses it:
# Attach+Detach of one container in a fresh network namespace through the
# CNI plugins (libcni exec'ing /usr/lib/cni's bridge, host-local, portmap,
# firewall, tuning) and hull's native path, without and with a published
# port, taking turns; medians of 30 (internal/network TestAttachSpeed).
# Goal: native ADD + DEL (namespace gone, as after `run --rm`) <= 5 ms.
# The end-to-end comparison with podman (issue 15) is bench/network.sh,
# once `hull run` joins the default network.
#
# Usage: bench/network-attach.sh   (as root; uses 10.231.40-43.0/24)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH CGO_ENABLED=1 GOEXPERIMENT=jsonv2
HULL_NETWORK_BENCH=1 go test -tags libsqlite3 -count=1 -run '^TestAttachSpeed$' -v ./internal/network/ |
	sed -n 's/^ *speed_test.go:[0-9]*: //p'
