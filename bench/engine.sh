#!/usr/bin/env bash
# Engine benchmark, hull vs podman, interleaved in one run on the same image
# served by a local registry (pulled once by each, so runs are warm):
#   (a) `run --rm IMG true` latency (median of ROUNDS)
#   (b) resident memory of hull's per-container monitor vs podman's conmon
#   (c) start 50 detached `sleep` containers, then remove them all
# Goals (issue 5): (a) <= 0.1x podman, (b) <= conmon, (c) <= 0.2x podman.
#
#   bench/engine.sh [ROUNDS]     (default 10; N for (c) is 50, or COUNT=N)
set -euo pipefail
rounds=${1:-${ROUNDS:-10}}
count=${COUNT:-50}
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=/usr/local/go/bin:$PATH
. bench/lib.sh

bench_tools podman runc
bench_podman_conf
[ -x bin/hull ] || make build

work=$(mktemp -d /var/tmp/hull-bench.XXXXXX)
cleanup() {
  set +e
  hull ps -aq 2>/dev/null | xargs -r "$repo/bin/hull" --root "$work/hull" --run-root "$work/hull-run" rm -f >/dev/null 2>&1
  pod rm -af >/dev/null 2>&1
  pod system reset -f >/dev/null 2>&1
  bench_stop_registry
  grep " $work" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

hull() { "$repo/bin/hull" --root "$work/hull" --run-root "$work/hull-run" "$@"; }

bench_registry busybox
img=$BUSYBOX
echo "bench: image $img; podman uses $podman_runtime"
hull pull -q "$img" >/dev/null
pod pull -q --tls-verify=false "$img" >/dev/null

run_hull() { hull run --rm --network none "$img" true >/dev/null 2>&1; }
run_podman() { pod run --rm --network none "$img" true >/dev/null 2>&1; }
run_hull && run_podman # warm both once

echo "(a) run --rm true, $rounds rounds"
for ((i = 1; i <= rounds; i++)); do
  h=$(elapsed run_hull); p=$(elapsed run_podman)
  echo "$h" >>"$work/a.hull"; echo "$p" >>"$work/a.podman"
  echo "  round $i: hull ${h}s podman ${p}s"
done
ah=$(median <"$work/a.hull"); ap=$(median <"$work/a.podman")

echo "(b) supervisor resident memory"
hull run -d --name rss --network none "$img" sleep 600 >/dev/null 2>&1
pod run -d --name rss --network none "$img" sleep 600 >/dev/null
mon=$(hull inspect -f '{{.HullLifecycle.MonitorPid}}' rss)
conmon=$(pod inspect -f '{{.State.ConmonPid}}' rss)
sleep 5 # steady state: past start-up and hull-shim's settling
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# Pss shares each page among the processes that map it: with many
# containers, what one more monitor costs.
pss_kb() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
anon_kb() { awk '/^RssAnon/ { print $2 }' "/proc/$1/status"; }
bh=$(rss_kb "$mon"); bp=$(rss_kb "$conmon")
echo "  hull monitor RSS ${bh} kB (anon $(anon_kb "$mon"), pss $(pss_kb "$mon")); conmon RSS ${bp} kB (anon $(anon_kb "$conmon"), pss $(pss_kb "$conmon"))"
hull rm -f rss >/dev/null; pod rm -f rss >/dev/null

echo "(c) $count detached sleep containers, then remove them all"
many_hull() {
  for ((j = 0; j < count; j++)); do hull run -d --network none "$img" sleep 600 >/dev/null 2>&1; done
  hull ps -aq | xargs "$repo/bin/hull" --root "$work/hull" --run-root "$work/hull-run" rm -f >/dev/null
}
many_podman() {
  for ((j = 0; j < count; j++)); do pod run -d --network none "$img" sleep 600 >/dev/null; done
  pod rm -af -t 0 >/dev/null
}
ch=$(elapsed many_hull); cp=$(elapsed many_podman)
echo "  hull ${ch}s podman ${cp}s"

echo
printf 'hull/podman (a) run --rm: %s / %s = %.3f (goal <= 0.10)\n' "$ah" "$ap" "$(awk -v a="$ah" -v b="$ap" 'BEGIN{print a/b}')"
printf 'hull/conmon (b) memory:   %s kB / %s kB = %.2f (goal <= 1.00)\n' "$bh" "$bp" "$(awk -v a="$bh" -v b="$bp" 'BEGIN{print a/b}')"
printf 'hull/podman (c) 50 up+rm: %s / %s = %.3f (goal <= 0.20)\n' "$ch" "$cp" "$(awk -v a="$ch" -v b="$cp" 'BEGIN{print a/b}')"
