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
export PATH=/usr/local/go/bin:$PATH

missing=()
command -v umoci >/dev/null || missing+=(umoci)
command -v skopeo >/dev/null || missing+=(skopeo)
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /var/tmp/hull-unpack-bench.XXXXXX)
registry_pid=
cleanup() {
  # A failed round may leave the view mounted.
  if mountpoint -q "$work/s/hull/rootfs" 2>/dev/null; then umount "$work/s/hull/rootfs" || true; fi
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    for _ in $(seq 50); do [ -e "$work/registry.pid" ] || break; sleep 0.1; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- the image, as an OCI layout ----------------------------------------------
go build -tags libsqlite3 -o "$work/testenv" ./hack/testenv
go build -tags libsqlite3 -o "$work/hull-unpack" ./bench/unpack
eval "$("$work/testenv" registry --dir "$work/registry" --pidfile "$work/registry.pid" --detach | grep -E '^(ADDR|PID)=')"
registry_pid=$PID
eval "$("$work/testenv" push --registry "$ADDR" --only big)"
skopeo copy -q --src-tls-verify=false "docker://$BIG" "oci:$work/layout:big" >/dev/null
kill "$registry_pid" 2>/dev/null || true
registry_pid=
layers=$(find "$work/layout/blobs" -type f -size +100k | wc -l)
echo "bench: $rounds rounds of unpacking $BIG ($layers large blobs, $(du -sh "$work/layout/blobs" | cut -f1) compressed)"

unpack_hull() {
  "$work/hull-unpack" --layout "$work/layout" --ref big --root "$work/s/hull"
}
unpack_umoci() {
  umoci unpack --image "$work/layout:big" "$work/s/umoci" >/dev/null
}

# seconds runs its arguments once in an empty work dir and prints the wall time.
seconds() {
  rm -rf "$work/s" && mkdir -p "$work/s"
  sync
  local t0=$EPOCHREALTIME
  "$@"
  local t1=$EPOCHREALTIME
  rm -rf "$work/s"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One untimed run of each warms the page cache and checks both work.
seconds unpack_hull >/dev/null
seconds unpack_umoci >/dev/null

tools=(hull umoci)
for ((i = 1; i <= rounds; i++)); do
  line="round $i:"
  for tool in "${tools[@]}"; do
    s=$(seconds "unpack_$tool")
    echo "$s" >>"$work/$tool.times"
    line+=" $tool ${s}s"
  done
  echo "$line"
done

declare -A med
for tool in "${tools[@]}"; do
  med[$tool]=$(median <"$work/$tool.times")
  printf '%-6s median %ss\n' "$tool" "${med[$tool]}"
done
awk -v h="${med[hull]}" -v u="${med[umoci]}" 'BEGIN { printf "umoci/hull %.2f (goal >= 1.50)\n", u / h }'
