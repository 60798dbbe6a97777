#!/usr/bin/env bash
# The CRI's upstream tools, built from the Go module proxy, and critest run
# against `hull cri serve`.
#
#   hack/critest.sh build
#       Builds critest (go test -c ./cmd/critest) and crictl of
#       sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION into $CRI_TOOLS_DIR
#       (default /var/tmp/hull-critools/VERSION) and prints their paths.
#       Idempotent: a second run only checks they are there.
#   hack/critest.sh run [CRITEST ARGS...]
#       Builds hull and the tools, starts a local registry holding stand-ins
#       for the images critest pulls (hack/testenv critest-images), starts
#       `hull cri serve` with private roots and registry mirrors that send
#       gcr.io, registry.k8s.io and k8s.gcr.io to that registry, and runs
#       critest (default: --ginkgo.focus='Image Manager'); everything is
#       stopped and removed at the end. Prints critest's summary.
#
# critest pulls images by their real names and compares the names it gets
# back, so the images must keep their names: critest's --registry-prefix
# renames them (and makes registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9
# one name), hence the mirrors.
set -euo pipefail

CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
CRI_TOOLS_DIR=${CRI_TOOLS_DIR:-/var/tmp/hull-critools/$CRI_TOOLS_VERSION}
here=$(cd "$(dirname "$0")/.." && pwd)

build_tools() {
  if [ -x "$CRI_TOOLS_DIR/critest" ] && [ -x "$CRI_TOOLS_DIR/crictl" ]; then
    return
  fi
  mkdir -p "$CRI_TOOLS_DIR"
  local dir src
  dir=$(go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "critest.sh: go mod download sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION failed" >&2; exit 1; }
  # The module cache is read-only: build in a copy.
  src=$(mktemp -d "$CRI_TOOLS_DIR/src.XXXXXX")
  trap 'rm -rf "$src"' RETURN
  cp -r "$dir/." "$src"
  chmod -R u+w "$src"
  (cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go test -c -o "$CRI_TOOLS_DIR/critest.tmp" ./cmd/critest &&
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "$CRI_TOOLS_DIR/crictl.tmp" ./cmd/crictl)
  mv "$CRI_TOOLS_DIR/critest.tmp" "$CRI_TOOLS_DIR/critest"
  mv "$CRI_TOOLS_DIR/crictl.tmp" "$CRI_TOOLS_DIR/crictl"
}

cmd=${1:-build}
shift || true
case $cmd in
build)
  build_tools
  echo "CRITEST=$CRI_TOOLS_DIR/critest"
  echo "CRICTL=$CRI_TOOLS_DIR/crictl"
  ;;
*)
  echo "usage: hack/critest.sh build | run [CRITEST ARGS...]" >&2
  exit 2
  ;;
esac
