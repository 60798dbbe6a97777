package network

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The pod network of a CNI configuration directory: the first valid
// file in lexical order, a .conf made a list, broken files skipped.
func TestPodConflist(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := PodConflist(dir); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), dir) {
		t.Errorf("empty directory: %v; want ErrNotExist naming it", err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("30-list.conflist", `{"cniVersion":"1.0.0","name":"listnet","plugins":[{"type":"bridge"}]}`)
	write("20-single.conf", `{"cniVersion":"0.4.0","name":"confnet","type":"ptp"}`)
	write("10-broken.conflist", `{"name":`)
	write("05-other.txt", `not a config`)
	path, data, skipped, err := PodConflist(dir)
	if err != nil || filepath.Base(path) != "20-single.conf" || len(skipped) != 1 || !strings.Contains(skipped[0].Error(), "10-broken") {
		t.Fatalf("PodConflist = %s, %v, %v; want 20-single.conf, 10-broken.conflist skipped", path, skipped, err)
	}
	var c conflist
	if err := json.Unmarshal(data, &c); err != nil || c.Name != "confnet" || len(c.Plugins) != 1 {
		t.Errorf("a .conf as a list: %s (%v)", data, err)
	}
}

// Import copies a conflist into hull's networks: host-local gets hull's
// store, the source is named, a change rewrites it under the same ID, and
// hull's own names are refused.
func TestImport(t *testing.T) {
	root := t.TempDir()
	m, err := Open(root, filepath.Join(root, "run"), Options{DefaultBridge: "htimpdef", DefaultSubnet: "10.232.9.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := filepath.Join(root, "10-pods.conflist")
	data := []byte(`{"cniVersion":"1.0.0","name":"pods","disableCheck":true,"plugins":[
		{"type":"bridge","bridge":"podbr0","isGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.231.7.0/24"}]]}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	n, err := m.Import(ctx, data, src)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Native || !n.Imported() || n.Labels[SourceLabel] != src || n.Bridge != "podbr0" || len(n.Subnets) != 1 {
		t.Errorf("imported = %+v; want a native bridge network naming its source", n)
	}
	stored, _ := os.ReadFile(n.Path)
	if !strings.Contains(string(stored), `"dataDir": "`+m.ipamDir+`"`) || !strings.Contains(string(stored), `"disableCheck": true`) {
		t.Errorf("stored conflist:\n%s\nwant hull's address store and the source's keys", stored)
	}
	changed := []byte(strings.Replace(string(data), `"isGateway":true`, `"isGateway":true,"promiscMode":true`, 1))
	n2, err := m.Import(ctx, changed, src)
	if err != nil || n2.ID != n.ID || n2.Native {
		t.Errorf("re-import of a changed file = %+v, %v; want the same ID, set up by its plugins", n2, err)
	}
	if _, err := m.Create(ctx, CreateOptions{Name: "mine", Subnet: "10.231.8.0/24", BridgeName: "minebr0"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bridge", "host", "mine"} {
		if _, err := m.Import(ctx, []byte(`{"cniVersion":"1.0.0","name":"`+name+`","plugins":[{"type":"bridge"}]}`), src); err == nil || !strings.Contains(err.Error(), "rename") {
			t.Errorf("import of a conflist named %s: %v; want refused, asking to rename", name, err)
		}
	}
}
