package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"hull/internal/testenv"
)

// Networking under churn and monitor kills (issue 15): whatever becomes
// of a container that published a port, its monitor killed or not, once
// the next `hull run` has reclaimed, the default network is back where it
// started: no attachment record, no reserved address, no host port
// reservation, no veth on the bridge, no nftables chain of a container.

// TestNetworkChurn runs HULL_NET_CHURN_N (default 300) containers with a
// published port (random host port) on the default network,
// HULL_NET_CHURN_WORKERS (default 4) at a time; every other one has its
// monitor killed with SIGKILL (a detached container's monitor is the
// hull-shim it exec'd, same pid), the rest are stopped and removed. Then
// one more `hull run` reclaims what the killed monitors left, and the
// network must hold nothing of any of them; once all are removed, no
// process, mount or cgroup may be left either. One to two minutes on
// two cores (HULL_NET_CHURN_N makes it shorter).
func TestNetworkChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the network churn takes a minute or two")
	}
	n, workers := envInt("HULL_NET_CHURN_N", 300), envInt("HULL_NET_CHURN_WORKERS", 4)
	h, image := churnHarness(t)
	// The default network exists from the first container on: the
	// baseline is the network made, with nothing attached.
	if _, ok := h.must("run", "--rm", "-p", "80", image, "true"); !ok {
		t.FailNow()
	}
	if left := reservations(h.netLeaks()); len(left) > 0 {
		t.Fatalf("the default network holds this before the churn: %s", strings.Join(left, "; "))
	}

	fails := &failures{t: t}
	fail := fails.add
	var killed atomic.Int32
	step := func(args ...string) (string, bool) {
		r := h.hull(nil, args...)
		if r.code != 0 || r.err != nil {
			fail("hull %s: %s", strings.Join(args, " "), r)
			return "", false
		}
		return r.out, true
	}
	start := time.Now()
	parallel(n, workers, func(i int) {
		name := fmt.Sprintf("netchurn%d", i)
		out, ok := step(append([]string{"run", "-d", "--name", name, "-p", "80", "-e", h.token, image}, stoppable...)...)
		if !ok {
			return
		}
		h.seen(strings.TrimSpace(out))
		if i%2 == 1 {
			if _, ok := step("stop", "-t", "5", name); ok {
				step("rm", name)
			}
			return
		}
		ctr, ok := h.inspect(name)
		if !ok || ctr.HullLifecycle.MonitorPid <= 0 {
			fail("inspect %s: no monitor recorded (%+v)", name, ctr)
			return
		}
		if err := killAndWait(ctr.HullLifecycle.MonitorPid); err != nil {
			fail("kill the monitor of %s: %v", name, err)
			return
		}
		killed.Add(1)
	})
	churned := time.Since(start)

	// One more run: its start reclaims the killed monitors' attachments.
	netLeft := h.reclaimed()
	for _, l := range netLeft {
		t.Errorf("LEAKED after the reclaiming run: %s", l)
	}
	// The killed monitors' containers are found dead (their processes
	// stopped) and removed like the rest.
	h.removeAll()
	left := h.waitLeaks()
	left = append(left, reservations(h.netLeaks())...)
	for _, l := range left {
		t.Errorf("LEAKED once all were removed: %s", l)
	}
	summary := fmt.Sprintf("network churn: %d containers with -p (%d at a time, %d monitors killed) in %s: %d failed commands, %d network leaks after the reclaiming run, %d leaks after removal",
		n, workers, killed.Load(), churned.Round(time.Second), fails.count(), len(netLeft), len(left))
	t.Log(summary)
	fmt.Println(summary)
}

// TestMonitorKillFreesPort kills the monitor of a running container
// that published a port: the next `hull run -p` of that port succeeds
// (its start reclaimed the port), `hull why` of the killed one says its
// monitor died, and when a command finds the monitor dead before any
// start, the port is free at once.
func TestMonitorKillFreesPort(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	image := fx.Busybox.Ref
	var c tally
	h := newHarness(t, &c, image, imageSnapshots(t, image))
	h.must("pull", "-q", image)
	port := freePort(t)
	publish := fmt.Sprintf("%d:80", port)

	killMonitor := func(name string) container {
		t.Helper()
		if _, ok := h.must(append([]string{"run", "-d", "--name", name, "-p", publish, "-e", h.token, image}, sleeper...)...); !ok {
			t.FailNow()
		}
		ctr, ok := h.inspect(name)
		if !ok || ctr.HullLifecycle.MonitorPid <= 0 {
			t.Fatalf("inspect %s: no monitor recorded", name)
		}
		if err := killAndWait(ctr.HullLifecycle.MonitorPid); err != nil {
			t.Fatal(err)
		}
		return ctr
	}

	// The next run takes the port over.
	killMonitor("killed")
	if _, ok := h.must(append([]string{"run", "-d", "--name", "next", "-p", publish, "-e", h.token, image}, sleeper...)...); !ok {
		t.FailNow()
	}
	if out, _ := h.must("port", "next", "80"); !strings.Contains(out, fmt.Sprintf(":%d", port)) {
		t.Errorf("hull port next 80: %q, want host port %d", out, port)
	}
	why, _ := h.must("why", "killed")
	if !strings.Contains(why, "monitor") || !strings.Contains(why, "died") {
		t.Errorf("hull why killed does not say its monitor died:\n%s", why)
	}
	if st, _ := h.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "killed"); strings.TrimSpace(st) != "exited 137" {
		t.Errorf("the killed monitor's container: %q, want exited 137 (stopped when found unsupervised)", st)
	}
	h.must("rm", "-f", "next", "killed")

	// Found dead by an inspect: the port is free before any start.
	ctr := killMonitor("again")
	h.must("inspect", "again")
	if left := reservations(h.netLeaks()); len(left) > 0 {
		t.Errorf("after inspect found the monitor of %s dead: %s", ctr.Name, strings.Join(left, "; "))
	}
	h.must("rm", "-f", "again")
	h.checkClean("monitor kills")
	if left := h.reclaimed(); len(left) > 0 {
		t.Errorf("LEAKED: %s", strings.Join(left, "; "))
	}
}

// TestRemoveForceFreesNetwork: rm -f of a running container with a
// published port ends its monitor before it could detach; the removal
// frees the port, the address and the rules itself, with no start after
// it to reclaim them.
func TestRemoveForceFreesNetwork(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusybox)
	image := fx.Busybox.Ref
	var c tally
	h := newHarness(t, &c, image, imageSnapshots(t, image))
	h.must("pull", "-q", image)
	out, ok := h.must(append([]string{"run", "-d", "-p", "80", "-e", h.token, image}, sleeper...)...)
	if !ok {
		t.FailNow()
	}
	id := strings.TrimSpace(out)
	h.seen(id)
	h.must("rm", "-f", id)
	if left := reservations(h.netLeaks()); len(left) > 0 {
		t.Errorf("after rm -f: %s", strings.Join(left, "; "))
	}
	h.checkClean("rm -f")
	if left := h.reclaimed(); len(left) > 0 {
		t.Errorf("LEAKED: %s", strings.Join(left, "; "))
	}
}

// reclaimed runs one more container, whose start reclaims what the
// others left, and returns what the network holds of anything but that
// container (which is left running), once the veths of namespaces that
// are gone have gone with them (leakTimeout at the most). A detach that
// finds the veth still there, the kernel deleting it with the namespace,
// leaves a released record, which such a start finishes.
func (h *harness) reclaimed() []string {
	out, ok := h.must(append([]string{"run", "-d", "-p", "80", "-e", h.token, h.image}, sleeper...)...)
	if !ok {
		return []string{"the reclaiming run failed"}
	}
	id := strings.TrimSpace(out)
	h.seen(id)
	deadline := time.Now().Add(leakTimeout)
	for {
		left := h.netLeaks(id)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reservations keeps of netLeaks's findings what must be free at once
// when a container is detached: addresses, host ports and rules (not a
// released record, see reclaimed).
func reservations(found []string) []string {
	var out []string
	for _, f := range found {
		if strings.HasPrefix(f, "reserved address") || strings.HasPrefix(f, "port reservation") || strings.HasPrefix(f, "nftables chain") {
			out = append(out, f)
		}
	}
	return out
}

// killAndWait kills pid with SIGKILL and waits until it has exited (a
// zombie counts: its reaper may take its time).
func killAndWait(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			return nil
		}
	}
	return fmt.Errorf("process %d still runs 10s after SIGKILL", pid)
}

// freePort is a TCP port nothing on the host listens on now, outside the
// ephemeral range that random host ports come from.
func freePort(t *testing.T) uint16 {
	t.Helper()
	for p := 20000 + os.Getpid()%5000; ; p++ {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = syscall.Bind(fd, &syscall.SockaddrInet4{Port: p})
		syscall.Close(fd)
		if err == nil {
			return uint16(p)
		}
	}
}

var bridgeLine = regexp.MustCompile(`(?m)^default_bridge\s*=\s*"([^"]+)"`)

// netLeaks lists what the scenario's default network still holds for
// containers: attachment records, reserved addresses (the host-local
// store's files named by an address), host port reservations, veths on
// its bridge, and port chains (ctr-ID-NETWORK) of the scenario's
// containers in hull's nftables tables, which all hulls on the host share;
// except those of the containers named.
func (h *harness) netLeaks(except ...string) []string {
	var found []string
	dir := filepath.Join(h.runRoot, "networks")
	skip := func(text string) bool {
		return slices.ContainsFunc(except, func(id string) bool { return strings.Contains(text, id) })
	}
	records, _ := filepath.Glob(filepath.Join(dir, "attachments", "*", "*"))
	for _, r := range records {
		if !skip(r) {
			found = append(found, "attachment record "+r)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "ipam", "bridge"))
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			owner, _ := os.ReadFile(filepath.Join(dir, "ipam", "bridge", e.Name()))
			if !skip(string(owner)) {
				found = append(found, fmt.Sprintf("reserved address %s (%q)", e.Name(), owner))
			}
		}
	}
	ports, _ := os.ReadDir(filepath.Join(dir, "ports"))
	for _, p := range ports {
		owner, _ := os.ReadFile(filepath.Join(dir, "ports", p.Name()))
		if !skip(string(owner)) {
			found = append(found, fmt.Sprintf("port reservation %s (%q)", p.Name(), owner))
		}
	}

	conf, _ := os.ReadFile(h.config)
	m := bridgeLine.FindSubmatch(conf)
	if m == nil {
		return append(found, "no default_bridge in "+h.config)
	}
	if br, err := netlink.LinkByName(string(m[1])); err == nil {
		links, err := netlink.LinkList()
		if err != nil {
			found = append(found, "list links: "+err.Error())
		}
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index && !slices.ContainsFunc(except, func(id string) bool { return l.Attrs().Name == hostVeth(id) }) {
				found = append(found, fmt.Sprintf("%s %s on bridge %s", l.Type(), l.Attrs().Name, m[1]))
			}
		}
	}

	h.mu.Lock()
	ids := map[string]bool{}
	for id := range h.ids {
		ids[id] = !skip(id)
	}
	h.mu.Unlock()
	conn, err := nftables.New()
	if err != nil {
		return append(found, "nftables: "+err.Error())
	}
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		chains, err := conn.ListChainsOfTableFamily(fam)
		if err != nil {
			found = append(found, "nftables: "+err.Error())
			continue
		}
		for _, ch := range chains {
			rest, ok := strings.CutPrefix(ch.Name, "ctr-")
			if id, _, _ := strings.Cut(rest, "-"); ch.Table.Name == "hull" && ok && ids[id] {
				found = append(found, "nftables chain "+strconv.Quote(ch.Name)+" in table hull")
			}
		}
	}
	return found
}

// hostVeth is the host end of container id's eth0 on the default network
// (internal/network's vethName).
func hostVeth(id string) string {
	sum := sha256.Sum256([]byte(id + "/bridge/eth0"))
	return "veth" + hex.EncodeToString(sum[:4])
}
