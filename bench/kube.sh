#!/usr/bin/env bash
# `hull kube` benchmark (issue 17): the seed's Pod (container-fundamentals-demo,
# docker.io/library/nginx:1.25, runAsNonRoot, requests and limits), image
# present, side by side and interleaved round by round:
#   (a) to Running: `hull kube apply -f pod.yaml` until the pod's status
#       (what `hull kube get` reads) says Running, vs `podman kube play
#       pod.yaml` (it returns with the containers running), vs kubelet on
#       containerd 1.6 (a static pod: from writing the manifest into
#       kubelet's manifest directory until the CRI lists the container
#       running);
#   (b) teardown: `hull kube delete -f pod.yaml` (it waits until the pod is
#       gone) vs `podman kube down pod.yaml` vs kubelet (from removing the
#       manifest until the CRI lists no container running and no sandbox
#       ready).
# Goal: (a) <= 0.2x podman. kubelet and containerd are held (SIGSTOP)
# while hull and podman are measured (hold_kubelet).
#
# The image is a non-root web stand-in (busybox httpd as uid 101 on 8080)
# under the name nginx:1.25, from a local registry through each one's
# mirror configuration (hack/testenv kubelet-images --nonroot), as the kube
# tests do: the real nginx:1.25 runs as root, which runAsNonRoot refuses.
#
# Private state: hull's roots and default network; podman's storage and
# run roots, its containers.conf (CONTAINERS_CONF: the default_ulimits
# this machine needs, the CNI backend on a network directory of the
# benchmark's own) and registries.conf; containerd's config, root, state
# and socket, its CNI conflist (bridge + portmap, as containerd's example)
# and its sandbox image (the pause stand-in, hack/testenv critest-images);
# kubelet as test/kubelet.sh runs it (hack/kubelet-host.sh: private paths
# and cgroup root, what it changes on the host put back). Each one's pods
# get a bridge and a 10.237.x.0/24 the host does not route; no
# masquerade. Everything made is removed at the end, processes by PID.
#
#   bench/kube.sh            (ROUNDS=5; KUBELET=path, else the cached
#                             hack/kubelet.sh build; NO_KUBELET=1 skips it;
#                             BENCH_HOLD=SECONDS keeps everything that long
#                             before the cleanup)
set -euo pipefail
rounds=${ROUNDS:-5}
cd "$(dirname "$0")/.."
repo=$PWD
me=bench/kube.sh
export PATH=/usr/local/go/bin:$PATH
. bench/lib.sh
. hack/kubelet-host.sh

name=container-fundamentals-demo
hull_bridge=hbkube0 hull_subnet=10.237.180.0/24
pod_bridge=pbkube0 pod_subnet=10.237.181.0/24
ctd_bridge=cbkube0 ctd_subnet=10.237.182.0/24
for s in "$hull_subnet" "$pod_subnet" "$ctd_subnet"; do
  if ip route show | grep -q "^${s%/*}"; then
    echo "$me: $s is routed on this host already; pick other subnets" >&2
    exit 1
  fi
done

bench_tools podman runc catatonit jq
for b in hull hull-cri hull-shim hull-init; do [ -x "bin/$b" ] || { make build >/dev/null; break; }; done
KUBELET=${KUBELET:-/var/tmp/hull-kubelet/v1.37.2/kubelet}
peers=(hull podman)
if [ -z "${NO_KUBELET:-}" ] && [ -x "$KUBELET" ]; then
  bench_tools containerd
  [ -x /usr/lib/cni/bridge ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >/dev/null; }
  eval "$(hack/critest.sh build | grep -E '^CRICTL=')"
  kubelet_host_lock
  peers+=(kubelet)
elif [ -n "${NO_KUBELET:-}" ]; then
  echo "$me: NO_KUBELET set: kubelet left out" >&2
else
  echo "$me: no kubelet at $KUBELET (hack/kubelet.sh build, or KUBELET=path): kubelet left out" >&2
fi
has() { [[ " ${peers[*]} " == *" $1 "* ]]; }

work=$(mktemp -d /var/tmp/hull-benchkube.XXXXXX)
ctd_pid=
# Top-level cgroups the peers make and leave (hull's /kubepods, podman's
# libpod_parent): removed at the end if they were not there before and
# are empty then.
cg_new=()
for d in kubepods/burstable kubepods/besteffort kubepods libpod_parent; do
  [ -e "/sys/fs/cgroup/memory/$d" ] || cg_new+=("$d")
done
run_ctd_new=; [ -e /run/containerd ] || run_ctd_new=1

hull() { "$repo/bin/hull" --config "$work/hull.toml" --root "$work/hull" --run-root "$work/hull-run" "$@"; }
pod() {
  CONTAINERS_CONF=$work/containers.conf CONTAINERS_REGISTRIES_CONF=$work/registries.conf \
    podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver overlay \
    --cgroup-manager cgroupfs --events-backend file --runtime "$podman_runtime" --log-level error "$@"
}
crictl() {
  CRI_CONFIG_FILE=/dev/null "$CRICTL" --runtime-endpoint "unix://$work/ctd.sock" \
    --image-endpoint "unix://$work/ctd.sock" --timeout 60s "$@"
}

cleanup() {
  local status=$? d ids
  set +e
  trap - EXIT
  [ -z "${BENCH_HOLD:-}" ] || { echo "$me: holding $work for ${BENCH_HOLD}s" >&2; sleep "$BENCH_HOLD"; }
  # kubelet first (it would make its pods again), then its pods through
  # the CRI, then containerd and any shim of ours it left.
  [ -z "${held:-}" ] || kill -CONT "$kubelet_pid" "$ctd_pid" 2>/dev/null # held: a stopped process would not see the TERM
  [ -n "$kubelet_pid" ] && stop "$kubelet_pid"
  if [ -n "$ctd_pid" ]; then
    [ -S "$work/ctd.sock" ] && crictl rmp -fa >/dev/null 2>&1
    stop "$ctd_pid"
    for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $work/ctd.sock"); do kill -KILL "$p" 2>/dev/null; done
  fi
  if [ -f "$work/hull.toml" ]; then
    hull kube delete pod "$name" --grace-period 0 >/dev/null 2>&1
    ids=$(hull pod ls -A -q 2>/dev/null) && [ -n "$ids" ] && hull pod rm -f $ids >/dev/null 2>&1
    ids=$(hull ps -A -aq 2>/dev/null) && [ -n "$ids" ] && hull rm -f $ids >/dev/null 2>&1
    [ -x "$work/testenv" ] && "$work/testenv" network-rm --root "$work/hull" --run-root "$work/hull-run" \
      --bridge "$hull_bridge" --subnet "$hull_subnet" >/dev/null 2>&1
  fi
  if [ -f "$work/containers.conf" ]; then
    pod kube down "$work/pod.yaml" >/dev/null 2>&1
    pod pod rm -af -t 0 >/dev/null 2>&1
    pod rm -af -t 0 >/dev/null 2>&1
  fi
  for b in "$hull_bridge" "$pod_bridge" "$ctd_bridge"; do ip link del "$b" 2>/dev/null; done
  for d in "${cg_new[@]}"; do
    for c in /sys/fs/cgroup/*/; do [ -d "$c$d" ] && rmdir "$c$d" 2>/dev/null; done
  done
  [ -z "$run_ctd_new" ] || rmdir /run/containerd/s /run/containerd 2>/dev/null
  bench_stop_registry
  awk -v w="$work" '$5 == w || index($5, w "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m"; done
  has kubelet && kubelet_host_restore
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- images -------------------------------------------------------------------
go build -tags libsqlite3 -o "$work/testenv" ./hack/testenv
eval "$("$work/testenv" registry --dir "$work/registry" --pidfile "$work/registry.pid" --detach | grep -E '^(ADDR|PID)=')"
registry_pid=$PID
{
  "$work/testenv" kubelet-images --nonroot --registry "$ADDR"
  if has kubelet; then "$work/testenv" critest-images --registry "$ADDR"; fi
} | "$work/testenv" registries-toml >"$work/mirrors"
pause=registry.k8s.io/pause:3.9
img=docker.io/library/nginx:1.25

# The seed's manifest, verbatim.
cat >"$work/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
spec:
  containers:
    - name: web
      image: $img
      securityContext:
        runAsNonRoot: true
        allowPrivilegeEscalation: false
      resources:
        requests:
          cpu: 100m
          memory: 128Mi
        limits:
          cpu: 500m
          memory: 256Mi
EOF

# --- hull ---------------------------------------------------------------------
{
  printf '[network]\ndefault_bridge = "%s"\ndefault_subnet = "%s"\n' "$hull_bridge" "$hull_subnet"
  cat "$work/mirrors"
} >"$work/hull.toml"
hull pull -q "$img" >/dev/null

# --- podman: CNI on a conflist of the benchmark's own -------------------------
mkdir -p "$work/podman-cni"
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[network]
network_backend = "cni"
network_config_dir = "$work/podman-cni"
cni_plugin_dirs = ["/usr/lib/cni"]
default_network = "kubebench"
default_subnet = "$pod_subnet"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$work/podman-events.log"
tmp_dir = "$work/podman-tmp"
EOF
bench_conflist kubebench "$pod_bridge" "$pod_subnet" "$work/podman-ipam" 0.4.0 >"$work/podman-cni/10-kubebench.conflist"
# "docker.io" = ["ADDR/docker.io"] -> docker.io's location rewritten to
# ADDR/docker.io. Not a [[registry.mirror]]: podman tries a registry's
# mirrors and then its location, docker.io itself (hull's mirrors_only).
sed -n 's/^"\([^"]*\)" = \["\([^"]*\)"\]$/\1 \2/p' "$work/mirrors" | while read -r host loc; do
  printf '[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n' "$host" "$loc"
done >"$work/registries.conf"
pod pull -q "$img" >/dev/null

# --- containerd and kubelet ------------------------------------------------------
if has kubelet; then
  mkdir -p "$work/cni" "$work/ctd"
  bench_conflist kubebench "$ctd_bridge" "$ctd_subnet" "$work/cni-ipam" >"$work/cni/10-kubebench.conflist"
  bench_containerd_conf "$pause" "$work/cni" "$work/mirrors" >"$work/containerd.toml"
  containerd --config "$work/containerd.toml" --log-level warn 2>"$work/containerd.log" &
  ctd_pid=$!
  for _ in $(seq 100); do [ -S "$work/ctd.sock" ] && break; sleep 0.1; done
  [ -S "$work/ctd.sock" ] || { cat "$work/containerd.log" >&2; echo "$me: containerd did not start" >&2; exit 1; }
  crictl pull "$img" >/dev/null
  crictl pull "$pause" >/dev/null
  kubelet_host_save
  kubelet_config "unix://$work/ctd.sock"
  start_kubelet "$KUBELET"
fi
echo "$me: ${peers[*]}; podman $(podman --version | awk '{print $3}') on $podman_runtime$(has kubelet && echo ", kubelet $("$KUBELET" --version | awk '{print $2}') on containerd $(containerd --version | awk '{print $3}')"); registry $ADDR"

# --- one pod up and down, each ------------------------------------------------
# Each up_X brings the pod to Running and fails (after 60 s) if it does
# not get there; each down_X removes it.
status_json=$work/hull/kube/pods/default/$name/status.json
# The wait forks nothing between rounds (a bash builtin naps: read -t on
# a pipe that never has data), nor does hull's poll (the file read into
# a variable): a `grep` and a `sleep` per round cost 10-15 ms of
# processor time on the 2-core test VM (a process start there is 5-6
# ms), most of a core taken from the hull processes being measured, and
# the rounds came 15 ms apart. (kubelet's poll runs crictl: no builtin
# reads the CRI.)
exec {nap}<> <(:)
wait_until() { # SECONDS COMMAND...: run COMMAND until it succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || { echo "$me: timed out waiting for: $*" >&2; return 1; }
    read -r -t 0.002 -u "$nap" || :
  done
}
running_hull() {
  local s=
  { read -r -d '' s <"$status_json"; } 2>/dev/null
  [[ $s == *'"phase": "Running"'* ]]
}
up_hull() {
  hull kube apply -f "$work/pod.yaml" >/dev/null
  echo "$EPOCHREALTIME" >"$work/applied"
  wait_until 60 running_hull
}
down_hull() { hull kube delete -f "$work/pod.yaml" >/dev/null; }
up_podman() { pod kube play --network kubebench "$work/pod.yaml" >/dev/null; }
down_podman() { pod kube down "$work/pod.yaml" >/dev/null; }
# kubelet: the manifest gets a round's annotation, so each round is a new
# static pod (a new UID) rather than the one kubelet just killed.
round=0
running_kubelet() { [ -n "$(crictl ps --name '^web$' --state running -q 2>/dev/null)" ]; }
torn_down_kubelet() { [ -z "$(crictl ps --state running -q 2>/dev/null)$(crictl pods --state ready -q 2>/dev/null)" ]; }
up_kubelet() {
  sed "s/^  name: $name\$/  name: $name\n  annotations:\n    kube-bench\/round: \"$round\"/" "$work/pod.yaml" >"$work/pod.tmp"
  mv "$work/pod.tmp" "$work/manifests/pod.yaml"
  wait_until 120 running_kubelet
}
down_kubelet() {
  rm "$work/manifests/pod.yaml"
  wait_until 120 torn_down_kubelet
}
# check_X: the pod is up as it should be (not timed).
check_hull() { [ "$(hull kube get pod "$name" -o 'jsonpath={.status.phase} {.status.containerStatuses[0].ready}')" = "Running true" ]; }
check_podman() { [ "$(pod inspect -f '{{.State.Status}}' "$name-web")" = running ]; }
check_kubelet() { running_kubelet; }
# after_X: what is left of a torn-down pod goes (not timed): kubelet's
# stopped sandbox, which its garbage collection would remove later.
after_hull() { :; }
after_podman() { :; }
after_kubelet() { crictl rmp -a >/dev/null 2>&1 || true; }

# kubelet and containerd are held (SIGSTOP) while another peer is measured
# and go on (SIGCONT) for kubelet's rounds: running, their housekeeping
# (kubelet's relists and status syncs every second, containerd's) took the
# two processors from the peer measured, hull's apply 96 -> 150 ms in some
# rounds. Each peer is measured on an otherwise quiet host, as without
# kubelet.
held=
hold_kubelet() { # PEER: hold kubelet and containerd unless PEER is kubelet
  has kubelet || return 0
  if [ "$1" = kubelet ]; then
    [ -z "$held" ] || kill -CONT "$kubelet_pid" "$ctd_pid"
    held=
  else
    [ -n "$held" ] || kill -STOP "$kubelet_pid" "$ctd_pid"
    held=1
  fi
}

# A first round not counted: podman builds its pause image, every one's
# caches fill.
round=0
for p in "${peers[@]}"; do
  hold_kubelet "$p"
  "up_$p" && "check_$p" || { echo "$me: $p: the pod did not come up" >&2; exit 1; }
  "down_$p"
  "after_$p"
done

echo "(a) to Running, (b) teardown; $rounds rounds, the order rotated each round"
for ((round = 1; round <= rounds; round++)); do
  line="  round $round:"
  order=("${peers[@]:$(((round - 1) % ${#peers[@]}))}" "${peers[@]:0:$(((round - 1) % ${#peers[@]}))}")
  for p in "${order[@]}"; do
    hold_kubelet "$p"
    t0=$EPOCHREALTIME
    "up_$p"
    t1=$EPOCHREALTIME
    "check_$p" || { echo "$me: $p: the pod is not up as it should be" >&2; exit 1; }
    [ "$p" != hull ] || awk -v a="$t0" -v b="$(cat "$work/applied")" 'BEGIN { printf "%.4f\n", b - a }' >>"$work/apply.hull"
    t2=$EPOCHREALTIME
    "down_$p"
    t3=$EPOCHREALTIME
    "after_$p"
    up=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    down=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.4f", b - a }')
    echo "$up" >>"$work/up.$p"; echo "$down" >>"$work/down.$p"
    line+=" $p up ${up}s down ${down}s;"
  done
  echo "$line"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
declare -A up_m down_m
for p in "${peers[@]}"; do up_m[$p]=$(median <"$work/up.$p"); down_m[$p]=$(median <"$work/down.$p"); done
apply_m=$(median <"$work/apply.hull")
echo
if has kubelet; then
  printf '%-34s %9s %9s %9s %13s %15s  %s\n' "median s" hull podman kubelet "hull/podman" "hull/kubelet" goal
  printf '%-34s %9s %9s %9s %13s %15s  %s\n' "(a) to Running" "${up_m[hull]}" "${up_m[podman]}" "${up_m[kubelet]}" \
    "$(ratio "${up_m[hull]}" "${up_m[podman]}")" "$(ratio "${up_m[hull]}" "${up_m[kubelet]}")" "<= 0.2x podman"
  printf '%-34s %9s\n' "    of which hull kube apply" "$apply_m"
  printf '%-34s %9s %9s %9s %13s %15s\n' "(b) teardown" "${down_m[hull]}" "${down_m[podman]}" "${down_m[kubelet]}" \
    "$(ratio "${down_m[hull]}" "${down_m[podman]}")" "$(ratio "${down_m[hull]}" "${down_m[kubelet]}")"
else
  printf '%-34s %9s %9s %13s  %s\n' "median s" hull podman "hull/podman" goal
  printf '%-34s %9s %9s %13s  %s\n' "(a) to Running" "${up_m[hull]}" "${up_m[podman]}" "$(ratio "${up_m[hull]}" "${up_m[podman]}")" "<= 0.2x podman"
  printf '%-34s %9s\n' "    of which hull kube apply" "$apply_m"
  printf '%-34s %9s %9s %13s\n' "(b) teardown" "${down_m[hull]}" "${down_m[podman]}" "$(ratio "${down_m[hull]}" "${down_m[podman]}")"
fi
