#!/usr/bin/env bash
# Networking benchmark (issue 15), hull vs podman, interleaved in one run
# on the same image served by a local registry (pulled once by each):
#   (a) `run --rm IMG true` on the default network: hull vs podman's
#       default network vs hull --network none (median of ROUNDS)
#   (b) start 50 detached `sleep` containers with -p each, then remove
#       them all: hull vs podman
#   (c) a 1 GB transfer (busybox nc) from the host to a hull container
#       through a published port (127.0.0.1 and the host's address)
#       against the same to the container's IP directly
# Goals: (a) hull <= 0.15x podman and hull(bridge) - hull(none) <= 5 ms;
# (b) <= 0.2x podman; (c) published >= 0.9x direct.
#
# Traffic stays between the host and the containers: each engine's
# default network is a bridge on a /24 the host does not route (hull's
# default network is moved there by its config, podman's by a conflist
# of its own, the host's podman network left alone), and nothing is
# sent to another address.
#
#   bench/network.sh [ROUNDS]     (default 10; N for (b) is 50, or COUNT=N;
#                                  SIZE_MB for (c), default 1024)
set -euo pipefail
rounds=${1:-${ROUNDS:-10}}
count=${COUNT:-50}
size_mb=${SIZE_MB:-1024}
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=/usr/local/go/bin:$PATH
. bench/lib.sh

# The two default networks: bridges and subnets of the benchmark's own.
hull_bridge=hbench0 hull_subnet=10.238.150.0/24
pod_bridge=cni-hbench0 pod_subnet=10.238.151.0/24
for s in "$hull_subnet" "$pod_subnet"; do
  if ip route show | grep -q "^${s%/*}"; then
    echo "bench: $s is routed on this host already; pick other subnets" >&2
    exit 1
  fi
done

bench_tools podman runc busybox
bench_podman_conf
[ -x bin/hull ] || make build

work=$(mktemp -d /var/tmp/hull-bench.XXXXXX)
cleanup() {
  set +e
  hull ps -aq 2>/dev/null | xargs -r "$repo/bin/hull" --root "$work/hull" --run-root "$work/hull-run" --config "$work/hull.toml" rm -f >/dev/null 2>&1
  # hull's default network: its bridge, nftables rules and address pool.
  [ -x "$work/testenv" ] && "$work/testenv" network-rm --root "$work/hull" --run-root "$work/hull-run" \
    --bridge "$hull_bridge" --subnet "$hull_subnet"
  pod rm -af >/dev/null 2>&1
  pod system reset -f >/dev/null 2>&1
  for b in "$hull_bridge" "$pod_bridge"; do ip link del "$b" 2>/dev/null; done
  # podman's CNI plugins' rules: the chains they named for the network.
  iptables-save 2>/dev/null | grep -q "$pod_subnet" && pod_rules_left=1
  bench_stop_registry
  grep " $work" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
  [ -z "${pod_rules_left:-}" ] || echo "bench: podman left iptables rules for $pod_subnet" >&2
}
trap cleanup EXIT

printf '[network]\ndefault_bridge = "%s"\ndefault_subnet = "%s"\n' "$hull_bridge" "$hull_subnet" >"$work/hull.toml"
hull() { "$repo/bin/hull" --root "$work/hull" --run-root "$work/hull-run" --config "$work/hull.toml" "$@"; }

# podman's default network "podman", as Debian's podman ships it
# (/etc/cni/net.d/87-podman-bridge.conflist: bridge, host-local, portmap,
# firewall, tuning), on the benchmark's bridge and subnet.
mkdir -p "$work/cni"
cat >"$work/cni/87-podman-bridge.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "podman",
  "plugins": [
    {
      "type": "bridge", "bridge": "$pod_bridge", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "routes": [{ "dst": "0.0.0.0/0" }],
        "ranges": [[{ "subnet": "$pod_subnet", "gateway": "${pod_subnet%.0/24}.1" }]]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall" },
    { "type": "tuning" }
  ]
}
EOF
# The host's containers.conf (with bench_podman_conf's limits), pointed
# at that network directory.
conf=/etc/containers/containers.conf
netconf="network_config_dir = \"$work/cni\""
if grep -qs '^\[network\]' "$conf"; then
  sed "/^\[network\]/a $netconf" "$conf" >"$work/containers.conf"
else
  { cat "$conf" 2>/dev/null; printf '\n[network]\n%s\n' "$netconf"; } >"$work/containers.conf"
fi
export CONTAINERS_CONF=$work/containers.conf


bench_registry busybox
img=$BUSYBOX
echo "bench: image $img; podman uses $podman_runtime; hull's default network $hull_bridge $hull_subnet, podman's $pod_bridge $pod_subnet"
hull pull -q "$img" >/dev/null
pod pull -q --tls-verify=false "$img" >/dev/null

run_hull() { hull run --rm "$img" true >/dev/null 2>&1; }
run_none() { hull run --rm --network none "$img" true >/dev/null 2>&1; }
run_podman() { pod run --rm "$img" true >/dev/null 2>&1; }
# Warm all three once; this also makes both default networks' bridges.
run_hull && run_none && run_podman
[ "$(pod network inspect -f '{{.NetworkInterface}}' podman)" = "$pod_bridge" ] ||
  { echo "bench: podman's default network is not the benchmark's" >&2; exit 1; }

echo "(a) run --rm true on the default network, $rounds rounds"
# The order turns every round: a run pays for the teardown of the one
# before it still going on in the kernel (a network namespace and its
# veth are freed by a kernel worker that holds the rtnl lock, which the
# next veth's creation waits for), so each follows each alike.
tools=(hull none podman)
for ((i = 1; i <= rounds; i++)); do
  line="  round $i:"
  for ((k = 0; k < 3; k++)); do
    t=${tools[(i + k) % 3]}
    s=$(elapsed "run_$t")
    echo "$s" >>"$work/a.$t"
    line+=" $t ${s}s"
  done
  echo "$line"
done
ah=$(median <"$work/a.hull"); an=$(median <"$work/a.none"); ap=$(median <"$work/a.podman")
# The same cost as the median of each round's difference: less moved by
# a load that changes from round to round.
ad=$(paste "$work/a.hull" "$work/a.none" | awk '{ print $1 - $2 }' | median)

echo "(b) $count detached sleep containers with -p each, then remove them all"
many_hull() {
  for ((j = 0; j < count; j++)); do hull run -d -p 80 "$img" sleep 600 >/dev/null; done
  hull ps -aq | xargs "$repo/bin/hull" --root "$work/hull" --run-root "$work/hull-run" --config "$work/hull.toml" rm -f >/dev/null
}
many_podman() {
  for ((j = 0; j < count; j++)); do pod run -d -p 80 "$img" sleep 600 >/dev/null; done
  pod rm -af -t 0 >/dev/null
}
bh=$(elapsed many_hull); bp=$(elapsed many_podman)
echo "  hull ${bh}s podman ${bp}s"

echo "(c) ${size_mb} MB host -> container with busybox nc"
# The container's nc serves one connection after another (-ll), each to
# a wc that appends the byte count to a file (an nc whose own stdin ends
# would close the connection); the host's nc sends SIZE_MB of zeros,
# half-closes, and exits when wc has read everything and closed.
# The host port is a random one: a fixed one may be another hull's (of
# other roots, whose published ports this hull cannot see).
hull run -d --name sink -p 5001 "$img" nc -ll -p 5001 -e sh -c 'wc -c >>/tmp/received' >/dev/null
ctr_ip=$(hull inspect -f '{{.NetworkSettings.IPAddress}}' sink)
host_port=$(hull port sink 5001/tcp | sed -n '1s/.*://p')
host_ip=$(ip -4 -o addr show scope global | awk '$2 != "'"$hull_bridge"'" && $2 !~ /^(cni-|ht|veth)/ { sub("/.*", "", $4); print $4; exit }')
send() { head -c "${size_mb}M" /dev/zero | busybox nc "$1" "$2"; }
sent=0
targets=("direct $ctr_ip 5001" "loopback 127.0.0.1 $host_port")
[ -z "$host_ip" ] || targets+=("host-address $host_ip $host_port")
for ((i = 1; i <= ${ROUNDS_C:-3}; i++)); do
  line="  round $i:"
  for t in "${targets[@]}"; do
    set -- $t
    s=$(elapsed send "$2" "$3")
    sent=$((sent + 1))
    got=$(hull exec sink sh -c 'wc -l </tmp/received; tail -n 1 /tmp/received' | tr '\n' ' ')
    if [ "$got" != "$sent $((size_mb * 1024 * 1024)) " ]; then
      echo "bench: transfer $sent to $1 ($2:$3): the container counted (transfers, last bytes) $got" >&2
      exit 1
    fi
    echo "$s" >>"$work/c.$1"
    line+=" $1 $(awk -v s="$s" -v m="$size_mb" 'BEGIN { printf "%.0f", m / s }') MB/s"
  done
  echo "$line"
done
hull rm -f sink >/dev/null
cd_=$(median <"$work/c.direct")

echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
printf 'hull/podman (a) run --rm, default network: %s / %s = %s (goal <= 0.15)\n' "$ah" "$ap" "$(ratio "$ah" "$ap")"
printf 'hull networking cost (a) bridge - none:    %s - %s = %.1f ms, per round (median) %.1f ms (goal <= 5)\n' "$ah" "$an" \
  "$(awk -v a="$ah" -v b="$an" 'BEGIN { print (a - b) * 1000 }')" "$(awk -v d="$ad" 'BEGIN { print d * 1000 }')"
printf 'hull/podman (b) %d up+rm with -p:           %s / %s = %s (goal <= 0.20)\n' "$count" "$bh" "$bp" "$(ratio "$bh" "$bp")"
for t in "${targets[@]:1}"; do
  set -- $t
  c=$(median <"$work/c.$1")
  printf 'published/direct (c) via %-12s  %.0f / %.0f MB/s = %s (goal >= 0.90)\n' "$1:" \
    "$(awk -v s="$c" -v m="$size_mb" 'BEGIN { print m / s }')" "$(awk -v s="$cd_" -v m="$size_mb" 'BEGIN { print m / s }')" "$(ratio "$cd_" "$c")"
done
