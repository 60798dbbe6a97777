#!/usr/bin/env bash
# Unpack benchmark: the layers of the `big` fixture (5 layers, ~50 MB) from
# an OCI layout into a usable root filesystem, with hull's snapshotter
# (bench/unpack: all layers at once, then a read-only overlay mount of the
# result) and with `umoci unpack` (layers in order into one directory).
# Interleaved round by round so both see the same machine state; prints the
# medians and the ratio umoci/hull (goal >= 1.5).
#
#   bench/unpack.sh [ROUNDS]        (default 7; or ROUNDS=N in the environment)
#
# Needs root (overlay mounts, file ownership). Installs umoci and skopeo if
# missing. Each round unpacks into fresh directories; all is removed at exit.
set -euo pipefail

rounds=${1:-${ROUNDS:-7}}
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=/usr/local/go/bin:$PATH

. bench/lib.sh
bench_tools umoci skopeo

work=$(mktemp -d /var/tmp/hull-unpack-bench.XXXXXX)
cleanup() {
  # A failed round may leave the view mounted.
  if mountpoint -q "$work/s/hull/rootfs" 2>/dev/null; then umount "$work/s/hull/rootfs" || true; fi
  bench_stop_registry
  rm -rf "$work"
}
trap cleanup EXIT

# --- the image, as an OCI layout ----------------------------------------------
go build -tags libsqlite3 -o "$work/hull-unpack" ./bench/unpack
bench_registry big
skopeo copy -q --src-tls-verify=false "docker://$BIG" "oci:$work/layout:big" >/dev/null
bench_stop_registry
registry_pid=
layers=$(find "$work/layout/blobs" -type f -size +100k | wc -l)
echo "bench: $rounds rounds of unpacking $BIG ($layers large blobs, $(du -sh "$work/layout/blobs" | cut -f1) compressed)"

unpack_hull() {
  "$work/hull-unpack" --layout "$work/layout" --ref big --root "$work/s/hull"
}
unpack_umoci() {
  umoci unpack --image "$work/layout:big" "$work/s/umoci" >/dev/null
}

# One untimed run of each warms the page cache and checks both work.
fresh_seconds unpack_hull >/dev/null
fresh_seconds unpack_umoci >/dev/null

bench_rounds unpack "$rounds" hull umoci
awk -v h="${med[hull]}" -v u="${med[umoci]}" 'BEGIN { printf "umoci/hull %.2f (goal >= 1.50)\n", u / h }'
