package network

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestMain lets the test binary be the hull process a crash test kills.
func TestMain(m *testing.M) {
	if os.Getenv("HULL_NETWORK_CHILD") != "" {
		attachForever()
		return
	}
	os.Exit(m.Run())
}

// attachForever attaches and detaches containers PREFIX0, PREFIX1, ... in
// one namespace, with a published port, until it is killed.
func attachForever() {
	m, err := Open(os.Getenv("HULL_ROOT"), os.Getenv("HULL_RUN_ROOT"), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s%d", os.Getenv("HULL_ID_PREFIX"), i)
		_, err := m.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: os.Getenv("HULL_NETNS"), Network: os.Getenv("HULL_NETWORK"),
			Ports: []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}})
		if err == nil {
			err = m.Detach(ctx, id, os.Getenv("HULL_NETWORK"), "")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(".") // one container done, for the test to see progress
	}
}

// TestKilledMidway: a hull killed with SIGKILL at any point of Attach or
// Detach leaves nothing that Reclaim does not take back.
func TestKilledMidway(t *testing.T) {
	m := newManager(t, Options{})
	n := testNetwork(t, m, "10.231.37.0/24")
	ns, path := newNetNS(t)
	ctx := context.Background()
	done := 0 // containers attached and detached whole, over all rounds
	defer func() {
		t.Logf("killed 12 times, after %d containers done whole", done)
		if done == 0 {
			t.Error("the child never got through a container: the kills hit only its start")
		}
	}()
	for round := range 12 {
		prefix := fmt.Sprintf("crash%dx", round)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HULL_NETWORK_CHILD=1", "HULL_ROOT="+filepath.Dir(m.confDir), "HULL_RUN_ROOT="+filepath.Dir(m.runDir),
			"HULL_NETNS="+path, "HULL_NETWORK="+n.Name, "HULL_ID_PREFIX="+prefix)
		var stderr, stdout strings.Builder
		cmd.Stderr, cmd.Stdout = &stderr, &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(40+rand.IntN(250)) * time.Millisecond) // past its start, into its containers
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if stderr.Len() > 0 {
			t.Fatalf("round %d: the child failed: %s", round, stderr.String())
		}
		done += stdout.Len()
		if err := m.Reclaim(ctx, func(string) bool { return false }); err != nil {
			t.Fatalf("round %d: reclaim: %v", round, err)
		}
		// Everything of every container the child made is gone.
		if entries, _ := os.ReadDir(m.attachDir); len(entries) > 0 {
			t.Fatalf("round %d: records remain: %v", round, entries)
		}
		if entries, _ := os.ReadDir(m.portDir); len(entries) > 0 {
			t.Fatalf("round %d: host ports remain reserved: %v", round, entries)
		}
		s, err := m.lockIPAM(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		owners, _ := s.owners()
		s.unlock()
		tmps, _ := filepath.Glob(filepath.Join(s.dir, ".tmp-*"))
		if len(owners) > 0 || len(tmps) > 0 {
			t.Fatalf("round %d: addresses remain reserved: %v %v", round, owners, tmps)
		}
		if rules := containerRules(t, prefix); len(rules) > 0 {
			t.Fatalf("round %d: nftables: %v", round, rules)
		}
		if out := run(t, "ip", "-n", ns, "-o", "link"); strings.Count(out, "\n") != 1 {
			t.Fatalf("round %d: devices remain in the namespace:\n%s", round, out)
		}
		br, _ := netlink.LinkByName(n.Bridge)
		links, _ := netlink.LinkList()
		for _, l := range links {
			if br != nil && l.Attrs().MasterIndex == br.Attrs().Index {
				t.Fatalf("round %d: veth %s remains on the bridge", round, l.Attrs().Name)
			}
		}
	}
}
