package network

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAttachSpeed measures what deciding between the plugins and the
// native path rests on: Attach+Detach of one container in a fresh
// namespace (the namespace's making not counted), through the CNI
// plugins (libcni exec'ing bridge+host-local, portmap, firewall, tuning)
// and natively, without and with a published port; the median of 30.
// Detach is measured with the namespace alive (network disconnect) and
// gone (a container's end, the case of `run --rm`). CPU is the CPU time
// of ADD+DEL(gone), plugins included.
// It runs only with HULL_NETWORK_BENCH=1.
func TestAttachSpeed(t *testing.T) {
	if os.Getenv("HULL_NETWORK_BENCH") == "" {
		t.Skip("set HULL_NETWORK_BENCH=1 to measure")
	}
	const rounds = 30
	type variant struct {
		name                    string
		plugins                 bool
		ports                   []PortMapping
		m                       *Manager
		n                       *Network
		add, del, delGone, both []time.Duration
		cpu                     []time.Duration // ADD+DEL(gone), hull's and its children's
	}
	p80 := []PortMapping{{ContainerPort: 80, Protocol: "tcp"}}
	vs := []*variant{{name: "plugins", plugins: true}, {name: "native"}, {name: "plugins -p", plugins: true, ports: p80}, {name: "native -p", ports: p80}}
	for i, v := range vs {
		v.m = newManager(t, Options{UsePlugins: v.plugins})
		v.n = testNetwork(t, v.m, fmt.Sprintf("10.231.%d.0/24", 40+i))
	}
	ctx := context.Background()
	// The variants take turns, so that the load of the host (other
	// tests, builds) weighs on each alike.
	for r := -1; r < 2*rounds; r++ { // round -1 makes the bridges
		// Odd rounds: the container's namespace is gone before Detach,
		// as after `run --rm` (ADD and ADD+DEL are theirs); even ones:
		// it lives (network disconnect).
		for _, v := range vs {
			ns, path := newNetNS(t)
			id := containerID()
			// One container at a time, as one `hull run`: the kernel's
			// work of the last turn (a namespace's cleanup holds the
			// rtnl lock for milliseconds) is not this turn's.
			time.Sleep(50 * time.Millisecond)
			c0 := cpuTime()
			t0 := time.Now()
			a, err := v.m.Attach(ctx, AttachRequest{ContainerID: id, NetNSPath: path, Network: v.n.Name, Ports: v.ports})
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			c1 := cpuTime()
			gone := r%2 != 0
			if gone {
				run(t, "ip", "netns", "del", ns) // Detach runs while the kernel removes it
			}
			c2 := cpuTime()
			t2 := time.Now()
			if err := v.m.Detach(ctx, id, v.n.Name, ""); err != nil {
				t.Fatal(err)
			}
			t3 := time.Now()
			c3 := cpuTime()
			// The kernel's removal of the namespace and its veth pair
			// ends before the next turn.
			for deadline := time.Now().Add(2 * time.Second); a.HostVeth != "" && linkExists(a.HostVeth) && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if r < 0 {
				continue
			}
			if gone {
				v.add = append(v.add, t1.Sub(t0))
				v.delGone, v.both = append(v.delGone, t3.Sub(t2)), append(v.both, t1.Sub(t0)+t3.Sub(t2))
				v.cpu = append(v.cpu, c1-c0+c3-c2)
			} else {
				v.del = append(v.del, t3.Sub(t2))
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("load average: %s", load)
	for _, v := range vs {
		if err := v.m.Reclaim(ctx, func(string) bool { return false }); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-11s ADD %6.2f ms  DEL %6.2f ms (namespace alive), %6.2f ms (gone)  ADD+DEL(gone) %6.2f ms, p90 %.2f ms, CPU %.2f ms (medians of %d)",
			v.name, ms(median(v.add)), ms(median(v.del)), ms(median(v.delGone)), ms(median(v.both)), ms(pct(v.both, 0.9)), ms(median(v.cpu)), rounds)
	}
}

func median(d []time.Duration) time.Duration { return pct(d, 0.5) }

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p+0.5)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTime is the CPU time (user and system) of this process and its
// reaped children: the work, which a loaded host stretches less than
// the wall-clock time.
func cpuTime() time.Duration {
	var self, children unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &self)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &children)
	var d time.Duration
	for _, tv := range []unix.Timeval{self.Utime, self.Stime, children.Utime, children.Stime} {
		d += time.Duration(tv.Nano())
	}
	return d
}
