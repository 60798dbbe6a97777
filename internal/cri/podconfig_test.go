package cri

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cgroups"
	"hull/internal/testenv"
)

// freePort is a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// hostAddr is an IPv4 address of the host's other than loopback and the
// test's bridges (the address a node's hostPort is reached on).
func hostAddr(t *testing.T) string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 || strings.HasPrefix(i.Name, "ht") || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	t.Skip("the host has no IPv4 address but loopback")
	return ""
}

// A sandbox as kubelet sends it, on a pod network from a conflist: DNS
// config in resolv.conf, a hostPort reachable on 127.0.0.1 and on the
// host's address, net.* sysctls in the pod's namespace, the cgroup
// parent made in every hierarchy with the pod's limits and removed with
// the sandbox (one that existed before is left). The network is set up
// natively, and through the plugins (bridge, host-local, portmap) when
// the conflist has an option hull does not implement.
func TestSandboxAsKubeletSendsIt(t *testing.T) {
	t.Run("native", func(t *testing.T) { testKubeletSandbox(t, nil) })
	t.Run("plugins", func(t *testing.T) { testKubeletSandbox(t, map[string]any{"forceAddress": true}) })
}

func testKubeletSandbox(t *testing.T, bridgeOpts map[string]any) {
	br, subnet := testenv.DefaultNetwork()
	dir := cniDir(t, br)
	os.WriteFile(filepath.Join(dir, "10-pods.conflist"), testConflist("crinet-pods", br, subnet, bridgeOpts), 0o644)
	c, f := serveRuntimeWith(t, Options{CNIConfDir: dir})
	ctx := ctxT(t)

	top := fmt.Sprintf("/hulltest-%d", time.Now().UnixNano()%1e9)
	parent := top + "/burstable/poduid-web"
	port := freePort(t)
	cfg := sandboxConfig(t, "web")
	cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: int32(port)}}
	cfg.Linux.CgroupParent = parent
	cfg.Linux.Sysctls = map[string]string{"net.ipv4.ip_local_port_range": "20000\t30000"}
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 64 << 20}
	cfg.Linux.Overhead = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}
	id := runSandbox(t, c, cfg)
	t.Cleanup(func() { cgroupsRemove(top) })

	cg, err := cgroups.New(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range cg.Mounts() {
		if _, err := os.Stat(mt.Dir); err != nil {
			t.Errorf("pod cgroup in %s: %v", mt.Mountpoint, err)
		}
	}
	mem := map[cgroups.Mode]string{cgroups.Unified: "memory.max"}[cg.Mode]
	memDir := ""
	for _, mt := range cg.Mounts() {
		if mt.V2 && cg.Mode == cgroups.Unified || strings.Contains(mt.Mountpoint, "memory") {
			memDir = mt.Dir
		}
	}
	if mem == "" {
		mem = "memory.limit_in_bytes"
	}
	if b, err := os.ReadFile(filepath.Join(memDir, mem)); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(64<<20) {
		t.Errorf("pod cgroup %s = %q, %v; want the sandbox's resources, 64 MiB", mem, b, err)
	}

	// An in-place resize: the pod cgroup hull made gets the new limit.
	if _, err := c.rt.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: id,
		Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20}}); err != nil {
		t.Errorf("UpdatePodSandboxResources: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(memDir, mem)); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(96<<20) {
		t.Errorf("pod cgroup %s after UpdatePodSandboxResources = %q, %v; want 96 MiB", mem, b, err)
	}

	ctr := createContainer(t, c, f, id, cfg, "server", nil, "sh", "-c", "while true; do hostname | nc -l -p 8080; done")
	startContainer(t, c, ctr)
	exec := func(cmd string) string {
		t.Helper()
		r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"sh", "-c", cmd}, Timeout: 10})
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("exec %q: %v %v %s", cmd, r, err, r.GetStderr())
		}
		return string(r.Stdout)
	}
	resolv := exec("cat /etc/resolv.conf")
	for _, want := range []string{"nameserver 10.200.0.53", "search svc.cluster.local", "options ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("resolv.conf:\n%s\nwant %q (kubelet's dns_config as sent)", resolv, want)
		}
	}
	if got := strings.Join(strings.Fields(exec("cat /proc/sys/net/ipv4/ip_local_port_range")), " "); got != "20000 30000" {
		t.Errorf("net.ipv4.ip_local_port_range in the pod = %q; want the sandbox's sysctl", got)
	}
	// (The container sees its cgroup as / in its own cgroup namespace.)
	if subs, _ := filepath.Glob(filepath.Join(memDir, "*", "cgroup.procs")); len(subs) != 1 {
		t.Errorf("cgroups under the pod's %s: %v; want the container's", memDir, subs)
	}
	for _, host := range []string{"127.0.0.1", hostAddr(t)} {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		var body []byte
		var err error
		for i := 0; i < 50; i++ { // nc listens after StartContainer returns
			var conn net.Conn
			if conn, err = net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				body, err = io.ReadAll(conn)
				conn.Close()
				if len(body) > 0 {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || strings.TrimSpace(string(body)) != "web" {
			t.Errorf("read %s = %q, %v; want the pod's host name through its hostPort", addr, body, err)
		}
	}

	// A pod cgroup kubelet made stays after the sandbox.
	kparent := top + "/burstable/poduid-kubelet"
	kcg, _ := cgroups.New(kparent)
	if err := kcg.Create(); err != nil {
		t.Fatal(err)
	}
	kcfg := sandboxConfig(t, "kubelets")
	kcfg.Linux.CgroupParent = kparent
	kid := runSandbox(t, c, kcfg)

	for _, sid := range []string{id, kid} {
		if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sid}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sid}); err != nil {
			t.Fatal(err)
		}
	}
	for _, mt := range cg.Mounts() {
		if _, err := os.Stat(mt.Dir); !os.IsNotExist(err) {
			t.Errorf("pod cgroup %s left after RemovePodSandbox (%v)", mt.Dir, err)
		}
	}
	if !kcg.Exists() {
		t.Errorf("RemovePodSandbox removed the pod cgroup kubelet made (%s)", kparent)
	}
}

// cgroupsRemove removes the test's cgroup tree top in every hierarchy.
func cgroupsRemove(top string) {
	for _, sub := range []string{"/burstable/poduid-kubelet", "/burstable/poduid-web", "/burstable", ""} {
		if m, err := cgroups.New(top + sub); err == nil {
			for _, mt := range m.Mounts() {
				os.Remove(mt.Dir)
			}
		}
	}
}

// A pod on the node's network, PID and IPC namespaces (hostNetwork,
// hostPID, hostIPC): its containers see the host's namespaces and name.
func TestHostNamespacesSandbox(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	cfg := sandboxConfig(t, "hostns")
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE,
	}
	id := runSandbox(t, c, cfg)
	ctr := createContainer(t, c, f, id, cfg, "probe", nil, "sleep", "60")
	startContainer(t, c, ctr)
	r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctr, Timeout: 10,
		Cmd: []string{"sh", "-c", "for n in net pid ipc; do readlink /proc/self/ns/$n; done; hostname"}})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("exec: %v %v", r, err)
	}
	var want []string
	for _, k := range []string{"net", "pid", "ipc"} {
		l, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, l)
	}
	host, _ := os.Hostname()
	want = append(want, host)
	if got := strings.Fields(string(r.Stdout)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the container's net, pid, ipc namespaces and host name = %v; want the node's %v", got, want)
	}
	st, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		t.Fatal(err)
	}
	if o := st.Status.Linux.Namespaces.Options; o.Network != runtimeapi.NamespaceMode_NODE || o.Pid != runtimeapi.NamespaceMode_NODE || o.Ipc != runtimeapi.NamespaceMode_NODE {
		t.Errorf("namespace options = %v; want NODE for all three", o)
	}
}
