#!/usr/bin/env bash
# make demo-registry: a local registry that keeps running after `make demo`,
# serving the demo images, and those images pulled into hull's store under
# the short names the course uses, so its steps can be followed on a machine
# without internet:
#
#   hack/demo-registry.sh start   start it (if not running), push, pull, tag
#   hack/demo-registry.sh stop    stop it and delete its data (the images
#                                 stay in hull's store until `hull rmi`)
#   hack/demo-registry.sh env     print ADDR=... of the running registry
#
# The images are built from Debian's busybox-static: `busybox` (and `alpine`,
# the name the course's `run -it alpine sh` uses: busybox's sh stands in for
# Alpine's), and `demo/web:1.0` (USER app, WORKDIR, ENTRYPOINT, EXPOSE).
# State lives in $HULL_DEMO_DIR (default /var/lib/hull-demo); hull uses its
# usual root, or HULL_ROOT / HULL_RUN_ROOT when set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
dir=${HULL_DEMO_DIR:-/var/lib/hull-demo}
hull=${HULL:-$PWD/bin/hull}
testenv=${TESTENV:-$PWD/bin/testenv}

running() { [ -f "$dir/registry.pid" ] && kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null; }

case "${1:-start}" in
start)
  [ -x "$hull" ] || make build
  [ -x "$testenv" ] || go build -tags libsqlite3 -o "$testenv" ./hack/testenv
  mkdir -p "$dir"
  if ! running; then
    "$testenv" registry --dir "$dir/registry" --pidfile "$dir/registry.pid" --detach >"$dir/registry.env"
  fi
  . "$dir/registry.env"
  eval "$("$testenv" push --registry "$ADDR" --only busybox,config)"
  "$hull" pull -q "$BUSYBOX" >/dev/null
  "$hull" pull -q "$CONFIG" >/dev/null
  "$hull" tag "$BUSYBOX" busybox:latest
  "$hull" tag "$BUSYBOX" alpine:latest
  "$hull" tag "$CONFIG" demo/web:1.0
  cat <<MSG
demo registry at $ADDR (state in $dir; stop it with: make demo-registry-stop)
  $BUSYBOX
  $CONFIG
hull's store now has busybox:latest, alpine:latest (busybox's sh stands in
for Alpine's) and demo/web:1.0. Try:
  hull run -it alpine sh
  hull run -d --name web demo/web:1.0 'while true; do echo tick; sleep 1; done'
  hull ps -a; hull logs web; hull why web
MSG
  ;;
stop)
  if running; then
    pid=$(cat "$dir/registry.pid")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
  ;;
env)
  running || { echo "demo registry not running: make demo-registry" >&2; exit 1; }
  cat "$dir/registry.env"
  ;;
*)
  echo "usage: $0 start|stop|env" >&2
  exit 2
  ;;
esac
