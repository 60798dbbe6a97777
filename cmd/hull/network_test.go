package main

import (
	"encoding/json"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"hull/internal/testenv"
)

// userNetwork is a network a test creates: a fresh bridge name and /24
// (testenv.DefaultNetwork: 10.200-10.239, not routed by the host).
type userNetwork struct {
	name, bridge, subnet string
	prefix               netip.Prefix
}

func newUserNetwork(name string) userNetwork {
	br, sub := testenv.DefaultNetwork()
	return userNetwork{name: name, bridge: br, subnet: sub, prefix: netip.MustParsePrefix(sub)}
}

// addr is the subnet's address number i (1: the gateway).
func (n userNetwork) addr(i byte) string {
	a := n.prefix.Addr().As4()
	a[3] = i
	return netip.AddrFrom4(a).String()
}

// create makes the network through the CLI with args before its name.
func (n userNetwork) create(t *testing.T, root string, args ...string) string {
	t.Helper()
	args = append([]string{"network", "create", "--subnet", n.subnet, "-o", "com.docker.network.bridge.name=" + n.bridge}, args...)
	return strings.TrimSpace(mustHull(t, root, append(args, n.name)...))
}

// networkCleanup removes, when the test ends and before containerEnv's
// cleanup, every container and then the networks of root, and checks
// that no bridge of nets is left on the host.
func networkCleanup(t *testing.T, root string, nets ...userNetwork) {
	t.Cleanup(func() {
		out, _, _ := hull(t, root, "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			hull(t, root, "rm", "-f", "-v", id)
		}
		for _, n := range nets {
			hull(t, root, "network", "rm", "-f", n.name)
			if exec.Command("ip", "link", "show", n.bridge).Run() == nil {
				t.Errorf("bridge %s of network %s is left on the host", n.bridge, n.name)
				exec.Command("ip", "link", "del", n.bridge).Run()
			}
		}
	})
}

// mustFail runs hull, which must fail with stderr containing want.
func mustFail(t *testing.T, root, want string, args ...string) {
	t.Helper()
	out, errOut, err := hull(t, root, args...)
	if err == nil {
		t.Fatalf("hull %s succeeded, want an error with %q\nstdout: %s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(errOut+err.Error(), want) {
		t.Fatalf("hull %s: error %v\nstderr: %s\nwant it to say %q", strings.Join(args, " "), err, errOut, want)
	}
}

// TestNetworkCreateLsInspectRmPrune: docker's output shapes and errors
// of the network commands, without containers running.
func TestNetworkCreateLsInspectRmPrune(t *testing.T) {
	root, fx := containerEnv(t)
	n1, n2, n3 := newUserNetwork("hnet1"), newUserNetwork("hnet2"), newUserNetwork("hnet3")
	networkCleanup(t, root, n1, n2, n3)

	id := n1.create(t, root, "--gateway", n1.addr(1), "--ip-range", n1.addr(128)+"/25", "--label", "tier=web", "--label", "x=1")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("network create printed %q, want a 64-hex ID", id)
	}
	// Bad input.
	mustFail(t, root, "network with name hnet1 already exists", "network", "create", "hnet1")
	mustFail(t, root, "network with name bridge already exists", "network", "create", "bridge")
	mustFail(t, root, "overlaps network hnet1's "+n1.subnet, "network", "create", "--subnet", n1.subnet, "hnet-overlap")
	mustFail(t, root, "hull has only the bridge driver", "network", "create", "--driver", "overlay", "hnet-overlay")
	mustFail(t, root, "not supported", "network", "create", "-o", "com.docker.network.driver.mtu=1400", "hnet-mtu")
	mustFail(t, root, "corresponding subnet", "network", "create", "--gateway", "10.1.2.3", "hnet-gw")

	// ls: docker's table, sorted by name, the pre-defined networks too.
	out := mustHull(t, root, "network", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !regexp.MustCompile(`^NETWORK ID +NAME +DRIVER +SCOPE$`).MatchString(lines[0]) {
		t.Fatalf("network ls header: %q", lines[0])
	}
	var names []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		names = append(names, f[1]+"/"+f[2]+"/"+f[3])
		if len(f[0]) != 12 {
			t.Errorf("network ls: ID %q is not 12 characters", f[0])
		}
	}
	if got, want := strings.Join(names, " "), "bridge/bridge/local hnet1/bridge/local host/host/local none/null/local"; got != want {
		t.Fatalf("network ls rows: %s, want %s\n%s", got, want, out)
	}
	if got := strings.TrimSpace(mustHull(t, root, "network", "ls", "-q", "--filter", "type=custom")); got != id[:12] {
		t.Fatalf("ls -q --filter type=custom: %q, want %s", got, id[:12])
	}
	if got := strings.TrimSpace(mustHull(t, root, "network", "ls", "-q", "--no-trunc", "--filter", "name=hnet")); got != id {
		t.Fatalf("ls -q --no-trunc: %q, want %s", got, id)
	}
	if got := strings.TrimSpace(mustHull(t, root, "network", "ls", "--filter", "type=builtin", "--format", "{{.Name}} {{.Driver}}")); got != "bridge bridge\nhost host\nnone null" {
		t.Fatalf("ls --filter type=builtin: %q", got)
	}
	got := strings.TrimSpace(mustHull(t, root, "network", "ls", "--filter", "label=tier=web", "--filter", "driver=bridge",
		"--format", `{{.Name}} {{.Label "tier"}} {{.Labels}} {{.Internal}} {{.IPv6}} {{.Scope}}`))
	if got != "hnet1 web tier=web,x=1 false false local" {
		t.Fatalf("ls --format fields: %q", got)
	}
	if got := strings.TrimSpace(mustHull(t, root, "network", "ls", "--filter", "id="+id[:10], "--format", "table {{.ID}}\t{{.Name}}")); !regexp.MustCompile(`^NETWORK ID +NAME\n` + id[:12] + ` +hnet1$`).MatchString(got) {
		t.Fatalf("ls --format table: %q", got)
	}
	var row map[string]string
	if err := json.Unmarshal([]byte(mustHull(t, root, "network", "ls", "--filter", "name=^hnet1$", "--format", "json")), &row); err != nil {
		t.Fatal(err)
	}
	if row["Name"] != "hnet1" || row["ID"] != id[:12] || row["Driver"] != "bridge" || row["Labels"] != "tier=web,x=1" || row["CreatedAt"] == "" || row["IPv6"] != "false" {
		t.Fatalf("ls --format json: %v", row)
	}
	mustFail(t, root, "type", "network", "ls", "--filter", "type=other")

	// inspect: docker's document.
	var docs []struct {
		Name, Id, Driver, Scope string
		Internal, EnableIPv6    bool
		IPAM                    struct{ Config []map[string]string }
		Containers              map[string]any
		Options, Labels         map[string]string
	}
	if err := json.Unmarshal([]byte(mustHull(t, root, "network", "inspect", "hnet1", id[:8])), &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Id != id || docs[1].Name != "hnet1" {
		t.Fatalf("network inspect: %+v", docs)
	}
	d := docs[0]
	wantIPAM := map[string]string{"Subnet": n1.subnet, "Gateway": n1.addr(1), "IPRange": n1.addr(128) + "/25"}
	if d.Driver != "bridge" || d.Scope != "local" || d.Internal || len(d.IPAM.Config) != 1 || !mapsEqual(d.IPAM.Config[0], wantIPAM) ||
		d.Labels["tier"] != "web" || d.Options["com.docker.network.bridge.name"] != n1.bridge || d.Containers == nil || len(d.Containers) != 0 {
		t.Fatalf("network inspect hnet1: %+v", d)
	}
	if got := strings.TrimSpace(mustHull(t, root, "network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Internal}}", "none")); got != "none null false" {
		t.Fatalf("network inspect -f: %q", got)
	}
	mustFail(t, root, "network nope not found", "network", "inspect", "nope")

	// IPv6 and no masquerading: in the conflist, as inspect shows.
	n6 := newUserNetwork("hnet6")
	networkCleanup(t, root, n6)
	ula := "fd" + n6.bridge[2:4] + ":" + n6.bridge[4:] + "::/64"
	mustFail(t, root, "add --ipv6", "network", "create", "--subnet", n6.subnet, "--subnet", ula, "hnet6")
	n6.create(t, root, "--ipv6", "--subnet", ula, "-o", "com.docker.network.bridge.enable_ip_masquerade=false")
	got = mustHull(t, root, "network", "inspect", "-f",
		`{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}{{index .Options "com.docker.network.bridge.enable_ip_masquerade"}}`, "hnet6")
	// inspect prints the prefix canonical: fda0:bf8::/64 for fda0:0bf8::/64.
	if want := "true " + n6.subnet + " " + netip.MustParsePrefix(ula).String() + " false\n"; got != want {
		t.Fatalf("inspect hnet6: %q, want %q", got, want)
	}
	if got := mustHull(t, root, "network", "ls", "--filter", "name=hnet6", "--format", "{{.IPv6}}"); got != "true\n" {
		t.Fatalf("ls {{.IPv6}} of hnet6: %q", got)
	}
	mustHull(t, root, "network", "rm", "hnet6")

	// rm: the pre-defined ones are refused, a missing one is an error
	// unless -f; a network a container (not running) is configured on
	// is refused.
	for _, n := range []string{"bridge", "host", "none"} {
		mustFail(t, root, n+" is a pre-defined network and cannot be removed", "network", "rm", n)
	}
	mustFail(t, root, "network nope not found", "network", "rm", "nope")
	mustHull(t, root, "network", "rm", "-f", "nope")
	mustHull(t, root, "create", "--name", "user1", "--network", "hnet1", fx.Busybox.Ref, "true")
	mustFail(t, root, "network hnet1 is used by container user1", "network", "rm", "hnet1")

	// prune: the unused user networks only, filters apply.
	n2.create(t, root, "--internal", "--label", "keep")
	n3.create(t, root)
	if got := mustHull(t, root, "network", "ls", "--filter", "dangling=true", "--format", "{{.Name}}"); got != "hnet2\nhnet3\n" {
		t.Fatalf("ls --filter dangling=true: %q", got)
	}
	if got := mustHull(t, root, "network", "prune", "-f", "--filter", "label!=keep"); got != "Deleted Networks:\nhnet3\n\n" {
		t.Fatalf("network prune: %q", got)
	}
	out, _, err := hullStdin(t, root, strings.NewReader("n\n"), "network", "prune")
	if err != nil || !strings.HasPrefix(out, "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ") || strings.Contains(out, "Deleted") {
		t.Fatalf("network prune, answered no: %q, %v", out, err)
	}
	// system prune removes them too, after the stopped containers.
	out = mustHull(t, root, "system", "prune", "-f")
	if !strings.Contains(out, "Deleted Networks:\nhnet1\nhnet2\n\n") {
		t.Fatalf("system prune did not remove the unused networks:\n%s", out)
	}
	if got := mustHull(t, root, "network", "ls", "--filter", "type=custom", "-q"); got != "" {
		t.Fatalf("networks left after the prunes: %q", got)
	}
	ev := mustHull(t, root, "events", "--since", "1h", "--until", "0s", "--filter", "network=hnet1", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	if ev != "network create hnet1\nnetwork destroy hnet1\n" {
		t.Fatalf("events --filter network=hnet1: %q", ev)
	}
	mustHull(t, root, "system", "check", "--repair")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestNetworkContainersReachEachOther: two containers on a user network
// reach each other by address; an --internal network has no default
// route; connect and disconnect change a running container's interfaces
// at once, and a stopped one's at its next start; rm refuses a network in
// use; the bridges go with the networks.
func TestNetworkContainersReachEachOther(t *testing.T) {
	root, fx := containerEnv(t)
	t.Setenv("HULL_RESTART_BACKOFF_MS", "20")
	n1, n2 := newUserNetwork("hnet-a"), newUserNetwork("hnet-b")
	networkCleanup(t, root, n1, n2)
	n1.create(t, root)
	n2.create(t, root, "--internal")
	bb := fx.Busybox.Ref
	get := func(c string) string {
		return "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 " + c + " 80"
	}

	mustHull(t, root, "run", "-d", "--name", "srv", "--network", "hnet-a", bb,
		"sh", "-c", "mkdir /www && echo hello-from-srv > /www/index.html && exec httpd -f -p 80 -h /www")
	srvIP := strings.TrimSpace(mustHull(t, root, "inspect", "-f", `{{(index .NetworkSettings.Networks "hnet-a").IPAddress}}`, "srv"))
	if !n1.prefix.Contains(netip.MustParseAddr(srvIP)) {
		t.Fatalf("srv's address %q is not in %s", srvIP, n1.subnet)
	}
	var out string
	waitFor(t, func() bool {
		out, _, _ = hull(t, root, "run", "--rm", "--network", "hnet-a", bb, "sh", "-c", get(srvIP))
		return strings.Contains(out, "hello-from-srv")
	})
	if routes := mustHull(t, root, "run", "--rm", "--network", "hnet-a", bb, "ip", "route"); !strings.Contains(routes, "default via "+n1.addr(1)) {
		t.Fatalf("a container on hnet-a has no default route:\n%s", routes)
	}
	if routes := mustHull(t, root, "run", "--rm", "--network", "hnet-b", bb, "ip", "route"); strings.Contains(routes, "default") || !strings.Contains(routes, n2.subnet) {
		t.Fatalf("a container on the internal hnet-b: routes\n%s", routes)
	}

	// network inspect lists the running container.
	srvID := containerID(t, root, "srv")
	var docs []struct{ Containers map[string]map[string]string }
	if err := json.Unmarshal([]byte(mustHull(t, root, "network", "inspect", "hnet-a")), &docs); err != nil {
		t.Fatal(err)
	}
	if c := docs[0].Containers[srvID]; c["Name"] != "srv" || c["IPv4Address"] != srvIP+"/24" || len(c["EndpointID"]) != 64 || c["MacAddress"] == "" {
		t.Fatalf("network inspect hnet-a Containers: %v", docs[0].Containers)
	}
	mustFail(t, root, "error while removing network: network hnet-a has active endpoints", "network", "rm", "hnet-a")

	// connect on a running container: eth1 at once, on the network.
	mustHull(t, root, "run", "-d", "--name", "cli", bb, "sleep", "300")
	mustHull(t, root, "network", "connect", "--alias", "client", "hnet-a", "cli")
	addr := mustHull(t, root, "exec", "cli", "ip", "-4", "addr", "show", "eth1")
	if !strings.Contains(addr, "inet 10.") {
		t.Fatalf("after connect, cli's eth1:\n%s", addr)
	}
	if out := mustHull(t, root, "exec", "cli", "sh", "-c", get(srvIP)); !strings.Contains(out, "hello-from-srv") {
		t.Fatalf("cli cannot reach srv through the connected network:\n%s", out)
	}
	cliIP := strings.TrimSpace(mustHull(t, root, "inspect", "-f", `{{(index .NetworkSettings.Networks "hnet-a").IPAddress}}`, "cli"))
	if !strings.Contains(addr, "inet "+cliIP+"/24") {
		t.Fatalf("inspect says cli has %s on hnet-a; eth1:\n%s", cliIP, addr)
	}
	if got := mustHull(t, root, "network", "inspect", "-f", `{{range .Containers}}{{.Name}} {{end}}`, "hnet-a"); !strings.Contains(got, "cli") {
		t.Fatalf("network inspect does not list cli: %q", got)
	}
	mustFail(t, root, "endpoint with name cli already exists in network hnet-a", "network", "connect", "hnet-a", "cli")
	mustFail(t, root, "aliases are only supported for user-defined networks", "network", "connect", "--alias", "x", "bridge", "srv")

	// disconnect: eth1 goes at once.
	mustHull(t, root, "network", "disconnect", "hnet-a", "cli")
	if _, _, err := hull(t, root, "exec", "cli", "ip", "link", "show", "eth1"); err == nil {
		t.Fatal("cli still has eth1 after disconnect")
	}
	if got := mustHull(t, root, "network", "inspect", "-f", `{{range .Containers}}{{.Name}} {{end}}`, "hnet-a"); strings.Contains(got, "cli") {
		t.Fatalf("network inspect still lists cli: %q", got)
	}
	mustFail(t, root, "container cli is not connected to network hnet-a", "network", "disconnect", "hnet-a", "cli")
	cliID := containerID(t, root, "cli")
	ev := mustHull(t, root, "events", "--since", "1h", "--until", "0s", "--filter", "network=hnet-a", "--filter", "event=connect", "--filter", "event=disconnect",
		"--format", "{{.Action}} {{.Actor.Attributes.container}}")
	if ev != "connect "+cliID+"\ndisconnect "+cliID+"\n" {
		t.Fatalf("network events: %q", ev)
	}

	// --ip; and a connection survives a restart.
	mustHull(t, root, "network", "connect", "--ip", n1.addr(77), "hnet-a", "cli")
	if addr := mustHull(t, root, "exec", "cli", "ip", "-4", "addr", "show", "eth1"); !strings.Contains(addr, "inet "+n1.addr(77)+"/24") {
		t.Fatalf("connect --ip: eth1:\n%s", addr)
	}
	mustHull(t, root, "restart", "-t", "1", "cli")
	if addr := mustHull(t, root, "exec", "cli", "ip", "-4", "addr", "show", "eth1"); !strings.Contains(addr, "inet "+n1.addr(77)+"/24") {
		t.Fatalf("after restart: eth1:\n%s", addr)
	}

	// A restart by the monitor (its restart policy) joins the networks
	// connected meanwhile; the last run's interface was taken down at
	// its exit.
	mustHull(t, root, "run", "-d", "--name", "loop", "--restart", "always", bb,
		"sh", "-c", "ip -4 addr show eth1 >/dev/null 2>&1 && echo has-eth1; sleep 1")
	mustHull(t, root, "network", "connect", "hnet-a", "loop")
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "loop"), "has-eth1") })
	mustHull(t, root, "rm", "-f", "loop")

	// A stopped container: connect and disconnect are recorded for its
	// next start.
	mustHull(t, root, "stop", "-t", "1", "cli")
	mustHull(t, root, "network", "disconnect", "hnet-a", "cli")
	mustHull(t, root, "network", "connect", "hnet-b", "cli")
	mustHull(t, root, "start", "cli")
	links := mustHull(t, root, "exec", "cli", "ip", "-4", "addr")
	if !strings.Contains(links, "eth1") || !strings.Contains(links, "inet "+strings.TrimSuffix(n2.subnet, "0/24")) || strings.Contains(links, strings.TrimSuffix(n1.subnet, "0/24")) {
		t.Fatalf("cli after disconnect hnet-a, connect hnet-b while stopped:\n%s", links)
	}

	// The modes that join no network are refused, as docker's.
	mustHull(t, root, "create", "--name", "nonet", "--network", "none", bb, "true")
	mustFail(t, root, "private (none) mode", "network", "connect", "hnet-a", "nonet")
	mustHull(t, root, "create", "--name", "hostnet", "--network", "host", bb, "true")
	mustFail(t, root, "sharing network namespace with another container or host", "network", "connect", "hnet-a", "hostnet")
	mustFail(t, root, "connected to host network", "network", "connect", "host", "cli")
	mustHull(t, root, "create", "--name", "joined", "--network", "container:srv", bb, "true")
	mustFail(t, root, "sharing network namespace with another container or host", "network", "connect", "hnet-a", "joined")

	// Gone with their containers: the networks and their bridges.
	mustHull(t, root, "rm", "-f", "joined", "srv", "cli", "nonet", "hostnet")
	if out := mustHull(t, root, "network", "rm", "hnet-a", "hnet-b"); out != "hnet-a\nhnet-b\n" {
		t.Fatalf("network rm: %q", out)
	}
	for _, n := range []userNetwork{n1, n2} {
		if exec.Command("ip", "link", "show", n.bridge).Run() == nil {
			t.Errorf("bridge %s of %s left after network rm", n.bridge, n.name)
		}
	}
}

// TestNetworkCommandsReclaimAKilledMonitorsInterfaces: a container whose
// monitor was killed holds no interface on its network: network inspect
// does not list it, and once the container is removed, network rm goes
// ahead, the bridge with it.
func TestNetworkCommandsReclaimAKilledMonitorsInterfaces(t *testing.T) {
	root, fx := containerEnv(t)
	n := newUserNetwork("hnet-k")
	networkCleanup(t, root, n)
	n.create(t, root)
	mustHull(t, root, "run", "-d", "--name", "orphan", "--network", "hnet-k", fx.Busybox.Ref, "sleep", "300")
	if got := mustHull(t, root, "network", "inspect", "-f", "{{len .Containers}}", "hnet-k"); got != "1\n" {
		t.Fatalf("containers on hnet-k while orphan runs: %q", got)
	}
	var doc []struct{ HullLifecycle struct{ MonitorPid int } }
	json.Unmarshal([]byte(mustHull(t, root, "inspect", "orphan")), &doc)
	mon := doc[0].HullLifecycle.MonitorPid
	if mon <= 0 {
		t.Fatalf("inspect: %+v", doc)
	}
	syscall.Kill(mon, syscall.SIGKILL)
	waitFor(t, func() bool { return syscall.Kill(mon, 0) != nil })
	if got := mustHull(t, root, "network", "inspect", "-f", "{{len .Containers}}", "hnet-k"); got != "0\n" {
		t.Fatalf("containers on hnet-k after its monitor was killed: %q", got)
	}
	mustFail(t, root, "network hnet-k is used by container orphan", "network", "rm", "hnet-k")
	mustHull(t, root, "rm", "-f", "orphan")
	mustHull(t, root, "network", "rm", "hnet-k")
	if exec.Command("ip", "link", "show", n.bridge).Run() == nil {
		t.Errorf("bridge %s left after network rm", n.bridge)
	}
}
