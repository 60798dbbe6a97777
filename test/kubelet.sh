#!/usr/bin/env bash
# A real kubelet (v1.37, hack/kubelet.sh build) in standalone mode against
# `hull cri serve`: static pods from a manifest directory, no API server.
#
#   test/kubelet.sh          (EVENTED_PLEG=1: kubelet with its EventedPLEG gate)
#
# HULL_CRIU: the criu hull-cri checkpoints and restores with (default:
# make criu's, /var/tmp/hull-criu/VERSION/criu, built by hack/criu.sh
# when missing); HULL_CRICTL: crictl (default: hack/critest.sh crictl's).
#
# Runs as root (kubelet makes cgroups, hull makes containers). Not part of
# `make test`: the first run builds kubelet (minutes on 2 cores), and each
# run starts kubelet, hull-cri and a registry and waits for kubelet's
# restart back-off (about two minutes in all).
#
# Everything is private to the run: hull's roots, socket, bridge and subnet;
# kubelet's root dir, pod log dir, manifest dir, ports (127.0.0.1 only) and
# cgroup root (/hull-kubelet-PID under every cgroup v1 hierarchy, made here
# and removed with all kubelet made under it). What kubelet changes on the
# host beyond that is put back at the end, even on failure: the kernel
# sysctls it sets when protectKernelDefaults is false (vm.overcommit_memory,
# vm.panic_on_oom, kernel.panic, kernel.panic_on_oops,
# kernel.keys.root_maxkeys/root_maxbytes), the iptables chains and rules
# it adds (KUBE-IPTABLES-HINT, KUBE-FIREWALL, KUBE-KUBELET-CANARY) when
# they were not there before, and the host paths it makes whatever its
# configuration says (/var/log/containers for its legacy log symlinks,
# /var/lib/kubelet/device-plugins/kubelet.sock) when they were not there
# before. Its volume plugin directory is private too. Hence one run at a
# time per machine, and none beside a kubelet of the host's own: those
# paths and chains are the host's, not the run's.
#
# The images are stand-ins served by a local registry through hull's
# [registries.mirrors] (hack/testenv kubelet-images): the course's
# docker.io/library/nginx:1.25 (runs as root) and
# docker.io/nginxinc/nginx-unprivileged:1.25 (uid 101, port 8080).
# The checkpoint image the run makes is pushed beside them, under
# ADDR/docker.io/..., so kubelet pulls it through the same mirror.
#
# Checks (PASS/FAIL each, then "N passed, N failed"; exit 1 on a failure):
#   - the course Pod (container-fundamentals-demo: explicit tag,
#     runAsNonRoot, allowPrivilegeEscalation false, requests and limits)
#     with the non-root image is Running with an IP, answers HTTP on it,
#     has its limits in its cgroups (CFS quota 50000/100000 = 500m, memory
#     256Mi) and its logs readable through kubelet, and its container
#     status names the image as the Pod does (containerStatuses[].image,
#     not the image ID kubelet created it from; imageID the repo digest),
#     as hull ps -A does;
#   - the same Pod with the root image nginx:1.25 is refused with
#     CreateContainerConfigError, "container has runAsNonRoot and image will
#     run as root";
#   - a container allocating past its 64Mi limit is OOMKilled, exit code
#     137, restartCount >= 1, and its previous attempt's log is readable;
#   - kubelet's /stats/summary has the course container's CPU and memory;
#   - hull-cri stopped and started again under kubelet, and kubelet
#     stopped and started again: the same sandboxes, the course container
#     still running, not restarted;
#   - kubelet's checkpoint API (ContainerCheckpoint, beta since 1.30):
#     POST /checkpoint/default/counter-<node>/count on a static pod that
#     counts answers 200 with the archive's path in its items, under
#     kubelet's <root-dir>/checkpoints (mode 600), holding hull's members
#     (checkpoint/inventory.img, spec.dump, config.dump naming the pod,
#     rootfs-diff.tar); the container is still Running, not restarted,
#     counting on;
#   - that archive restored through the CRI by crictl (runp, create
#     --no-pull with the archive's path as the image, start; kubelet
#     stopped meanwhile, as it kills a pod it does not know): its log
#     counts on from the checkpointed value, not from 0; then its sandbox
#     is removed with nothing left, and kubelet, started again, finds the
#     checkpointed container unchanged;
#   - that archive restored by kubelet, Kubernetes' way: hull image
#     checkpoint makes a checkpoint image of it (against hull-cri's
#     store), hull push sends it to the registry under a name the
#     mirrors serve (docker.io/library/counter-checkpoint:1), and a
#     second static pod whose container (the same name, count) has that
#     image is Running, its log through kubelet counting on from the
#     checkpointed value, not from 0; the teardown below removes it;
#   - a readiness probe (ExecSync) reading what the container wrote into
#     an emptyDir makes that pod Ready;
#   - with EVENTED_PLEG=1 (kubelet's EventedPLEG gate), kubelet relists a
#     pod on hull's STOPPED events (GetContainerEvents);
#   - removing the manifests removes everything: no sandboxes, containers,
#     mounts under hull's roots, pod or container cgroups, IP leases,
#     attachment records or host veths (each seen while the pods ran).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
me=kubelet.sh
# the run's, for its cleanup
work= reg_pid= cri_pid= bridge=
# kubelet on private paths; what it changes on the host, saved and put
# back (node, cgroot, stop, free_port, kubelet_config, start_kubelet,
# kubelet_host_*)
. "$here/hack/kubelet-host.sh"
passed=0 failed=0
# EVENTED_PLEG=1: kubelet with its EventedPLEG gate (alpha, off by
# default), so it reads GetContainerEvents for its fast path on container
# terminations; checked in its log (verbosity 4).
if [ -n "${EVENTED_PLEG:-}" ]; then
  export KUBELET_FEATURE_GATES="EventedPLEG=true${KUBELET_FEATURE_GATES:+,$KUBELET_FEATURE_GATES}" KUBELET_V=4
fi

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

cleanup() {
  local status=$? i
  set +e
  [ -n "$kubelet_pid" ] && stop "$kubelet_pid"
  # What kubelet left running (a failed check, kubelet killed): the pods
  # and their containers, before hull-cri and the roots go.
  if [ -n "$cri_pid" ] && [ -S "$work/cri.sock" ]; then
    for i in $(crictl pods -q 2>/dev/null); do
      crictl stopp "$i" >/dev/null 2>&1
      crictl rmp -f "$i" >/dev/null 2>&1
    done
  fi
  [ -n "$cri_pid" ] && stop "$cri_pid"
  if [ -f "$work/hull.toml" ]; then
    local ids
    ids=$(hull pod ls -A -q 2>/dev/null) && [ -n "$ids" ] && hull pod rm -f $ids >/dev/null 2>&1
    ids=$(hull ps -A -aq 2>/dev/null) && [ -n "$ids" ] && hull rm -f $ids >/dev/null 2>&1
  fi
  [ -n "$bridge" ] && ip link del "$bridge" 2>/dev/null
  [ -n "$bridge" ] && ip link del "${bridge}d" 2>/dev/null
  [ -n "$reg_pid" ] && stop "$reg_pid"
  # kubelet's bind mount of its root dir (made rshared) and anything else
  # left mounted under the run's directory, deepest first.
  if [ -n "$work" ]; then
    awk -v w="$work" '$5 == w || index($5, w "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m"; done
  fi
  # The cgroup root (kubelet's kubepods tree under it, and whatever hull
  # made there), the sysctls, iptables chains and host paths kubelet
  # changed.
  kubelet_host_restore
  [ -n "$work" ] && [ -z "${KEEP_WORK:-}" ] && rm -rf "$work"
  [ -n "${KEEP_WORK:-}" ] && echo "kubelet.sh: kept $work" >&2
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "kubelet.sh: run as root (kubelet makes cgroups, hull containers)" >&2; exit 1; }
kubelet_host_lock
for t in jq curl ss findmnt; do
  command -v $t >/dev/null || { echo "kubelet.sh: $t is missing: run hack/deps.sh" >&2; exit 1; }
done
KUBELET=$("$here/hack/kubelet.sh" build | sed -n 's/^KUBELET=//p')
# crictl (HULL_CRICTL, as make test's) for the CRI side of the checks.
CRICTL=${HULL_CRICTL:-$("$here/hack/critest.sh" crictl | sed -n 's/^CRICTL=//p')}
# CRIU for the checkpoint checks, in hull-cri's environment: HULL_CRIU,
# else make criu's (hack/criu.sh builds it when it is missing).
HULL_CRIU=${HULL_CRIU:-$("$here/hack/criu.sh")}
[ -x "$HULL_CRIU" ] || { echo "kubelet.sh: HULL_CRIU=$HULL_CRIU is not an executable (make criu builds one)" >&2; exit 1; }
export HULL_CRIU
make -C "$here" build >/dev/null
work=$(mktemp -d /tmp/hull-kubelet.XXXXXX)
(cd "$here" && CGO_ENABLED=1 go build -tags libsqlite3 -o "$work/testenv" ./hack/testenv)

hull() { "$here/bin/hull" --config "$work/hull.toml" --root "$work/root" --run-root "$work/run" "$@"; }
crictl() {
  CRI_CONFIG_FILE=/dev/null "$CRICTL" --runtime-endpoint "unix://$work/cri.sock" \
    --image-endpoint "unix://$work/cri.sock" --timeout 30s "$@"
}

# --- registry and hull-cri --------------------------------------------------
"$work/testenv" registry --dir "$work/registry" --detach >"$work/registry.env"
addr=$(sed -n 's/^ADDR=//p' "$work/registry.env")
reg_pid=$(sed -n 's/^PID=//p' "$work/registry.env")
bridge=hkub$((RANDOM % 10000))
# The pod network as a node has it: the first conflist of a CNI
# configuration directory (a bridge and subnet of the run's own, a
# 10.2xx.x.0/24 the host does not route); hull's default network, unused
# by the pods, is private all the same.
octet=$((RANDOM % 250))
mkdir -p "$work/net.d"
cat >"$work/net.d/10-kubelet.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kubelet-test",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.238.$octet.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
{
  echo "[network]"
  echo "default_bridge = \"${bridge}d\""
  echo "default_subnet = \"10.239.$octet.0/24\""
  "$work/testenv" kubelet-images --registry "$addr" | "$work/testenv" registries-toml
} >"$work/hull.toml"
start_cri() {
  "$here/bin/hull" --config "$work/hull.toml" --root "$work/root" --run-root "$work/run" \
    cri serve --listen "unix://$work/cri.sock" --cni-conf-dir "$work/net.d" \
    --nri-socket "$work/nri.sock" --nri-plugin-path "$work/nri-plugins" 2>>"$work/cri.log" &
  cri_pid=$!
  for _ in $(seq 100); do [ -S "$work/cri.sock" ] && break; sleep 0.1; done
  [ -S "$work/cri.sock" ] || { cat "$work/cri.log" >&2; echo "kubelet.sh: hull cri serve did not start" >&2; exit 1; }
}
start_cri

# --- what kubelet changes on the host, saved; kubelet ------------------------
kubelet_host_save
kubelet_config "unix://$work/cri.sock"
start_kubelet "$KUBELET"

# pod NAME: the static pod's entry in kubelet's /pods (name NAME-<node>).
pod() {
  curl -sf "http://127.0.0.1:$ro_port/pods" | jq -c --arg n "$1-$node" '.items[]? | select(.metadata.name == $n)'
}

# wait_for SECONDS NAME JQ: until the pod's entry satisfies JQ; prints it.
wait_for() {
  local deadline=$((SECONDS + $1)) p
  while ((SECONDS < deadline)); do
    p=$(pod "$2")
    if [ -n "$p" ] && jq -e "$3" >/dev/null 2>&1 <<<"$p"; then
      echo "$p"
      return 0
    fi
    sleep 1
  done
  echo "$p"
  return 1
}

# manifest NAME IMAGE [LIMIT_MEMORY [COMMAND_JSON]]
manifest() {
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  containers:
  - name: web
    image: $2
    ${4:+command: $4}
    securityContext:
      runAsNonRoot: ${5:-true}
      allowPrivilegeEscalation: false
    resources:
      requests:
        cpu: 100m
        memory: ${3:-128Mi}
      limits:
        cpu: 500m
        memory: ${3:-256Mi}
EOF
}

# add FILE: a manifest into the static pod directory whole (kubelet would
# read a file half written).
add() { cat >"$work/$1.tmp" && mv "$work/$1.tmp" "$work/manifests/$1"; }

course=container-fundamentals-demo
manifest $course docker.io/nginxinc/nginx-unprivileged:1.25 | add course.yaml
manifest $course-root docker.io/library/nginx:1.25 | add course-root.yaml
manifest memory-hog docker.io/library/nginx:1.25 64Mi \
  '["sh", "-c", "echo allocating 200M; dd if=/dev/zero of=/dev/null bs=200M count=1"]' false |
  add memory-hog.yaml

# --- the course Pod -----------------------------------------------------------
if p=$(wait_for 120 $course '.status.phase == "Running" and (.status.podIP // "") != "" and .status.containerStatuses[0].ready'); then
  ip=$(jq -r .status.podIP <<<"$p")
  pass "course pod Running with IP $ip"
else
  fail "course pod Running with IP" "$(jq -c .status <<<"$p" 2>/dev/null || echo "no pod")"
  ip=
fi
if [ -n "$ip" ] && curl -sf --max-time 5 "http://$ip:8080/" | grep -q 'stand-in'; then
  pass "course pod serves HTTP on $ip:8080"
else
  fail "course pod serves HTTP" "no answer from ${ip:-?}:8080"
fi

# kubelet creates the container from the image's ID, with the Pod's name
# in user_specified_image; the status it shows is the CRI's.
image=docker.io/nginxinc/nginx-unprivileged
if jq -e --arg i "$image:1.25" --arg d "$image@sha256:" \
  '.status.containerStatuses[0] | .image == $i and (.imageID | startswith($d))' >/dev/null 2>&1 <<<"$p"; then
  pass "course pod's status names its image $image:1.25"
else
  fail "course pod's status names its image" "$(jq -c '.status.containerStatuses[0] | {image, imageID}' <<<"$p" 2>/dev/null) (want $image:1.25, $image@sha256:…)"
fi

cid=$(jq -r '.status.containerStatuses[0].containerID // ""' <<<"$p")
cid=${cid#*://}
quota= mem=
if [ -n "$cid" ]; then
  d=$(find "/sys/fs/cgroup/cpu$cgroot" -type d -name "*$cid*" | head -1)
  [ -n "$d" ] && quota=$(cat "$d/cpu.cfs_quota_us")/$(cat "$d/cpu.cfs_period_us")
  d=$(find "/sys/fs/cgroup/memory$cgroot" -type d -name "*$cid*" | head -1)
  [ -n "$d" ] && mem=$(cat "$d/memory.limit_in_bytes")
fi
if [ "$quota" = 50000/100000 ] && [ "$mem" = $((256 << 20)) ]; then
  pass "course pod limits in its cgroups (cpu $quota, memory $mem)"
else
  fail "course pod limits in its cgroups" "container ${cid:-?}: cpu quota/period ${quota:-none}, memory ${mem:-none} (want 50000/100000, $((256 << 20)))"
fi

ps=$(hull ps -a -A --no-trunc --format '{{.ID}} {{.Image}}' 2>&1 || true)
if [ -n "$cid" ] && grep -qx "$cid nginxinc/nginx-unprivileged:1.25" <<<"$ps"; then
  pass "hull ps -A names the course container's image nginxinc/nginx-unprivileged:1.25"
else
  fail "hull ps -A names the course container's image" "container ${cid:-?} in: $ps"
fi

logs=$(curl -sk --max-time 10 "https://127.0.0.1:$port/containerLogs/default/$course-$node/web" || true)
if grep -q 'web stand-in: httpd on port 8080 as uid 101' <<<"$logs"; then
  pass "course pod logs readable through kubelet"
else
  fail "course pod logs readable" "kubelet's containerLogs gave: ${logs:-nothing}"
fi

# --- the course Pod with the root image ----------------------------------------
if p=$(wait_for 60 $course-root '.status.containerStatuses[0].state.waiting.reason == "CreateContainerConfigError"'); then
  msg=$(jq -r '.status.containerStatuses[0].state.waiting.message' <<<"$p")
  if grep -q 'container has runAsNonRoot and image will run as root' <<<"$msg"; then
    pass "root image refused: CreateContainerConfigError ($msg)"
  else
    fail "root image refused" "message: $msg"
  fi
else
  fail "root image refused with CreateContainerConfigError" "$(jq -c '.status.containerStatuses' <<<"$p" 2>/dev/null || echo "no pod")"
fi

# --- over its memory limit ----------------------------------------------------
oom='[.status.containerStatuses[0] | .state.terminated, .lastState.terminated] | map(select(. != null and .reason == "OOMKilled" and .exitCode == 137)) | length > 0'
if p=$(wait_for 120 memory-hog "($oom) and .status.containerStatuses[0].restartCount >= 1"); then
  pass "memory-hog OOMKilled, exit 137, restartCount $(jq '.status.containerStatuses[0].restartCount' <<<"$p")"
else
  fail "memory-hog OOMKilled, exit 137, restarted" "$(jq -c '.status.containerStatuses' <<<"$p" 2>/dev/null || echo "no pod")"
fi

# kubelet keeps the last dead container: its log is the previous attempt's.
logs=
for _ in $(seq 30); do
  logs=$(curl -sk --max-time 10 "https://127.0.0.1:$port/containerLogs/default/memory-hog-$node/web?previous=true" || true)
  grep -q 'allocating 200M' <<<"$logs" && break
  sleep 1
done
if grep -q 'allocating 200M' <<<"$logs"; then
  pass "memory-hog previous attempt's logs readable"
else
  fail "memory-hog previous attempt's logs readable" "kubelet's containerLogs?previous=true gave: ${logs:-nothing}"
fi

# --- kubelet's stats (the CRI stats provider: ListContainerStats) ----------
stats=
for _ in $(seq 30); do
  stats=$(curl -sf "http://127.0.0.1:$ro_port/stats/summary" | jq -c --arg n "$course-$node" \
    '.pods[]? | select(.podRef.name == $n) | .containers[]? | select(.name == "web") | {cpu: .cpu.usageCoreNanoSeconds, mem: .memory.workingSetBytes}')
  jq -e '.cpu > 0 and .mem > 0' >/dev/null 2>&1 <<<"$stats" && break
  sleep 1
done
if jq -e '.cpu > 0 and .mem > 0' >/dev/null 2>&1 <<<"$stats"; then
  pass "course pod in kubelet's /stats/summary ($stats)"
else
  fail "course pod in kubelet's /stats/summary" "container stats: ${stats:-none}"
fi

# --- hull-cri restarted under kubelet ---------------------------------------
# Containers never depend on the server: a new one reads everything back,
# and kubelet sees the same sandboxes and the course container unchanged.
sandboxes=$(crictl pods -q | sort)
# kubelet's event stream gives up after 5 failed dials while no server
# listens (its own rule): the evented PLEG check reads the log before
# this point and after kubelet's restart below.
ev_before=$(wc -l <"$work/kubelet.log")
stop "$cri_pid"
cri_pid=
sleep 3 # kubelet's relists fail meanwhile
start_cri
sleep 12 # a sync period: kubelet would make new sandboxes now if it saw none
p=$(pod $course)
if [ "$(crictl pods -q | sort)" = "$sandboxes" ] &&
  jq -e --arg c "hull://$cid" '.status.phase == "Running" and .status.containerStatuses[0].containerID == $c and .status.containerStatuses[0].restartCount == 0' >/dev/null 2>&1 <<<"$p"; then
  pass "hull-cri restarted: same sandboxes, course container still running"
else
  fail "hull-cri restarted" "sandboxes before: $(echo $sandboxes), after: $(echo $(crictl pods -q | sort)); course: $(jq -c '.status.containerStatuses' <<<"$p" 2>/dev/null)"
fi

# --- kubelet restarted ----------------------------------------------------------
# kubelet finds its pods again from what the CRI reports (labels,
# annotations such as the container hash): nothing is made anew.
stop "$kubelet_pid"
kubelet_pid=
ev_after=$(wc -l <"$work/kubelet.log")
start_kubelet "$KUBELET"
sleep 12 # a sync period
p=$(pod $course)
if [ "$(crictl pods -q | sort)" = "$sandboxes" ] &&
  jq -e --arg c "hull://$cid" '.status.phase == "Running" and .status.containerStatuses[0].containerID == $c and .status.containerStatuses[0].restartCount == 0' >/dev/null 2>&1 <<<"$p"; then
  pass "kubelet restarted: same sandboxes, course container still running"
else
  fail "kubelet restarted" "sandboxes before: $(echo $sandboxes), after: $(echo $(crictl pods -q | sort)); course: $(jq -c '.status.containerStatuses' <<<"$p" 2>/dev/null)"
fi

# --- kubelet's checkpoint API, and the archive restored through the CRI -------
# kubelet's ContainerCheckpoint API (beta, on by default since 1.30):
# POST /checkpoint/{namespace}/{pod}/{container} on its authenticated
# port (anonymous and AlwaysAllow here, on 127.0.0.1 only) calls
# CheckpointContainer with a location of its own, <root-dir>/checkpoints/
# checkpoint-<pod>_<namespace>-<container>-<RFC 3339 time>.tar, and
# answers {"items": [that path]}; the container keeps running. kubelet
# restores nothing itself: the archive goes back through the CRI, as
# CRI-O takes one (CreateContainer with the archive's path as its image),
# by crictl into a sandbox of its own.
cat <<'EOF' | add counter.yaml
apiVersion: v1
kind: Pod
metadata:
  name: counter
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: count
    image: docker.io/library/nginx:1.25
    command: ["sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.2; done"]
EOF

# counted: the last number the counter logged, read through kubelet
# (nothing when there is none).
counted() {
  curl -sk --max-time 10 "https://127.0.0.1:$port/containerLogs/default/counter-$node/count?tailLines=1" 2>/dev/null |
    grep -x '[0-9][0-9]*' || true
}

archive= ccid= rc= n0= n1= body= code=
if p=$(wait_for 90 counter '.status.containerStatuses[0].state.running != null'); then
  ccid=$(jq -r '.status.containerStatuses[0].containerID // ""' <<<"$p")
  ccid=${ccid#*://}
  rc=$(jq '.status.containerStatuses[0].restartCount' <<<"$p")
  # far enough that a restore counting from 0 cannot pass for one
  # counting on
  for _ in $(seq 100); do
    n0=$(counted)
    [ "${n0:-0}" -ge 10 ] && break
    sleep 0.2
  done
  code=$(curl -sk --max-time 150 -o "$work/checkpoint.json" -w '%{http_code}' -X POST \
    "https://127.0.0.1:$port/checkpoint/default/counter-$node/count" || true)
  n1=$(counted)
  body=$(cat "$work/checkpoint.json" 2>/dev/null || true)
  archive=$(jq -r '.items[0] // ""' 2>/dev/null <<<"$body" || true)
else
  body="the counter pod is not running: $(jq -c '.status' <<<"$p" 2>/dev/null || echo "no pod")"
fi
want=$work/kubelet/checkpoints/checkpoint-counter-${node}_default-count-
mode=$([ -f "$archive" ] && stat -c %a:%U "$archive" || true)
if [ "$code" = 200 ] && [[ $archive == "$want"*.tar ]] && [ "$mode" = 600:root ]; then
  pass "kubelet's checkpoint API: 200, archive $archive (mode 600, root's)"
else
  fail "kubelet's checkpoint API" "HTTP ${code:-none}: ${body:-no answer}; archive ${archive:-none} ${mode:+mode $mode} (want ${want}<time>.tar, mode 600, root's)"
  [ -f "$archive" ] || archive=
fi

# hull's archive (docs/cri.md, "Checkpoints"): CRIU's images, the spec,
# hull's record of the container (naming the pod kubelet made), the
# writable layer's changes.
members= missing= record=
if [ -n "$archive" ]; then
  members=$(tar -tf "$archive" 2>/dev/null | sed 's|^\./||' || true)
  record=$(tar -xOf "$archive" config.dump 2>/dev/null | jq -c '.cri | {name, podName, podNamespace}' 2>/dev/null || true)
fi
for m in checkpoint/inventory.img spec.dump config.dump rootfs-diff.tar; do
  grep -qx "$m" <<<"$members" || missing+=" $m"
done
if [ -n "$archive" ] && [ -z "$missing" ] &&
  jq -e --arg p "counter-$node" '.name == "count" and .podName == $p and .podNamespace == "default"' >/dev/null 2>&1 <<<"$record"; then
  pass "checkpoint archive holds checkpoint/inventory.img, spec.dump, config.dump ($record), rootfs-diff.tar"
else
  fail "checkpoint archive's members" "${archive:-no archive}: missing${missing:- nothing}; config.dump's cri: ${record:-none}"
fi

# --leave-running: the same container, not restarted, counting on.
sleep 1
p=$(pod counter)
n2=$(counted)
if [ -n "$ccid" ] && [ -n "$n1" ] && [ -n "$n2" ] && [ "$n2" -gt "$n1" ] &&
  jq -e --arg c "hull://$ccid" --argjson rc "${rc:-0}" \
    '.status.containerStatuses[0] | .containerID == $c and .state.running != null and .restartCount == $rc' >/dev/null 2>&1 <<<"$p"; then
  pass "checkpointed container still Running, restartCount $rc, counting on ($n1 -> $n2)"
else
  fail "checkpointed container still Running and counting" "counted ${n1:-?} then ${n2:-?}; $(jq -c '.status.containerStatuses[0] | {containerID, state, restartCount}' <<<"$p" 2>/dev/null) (want hull://${ccid:-?} running, restartCount ${rc:-?})"
fi

# The restore, by crictl. kubelet is stopped meanwhile: it would take the
# new sandbox for an orphan of a pod it does not know and kill it (its
# housekeeping, every 2 s: "Clean up containers for orphaned pod").
# The new container needs a bind mount wherever the checkpointed one had
# one (CRIU maps them by destination): kubelet's (its pod directory's
# etc-hosts, termination-log), copied.
rdir=$work/restore rsid= rcid= nums= rerr=
kube_sandboxes=$(crictl pods -q | sort)
stop "$kubelet_pid"
kubelet_pid=
if [ -n "$archive" ]; then
  mkdir -p "$rdir/logs/count" "$rdir/mounts"
  mj='[]' i=0
  while IFS=$'\t' read -r cpath hpath ro; do
    [ -n "$cpath" ] || continue
    i=$((i + 1))
    if [ -d "$hpath" ]; then mkdir "$rdir/mounts/$i"; else cp "$hpath" "$rdir/mounts/$i"; fi
    mj=$(jq -c --arg c "$cpath" --arg h "$rdir/mounts/$i" --argjson ro "$ro" '. + [{container_path: $c, host_path: $h, readonly: $ro}]' <<<"$mj")
  done < <(crictl inspect "$ccid" 2>/dev/null | jq -r --arg k "$work/kubelet/" \
    '.status.mounts[]? | select(.hostPath | startswith($k)) | [.containerPath, .hostPath, (.readonly // false | tostring)] | @tsv' || true)
  # pid 1: CONTAINER, the checkpointed container's own PID namespace
  # (as kubelet asks without shareProcessNamespace).
  jq -n --arg n "counter-restored" --arg uid "counter-restored-$$" --arg logs "$rdir/logs" --arg cg "$cgroot/checkpoint-restore" \
    '{metadata: {name: $n, namespace: "default", uid: $uid, attempt: 0}, hostname: $n, log_directory: $logs,
      linux: {cgroup_parent: $cg, security_context: {namespace_options: {pid: 1}}}}' >"$rdir/pod.json"
  jq -n --arg a "$archive" --argjson m "$mj" \
    '{metadata: {name: "count"}, image: {image: $a}, log_path: "count/0.log", mounts: $m,
      linux: {security_context: {namespace_options: {pid: 1}}}}' >"$rdir/container.json"
  if rsid=$(crictl runp "$rdir/pod.json" 2>"$rdir/err") &&
    rcid=$(crictl create --no-pull "$rsid" "$rdir/container.json" "$rdir/pod.json" 2>"$rdir/err") &&
    crictl start "$rcid" >/dev/null 2>"$rdir/err"; then
    for _ in $(seq 100); do
      nums=$(awk '$2 == "stdout" && $4 ~ /^[0-9]+$/ {print $4}' "$rdir/logs/count/0.log" 2>/dev/null || true)
      [ "$(grep -c . <<<"$nums")" -ge 5 ] && break
      sleep 0.2
    done
  else
    rerr=$(tr '\n' ' ' <"$rdir/err")
  fi
fi
first=$(head -1 <<<"$nums")
state=$([ -n "$rcid" ] && crictl inspect "$rcid" 2>/dev/null | jq -r .status.state || true)
if [ -n "$first" ] && [ -n "$n0" ] && [ -n "$n1" ] && [ "$first" -gt 0 ] &&
  [ "$first" -ge $((n0 - 2)) ] && [ "$first" -le $((n1 + 3)) ] &&
  awk 'NR > 1 && $1 != prev + 1 {bad = 1} {prev = $1} END {exit bad}' <<<"$nums" &&
  [ "$state" = CONTAINER_RUNNING ]; then
  pass "archive restored by crictl (runp, create --no-pull, start): counts on from $first (checkpointed between $n0 and $n1), $(echo $nums | tr ' ' ',')"
else
  fail "archive restored by crictl, counting on" "${rerr:-restored container ${rcid:-none} $state logged: $(echo $nums) (want it to start between ${n0:-?} and ${n1:-?}, never 0, and count by one)}"
fi

# Its sandbox removed before kubelet's teardown: nothing of it is left
# (its cgroup parent seen while it ran, or the check proves nothing).
held=0
for d in /sys/fs/cgroup/*"$cgroot/checkpoint-restore"; do
  if [ -d "$d" ]; then held=$((held + 1)); fi
done
if [ -n "$rsid" ]; then
  [ -z "$rcid" ] || crictl stop -t 1 "$rcid" >/dev/null 2>&1 || true
  crictl stopp "$rsid" >/dev/null 2>&1 || true
  crictl rmp "$rsid" >/dev/null 2>&1 || true
fi
left=
[ "$(crictl pods -q | sort)" = "$kube_sandboxes" ] || left+=" sandboxes: $(echo $(crictl pods -q))"
ids=$(crictl ps -aq)
if [ -n "$rcid" ] && grep -q "^$rcid" <<<"$ids"; then left+=" container $rcid"; fi
for d in /sys/fs/cgroup/*"$cgroot/checkpoint-restore"; do
  if [ -d "$d" ]; then left+=" cgroup:$d"; fi
done
if [ -n "$rsid" ] && [ "$held" -gt 0 ] && [ -z "$left" ]; then
  pass "restore sandbox removed: its container, sandbox and cgroups ($held hierarchies while it ran) gone"
else
  fail "restore sandbox removed" "${rsid:-no sandbox was made}; its cgroup parent in $held hierarchies while it ran; left:${left:- nothing}"
fi

start_kubelet "$KUBELET"
if p=$(wait_for 30 counter "(.status.containerStatuses[0] | .containerID == \"hull://$ccid\" and .state.running != null and .restartCount == ${rc:-0})"); then
  pass "kubelet started again: the checkpointed container the same, restartCount $rc"
else
  fail "kubelet started again: the checkpointed container the same" "$(jq -c '.status.containerStatuses' <<<"$p" 2>/dev/null || echo "no pod")"
fi

# --- the archive restored by kubelet, from a checkpoint image -----------------
# Kubernetes' own way back (docs/cri.md, "Restoring a Pod from a
# checkpoint image"): the archive becomes a checkpoint image (hull image
# checkpoint, against hull-cri's store; CRI-O's users build it with
# buildah), pushed to the registry under a name the run's mirrors serve
# (docker.io's mirror is ADDR/docker.io), and named as the image of a
# second static pod's container of the same name. kubelet pulls it
# (through the mirror: the store has it only under the push's name),
# CreateContainer finds the image's checkpoint annotation and restores
# the archive out of its layer, StartContainer restores the process: the
# count goes on from the checkpointed value in the new pod, beside the
# checkpointed container still counting in its own.
ckimg=docker.io/library/counter-checkpoint:1
kout= kerr= knums= kp=
if [ -n "$archive" ]; then
  if kout=$(hull image checkpoint "$archive" "$addr/$ckimg" 2>&1) &&
    kout+=" "$(hull push -q "$addr/$ckimg" 2>&1); then
    cat <<EOF | add counter-restored.yaml
apiVersion: v1
kind: Pod
metadata:
  name: counter-restored
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: count
    image: $ckimg
    imagePullPolicy: IfNotPresent
EOF
    if kp=$(wait_for 90 counter-restored '.status.phase == "Running" and .status.containerStatuses[0].state.running != null'); then
      for _ in $(seq 50); do
        knums=$(curl -sk --max-time 10 "https://127.0.0.1:$port/containerLogs/default/counter-restored-$node/count" 2>/dev/null |
          grep -x '[0-9][0-9]*' || true)
        [ "$(grep -c . <<<"$knums")" -ge 5 ] && break
        sleep 0.2
      done
    else
      kerr="pod not Running: $(jq -c '.status' <<<"$kp" 2>/dev/null || echo "no pod")"
    fi
  else
    kerr="hull image checkpoint / push: $(tr '\n' ' ' <<<"$kout")"
  fi
else
  kerr="no archive from kubelet's checkpoint API"
fi
first=$(head -1 <<<"$knums")
if [ -z "$kerr" ] && [ -n "$first" ] && [ -n "$n0" ] && [ -n "$n1" ] && [ "$first" -gt 0 ] &&
  [ "$first" -ge $((n0 - 2)) ] && [ "$first" -le $((n1 + 3)) ] &&
  awk 'NR > 1 && $1 != prev + 1 {bad = 1} {prev = $1} END {exit bad}' <<<"$knums" &&
  jq -e '.status.containerStatuses[0].restartCount == 0' >/dev/null 2>&1 <<<"$kp"; then
  pass "archive restored by kubelet from checkpoint image $ckimg (hull image checkpoint, push, static pod): Running, counts on from $first (checkpointed between $n0 and $n1): $(echo $knums | cut -c1-60 | tr ' ' ',')"
else
  fail "archive restored by kubelet from a checkpoint image, counting on" "${kerr:-logged: $(echo $knums | cut -c1-200) (want it to start between ${n0:-?} and ${n1:-?}, never 0, and count by one); status: $(jq -c '.status.containerStatuses' <<<"$kp" 2>/dev/null)}"
fi

# --- an exec readiness probe and an emptyDir ------------------------------------
# One container writes into an emptyDir, kubelet's probe (ExecSync) reads it.
cat <<EOF | add probed.yaml
apiVersion: v1
kind: Pod
metadata:
  name: probed
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: writer
    image: docker.io/nginxinc/nginx-unprivileged:1.25
    command: ["sh", "-c", "echo hello >/data/msg; exec /bin/web 8080"]
    volumeMounts:
    - {name: data, mountPath: /data}
    readinessProbe:
      exec:
        command: ["cat", "/data/msg"]
      periodSeconds: 2
  volumes:
  - {name: data, emptyDir: {}}
EOF
if p=$(wait_for 90 probed '.status.containerStatuses[0].ready'); then
  pass "probed pod Ready through an exec probe on its emptyDir"
else
  fail "probed pod Ready through an exec probe on its emptyDir" "$(jq -c '.status' <<<"$p" 2>/dev/null || echo "no pod")"
fi

# --- removing the manifests ----------------------------------------------------
# What the pods hold of the pod network, by hull's records and the host:
# address leases (host-local's files under the run root), attachment
# records, and host veths (ports of the run's bridge).
net_left() {
  local n
  n=$(find "$work/run/networks/ipam/kubelet-test" -mindepth 1 -maxdepth 1 ! -name lock ! -name 'last_reserved_ip*' 2>/dev/null | wc -l)
  [ "$n" = 0 ] || echo -n " ip-leases:$n"
  n=$(find "$work/run/networks/attachments" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  [ "$n" = 0 ] || echo -n " attachments:$n"
  n=$(find "/sys/class/net/$bridge/brif" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  [ "$n" = 0 ] || echo -n " veths:$n"
}
# The check below must see the running pods' (or it proves nothing).
held=$(net_left)
if [[ $held == *ip-leases:* && $held == *attachments:* && $held == *veths:* ]]; then
  pass "running pods' network seen:$held"
else
  fail "running pods' network seen" "found only:${held:- nothing} (want ip-leases, attachments and veths)"
fi
rm -f "$work/manifests/"*.yaml
deadline=$((SECONDS + 90))
left=
while ((SECONDS < deadline)); do
  left=
  n=$(curl -sf "http://127.0.0.1:$ro_port/pods" | jq '.items | length')
  [ "$n" = 0 ] || left+=" kubelet-pods:$n"
  n=$(crictl pods -q | wc -l)
  [ "$n" = 0 ] || left+=" sandboxes:$n"
  n=$(crictl ps -aq | wc -l)
  [ "$n" = 0 ] || left+=" containers:$n"
  n=$(awk -v r="$work/r" 'index($5, r) == 1' /proc/self/mountinfo | wc -l)
  [ "$n" = 0 ] || left+=" mounts:$n"
  n=$(find /sys/fs/cgroup/*"$cgroot"/kubepods* -mindepth 1 -type d -name 'pod*' 2>/dev/null | wc -l)
  [ "$n" = 0 ] || left+=" pod-cgroups:$n"
  left+=$(net_left)
  [ -z "$left" ] && break
  sleep 2
done
if [ -z "$left" ]; then
  pass "manifests removed: no sandboxes, containers, mounts, pod cgroups, IP leases, attachments, veths left"
else
  fail "manifests removed: everything torn down" "left:$left"
fi

# --- evented PLEG (EVENTED_PLEG=1) ----------------------------------------------
# Before hull-cri's restart (the OOM kills) and after kubelet's (the
# teardown), containers' STOPPED events reached kubelet with their pod's
# sandbox status (it asked for a relist of that pod), and its stream
# neither gave up nor got an event without the sandbox.
if [ -n "${EVENTED_PLEG:-}" ]; then
  evented() { # evented LOG-PART: "relists bad-lines"
    local part n bad
    part=$(cat)
    n=$(grep -c 'Evented PLEG: requested pod relist after container termination' <<<"$part" || true)
    bad=$(grep -E 'Evented PLEG: (disabling|received ContainerEventResponse with nil)' <<<"$part" | head -2 || true)
    echo "${n:-0}|$bad"
  }
  ev1=$(head -n "$ev_before" "$work/kubelet.log" | evented)
  ev2=$(tail -n +"$((ev_after + 1))" "$work/kubelet.log" | evented)
  if [ "${ev1%%|*}" -gt 0 ] && [ "${ev2%%|*}" -gt 0 ] && [ -z "${ev1#*|}${ev2#*|}" ]; then
    pass "evented PLEG: kubelet relisted on hull's STOPPED events (${ev1%%|*} before hull-cri's restart, ${ev2%%|*} after kubelet's)"
  else
    fail "evented PLEG: kubelet relisted on hull's STOPPED events" "relists ${ev1%%|*} and ${ev2%%|*}; ${ev1#*|} ${ev2#*|}"
  fi
fi

echo "$passed passed, $failed failed"
((failed == 0))
