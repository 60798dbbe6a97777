package testenv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"hull/internal/network"
)

// Containers join the default network unless told otherwise, and its
// bridge and address pool would be shared by every test root on the host
// (hull0, 10.88.0.0/16). Each test root gets a default network of its
// own instead: a bridge named for it on a /24 of 10.200.0.0-10.239.255.0
// that the host does not route, removed with its rules when the test
// ends. NetworkConfig writes it as the root's hull.toml.

var (
	netMu    sync.Mutex
	netRoots = map[string]string{}
)

// DefaultNetwork returns a fresh default bridge name and subnet for a
// test root.
func DefaultNetwork() (bridge, subnet string) {
	var b [4]byte
	rand.Read(b[:])
	k := binary.BigEndian.Uint32(b[:]) % (40 * 256)
	return fmt.Sprintf("ht%x", b[:3]), fmt.Sprintf("10.%d.%d.0/24", 200+k/256, k%256)
}

// NetworkConfig returns the path of root's configuration file, written on
// the first call for root: its default network (DefaultNetwork), which is
// removed from the host (bridge, rules, address pool) when t ends. Pass
// it to hull as --config (root and run_root come from the flags).
func NetworkConfig(t testing.TB, root string) string {
	t.Helper()
	netMu.Lock()
	defer netMu.Unlock()
	if p, ok := netRoots[root]; ok {
		return p
	}
	bridge, subnet := DefaultNetwork()
	p := filepath.Join(root, "hull.toml")
	data := fmt.Sprintf("[network]\ndefault_bridge = %q\ndefault_subnet = %q\n", bridge, subnet)
	// --config wins over HULL_CONFIG: what a test set there is kept.
	if env := os.Getenv("HULL_CONFIG"); env != "" {
		base, err := os.ReadFile(env)
		if err != nil {
			t.Fatal(err)
		}
		data = string(base) + "\n" + data
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	netRoots[root] = p
	t.Cleanup(func() {
		RemoveDefaultNetwork(t, root, filepath.Join(root, "run"), bridge, subnet)
		netMu.Lock()
		delete(netRoots, root)
		netMu.Unlock()
	})
	return p
}

// RemoveDefaultNetwork removes the default network of a test root (its
// bridge, rules and address pool) if it was ever written.
func RemoveDefaultNetwork(t testing.TB, root, runRoot, bridge, subnet string) {
	if _, err := os.Stat(filepath.Join(root, "networks", network.DefaultNetwork+".conflist")); err != nil {
		return
	}
	m, err := network.Open(root, runRoot, network.Options{DefaultBridge: bridge, DefaultSubnet: subnet})
	if err == nil {
		err = m.Remove(context.Background(), network.DefaultNetwork)
	}
	if err != nil {
		t.Errorf("remove the test's default network (bridge %s): %v", bridge, err)
	}
}

// ConfigArgs returns the --config flag of root's configuration if
// NetworkConfig wrote one (nil otherwise), for a hull started where no
// testing.TB is at hand.
func ConfigArgs(root string) []string {
	netMu.Lock()
	defer netMu.Unlock()
	if p, ok := netRoots[root]; ok {
		return []string{"--config", p}
	}
	return nil
}
