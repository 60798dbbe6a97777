#!/usr/bin/env bash
# A real kubelet, built from the Go module proxy, for test/kubelet.sh.
#
#   hack/kubelet.sh build
#       Builds ./cmd/kubelet of k8s.io/kubernetes@$KUBELET_VERSION into
#       $KUBELET_DIR (default /var/tmp/hull-kubelet/VERSION) and prints its
#       path as KUBELET=... Idempotent: a second run only checks it is there.
#
# k8s.io/kubernetes' go.mod requires its staging modules (k8s.io/api,
# k8s.io/client-go, ...) at v0.0.0 and replaces them with ./staging/src/...
# paths, which the module zip does not hold. The build runs in a writable
# copy of the module whose go.mod replaces each with its published release
# k8s.io/<x> v0.<minor>.<patch> instead (v1.37.2 -> v0.37.2).
set -euo pipefail

KUBELET_VERSION=${KUBELET_VERSION:-v1.37.2}
KUBELET_DIR=${KUBELET_DIR:-/var/tmp/hull-kubelet/$KUBELET_VERSION}

build_kubelet() {
  if [ -x "$KUBELET_DIR/kubelet" ]; then
    return
  fi
  mkdir -p "$KUBELET_DIR"
  local dir staging=v0.${KUBELET_VERSION#v1.}
  src=
  dir=$(go mod download -json "k8s.io/kubernetes@$KUBELET_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "kubelet.sh: go mod download k8s.io/kubernetes@$KUBELET_VERSION failed" >&2; exit 1; }
  # The module cache is read-only: build in a copy.
  src=$(mktemp -d "$KUBELET_DIR/src.XXXXXX")
  # (EXIT, not RETURN: a failed build ends the script under set -e)
  trap 'rm -rf "${src:-}"' EXIT
  cp -r "$dir/." "$src"
  chmod -R u+w "$src"
  # k8s.io/x => ./staging/src/k8s.io/x  becomes  k8s.io/x => k8s.io/x v0.37.2
  sed -i "s#=> \./staging/src/\(k8s\.io/[A-Za-z0-9._-]*\)\$#=> \1 $staging#" "$src/go.mod"
  if grep -q '\./staging/' "$src/go.mod"; then
    echo "kubelet.sh: go.mod still names ./staging paths:" >&2
    grep '\./staging/' "$src/go.mod" >&2
    exit 1
  fi
  # (GOWORK=off: the zip holds a go.work naming the staging paths too;
  # nice: the machine's other work goes on while this compiles)
  # (-X: what hack/lib/version.sh stamps, so `kubelet --version` and the
  # CRI Version call name the release, not v0.0.0-master)
  local v=k8s.io/component-base/version minor=${KUBELET_VERSION#v1.}
  minor=${minor%%.*}
  (cd "$src" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 nice go build -trimpath \
    -ldflags "-X $v.gitVersion=$KUBELET_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
    -o "$KUBELET_DIR/kubelet.tmp" ./cmd/kubelet)
  mv "$KUBELET_DIR/kubelet.tmp" "$KUBELET_DIR/kubelet"
}

cmd=${1:-build}
shift || true
case $cmd in
build)
  build_kubelet
  echo "KUBELET=$KUBELET_DIR/kubelet"
  ;;
*)
  echo "usage: hack/kubelet.sh build" >&2
  exit 2
  ;;
esac
