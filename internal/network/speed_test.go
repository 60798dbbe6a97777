package network

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// TestAttachSpeed measures what deciding between the plugins and the
// native path rests on: Attach+Detach of one container in a fresh
// namespace (the namespace's making not counted), through the CNI
// plugins (libcni exec'ing bridge+host-local, portmap, firewall, tuning)
// and natively, without and with a published port; the median of 30.
// Detach is measured with the namespace alive (network disconnect) and
// gone (a container's end, the case of `run --rm`).
// It runs only with HULL_NETWORK_BENCH=1.
func TestAttachSpeed(t *testing.T) {
	if os.Getenv("HULL_NETWORK_BENCH") == "" {
		t.Skip("set HULL_NETWORK_BENCH=1 to measure")
	}
	const rounds = 30
	for i, c := range []struct {
		name    string
		plugins bool
		ports   []PortMapping
	}{
		{"plugins", true, nil},
		{"native", false, nil},
		{"plugins -p", true, []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}},
		{"native -p", false, []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}},
	} {
		m := newManager(t, Options{UsePlugins: c.plugins})
		n := testNetwork(t, m, fmt.Sprintf("10.231.%d.0/24", 40+i))
		ctx := context.Background()
		var add, del, delGone, both []time.Duration
		for r := -1; r < 2*rounds; r++ { // round -1 makes the bridge
			ns, path := newNetNS(t)
			id := containerID()
			// One container at a time, as one `hull run`: the kernel's
			// work of the last round (a namespace's cleanup holds the
			// rtnl lock for milliseconds) is not this round's.
			time.Sleep(50 * time.Millisecond)
			t0 := time.Now()
			if _, err := m.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: path, Network: n.Name, Ports: c.ports}); err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			// Odd rounds: the container's namespace is gone first, as
			// after `run --rm`; even ones: it lives (network disconnect).
			gone := r%2 != 0
			if gone {
				run(t, "ip", "netns", "del", ns)
				time.Sleep(50 * time.Millisecond)
			}
			t2 := time.Now()
			if err := m.Detach(ctx, id, n.Name, ""); err != nil {
				t.Fatal(err)
			}
			t3 := time.Now()
			if r < 0 {
				continue
			}
			add = append(add, t1.Sub(t0))
			if gone {
				delGone, both = append(delGone, t3.Sub(t2)), append(both, t1.Sub(t0)+t3.Sub(t2))
			} else {
				del = append(del, t3.Sub(t2))
			}
		}
		if err := m.Reclaim(ctx, func(string) bool { return false }); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-11s ADD %6.2f ms  DEL %6.2f ms (namespace alive), %6.2f ms (gone)  ADD+DEL(gone) %6.2f ms, p90 %.2f ms (medians of %d)",
			c.name, ms(median(add)), ms(median(del)), ms(median(delGone)), ms(median(both)), ms(pct(both, 0.9)), rounds)
	}
}

func median(d []time.Duration) time.Duration { return pct(d, 0.5) }

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p+0.5)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
