#!/usr/bin/env bash
# make demo: the main job on a fresh machine. Starts a local registry (the
# CNCF distribution server from Debian), pushes a busybox image built from
# Debian's busybox-static, pulls it with hull, shows its layers, and runs a
# real container from it. Everything lives in a temp dir removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

[ -x bin/hull ] || make build
go build -tags libsqlite3 -o bin/testenv ./hack/testenv

work=$(mktemp -d /var/tmp/hull-demo.XXXXXX)
hull="bin/hull --root $work/root --run-root $work/run"
# The bridges there before the demo: the default network's bridge (hull0)
# that the demo's private root makes goes with it, unless it was there.
bridges() { ip -o link show type bridge 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'; }
bridges_before=$(bridges)
cleanup() {
  set +e
  $hull ps -aq 2>/dev/null | xargs -r $hull rm -f >/dev/null 2>&1
  for b in $(bridges); do
    case $b in hull*) grep -qx "$b" <<<"$bridges_before" || ip link del "$b" 2>/dev/null ;; esac
  done
  if [ -f "$work/registry.pid" ]; then kill "$(cat "$work/registry.pid")" 2>/dev/null; fi
  for _ in $(seq 50); do [ -f "$work/registry.pid" ] || break; sleep 0.1; done
  grep " $work" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

bin/testenv registry --dir "$work/registry" --pidfile "$work/registry.pid" --detach >"$work/registry.env"
. "$work/registry.env"
eval "$(bin/testenv push --registry "$ADDR" --only busybox,config)"
echo "local registry at $ADDR serving $BUSYBOX and $CONFIG"

step hull pull "$BUSYBOX"
$hull pull "$BUSYBOX"
step hull pull "$CONFIG"
$hull pull "$CONFIG"
step hull images
$hull images
step "hull image inspect $BUSYBOX | grep -A 10 Layers"
$hull image inspect "$BUSYBOX" | grep -A 10 Layers
step hull image history "$CONFIG"
$hull image history "$CONFIG"
step hull info
$hull info

# Containers: the seed's workflow with hull's engine.
step hull run --rm "$BUSYBOX" sh -c '...'
$hull run --rm --name demo-hello "$BUSYBOX" sh -c 'echo hello from a hull container; echo "pid=$$ hostname=$(hostname)"; ps -o pid,comm'
step hull run -d --name web "$CONFIG" "'while true; do echo tick; sleep 0.2; done'"
$hull run -d --name web "$CONFIG" 'while true; do echo tick; sleep 0.2; done'
sleep 1
step hull ps
$hull ps
step hull logs --tail 3 web
$hull logs --tail 3 web
step hull stop -t 1 web
$hull stop -t 1 web
step hull run --name hog -m 32m "$BUSYBOX" tail /dev/zero
$hull run --name hog -m 32m "$BUSYBOX" tail /dev/zero || echo "exit status $?"
step hull ps -a
$hull ps -a
step hull why hog
$hull why hog
$hull rm -f web hog >/dev/null
