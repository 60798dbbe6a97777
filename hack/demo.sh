#!/usr/bin/env bash
# make demo: the main job on a fresh machine. Starts a local registry (the
# CNCF distribution server from Debian), pushes a busybox image built from
# Debian's busybox-static, pulls it with hull, shows its layers, and runs a
# real container from it. Everything lives in a temp dir removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=/usr/local/go/bin:$PATH

[ -x bin/hull ] || make build
go build -tags libsqlite3 -o bin/testenv ./hack/testenv

work=$(mktemp -d /var/tmp/hull-demo.XXXXXX)
hull="bin/hull --root $work/root --run-root $work/run"
mounted=
cleanup() {
  set +e
  if [ -n "$mounted" ]; then $hull image unmount "$mounted" >/dev/null 2>&1; fi
  $hull oci delete --force demo >/dev/null 2>&1
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

# The container: the image's merged root filesystem as an OCI bundle, run
# by hull's own runtime.
if ! $hull image mount --help >/dev/null 2>&1 || ! $hull oci run --help >/dev/null 2>&1; then
  echo
  echo "demo: this build has no 'hull image mount' or 'hull oci run' yet; the container step is skipped" >&2
  exit 1
fi
step hull image mount "$BUSYBOX"
rootfs=$($hull image mount "$BUSYBOX")
mounted=$BUSYBOX
echo "$rootfs"
bundle=$work/bundle
mkdir -p "$bundle"
(cd "$bundle" && "$repo/bin/hull" oci spec)
python3 - "$bundle/config.json" "$rootfs" <<'PY'
import json, sys
path, rootfs = sys.argv[1], sys.argv[2]
spec = json.load(open(path))
spec["root"] = {"path": rootfs, "readonly": True}
spec["process"]["terminal"] = False
spec["process"]["args"] = ["sh", "-c", "echo hello from a hull container; echo pid=$$ hostname=$(hostname); id; ls /"]
spec["hostname"] = "hull-demo"
json.dump(spec, open(path, "w"), indent=2)
PY
step hull oci run --bundle "$bundle" demo
$hull oci run --bundle "$bundle" demo
