#!/usr/bin/env bash
# The CRI's upstream tools, built from the Go module proxy, and critest run
# against `hull cri serve`.
#
#   hack/critest.sh build
#       Builds critest (go test -c ./cmd/critest) and crictl of
#       sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION into $CRI_TOOLS_DIR
#       (default /var/tmp/hull-critools/VERSION) and prints their paths.
#       Idempotent: a second run only checks they are there.
#   hack/critest.sh crictl
#       The same for crictl alone (what `make test` needs).
#   hack/critest.sh run [CRITEST ARGS...]
#       Builds hull and the tools, starts a local registry holding stand-ins
#       for the images critest pulls (hack/testenv critest-images), starts
#       `hull cri serve` with private roots and registry mirrors that send
#       gcr.io, registry.k8s.io and k8s.gcr.io to that registry, and runs
#       critest (default: --ginkgo.focus='Image Manager', skipping the spec
#       that pulls a fixed upstream digest); everything is stopped and
#       removed at the end. Prints critest's summary. (test/critest.sh
#       runs the whole suite this way and checks its skips.)
#   hack/critest.sh crictl-streaming
#       The same environment, and crictl's exec, exec -i, exec -it, attach
#       and port-forward against it, over SPDY and websocket.
#
# hull-cri serves NRI on a private socket ($work/nri.sock, no pre-installed
# plugins) that critest's NRI specs connect to (-nri-socket). Its plugin
# request timeout is 10s, not NRI's 2s: the synchronization specs hold a
# plugin's Synchronize open for 2s on purpose, which the default would
# count as a dead plugin.
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

# build_tools [TOOL...] builds the named tools of cri-tools (critest,
# crictl; both when none is named) into $CRI_TOOLS_DIR unless they are
# there: `make test` needs only crictl, and critest is the longer build.
build_tools() {
  local tools=("$@") missing=() t
  ((${#tools[@]})) || tools=(critest crictl)
  for t in "${tools[@]}"; do [ -x "$CRI_TOOLS_DIR/$t" ] || missing+=("$t"); done
  ((${#missing[@]})) || return 0
  mkdir -p "$CRI_TOOLS_DIR"
  local dir src
  dir=$(go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "critest.sh: go mod download sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION failed" >&2; exit 1; }
  # The module cache is read-only: build in a copy. (The .tmp names and
  # mv keep a concurrent build from seeing half a binary.)
  src=$(mktemp -d "$CRI_TOOLS_DIR/src.XXXXXX")
  trap 'rm -rf "$src"' RETURN
  cp -r "$dir/." "$src"
  chmod -R u+w "$src"
  local build
  for t in "${missing[@]}"; do
    case $t in
    critest) build=(go test -c -o "$CRI_TOOLS_DIR/critest.tmp.$$" ./cmd/critest) ;;
    crictl) build=(go build -o "$CRI_TOOLS_DIR/crictl.tmp.$$" ./cmd/crictl) ;;
    *) rm -rf "$src"; echo "critest.sh: unknown tool $t" >&2; exit 2 ;;
    esac
    # (as upstream builds them: no cgo, no experiments of hull's)
    if ! (cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 GOEXPERIMENT= "${build[@]}"); then
      rm -rf "$src" "$CRI_TOOLS_DIR/$t.tmp.$$"
      echo "critest.sh: building $t of sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION failed" >&2
      exit 1
    fi
    mv "$CRI_TOOLS_DIR/$t.tmp.$$" "$CRI_TOOLS_DIR/$t"
  done
}

# exec_shell prints the path of a busybox built without
# FEATURE_SH_STANDALONE (Debian's dynamically linked package busybox,
# fetched once with apt-get download into $CRI_TOOLS_DIR; the installed
# busybox-static conflicts with it, so it is unpacked, not installed): the
# default stand-in's /bin/sh, whose `sh -c ls` executes /bin/ls as the
# MaskedPaths spec needs (hack/testenv/execshell.go). Prints nothing if
# it cannot be had; that spec then fails.
exec_shell() {
  local sh=$CRI_TOOLS_DIR/busybox-sh tmp
  if [ ! -x "$sh" ]; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download busybox >/dev/null 2>&1 && dpkg -x busybox_*.deb x) && [ -x "$tmp/x/bin/busybox" ]; then
      cp "$tmp/x/bin/busybox" "$sh.tmp" && mv "$sh.tmp" "$sh"
    else
      echo "critest.sh: could not fetch Debian's busybox (apt-get download busybox): the MaskedPaths spec will fail" >&2
    fi
    rm -rf "$tmp"
  fi
  [ -x "$sh" ] && echo "$sh"
  return 0
}

# start_env: a registry with the stand-ins and hull-cri on private roots
# (socket $work/cri.sock); everything started is stopped and removed on
# exit.
start_env() {
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
      ids=$("${h[@]}" pod ls -A -q 2>/dev/null) && [ -n "$ids" ] && "${h[@]}" pod rm -f $ids >/dev/null 2>&1 || true
      ids=$("${h[@]}" ps -A -aq 2>/dev/null) && [ -n "$ids" ] && "${h[@]}" rm -f $ids >/dev/null 2>&1 || true
    fi
    [ -n "${bridge:-}" ] && ip link del "$bridge" 2>/dev/null || true
    [ -n "${bridge:-}" ] && ip link del "${bridge}d" 2>/dev/null || true
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
  # The pod network, as kubelet's runtimes find it: the first conflist of
  # a CNI configuration directory, here a bridge and subnet of its own (a
  # 10.2xx.x.0/24 the host does not route), removed with the roots.
  local octet=$((RANDOM % 250))
  mkdir -p "$work/net.d"
  cat >"$work/net.d/10-critest.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "critest",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.237.$octet.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  {
    # hull's default network (unused by the pods), private all the same.
    echo "[network]"
    echo "default_bridge = \"${bridge}d\""
    echo "default_subnet = \"10.238.$octet.0/24\""
    "$work/testenv" critest-images --registry "$addr" --nonewprivs "$work/nonewprivs" --exec-shell "$(exec_shell)" |
      "$work/testenv" registries-toml
  } >"$work/hull.toml"
  "$here/bin/hull" --config "$work/hull.toml" --root "$work/root" --run-root "$work/run" \
    cri serve --listen "unix://$work/cri.sock" --cni-conf-dir "$work/net.d" \
    --nri-socket "$work/nri.sock" --nri-plugin-path "$work/nri-plugins" --nri-plugin-config-path "$work/nri-conf" \
    --nri-plugin-request-timeout 10s 2>"$work/cri.log" &
  cri_pid=$!
  for _ in $(seq 100); do [ -S "$work/cri.sock" ] && break; sleep 0.1; done
  [ -S "$work/cri.sock" ] || { cat "$work/cri.log" >&2; echo "critest.sh: hull cri serve did not start" >&2; exit 1; }
}

# run_critest: critest against the environment of start_env.
run_critest() {
  start_env
  local args=("$@")
  # The one image spec no registry here can serve: it pulls a fixed
  # upstream digest (test-image-digest@sha256:9700f9...).
  ((${#args[@]})) || args=(--ginkgo.focus='Image Manager' --ginkgo.skip='public image with digest')
  local status=0
  "$CRI_TOOLS_DIR/critest" --runtime-endpoint "unix://$work/cri.sock" --image-endpoint "unix://$work/cri.sock" \
    -nri-socket "$work/nri.sock" --ginkgo.no-color "${args[@]}" || status=$?
  if [ "${KEEP_CRI_LOG:-}" ]; then cp "$work/cri.log" "$KEEP_CRI_LOG"; fi
  return $status
}

# run_crictl_streaming: crictl's streaming commands against hull, each
# over SPDY and websocket (internal/cri's TestCrictl runs them under
# `make test` over crictl's default transport): exec with and without
# input, exit statuses, exec -it on a pty (script(1)), attach to a shell,
# port-forward to the nginx stand-in. Prints one line per check; fails at
# the first that fails.
run_crictl_streaming() {
  start_env
  local crictl=("$CRI_TOOLS_DIR/crictl" --runtime-endpoint "unix://$work/cri.sock" --image-endpoint "unix://$work/cri.sock" --timeout 60s)
  local busybox=registry.k8s.io/e2e-test-images/busybox:1.29-2 nginx=registry.k8s.io/e2e-test-images/nginx:1.14-2
  export CRI_CONFIG_FILE=/dev/null
  check() { # check NAME WANT OUTPUT
    if [[ "$3" == *"$2"* ]]; then echo "ok   $1"; else echo "FAIL $1: got $(printf %q "$3"), want $(printf %q "$2")"; exit 1; fi
  }
  "${crictl[@]}" pull "$busybox" >/dev/null
  "${crictl[@]}" pull "$nginx" >/dev/null
  cat >"$work/pod.json" <<JSON
{"metadata": {"name": "streaming", "namespace": "default", "uid": "streaming-uid", "attempt": 1},
 "log_directory": "$work/logs", "linux": {}}
JSON
  cat >"$work/sleeper.json" <<JSON
{"metadata": {"name": "sleeper"}, "image": {"image": "$busybox"}, "command": ["sleep", "3600"], "log_path": "sleeper.log", "linux": {}}
JSON
  cat >"$work/web.json" <<JSON
{"metadata": {"name": "web"}, "image": {"image": "$nginx"}, "log_path": "web.log", "linux": {}}
JSON
  local pod sleeper web out port pf_pid
  pod=$("${crictl[@]}" runp "$work/pod.json")
  sleeper=$("${crictl[@]}" create "$pod" "$work/sleeper.json" "$work/pod.json")
  web=$("${crictl[@]}" create "$pod" "$work/web.json" "$work/pod.json")
  "${crictl[@]}" start "$sleeper" "$web" >/dev/null
  for tr in spdy websocket; do
    out=$("${crictl[@]}" exec -r $tr "$sleeper" echo hello 2>&1)
    check "exec ($tr)" hello "$out"
    out=$(echo from-stdin | "${crictl[@]}" exec -r $tr -i "$sleeper" cat 2>&1)
    check "exec -i ($tr)" from-stdin "$out"
    # (crictl exits 1, saying the command's status)
    out=$("${crictl[@]}" exec -r $tr "$sleeper" sh -c 'exit 3' 2>&1) || true
    check "exec exit status ($tr)" "command terminated with exit code 3" "$out"
    out=$(script -qec "${crictl[*]} exec -r $tr -it $sleeper sh -c 'test -t 0 && echo on-a-tty'" /dev/null </dev/null 2>&1)
    check "exec -it ($tr)" on-a-tty "$out"
    # attach: a shell reading its stdin; the end of the input ends it.
    cat >"$work/shell.json" <<JSON
{"metadata": {"name": "shell-$tr"}, "image": {"image": "$busybox"}, "command": ["sh"], "stdin": true, "stdin_once": true, "log_path": "shell-$tr.log", "linux": {}}
JSON
    local shell
    shell=$("${crictl[@]}" create "$pod" "$work/shell.json" "$work/pod.json")
    "${crictl[@]}" start "$shell" >/dev/null
    out=$( (sleep 1; echo 'echo attached-$((6*7))') | "${crictl[@]}" attach -r $tr -i "$shell" 2>&1)
    check "attach -i ($tr)" attached-42 "$out"
    # port-forward: the nginx stand-in's port 80 on a local port crictl
    # picks (and names in its "Forwarding from" line).
    "${crictl[@]}" port-forward -r $tr "$pod" 0:80 >"$work/pf.log" 2>&1 &
    pf_pid=$!
    out= port=
    for _ in $(seq 50); do
      port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/pf.log")
      [ -n "$port" ] && out=$(curl -sS "http://127.0.0.1:$port/" 2>/dev/null) && break
      sleep 0.1
    done
    kill "$pf_pid" 2>/dev/null; wait "$pf_pid" 2>/dev/null || true
    check "port-forward ($tr)" "hull critest stand-in" "$out$(cat "$work/pf.log")"
  done
  "${crictl[@]}" rmp -f "$pod" >/dev/null
}

cmd=${1:-build}
shift || true
case $cmd in
build)
  build_tools
  echo "CRITEST=$CRI_TOOLS_DIR/critest"
  echo "CRICTL=$CRI_TOOLS_DIR/crictl"
  ;;
crictl)
  build_tools crictl
  echo "CRICTL=$CRI_TOOLS_DIR/crictl"
  ;;
run)
  run_critest "$@"
  ;;
crictl-streaming)
  run_crictl_streaming
  ;;
*)
  echo "usage: hack/critest.sh build | crictl | run [CRITEST ARGS...] | crictl-streaming" >&2
  exit 2
  ;;
esac
