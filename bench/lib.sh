# Shared setup for the side-by-side benchmarks (sourced, not run).
# Needs: repo (the checkout), work (a temp dir removed at exit).

# bench_tools installs the peers a benchmark compares hull with.
bench_tools() {
  local missing=()
  for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
  if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# bench_podman_conf gives podman the limits it needs on this machine (it
# lowers its own NPROC hard limit and fails without them), keeping
# whatever else containers.conf says.
bench_podman_conf() {
  local conf=/etc/containers/containers.conf
  if ! grep -qs '^[[:space:]]*default_ulimits' "$conf"; then
    mkdir -p /etc/containers
    if grep -qs '^\[containers\]' "$conf"; then
      sed -i '/^\[containers\]/a default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' "$conf"
    else
      printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' >>"$conf"
    fi
  fi
}

# pod is podman in the benchmark's own roots, on cgroupfs, with the
# runtime podman_runtime says.
pod() {
  podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver overlay \
    --cgroup-manager cgroupfs --events-backend file --runtime "$podman_runtime" --log-level error "$@"
}
# crun refuses hybrid cgroups whose cgroup2 mount owns any controller (this
# machine's owns hugetlb); podman then runs with runc.
podman_runtime=crun
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ] || ! command -v crun >/dev/null; then
  podman_runtime=runc
fi

# bench_registry starts the test registry and pushes the named fixtures
# (sets ADDR, registry_pid and the fixture variables, e.g. BUSYBOX), and
# points podman at it as an insecure registry.
bench_registry() {
  go build -tags libsqlite3 -o "$work/testenv" "$repo/hack/testenv"
  eval "$("$work/testenv" registry --dir "$work/registry" --pidfile "$work/registry.pid" --detach | grep -E '^(ADDR|PID)=')"
  registry_pid=$PID
  eval "$("$work/testenv" push --registry "$ADDR" --only "$1")"
  printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$ADDR" >"$work/registries.conf"
  export CONTAINERS_REGISTRIES_CONF=$work/registries.conf
}

# bench_stop_registry ends the registry started by bench_registry.
bench_stop_registry() {
  if [ -n "${registry_pid:-}" ]; then
    kill "$registry_pid" 2>/dev/null || true
    for _ in $(seq 50); do [ -e "$work/registry.pid" ] || break; sleep 0.1; done
  fi
}

# elapsed runs its arguments and prints the wall time in seconds, to a
# tenth of a millisecond (a run --rm is about 20 ms: whole milliseconds
# would move a ratio by 5%).
elapsed() {
  local t0=$EPOCHREALTIME
  "$@"
  local t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# fresh_seconds runs its arguments once in an empty $work/s and prints the
# wall time (the dir is removed after).
fresh_seconds() {
  rm -rf "$work/s" && mkdir -p "$work/s"
  sync
  local t
  t=$(elapsed "$@")
  rm -rf "$work/s"
  echo "$t"
}

# bench_rounds PREFIX ROUNDS TOOL... runs PREFIX_TOOL for each tool, tools
# interleaved round by round so all see the same machine state, and prints
# each round and the medians; medians land in the array med[TOOL].
declare -A med
bench_rounds() {
  local prefix=$1 n=$2
  shift 2
  local i tool s line
  for ((i = 1; i <= n; i++)); do
    line="round $i:"
    for tool in "$@"; do
      s=$(fresh_seconds "${prefix}_$tool")
      echo "$s" >>"$work/$tool.times"
      line+=" $tool ${s}s"
    done
    echo "$line"
  done
  for tool in "$@"; do
    med[$tool]=$(median <"$work/$tool.times")
    printf '%-7s median %ss\n' "$tool" "${med[$tool]}"
  done
}

# bench_conflist NAME BRIDGE SUBNET [IPAM_DIR [CNI_VERSION]] prints a CNI
# configuration list of the shape of containerd's example conflist
# (bridge, no masquerade, + portmap) on SUBNET (x.y.z.0/24, gateway .1);
# host-local keeps its addresses under IPAM_DIR (else in its default,
# /var/lib/cni/networks).
bench_conflist() {
  local ipam_dir=${4:+\"dataDir\": \"$4\", }
  cat <<CONF
{
  "cniVersion": "${5:-1.0.0}",
  "name": "$1",
  "plugins": [
    {
      "type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", ${ipam_dir}"routes": [{ "dst": "0.0.0.0/0" }],
        "ranges": [[{ "subnet": "$3", "gateway": "${3%.0/24}.1" }]]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
CONF
}

# bench_containerd_conf PAUSE CNI_DIR MIRRORS prints a containerd 1.6
# configuration of the benchmark's own: root, state, sockets
# ($work/ctd.sock) and runc root under $work, never /etc/containerd; its
# CRI plugin on the first conflist in CNI_DIR (Debian's plugins in
# /usr/lib/cni), PAUSE the sandbox image, and the registry mirrors of the
# hull.toml [registries] block in the file MIRRORS (testenv
# registries-toml), as hosts.toml
# files it writes under $work/ctd/certs.d (config_path).
#
# Not the CRI plugin's registry.mirrors: containerd 1.6 appends the
# registry itself to those endpoints, so a name the local registry lacks
# would be fetched from gcr.io or docker.io. A hosts.toml whose server is
# the local registry is tried there only (hull's mirrors_only). It needs
# a [host] table too: 1.6 rejects a hosts.toml without one ("invalid
# `host` tree") and falls back to the registry itself.
bench_containerd_conf() {
  cat <<CONF
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
[grpc]
  address = "$work/ctd.sock"
[ttrpc]
  address = "$work/ctd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/ctd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$1"
  # This machine withholds CAP_SYS_RESOURCE: runc cannot lower a pause's
  # oom_score_adj to containerd's -998 (as rootless containerd)
  restrict_oom_score_adj = true
  netns_mounts_under = "$work/ctd/netns"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$work/ctd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$2"
    max_conf_num = 1
CONF
  printf '  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "%s"\n' "$work/ctd/certs.d"
  # "gcr.io" = ["ADDR/gcr.io"] -> certs.d/gcr.io/hosts.toml, server http://ADDR/v2/gcr.io
  sed -n 's/^"\([^"]*\)" = \["\([^/"]*\)\/\([^"]*\)"\]$/\1 \2 \3/p' "$3" | while read -r host addr path; do
    mkdir -p "$work/ctd/certs.d/$host"
    printf 'server = "http://%s/v2/%s"\noverride_path = true\n[host."http://%s/v2/%s"]\n  capabilities = ["pull", "resolve"]\n  override_path = true\n' \
      "$addr" "$path" "$addr" "$path" >"$work/ctd/certs.d/$host/hosts.toml"
  done
}
