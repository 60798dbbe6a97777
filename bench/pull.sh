#!/usr/bin/env bash
# Pull benchmark: the `big` fixture (5 layers, ~50 MB, incompressible) from a
# local registry into an empty store, with hull, podman and skopeo (copy to an
# OCI layout: no unpacking, no database, the floor), interleaved round by
# round so that all three see the same machine state. Prints the medians and
# the ratios hull/podman and hull/skopeo.
#
#   bench/pull.sh [ROUNDS]        (default 5; or ROUNDS=N in the environment)
#
# Needs root (podman's overlay storage). Installs podman and skopeo if missing.
# Each tool gets a fresh temp store per round; everything is removed at exit.
set -euo pipefail

rounds=${1:-${ROUNDS:-5}}
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=/usr/local/go/bin:$PATH

. bench/lib.sh
bench_tools podman skopeo
bench_podman_conf

if [ ! -x bin/hull ]; then
  make build
fi

work=$(mktemp -d /var/tmp/hull-bench.XXXXXX)
cleanup() {
  bench_stop_registry
  rm -rf "$work"
}
trap cleanup EXIT

# --- registry and image ------------------------------------------------------
bench_registry big
ref=$BIG
echo "bench: $rounds rounds of pulling $ref ($BIG_DIGEST)"

hull_ok=1
if ! bin/hull pull --help >/dev/null 2>&1; then
  hull_ok=0
  echo "bench: bin/hull has no pull command yet; timing podman and skopeo only"
fi

pull_hull() {
  "$repo/bin/hull" --root "$work/s/hull" --run-root "$work/s/hull-run" pull -q "$ref" >/dev/null
}
pull_podman() {
  podman --root "$work/s/podman" --runroot "$work/s/podman-run" --storage-driver overlay \
    --events-backend file --log-level error pull -q --tls-verify=false "$ref" >/dev/null
}
pull_skopeo() {
  skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$work/s/oci:big" >/dev/null
}

# One untimed copy warms the registry's files in the page cache for everyone.
fresh_seconds pull_skopeo >/dev/null

tools=(podman skopeo)
((hull_ok)) && tools=(hull podman skopeo)
bench_rounds pull "$rounds" "${tools[@]}"
if ((hull_ok)); then
  awk -v h="${med[hull]}" -v p="${med[podman]}" -v s="${med[skopeo]}" 'BEGIN {
    printf "hull/podman %.2f (goal <= 0.50)\nhull/skopeo %.2f (goal <= 1.20)\n", h / p, h / s }'
else
  awk -v p="${med[podman]}" -v s="${med[skopeo]}" 'BEGIN { printf "podman/skopeo %.2f\n", p / s }'
fi
