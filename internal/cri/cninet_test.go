package cri

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/network"
	"hull/internal/testenv"
)

// testConflist is a bridge network's conflist as a network provider
// writes it: bridge + host-local + portmap, extra plugin keys in bridge
// (e.g. forceAddress, which hull does not implement: libcni runs it).
func testConflist(name, bridge, subnet string, extra map[string]any) []byte {
	b := map[string]any{
		"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
		"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": subnet}}}, "routes": []map[string]string{{"dst": "0.0.0.0/0"}}},
	}
	for k, v := range extra {
		b[k] = v
	}
	data, _ := json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0", "name": name,
		"plugins": []any{b, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}}},
	}, "", "  ")
	return data
}

// cniDir is a CNI configuration directory of the test's; the bridges
// its networks name are removed when the test ends.
func cniDir(t *testing.T, bridges ...string) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		for _, b := range bridges {
			exec.Command("ip", "link", "del", b).Run()
		}
	})
	return dir
}

func networkReady(t *testing.T, c *client) *runtimeapi.RuntimeCondition {
	t.Helper()
	st, err := c.rt.Status(ctxT(t), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, cond := range st.Status.Conditions {
		if cond.Type == runtimeapi.NetworkReady {
			return cond
		}
	}
	t.Fatalf("Status has no NetworkReady: %v", st.Status)
	return nil
}

// The pod network is the first conflist of the CNI configuration
// directory: NetworkReady false (kubelet's reason, the directory named)
// while there is none, the pod CIDR put into a conflist that asks for
// it, native and libcni setups, the address released with the sandbox.
func TestPodNetworkFromCNIConfDir(t *testing.T) {
	brA, subnetA := testenv.DefaultNetwork()
	brB, subnetB := testenv.DefaultNetwork()
	dir := cniDir(t, brA, brB)
	c, _ := serveRuntimeWith(t, Options{CNIConfDir: dir})
	ctx := ctxT(t)

	cond := networkReady(t, c)
	if cond.Status || cond.Reason != "NetworkPluginNotReady" || !strings.Contains(cond.Message, "no CNI configuration file in "+dir) {
		t.Errorf("NetworkReady with no conflist = %v; want false, NetworkPluginNotReady, naming %s", cond, dir)
	}
	_, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig(t, "nonet")})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), dir) {
		t.Errorf("RunPodSandbox with no pod network: %v; want FailedPrecondition naming %s", err, dir)
	}
	// A host-network pod needs no pod network.
	host := sandboxConfig(t, "hostnet")
	host.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	runSandbox(t, c, host)

	// Lexical order: 10-a wins over 20-b; a broken file before both is
	// skipped. 10-a asks for the pod CIDR, which kubelet has not sent.
	os.WriteFile(filepath.Join(dir, "05-broken.conflist"), []byte("{not json"), 0o644)
	os.WriteFile(filepath.Join(dir, "20-b.conflist"), testConflist("crinet-b", brB, subnetB, nil), 0o644)
	a := testConflist("crinet-a", brA, podCIDRVar, nil)
	os.WriteFile(filepath.Join(dir, "10-a.conflist"), a, 0o644)
	if cond := networkReady(t, c); cond.Status || !strings.Contains(cond.Message, podCIDRVar) {
		t.Errorf("NetworkReady before the pod CIDR = %v; want false, saying the CIDR is missing", cond)
	}
	if _, err := c.rt.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "not-a-cidr"}}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("UpdateRuntimeConfig with a bad CIDR: %v; want InvalidArgument", err)
	}
	if _, err := c.rt.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: subnetA}}}); err != nil {
		t.Fatal(err)
	}
	if cond := networkReady(t, c); !cond.Status {
		t.Errorf("NetworkReady with a conflist = %v; want true", cond)
	}
	st, _ := c.rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if cfg := st.Info["config"]; !strings.Contains(cfg, `"podCIDR":"`+subnetA+`"`) || !strings.Contains(cfg, "10-a.conflist") {
		t.Errorf("Status config = %s; want the pod CIDR and the conflist", cfg)
	}

	ipOf := func(id string) netip.Addr {
		t.Helper()
		s, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
		if err != nil {
			t.Fatal(err)
		}
		ip, err := netip.ParseAddr(s.Status.GetNetwork().GetIp())
		if err != nil {
			t.Fatalf("sandbox IP %q: %v", s.Status.GetNetwork().GetIp(), err)
		}
		return ip
	}
	id := runSandbox(t, c, sandboxConfig(t, "native"))
	if ip := ipOf(id); !netip.MustParsePrefix(subnetA).Contains(ip) {
		t.Errorf("sandbox IP %s; want one of the pod CIDR %s (10-a.conflist)", ip, subnetA)
	}
	m, err := network.Open(c.root, filepath.Join(c.root, "run"), network.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := m.Inspect(ctx, "crinet-a")
	if err != nil {
		t.Fatal(err)
	}
	if !nw.Native || nw.Labels[network.SourceLabel] != filepath.Join(dir, "10-a.conflist") || nw.Bridge != brA {
		t.Errorf("imported network = native %v, labels %v, bridge %s; want native, its source, %s", nw.Native, nw.Labels, nw.Bridge, brA)
	}

	// A changed conflist with an option hull does not implement: the
	// next sandbox gets it through the plugins (libcni).
	os.WriteFile(filepath.Join(dir, "10-a.conflist"), testConflist("crinet-a", brA, podCIDRVar, map[string]any{"forceAddress": true}), 0o644)
	id2 := runSandbox(t, c, sandboxConfig(t, "plugins"))
	ip2 := ipOf(id2)
	if !netip.MustParsePrefix(subnetA).Contains(ip2) || ip2 == ipOf(id) {
		t.Errorf("plugin sandbox IP %s; want another address of %s", ip2, subnetA)
	}
	if nw, _ := m.Inspect(ctx, "crinet-a"); nw == nil || nw.Native {
		t.Errorf("network after the change: %+v; want it set up through its plugins", nw)
	}
	// The address store is hull's (the import gave host-local its dataDir).
	store := filepath.Join(c.root, "run", "networks", "ipam", "crinet-a")
	if _, err := os.Stat(filepath.Join(store, ip2.String())); err != nil {
		t.Errorf("the plugin's address %s is not in hull's store: %v", ip2, err)
	}
	for _, sid := range []string{id, id2} {
		if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sid}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(store, ip2.String())); !os.IsNotExist(err) {
		t.Errorf("address %s still reserved after RemovePodSandbox (%v)", ip2, err)
	}

	// A conflist named like hull's own default network is refused.
	os.WriteFile(filepath.Join(dir, "01-bridge.conflist"), testConflist("bridge", brB, subnetB, nil), 0o644)
	_, err = c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig(t, "clash")})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "rename") {
		t.Errorf("RunPodSandbox on a conflist named bridge: %v; want FailedPrecondition asking to rename it", err)
	}
	for _, n := range []string{"crinet-a"} {
		if err := m.Remove(context.Background(), n); err != nil {
			t.Errorf("remove network %s: %v", n, err)
		}
	}
}

// `hull cri serve --cni-conf-dir DIR` hands the directory to hull-cri:
// NetworkReady names it while it has no conflist; an empty value is
// hull's default network, ready at once. hull.toml's [cri] cni_conf_dir
// does the same without the flag.
func TestServeCNIConfDirFlag(t *testing.T) {
	hull := os.Getenv("HULL_BIN")
	if hull == "" || os.Geteuid() != 0 {
		t.Skip("needs root and HULL_BIN (make build)")
	}
	criBin := filepath.Join(filepath.Dir(hull), "hull-cri")
	fromConfig := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "hull.toml")
	os.WriteFile(cfg, []byte("[cri]\ncni_conf_dir = \""+fromConfig+"\"\n"), 0o600)
	flagged := t.TempDir()
	for _, tc := range []struct {
		dir   string
		flags []string
		ready bool
	}{
		{flagged, []string{"--cni-conf-dir", flagged}, false},
		{"", []string{"--cni-conf-dir", ""}, true},
		{fromConfig, []string{"--config", cfg}, false},
	} {
		root := t.TempDir()
		sock := filepath.Join(root, "cri.sock")
		cmd, exited, _ := startServe(t, hull, criBin, root, sock, tc.flags...)
		c := &client{rt: runtimeapi.NewRuntimeServiceClient(dial(t, sock))}
		cond := networkReady(t, c)
		if cond.Status != tc.ready || (!tc.ready && !strings.Contains(cond.Message, tc.dir)) {
			t.Errorf("--cni-conf-dir %q: NetworkReady = %v; want %v (naming the directory when false)", tc.dir, cond, tc.ready)
		}
		cmd.Process.Signal(os.Interrupt)
		<-exited
	}
}

func dial(t *testing.T, sock string) *grpc.ClientConn {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
