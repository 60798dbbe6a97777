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
#       critest (default: --ginkgo.focus='Image Manager', skipping the spec
#       that pulls a fixed upstream digest); everything is stopped and
#       removed at the end. Prints critest's summary.
#
# critest pulls images by their real names and compares the names it gets
# back, so the images must keep their names: critest's --registry-prefix
# renames them (and makes registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9
# one name), hence the mirrors.
set -euo pipefail

CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
CRI_TOOLS_DIR=${CRI_TOOLS_DIR:-/var/tmp/hull-critools/$CRI_TOOLS_VERSION}
here=$(cd "$(dirname "$0")/.." && pwd)
work= reg_pid= cri_pid= bridge= # run's, for its cleanup

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

# run_critest: a registry with the stand-ins, hull-cri on private roots,
# critest against it; everything started is stopped and removed on exit.
run_critest() {
  build_tools
  make -C "$here" build >/dev/null
  local addr
  work=$(mktemp -d /tmp/hull-critest.XXXXXX)
  # Traversable, as /run is: containers in user namespaces (their root an
  # unprivileged host uid) reach their rootfs under the run root.
  chmod 711 "$work"
  bridge=hcrit$((RANDOM % 10000))
  cleanup() {
    [ -n "${cri_pid:-}" ] && kill -TERM "$cri_pid" 2>/dev/null && wait "$cri_pid" 2>/dev/null
    # What a failed spec left: its pods (their containers with them) and
    # the default network, before the roots go.
    if [ -f "$work/hull.toml" ]; then
      local h=("$here/bin/hull" --config "$work/hull.toml" --root "$work/root" --run-root "$work/run") ids
      # (each step may fail: nothing left, or already gone; the rest of
      # the cleanup must run all the same)
      ids=$("${h[@]}" pod ls -q 2>/dev/null) && [ -n "$ids" ] && "${h[@]}" pod rm -f $ids >/dev/null 2>&1 || true
      ids=$("${h[@]}" ps -aq 2>/dev/null) && [ -n "$ids" ] && "${h[@]}" rm -f $ids >/dev/null 2>&1 || true
    fi
    [ -n "${bridge:-}" ] && ip link del "$bridge" 2>/dev/null || true
    [ -n "${reg_pid:-}" ] && kill -TERM "$reg_pid" 2>/dev/null
    [ -n "${reg_pid:-}" ] && while kill -0 "$reg_pid" 2>/dev/null; do sleep 0.1; done
    rm -rf "$work"
  }
  trap cleanup EXIT
  (cd "$here" && CGO_ENABLED=1 go build -tags libsqlite3 -o "$work/testenv" ./hack/testenv &&
    CGO_ENABLED=0 go build -o "$work/nonewprivs" ./hack/nonewprivs)
  "$work/testenv" registry --dir "$work/registry" --detach >"$work/registry.env"
  addr=$(sed -n 's/^ADDR=//p' "$work/registry.env")
  reg_pid=$(sed -n 's/^PID=//p' "$work/registry.env")
  {
    # The pods' default network: a bridge and subnet of its own (a
    # 10.2xx.x.0/24 the host does not route), removed with the roots.
    echo "[network]"
    echo "default_bridge = \"$bridge\""
    echo "default_subnet = \"10.237.$((RANDOM % 250)).0/24\""
    echo "[registries.mirrors]"
    "$work/testenv" critest-images --registry "$addr" --nonewprivs "$work/nonewprivs" | sed -n 's/^MIRROR //p'
  } >"$work/hull.toml"
  "$here/bin/hull" --config "$work/hull.toml" --root "$work/root" --run-root "$work/run" \
    cri serve --listen "unix://$work/cri.sock" 2>"$work/cri.log" &
  cri_pid=$!
  for _ in $(seq 100); do [ -S "$work/cri.sock" ] && break; sleep 0.1; done
  [ -S "$work/cri.sock" ] || { cat "$work/cri.log" >&2; echo "critest.sh: hull cri serve did not start" >&2; exit 1; }
  local args=("$@")
  # The one image spec no registry here can serve: it pulls a fixed
  # upstream digest (test-image-digest@sha256:9700f9...).
  ((${#args[@]})) || args=(--ginkgo.focus='Image Manager' --ginkgo.skip='public image with digest')
  local status=0
  "$CRI_TOOLS_DIR/critest" --runtime-endpoint "unix://$work/cri.sock" --image-endpoint "unix://$work/cri.sock" \
    --ginkgo.no-color "${args[@]}" || status=$?
  if [ "${KEEP_CRI_LOG:-}" ]; then cp "$work/cri.log" "$KEEP_CRI_LOG"; fi
  return $status
}

cmd=${1:-build}
shift || true
case $cmd in
build)
  build_tools
  echo "CRITEST=$CRI_TOOLS_DIR/critest"
  echo "CRICTL=$CRI_TOOLS_DIR/crictl"
  ;;
run)
  run_critest "$@"
  ;;
*)
  echo "usage: hack/critest.sh build | run [CRITEST ARGS...]" >&2
  exit 2
  ;;
esac
