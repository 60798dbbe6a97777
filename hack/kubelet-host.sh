# A real kubelet (hack/kubelet.sh build) in standalone mode on private
# paths, and what it changes on the host saved before and put back after
# (sourced, not run: test/kubelet.sh against hull-cri, bench/kube.sh
# against containerd).
#
# Needs from the caller: work (the run's directory) and me (its name, for
# messages). Sets: cgroot, port, ro_port, healthz_port, kubelet_pid.
#
# Private: kubelet's root dir, pod log dir, manifest dir ($work/manifests),
# ports (127.0.0.1 only) and cgroup root (/hull-kubelet-PID under every
# cgroup v1 hierarchy, made here and removed with all kubelet made under
# it). Put back by kubelet_host_restore, even on failure: the kernel
# sysctls kubelet sets when protectKernelDefaults is false
# (vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
# kernel.panic_on_oops, kernel.keys.root_maxkeys/root_maxbytes), the
# iptables chains and rules it adds (KUBE-IPTABLES-HINT, KUBE-FIREWALL,
# KUBE-KUBELET-CANARY) when they were not there before, and the host paths
# it makes whatever its configuration says (/var/log/containers for its
# legacy log symlinks, /var/lib/kubelet/device-plugins/kubelet.sock) when
# they were not there before. Those paths and chains are the host's, not
# the run's: hence one run at a time per machine (kubelet_host_lock), and
# none beside a kubelet of the host's own.

node=hull-node
cgroot=/hull-kubelet-$$
kubelet_pid= port= ro_port= healthz_port=
declare -A sysctl_saved=()
declare -a cg_made=() ipt_new=() host_made=()

# stop PID: SIGTERM, then wait until it is gone (SIGKILL after 20 s).
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

# free_port: a TCP port nothing listens on, from a range the kernel does
# not hand out to clients.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 10000))
    ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}

# The sysctls kubelet sets when protectKernelDefaults is false
# (pkg/kubelet/cm/container_manager_linux.go setupKernelTunables).
kernel_tunables=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# The iptables chains kubelet makes (pkg/kubelet/kubelet_network_linux.go),
# as "table chain"; KUBE-FIREWALL is IPv4 only.
ipt_chains() {
  local cmd=$1
  echo "mangle KUBE-IPTABLES-HINT"
  [ "$cmd" = iptables ] && echo "filter KUBE-FIREWALL"
  for t in mangle nat filter; do echo "$t KUBE-KUBELET-CANARY"; done
}

# kubelet_host_lock: one run at a time (kubelet's iptables chains and
# device-plugin socket are host-wide, and the socket check comes before
# kubelet makes it); exits when another holds the lock.
kubelet_host_lock() {
  mkdir -p /run/lock
  exec 9>/run/lock/hull-kubelet-test.lock
  flock -n 9 || { echo "$me: another kubelet run (test/kubelet.sh, bench/kube.sh) holds /run/lock/hull-kubelet-test.lock: wait for it" >&2; exit 1; }
  if [ -S /var/lib/kubelet/device-plugins/kubelet.sock ]; then
    echo "$me: /var/lib/kubelet/device-plugins/kubelet.sock is there: another kubelet (or test/kubelet.sh)" \
      "runs on this host, and this one would take its socket; remove the file if none does" >&2
    exit 1
  fi
}

# kubelet_host_save records what kubelet will change on the host and
# makes the cgroup root under every hierarchy kubelet's cgroupfs driver
# uses (cpuset needs its CPUs and memory nodes before children can have
# any).
kubelet_host_save() {
  local k cmd t c f m
  for k in "${kernel_tunables[@]}"; do sysctl_saved[$k]=$(sysctl -n "$k"); done
  for cmd in iptables ip6tables; do
    command -v $cmd >/dev/null || continue
    while read -r t c; do
      $cmd -w -t "$t" -S "$c" >/dev/null 2>&1 || ipt_new+=("$cmd $t $c")
    done < <(ipt_chains $cmd)
  done
  # (deepest last: the first one missing is removed with all under it)
  for f in /var/log/containers /var/lib/kubelet /var/lib/kubelet/device-plugins \
    /var/lib/kubelet/device-plugins/kubelet.sock; do
    [ -e "$f" ] || [ -L "$f" ] || host_made+=("$f")
  done
  while read -r m; do
    mkdir "$m$cgroot"
    cg_made+=("$m$cgroot")
    if [ -f "$m/cpuset.cpus" ]; then
      cat "$m/cpuset.cpus" >"$m$cgroot/cpuset.cpus"
      cat "$m/cpuset.mems" >"$m$cgroot/cpuset.mems"
    fi
  done < <(findmnt -rn -t cgroup,cgroup2 -o TARGET | grep '^/sys/fs/cgroup/')
}

# kubelet_config ENDPOINT: kubelet's configuration in $work/kubelet.yaml,
# static pods from $work/manifests, the CRI at ENDPOINT (unix://...).
kubelet_config() {
  port=$(free_port) ro_port=$(free_port) healthz_port=$(free_port)
  mkdir -p "$work/manifests" "$work/kubelet" "$work/pod-logs"
  cat >"$work/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: $work/manifests
fileCheckFrequency: 2s
syncFrequency: 10s
containerRuntimeEndpoint: $1
imageServiceEndpoint: $1
cgroupDriver: cgroupfs
cgroupRoot: $cgroot
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
address: 127.0.0.1
port: $port
readOnlyPort: $ro_port
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
podLogsDir: $work/pod-logs
volumePluginDir: $work/volume-plugins
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
registerNode: false
EOF
  # KUBELET_FEATURE_GATES: "Name=true,Other=false", as kubelet's flag.
  if [ -n "${KUBELET_FEATURE_GATES:-}" ]; then
    echo "featureGates:" >>"$work/kubelet.yaml"
    tr ',' '\n' <<<"$KUBELET_FEATURE_GATES" | sed 's/^\(.*\)=\(.*\)$/  \1: \2/' >>"$work/kubelet.yaml"
  fi
}

# start_kubelet KUBELET: runs it (log $work/kubelet.log) until healthy.
start_kubelet() {
  "$1" --config "$work/kubelet.yaml" --root-dir "$work/kubelet" --cert-dir "$work/kubelet/pki" \
    --hostname-override "$node" --v="${KUBELET_V:-2}" >>"$work/kubelet.log" 2>&1 &
  kubelet_pid=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$healthz_port/healthz" >/dev/null 2>&1 && break
    kill -0 "$kubelet_pid" 2>/dev/null || break
    sleep 0.2
  done
  if ! curl -sf "http://127.0.0.1:$healthz_port/healthz" >/dev/null 2>&1; then
    tail -30 "$work/kubelet.log" >&2
    echo "$me: kubelet did not become healthy" >&2
    exit 1
  fi
}

# kubelet_host_restore puts back what kubelet_host_save recorded (after
# kubelet and the CRI server stopped and $work's mounts are gone): the
# cgroup root with all under it, the sysctls, the iptables chains kubelet
# made and the jumps to them, its legacy log symlinks to $work, and the
# host paths it made.
kubelet_host_restore() {
  local d k e cmd t c f
  for d in "${cg_made[@]}"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && echo "$me: cgroup $d could not be removed" >&2
  done
  for k in "${!sysctl_saved[@]}"; do
    [ "$(sysctl -n "$k")" = "${sysctl_saved[$k]}" ] || sysctl -qw "$k=${sysctl_saved[$k]}"
  done
  for e in "${ipt_new[@]}"; do
    read -r cmd t c <<<"$e"
    if [ "$c" = KUBE-FIREWALL ]; then
      while $cmd -w -t filter -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
      while $cmd -w -t filter -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    fi
    $cmd -w -t "$t" -F "$c" 2>/dev/null
    $cmd -w -t "$t" -X "$c" 2>/dev/null
  done
  [ -n "$work" ] && find /var/log/containers -maxdepth 1 -type l -lname "$work/*" -delete 2>/dev/null
  for f in "${host_made[@]}"; do rm -rf "$f"; done
}
