#!/usr/bin/env bash
# `hull oci run` vs `runc run` on the same /bin/true bundle (busybox-static),
# interleaved so both see the same machine state; prints medians and the
# ratio hull/runc. Goal: hull <= 0.5x runc.
#
# Usage: bench/runtime.sh [hull-binary] [iterations]   (default bin/hull, 40)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
hull=${1:-$here/bin/hull}
n=${2:-40}
runc_bin=$(command -v "${RUNC:-runc}")
export PATH=/usr/local/go/bin:$PATH
if [ ! -x "$hull" ]; then
	(cd "$here" && go build -tags libsqlite3 -o "$hull" ./cmd/hull)
fi
hull=$(readlink -f "$hull")

work=$(mktemp -d /tmp/hull-bench-runtime.XXXXXX)
cleanup() {
	"$hull" oci --root "$work/hull-state" delete -f bench-hull >/dev/null 2>&1 || true
	"$runc_bin" --root "$work/runc-state" delete -f bench-runc >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/sys"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
(cd "$bundle" && "$runc_bin" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["/bin/true"]
json.dump(s, open(p, "w"), indent=1)
PY

# $EPOCHREALTIME (microseconds), read without forking: date(1) or a
# command substitution per reading would add a fork to both sides.
declare -a th tr
for ((i = 0; i < n; i++)); do
	t0=${EPOCHREALTIME/./}
	"$hull" oci --root "$work/hull-state" run --bundle "$bundle" bench-hull
	t1=${EPOCHREALTIME/./}
	"$runc_bin" --root "$work/runc-state" run --bundle "$bundle" bench-runc
	t2=${EPOCHREALTIME/./}
	th+=($((10#$t1 - 10#$t0)))
	tr+=($((10#$t2 - 10#$t1)))
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
mh=$(median "${th[@]}")
mr=$(median "${tr[@]}")
printf 'runs: %d each, interleaved, /bin/true from busybox-static\n' "$n"
printf 'hull oci run: median %6.2f ms\n' "$(echo "$mh / 1000" | bc -l)"
printf 'runc run:     median %6.2f ms   (%s)\n' "$(echo "$mr / 1000" | bc -l)" "$("$runc_bin" --version | head -1)"
printf 'ratio hull/runc: %.2f\n' "$(echo "$mh / $mr" | bc -l)"
