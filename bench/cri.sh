#!/usr/bin/env bash
# CRI benchmark (issue 16): hull-cri vs Debian's containerd 1.6 + runc,
# both served from this machine side by side, the same stand-in images
# from one local registry (hack/testenv critest-images):
#   (a) `critest -benchmark`: pod sandbox and container create / start /
#       status / stop / remove latencies (median of CRITEST_N samples
#       in each of CRITEST_ROUNDS rounds, the runtimes taking turns);
#       beside them critest's own floor: the same run against a CRI
#       server that answers every call at once (hack/cribench stub)
#   (b) memory per running pod (one container running `sleep`): the
#       proportional set size (PSS, smaps_rollup; RSS alongside) of every
#       process the runtime keeps for its COUNT pods, divided by COUNT
#       (hull: the containers' monitors; containerd: shim + pause); and
#       the CRI server's own, idle and with the COUNT pods
#   (c) COUNT pods of one container each (hack/cribench: RunPodSandbox,
#       CreateContainer, StartContainer each, then StopPodSandbox and
#       RemovePodSandbox each), wall time; ROUNDS rounds, interleaved;
#       with the pods up, the status and list calls' latencies (200 each)
# Goals: (a) each <= 0.25x containerd, (b) <= 0.3x per pod and the server
# <= containerd, (c) <= 0.25x.
#
# containerd runs with a config, root, state and socket of its own under
# the benchmark's directory (never /etc/containerd or a system
# containerd), its CRI plugin on a CNI conflist of its own (Debian's
# containernetworking-plugins: bridge + portmap, as containerd's example
# conflist), its sandbox image the pause stand-in (busybox sleeping) from
# the same registry. Each runtime's pods get a bridge and a 10.236.x.0/24
# the host does not route; nothing leaves the machine (no masquerade).
# Everything is stopped (by PID) and removed at the end.
#
#   bench/cri.sh     (COUNT=50 pods, ROUNDS=3, CRITEST_N=20 samples,
#                     CRITEST_ROUNDS=3;
#                     CRI_BENCH_NET=N other subnets and bridges, above;
#                     BENCH_HOLD=SECONDS keeps everything, logs included,
#                     that long before the cleanup, to look at a failure)
set -euo pipefail
count=${COUNT:-50}
rounds=${ROUNDS:-3}
critest_n=${CRITEST_N:-20}
critest_rounds=${CRITEST_ROUNDS:-3}
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=/usr/local/go/bin:$PATH
. bench/lib.sh

# CRI_BENCH_NET=N: the subnets 10.236.N-N+2.0/24 and bridges named
# after N, for a second run beside another (default 150).
net=${CRI_BENCH_NET:-150} sfx=0
[ "$net" = 150 ] || sfx=$net
hull_bridge=hbcri$sfx hull_subnet=10.236.$net.0/24
ctd_bridge=cbcri$sfx ctd_subnet=10.236.$((net + 1)).0/24
# hull's default network, when the pods are on a conflist (unused then,
# but the engine may make it: private all the same)
def_bridge=hbcri${sfx}d def_subnet=10.236.$((net + 2)).0/24
for s in "$hull_subnet" "$ctd_subnet" "$def_subnet"; do
  if ip route show | grep -q "^${s%/*}"; then
    echo "bench: $s is routed on this host already; pick other subnets" >&2
    exit 1
  fi
done

bench_tools containerd runc jq
[ -x /usr/lib/cni/bridge ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >/dev/null; }
for b in hull hull-cri hull-shim hull-init; do [ -x "bin/$b" ] || { make build >/dev/null; break; }; done
eval "$(hack/critest.sh build | grep -E '^(CRITEST|CRICTL)=')"

work=$(mktemp -d /var/tmp/hull-benchcri.XXXXXX)
hull_pid= ctd_pid= hull_net=
def_net=("$hull_bridge" "$hull_subnet") # hull's default network: the pods' unless on a conflist
# The top-level cgroups containerd's runc makes (critest's pods ask for a
# "systemd.slice" parent, cribench's none: "k8s.io") and leaves: removed
# at the end only if they were not there before and are empty.
cg_new=()
for d in systemd.slice k8s.io; do [ -e "/sys/fs/cgroup/memory/$d" ] || cg_new+=("$d"); done
# The shims' sockets go to /run/containerd/s whatever the config says.
run_ctd_new=; [ -e /run/containerd ] || run_ctd_new=1

hull() { "$repo/bin/hull" --config "$work/hull.toml" --root "$work/hull" --run-root "$work/hull-run" "$@"; }
crictl_on() { CRI_CONFIG_FILE=/dev/null "$CRICTL" --runtime-endpoint "unix://$work/$1.sock" --image-endpoint "unix://$work/$1.sock" --timeout 60s "${@:2}"; }

cleanup() {
  set +e
  trap - EXIT
  [ -z "${BENCH_HOLD:-}" ] || { echo "bench: holding $work for ${BENCH_HOLD}s" >&2; sleep "$BENCH_HOLD"; }
  # Pods first (their containers with them), while the servers run.
  for rt in hull ctd; do
    [ -S "$work/$rt.sock" ] && crictl_on "$rt" rmp -fa >/dev/null 2>&1
  done
  [ -n "$hull_pid" ] && kill -TERM "$hull_pid" 2>/dev/null && wait "$hull_pid" 2>/dev/null
  if [ -f "$work/hull.toml" ]; then
    # (-A: CRI pods and containers too, where the CLI hides them)
    ids=$(hull pod ls -A -q 2>/dev/null || hull pod ls -q 2>/dev/null) && [ -n "$ids" ] && hull pod rm -f $ids >/dev/null 2>&1
    ids=$(hull ps -A -aq 2>/dev/null || hull ps -aq 2>/dev/null) && [ -n "$ids" ] && hull rm -f $ids >/dev/null 2>&1
    [ -n "$hull_net" ] && hull network rm "$hull_net" >/dev/null 2>&1
    [ -x "$work/testenv" ] && "$work/testenv" network-rm --root "$work/hull" --run-root "$work/hull-run" \
      --bridge "${def_net[0]}" --subnet "${def_net[1]}" >/dev/null 2>&1
  fi
  [ -n "$ctd_pid" ] && kill -TERM "$ctd_pid" 2>/dev/null && wait "$ctd_pid" 2>/dev/null
  [ -n "${stub_pid:-}" ] && kill -TERM "$stub_pid" 2>/dev/null && wait "$stub_pid" 2>/dev/null
  # Shims of ours a failure left (their command line names our socket).
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $work/ctd.sock"); do kill -KILL "$p" 2>/dev/null; done
  ip link del "$hull_bridge" 2>/dev/null
  ip link del "$def_bridge" 2>/dev/null
  ip link del "$ctd_bridge" 2>/dev/null
  for d in "${cg_new[@]}"; do
    for c in /sys/fs/cgroup/*/; do [ -d "$c$d" ] && rmdir "$c$d" 2>/dev/null; done
  done
  [ -z "$run_ctd_new" ] || rmdir /run/containerd/s /run/containerd 2>/dev/null
  bench_stop_registry
  grep " $work" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/cribench" ./hack/cribench
cribench() { "$work/cribench" --endpoint "unix://$work/$1.sock" "${@:2}"; }

# The registry and critest's stand-ins (pause, busybox, ...), and the
# mirrors that send their registries' names to it.
go build -tags libsqlite3 -o "$work/testenv" ./hack/testenv
eval "$("$work/testenv" registry --dir "$work/registry" --pidfile "$work/registry.pid" --detach | grep -E '^(ADDR|PID)=')"
registry_pid=$PID
"$work/testenv" critest-images --registry "$ADDR" | "$work/testenv" registries-toml >"$work/mirrors"
img=registry.k8s.io/e2e-test-images/busybox:1.29-2 # critest's default container image
pause=registry.k8s.io/pause:3.9

# hull-cri: the mirrors; its pods on the benchmark's bridge and subnet:
# through a conflist of the same shape as containerd's where hull-cri
# takes the pod network from a CNI directory (--cni-conf-dir), else on
# hull's default network; its NRI, where it serves one, on private paths
# (containerd 1.6 serves none).
serve_help=$("$repo/bin/hull" cri serve --help 2>&1 || true)
hull_args=()
if grep -q -- --cni-conf-dir <<<"$serve_help"; then
  hull_net=cribench-hull
  def_net=("$def_bridge" "$def_subnet")
  mkdir -p "$work/hull-cni"
  bench_conflist "$hull_net" "$hull_bridge" "$hull_subnet" >"$work/hull-cni/10-bench.conflist"
  hull_args+=(--cni-conf-dir "$work/hull-cni")
fi
{
  printf '[network]\ndefault_bridge = "%s"\ndefault_subnet = "%s"\n' "${def_net[@]}"
  cat "$work/mirrors"
} >"$work/hull.toml"
if grep -q -- --nri-socket <<<"$serve_help"; then
  hull_args+=(--nri-socket "$work/nri.sock" --nri-plugin-path "$work/nri-plugins" --nri-plugin-config-path "$work/nri-conf")
fi
# (not through hull(): a function runs in a subshell of its own, and
# the pid must be the process that execs hull-cri)
"$repo/bin/hull" --config "$work/hull.toml" --root "$work/hull" --run-root "$work/hull-run" \
  cri serve --listen "unix://$work/hull.sock" "${hull_args[@]}" 2>"$work/hull-cri.log" &
hull_pid=$!

# containerd: private everything; CNI bridge + portmap on its subnet.
mkdir -p "$work/cni" "$work/ctd"
bench_conflist cribench "$ctd_bridge" "$ctd_subnet" "$work/cni-ipam" >"$work/cni/10-bench.conflist"
bench_containerd_conf "$pause" "$work/cni" "$work/mirrors" >"$work/containerd.toml"
containerd --config "$work/containerd.toml" --log-level warn 2>"$work/containerd.log" &
ctd_pid=$!

for rt in hull ctd; do
  for _ in $(seq 100); do [ -S "$work/$rt.sock" ] && break; sleep 0.1; done
  [ -S "$work/$rt.sock" ] || { cat "$work/$rt"*.log >&2; echo "bench: the $rt CRI server did not start" >&2; exit 1; }
done
ctd_version=$(containerd --version | awk '{print $3}')
echo "bench: hull-cri pid $hull_pid, containerd $ctd_version pid $ctd_pid, runc $(runc --version | awk 'NR==1{print $3}'); registry $ADDR"

# Both pull both images (hull needs no pause image; pulled for symmetry)
# and run one pod once, which makes their bridges.
for rt in hull ctd; do
  cribench "$rt" --image "$pause" pull
  cribench "$rt" --image "$img" --logs "$work/logs-$rt" --n 1 up >/dev/null
  cribench "$rt" down >/dev/null
done

kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/${3:-status}" 2>/dev/null || echo 0; }
rss_kb() { kb "$1" VmRSS; }
pss_kb() { kb "$1" Pss smaps_rollup; }
sleep 2
declare -A srv_idle_rss srv_idle_pss srv_pods_rss srv_pods_pss srv_pid
srv_pid=([hull]=$hull_pid [ctd]=$ctd_pid)
for rt in hull ctd; do
  srv_idle_rss[$rt]=$(rss_kb "${srv_pid[$rt]}"); srv_idle_pss[$rt]=$(pss_kb "${srv_pid[$rt]}")
done

# pod_procs RT BEFORE: the processes that came since BEFORE (a file of
# pids) and belong to RT's pods: those whose command line names the
# benchmark's directory (hull's monitors name the run root, containerd's
# shims its socket) and their descendants, less the pods' workload (the
# `sleep 3600` of each container). Prints "pid comm".
pod_procs() {
  local rt=$1 before=$2
  ps -e -o pid=,ppid=,comm=,args= | awk -v work="$work" -v rt="$rt" -v before="$before" '
    BEGIN { while ((getline p <before) > 0) old[p] = 1 }
    { pid = $1; ppid[pid] = $2; comm[pid] = $3; args = $0; sub(/^ *[0-9]+ +[0-9]+ +[^ ]+ +/, "", args); cmd[pid] = args }
    END {
      mark = (rt == "hull") ? work "/hull-run" : work "/ctd.sock"
      for (p in cmd) if (!(p in old) && index(cmd[p], mark)) sel[p] = 1
      do { n = 0; for (p in cmd) if (!(p in sel) && !(p in old) && (ppid[p] in sel)) { sel[p] = 1; n++ } } while (n)
      for (p in sel) if (cmd[p] != "sleep 3600") print p, comm[p]
    }'
}

echo "(c) $count pods of one container, up (run, create, start) then down (stop, remove); (b) memory with them up; $rounds rounds"
declare -A up_s down_s per_pss per_rss
for ((i = 1; i <= rounds; i++)); do
  line="  round $i:"
  order=(hull ctd)
  ((i % 2)) || order=(ctd hull)
  for rt in "${order[@]}"; do
    ls /proc | grep -E '^[0-9]+$' >"$work/before"
    cribench "$rt" --image "$img" --logs "$work/logs-$rt" --n "$count" up >"$work/up.$rt.$i"
    sleep 3 # steady state: past start-up and the monitors' settling
    pod_procs "$rt" "$work/before" >"$work/procs.$rt.$i"
    pss=0 rss=0
    while read -r p _; do
      pss=$((pss + $(pss_kb "$p"))); rss=$((rss + $(rss_kb "$p")))
    done <"$work/procs.$rt.$i"
    echo "$((pss / count))" >>"$work/pss.$rt"; echo "$((rss / count))" >>"$work/rss.$rt"
    echo "$(rss_kb "${srv_pid[$rt]}") $(pss_kb "${srv_pid[$rt]}")" >>"$work/srv.$rt"
    kinds=$(awk '{ n[$2]++ } END { for (k in n) { printf "%s%s x%d", sep, k, n[k]; sep = ", " } }' "$work/procs.$rt.$i")
    cribench "$rt" --n 200 status >"$work/status.$rt.$i"
    cribench "$rt" down >"$work/down.$rt.$i"
    u=$(sed -n 's/^SECONDS=//p' "$work/up.$rt.$i"); d=$(sed -n 's/^SECONDS=//p' "$work/down.$rt.$i")
    echo "$u" >>"$work/up.$rt"; echo "$d" >>"$work/down.$rt"
    awk -v a="$u" -v b="$d" 'BEGIN { printf "%.4f\n", a + b }' >>"$work/total.$rt"
    line+=" $rt up ${u}s down ${d}s, per pod $((pss / count)) kB pss ($kinds);"
  done
  echo "$line"
done
for rt in hull ctd; do
  up_s[$rt]=$(median <"$work/up.$rt"); down_s[$rt]=$(median <"$work/down.$rt")
  per_pss[$rt]=$(median <"$work/pss.$rt"); per_rss[$rt]=$(median <"$work/rss.$rt")
  srv_pods_rss[$rt]=$(awk '{ print $1 }' "$work/srv.$rt" | median); srv_pods_pss[$rt]=$(awk '{ print $2 }' "$work/srv.$rt" | median)
  # the calls' medians of the last round
  sed -n 's/^MEDIAN_MS_//p' "$work/up.$rt.$rounds" "$work/down.$rt.$rounds" "$work/status.$rt.$rounds" >"$work/calls.$rt"
  # RunPodSandbox's 99th percentile over every round (USER-ASKS: a pod's
  # network set up within 500 ms at the 99th percentile)
  sed -n 's/^P99_MS_RunPodSandbox=//p' "$work/up.$rt".[0-9]* | sort -n | tail -1 >"$work/p99.$rt"
done
tot_hull=$(median <"$work/total.hull"); tot_ctd=$(median <"$work/total.ctd")

echo "(a) critest -benchmark, $critest_n pods and $critest_n containers each, $critest_rounds rounds"
printf 'podsNumber: %d\npodsNumberParallel: 1\ncontainersNumber: %d\ncontainersNumberParallel: 1\n' "$critest_n" "$critest_n" >"$work/benchmark.yaml"
# critest's own floor: a CRI server that answers every call at once
# (cribench stub), measured the same way.
"$work/cribench" --endpoint "unix://$work/stub.sock" stub & stub_pid=$!
for _ in $(seq 50); do [ -S "$work/stub.sock" ] && break; sleep 0.1; done
# The runtimes take turns, the first one changing each round, so that a
# drift of the host over the run reaches both alike; each figure is the
# median over every round's samples.
for r in $(seq "$critest_rounds"); do
  order="hull ctd stub"
  [ $((r % 2)) -eq 0 ] && order="ctd hull stub"
  for rt in $order; do
    out="$work/critest-$rt/$r"
    mkdir -p "$out"
    # critest runs from its own directory's view; its report goes to a file.
    if ! "$CRITEST" --runtime-endpoint "unix://$work/$rt.sock" --image-endpoint "unix://$work/$rt.sock" \
      -benchmark --benchmarking-params-file "$work/benchmark.yaml" --benchmarking-output-dir "$out" \
      --ginkgo.no-color >"$work/critest-$rt.$r.log" 2>&1; then
      tail -30 "$work/critest-$rt.$r.log" >&2
      echo "bench: critest -benchmark failed on $rt (round $r)" >&2
    fi
  done
done
for rt in hull ctd stub; do
  # The median of each operation over every round, in ms.
  for f in pod container; do
    jq -rn '[inputs] as $runs | ($runs[0].operationsNames // []) as $n | range(0; $n | length) as $i |
       "\($n[$i]) \([$runs[].datapoints[].operationsDurationsNs[$i]] | sort | .[length / 2 | floor] / 1e4 | round / 100)"' \
      "$work/critest-$rt"/*/"${f}_benchmark_data.json" 2>/dev/null || true
  done >"$work/critest.$rt"
done
kill "$stub_pid" 2>/dev/null; wait "$stub_pid" 2>/dev/null || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
row() { printf '%-42s %12s %12s %7s  %s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4"; }
# (a) rows have a fourth figure: critest's floor (the stub's), in ms.
rowa() { printf '%-42s %12s %12s %7s  %-8s %s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4" "floor $5"; }
echo
printf '%-42s %12s %12s %7s  %s\n' "" hull "containerd" ratio goal
echo "(a) critest -benchmark, median ms"
while read -r op h; do
  c=$(awk -v op="$op" '$1 == op { print $2 }' "$work/critest.ctd")
  f=$(awk -v op="$op" '$1 == op { print $2 }' "$work/critest.stub")
  # the goal is the create, start, stop and remove calls' (issue 16);
  # the status calls critest times beside them have none
  goal="<= 0.25"
  case $op in Status*) goal="" ;; esac
  rowa "  $op" "$h" "${c:-}" "$goal" "${f:--}"
done <"$work/critest.hull"
echo "(b) memory, kB"
row "  per pod, PSS" "${per_pss[hull]}" "${per_pss[ctd]}" "<= 0.30"
row "  per pod, RSS" "${per_rss[hull]}" "${per_rss[ctd]}" ""
row "  CRI server idle, RSS" "${srv_idle_rss[hull]}" "${srv_idle_rss[ctd]}" "<= 1"
row "  CRI server idle, PSS" "${srv_idle_pss[hull]}" "${srv_idle_pss[ctd]}" ""
row "  CRI server with $count pods, RSS" "${srv_pods_rss[hull]}" "${srv_pods_rss[ctd]}" "<= 1"
row "  CRI server with $count pods, PSS" "${srv_pods_pss[hull]}" "${srv_pods_pss[ctd]}" ""
echo "(c) $count pods, s (median of $rounds)"
row "  up + down" "$tot_hull" "$tot_ctd" "<= 0.25"
row "  up (run, create, start)" "${up_s[hull]}" "${up_s[ctd]}" ""
row "  down (stop, remove)" "${down_s[hull]}" "${down_s[ctd]}" ""
while read -r kv; do
  op=${kv%%=*} h=${kv#*=}
  c=$(sed -n "s/^$op=//p" "$work/calls.ctd")
  row "    $op, median ms" "$h" "$c" ""
done <"$work/calls.hull"
row "    RunPodSandbox, p99 ms (slowest round)" "$(cat "$work/p99.hull")" "$(cat "$work/p99.ctd")" ""
