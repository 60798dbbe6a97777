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

# --- tools -------------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v skopeo >/dev/null || missing+=(skopeo)
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# podman's default open-file limit is too low for parallel layer pulls on
# some hosts; set the limits once, keeping whatever else the file says.
conf=/etc/containers/containers.conf
if ! grep -qs '^[[:space:]]*default_ulimits' "$conf"; then
  mkdir -p /etc/containers
  if grep -qs '^\[containers\]' "$conf"; then
    sed -i '/^\[containers\]/a default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' "$conf"
  else
    printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' >>"$conf"
  fi
fi

if [ ! -x bin/hull ]; then
  make build
fi

work=$(mktemp -d /var/tmp/hull-bench.XXXXXX)
registry_pid=
cleanup() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    # testenv removes its pidfile once the registry has exited.
    for _ in $(seq 50); do [ -e "$work/registry.pid" ] || break; sleep 0.1; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- registry and image ------------------------------------------------------
go build -tags libsqlite3 -o "$work/testenv" ./hack/testenv
eval "$("$work/testenv" registry --dir "$work/registry" --pidfile "$work/registry.pid" --detach | grep -E '^(ADDR|PID)=')"
registry_pid=$PID
eval "$("$work/testenv" push --registry "$ADDR" --only big)"
ref=$BIG
echo "bench: $rounds rounds of pulling $ref ($BIG_DIGEST)"

# podman talks plain HTTP to the local registry only if told it is insecure.
cat >"$work/registries.conf" <<EOF
[[registry]]
location = "$ADDR"
insecure = true
EOF
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf

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

# seconds runs its arguments once in an empty store and prints the wall time.
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

# One untimed copy warms the registry's files in the page cache for everyone.
seconds pull_skopeo >/dev/null

tools=(podman skopeo)
((hull_ok)) && tools=(hull podman skopeo)
for ((i = 1; i <= rounds; i++)); do
  line="round $i:"
  for tool in "${tools[@]}"; do
    s=$(seconds "pull_$tool")
    echo "$s" >>"$work/$tool.times"
    line+=" $tool ${s}s"
  done
  echo "$line"
done

declare -A med
for tool in "${tools[@]}"; do
  med[$tool]=$(median <"$work/$tool.times")
  printf '%-7s median %ss\n' "$tool" "${med[$tool]}"
done
if ((hull_ok)); then
  awk -v h="${med[hull]}" -v p="${med[podman]}" -v s="${med[skopeo]}" 'BEGIN {
    printf "hull/podman %.2f (goal <= 0.50)\nhull/skopeo %.2f (goal <= 1.20)\n", h / p, h / s }'
else
  awk -v p="${med[podman]}" -v s="${med[skopeo]}" 'BEGIN { printf "podman/skopeo %.2f\n", p / s }'
fi
