package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests of this file send traffic only between the host and the
// containers they run, on the test root's own default network (a /24 of
// 10.200-10.239 on a bridge of its own: testenv.NetworkConfig).

// httpdScript serves "hello from NAME" on port 80 with busybox httpd.
func httpdScript(name string) string {
	return "mkdir -p /www && echo hello from " + name + " > /www/index.html && exec httpd -f -p 80 -h /www"
}

// httpGet fetches / from addr (host:port), retrying while the server
// starts.
func httpGet(t *testing.T, addr string) string {
	t.Helper()
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			last = err
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.Contains(string(b), "200 OK") {
			last = fmt.Errorf("%v: %q", err, b)
			continue
		}
		_, body, _ := strings.Cut(string(b), "\r\n\r\n")
		return body
	}
	t.Fatalf("GET http://%s/: %v", addr, last)
	return ""
}

// hostAddress is one of the host's own non-loopback IPv4 addresses, not
// on a bridge of hull's (tests' included); "" if it has none.
func hostAddress() string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 || strings.HasPrefix(i.Name, "ht") || strings.HasPrefix(i.Name, "hull") || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		if _, err := os.Stat(filepath.Join("/sys/class/net", i.Name, "bridge")); err == nil {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return ""
}

// A web server in a container is reached through -p from the host, on
// 127.0.0.1 and on the host's own address, and from another container
// through the published port; ps, port and inspect show the mapping; a
// host port already published fails the next run before it starts, at
// the network stage, and frees nothing of the first.
func TestRunPublishedPortReachable(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "web", "-p", "80", fx.Busybox.Ref, "sh", "-c", httpdScript("web"))
	out := mustHull(t, root, "port", "web", "80")
	hostPort := strings.TrimPrefix(strings.TrimSpace(out), "0.0.0.0:")
	if hostPort == strings.TrimSpace(out) || hostPort == "" {
		t.Fatalf("port web 80: %q, want 0.0.0.0:PORT", out)
	}
	if got := httpGet(t, "127.0.0.1:"+hostPort); got != "hello from web\n" {
		t.Errorf("GET 127.0.0.1:%s = %q", hostPort, got)
	}
	host := hostAddress()
	if host != "" {
		if got := httpGet(t, net.JoinHostPort(host, hostPort)); got != "hello from web\n" {
			t.Errorf("GET %s:%s = %q", host, hostPort, got)
		}
		// From another container, through the published port.
		out = mustHull(t, root, "run", "--rm", fx.Busybox.Ref, "sh", "-c",
			fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 %s %s`, host, hostPort))
		if !strings.Contains(out, "hello from web") {
			t.Errorf("another container through %s:%s: %q", host, hostPort, out)
		}
	} else {
		t.Log("the host has no non-loopback IPv4 address: only 127.0.0.1 is checked")
	}
	if out := mustHull(t, root, "port", "web"); out != "80/tcp -> 0.0.0.0:"+hostPort+"\n" {
		t.Errorf("port web: %q", out)
	}
	if out := mustHull(t, root, "ps"); !strings.Contains(out, "0.0.0.0:"+hostPort+"->80/tcp") {
		t.Errorf("ps PORTS lacks 0.0.0.0:%s->80/tcp:\n%s", hostPort, out)
	}
	var docs []struct {
		NetworkSettings struct {
			IPAddress, Gateway string
			Ports              map[string][]struct{ HostIp, HostPort string }
			Networks           map[string]struct{ IPAddress, NetworkID string }
		}
		HostConfig struct{ NetworkMode string }
	}
	if err := json.Unmarshal([]byte(mustHull(t, root, "inspect", "web")), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	ns := docs[0].NetworkSettings
	if ns.IPAddress == "" || ns.Gateway == "" || ns.Networks["bridge"].IPAddress != ns.IPAddress || ns.Networks["bridge"].NetworkID == "" {
		t.Errorf("inspect NetworkSettings: %+v", ns)
	}
	if b := ns.Ports["80/tcp"]; len(b) != 1 || b[0].HostPort != hostPort || docs[0].HostConfig.NetworkMode != "bridge" {
		t.Errorf("inspect Ports %+v, NetworkMode %q", ns.Ports, docs[0].HostConfig.NetworkMode)
	}
	// The container's own address serves too (from the host: it routes
	// to the bridge).
	if got := httpGet(t, ns.IPAddress+":80"); got != "hello from web\n" {
		t.Errorf("GET %s:80 = %q", ns.IPAddress, got)
	}

	// The same host port again: refused before the process runs.
	_, errOut, err := hull(t, root, "run", "--name", "clash", "-p", hostPort+":80", fx.Busybox.Ref, "true")
	if exitStatus(err) != 125 || !strings.Contains(err.Error()+errOut, hostPort) || !strings.Contains(err.Error()+errOut, "already") {
		t.Errorf("run -p %s:80 again: status %d, %v %s", hostPort, exitStatus(err), err, errOut)
	}
	if out := mustHull(t, root, "why", "clash"); !strings.Contains(out, "network") || !strings.Contains(out, hostPort) {
		t.Errorf("why clash:\n%s", out)
	}
	if got := httpGet(t, "127.0.0.1:"+hostPort); got != "hello from web\n" {
		t.Errorf("after the clash, GET 127.0.0.1:%s = %q", hostPort, got)
	}
	// A restart gets its networking again.
	mustHull(t, root, "restart", "-t", "1", "web")
	out = mustHull(t, root, "port", "web", "80")
	if got := httpGet(t, strings.TrimSpace(out)); got != "hello from web\n" {
		t.Errorf("after restart, GET %s = %q", out, got)
	}
	mustHull(t, root, "rm", "-f", "web")
	// Its port is free again (rm -f ends the monitor, which would have
	// detached it).
	mustHull(t, root, "run", "-d", "--name", "web2", "-p", hostPort+":80", fx.Busybox.Ref, "sh", "-c", httpdScript("web2"))
	if got := httpGet(t, "127.0.0.1:"+hostPort); got != "hello from web2\n" {
		t.Errorf("after rm -f web, GET 127.0.0.1:%s = %q", hostPort, got)
	}
}

// -P publishes the exposed ports on random host ports; --network none
// has only lo; --network container:C shares C's namespace (its lo); the
// modes refuse what they cannot do, and an unknown network leaves no
// container behind.
func TestRunNetworkModes(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "pa", "--expose", "90", "-P", "-p", "127.0.0.1::91/udp", fx.Busybox.Ref, "sleep", "100")
	out := mustHull(t, root, "port", "pa")
	if !strings.Contains(out, "90/tcp -> 0.0.0.0:") || !strings.Contains(out, "91/udp -> 127.0.0.1:") {
		t.Errorf("port pa:\n%s", out)
	}

	if out := mustHull(t, root, "run", "--rm", "--network", "none", fx.Busybox.Ref, "ls", "/sys/class/net"); strings.Fields(out)[0] != "lo" || len(strings.Fields(out)) != 1 {
		t.Errorf("--network none interfaces: %q", out)
	}
	if out := mustHull(t, root, "run", "--rm", fx.Busybox.Ref, "ls", "/sys/class/net"); strings.Join(strings.Fields(out), " ") != "eth0 lo" {
		t.Errorf("default network interfaces: %q", out)
	}

	mustHull(t, root, "run", "-d", "--name", "srv", fx.Busybox.Ref, "sh", "-c", "mkdir -p /www && echo on lo > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www")
	var got string
	for i := 0; i < 50 && !strings.Contains(got, "on lo"); i++ {
		got, _, _ = hull(t, root, "run", "--rm", "--network", "container:srv", fx.Busybox.Ref, "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 127.0.0.1 8080`)
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(got, "on lo") {
		t.Errorf("--network container:srv does not reach srv's 127.0.0.1:8080: %q", got)
	}
	for _, bad := range [][]string{
		{"--network", "container:srv", "-p", "80"},
		{"--network", "container:srv", "-h", "x"},
		{"--network", "none", "-p", "80"},
		{"--network", "none", "--network", "bridge"},
		{"--network", "bridge", "--network-alias", "x"},
		{"-p", "99999"},
		{"--ip", "not-an-ip"},
	} {
		if _, _, err := hull(t, root, append(append([]string{"run", "--rm"}, bad...), fx.Busybox.Ref, "true")...); exitStatus(err) != 125 {
			t.Errorf("run %v: status %d (%v), want 125", bad, exitStatus(err), err)
		}
	}
	before := mustHull(t, root, "ps", "-aq")
	if _, _, err := hull(t, root, "run", "--network", "nosuch", fx.Busybox.Ref, "true"); exitStatus(err) != 125 || !strings.Contains(err.Error(), "network nosuch not found") {
		t.Errorf("--network nosuch: %v", err)
	}
	if after := mustHull(t, root, "ps", "-aq"); after != before {
		t.Errorf("--network nosuch left a container: %q, was %q", after, before)
	}
}
