package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A pod's containers share its network, IPC and UTS namespaces: one
// reaches the other on localhost, both have the pod's host name; the pod's
// published port reaches its web server from the host. Stopping the pod
// stops its containers and takes its namespaces and networks down;
// starting it brings all back; rm refuses while it has containers, and
// rm -f removes them and leaves nothing behind.
func TestPodSharesNamespacesAndPorts(t *testing.T) {
	root, fx := containerEnv(t)
	id := strings.TrimSpace(mustHull(t, root, "pod", "create", "--name", "p1", "-p", "80"))
	if len(id) != 64 {
		t.Fatalf("pod create printed %q", id)
	}
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", "p1") })
	mustHull(t, root, "run", "-d", "--pod", "p1", "--name", "web", fx.Busybox.Ref, "sh", "-c", httpdScript("the pod"))
	out := mustHull(t, root, "run", "--rm", "--pod", "p1", fx.Busybox.Ref, "sh", "-c",
		`hostname; for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 127.0.0.1 80 | grep hello && break; sleep 0.2; done`)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) < 2 || lines[0] != "p1" || lines[len(lines)-1] != "hello from the pod" {
		t.Errorf("a second container of the pod: %q, want the pod's host name and the first one's page on localhost", out)
	}
	var pods []struct {
		Id, Name, State string
		NumContainers   int
	}
	if err := json.Unmarshal([]byte(mustHull(t, root, "pod", "inspect", "p1")), &pods); err != nil || len(pods) != 1 || pods[0].Id != id || pods[0].State != "Running" || pods[0].NumContainers != 1 {
		t.Errorf("pod inspect: %+v (%v)", pods, err)
	}
	if out := mustHull(t, root, "pod", "ls"); !strings.Contains(out, id[:12]) || !strings.Contains(out, "Running") {
		t.Errorf("pod ls:\n%s", out)
	}
	var ports []struct{ Ports []string }
	json.Unmarshal([]byte(mustHull(t, root, "pod", "inspect", "p1")), &ports)
	if len(ports) != 1 || len(ports[0].Ports) != 1 || !strings.HasSuffix(ports[0].Ports[0], "->80/tcp") {
		t.Fatalf("pod inspect Ports: %+v", ports)
	}
	hostPort := strings.TrimSuffix(strings.TrimPrefix(ports[0].Ports[0], "0.0.0.0:"), "->80/tcp")
	if got := httpGet(t, "127.0.0.1:"+hostPort); got != "hello from the pod\n" {
		t.Errorf("GET the pod's published port 127.0.0.1:%s = %q", hostPort, got)
	}
	if _, _, err := hull(t, root, "run", "--rm", "--pod", "p1", "-p", "81", fx.Busybox.Ref, "true"); exitStatus(err) != 125 || !strings.Contains(err.Error(), "publish ports on the pod") {
		t.Errorf("run --pod -p: %v", err)
	}

	mustHull(t, root, "pod", "stop", "-t", "1", "p1")
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "web")); st != "exited" {
		t.Errorf("after pod stop, web is %s", st)
	}
	nsDir := filepath.Join(root, "run", "pods", id, "ns")
	if entries, _ := os.ReadDir(nsDir); len(entries) > 0 {
		t.Errorf("after pod stop, pinned namespaces remain: %v", entries)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "run", "networks", "attachments", id)); len(entries) > 0 {
		t.Errorf("after pod stop, the pod's network attachments remain: %v", entries)
	}
	mustHull(t, root, "pod", "start", "p1")
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "web")); st != "running" {
		t.Errorf("after pod start, web is %s", st)
	}
	if _, _, err := hull(t, root, "pod", "rm", "p1"); err == nil || !strings.Contains(err.Error(), "containers") {
		t.Errorf("pod rm of a pod with containers: %v", err)
	}
	mustHull(t, root, "pod", "rm", "-f", "p1")
	if out := mustHull(t, root, "ps", "-aq"); out != "" {
		t.Errorf("pod rm -f left containers: %q", out)
	}
	if _, err := os.Stat(filepath.Join(root, "run", "pods", id)); !os.IsNotExist(err) {
		t.Errorf("pod rm -f left its run directory: %v", err)
	}
}

// A pod on a user network holds it: network rm refuses while the pod
// exists, and network inspect lists the running pod.
func TestPodOnAUserNetwork(t *testing.T) {
	root, fx := containerEnv(t)
	n := newUserNetwork("podnet")
	networkCleanup(t, root, n)
	n.create(t, root)
	mustHull(t, root, "pod", "create", "--name", "pn", "--network", "podnet")
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", "pn") })
	out := mustHull(t, root, "run", "--rm", "--pod", "pn", fx.Busybox.Ref, "ip", "-4", "-o", "addr", "show", "eth0")
	if !strings.Contains(out, strings.TrimSuffix(n.subnet, "0/24")) {
		t.Errorf("a pod container's address on podnet (%s): %q", n.subnet, out)
	}
	if got := mustHull(t, root, "network", "inspect", "-f", "{{len .Containers}}", "podnet"); got != "1\n" {
		t.Errorf("network inspect podnet lists %q endpoints, want the pod's", got)
	}
	if _, _, err := hull(t, root, "network", "rm", "podnet"); err == nil || !strings.Contains(err.Error(), "pn") {
		t.Errorf("network rm of a pod's network: %v", err)
	}
	mustHull(t, root, "pod", "rm", "-f", "pn")
	mustHull(t, root, "network", "rm", "podnet")
}

// pod pause/unpause/kill/restart act on the pod's containers; pod prune
// removes the pods that are not running.
func TestPodLifecycleCommands(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pod", "create", "--name", "pl", "--network", "none")
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", "pl") })
	mustHull(t, root, "run", "-d", "--pod", "pl", "--name", "pl1", fx.Busybox.Ref, "sleep", "300")
	state := func() string {
		return strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "pl1"))
	}
	if out := mustHull(t, root, "pod", "top", "pl"); !strings.Contains(out, "CONTAINER") || !strings.Contains(out, "pl1") || !strings.Contains(out, "sleep 300") {
		t.Errorf("pod top:\n%s", out)
	}
	mustHull(t, root, "pod", "pause", "pl")
	if s := state(); s != "paused" {
		t.Errorf("after pod pause: %s", s)
	}
	mustHull(t, root, "pod", "unpause", "pl")
	if s := state(); s != "running" {
		t.Errorf("after pod unpause: %s", s)
	}
	mustHull(t, root, "pod", "kill", "pl")
	waitFor(t, func() bool { return state() == "exited" })
	mustHull(t, root, "pod", "restart", "-t", "1", "pl")
	if s := state(); s != "running" {
		t.Errorf("after pod restart: %s", s)
	}
	if out := mustHull(t, root, "pod", "prune", "-f"); out != "" {
		t.Errorf("pod prune removed a running pod: %q", out)
	}
	mustHull(t, root, "pod", "stop", "-t", "1", "pl")
	id := strings.TrimSpace(mustHull(t, root, "pod", "ls", "-q", "--no-trunc"))
	if out := mustHull(t, root, "pod", "prune", "-f"); strings.TrimSpace(out) != id {
		t.Errorf("pod prune: %q, want %s", out, id)
	}
	if out := mustHull(t, root, "ps", "-aq"); out != "" {
		t.Errorf("pod prune left its containers: %q", out)
	}
}

// --share pid: the pod's containers share one PID namespace, held by
// hull-init --pause as its PID 1; pod stop takes it down.
func TestPodSharesPIDNamespace(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pod", "create", "--name", "pp", "--share", "net,ipc,uts,pid")
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", "pp") })
	mustHull(t, root, "run", "-d", "--pod", "pp", "--name", "sleeper", fx.Busybox.Ref, "sleep", "600")
	out := mustHull(t, root, "run", "--rm", "--pod", "pp", fx.Busybox.Ref, "sh", "-c", "cat /proc/1/comm; cat /proc/[0-9]*/comm | grep -c sleep")
	if out != "hull-init\n1\n" {
		t.Errorf("a second container of a pid-sharing pod sees %q; want the holder as PID 1 and the first one's sleep", out)
	}
	if out := mustHull(t, root, "run", "--rm", fx.Busybox.Ref, "cat", "/proc/1/comm"); out != "cat\n" {
		t.Errorf("a container outside the pod sees %q as its PID 1", out)
	}
	mustHull(t, root, "pod", "stop", "-t", "1", "pp")
	if _, err := os.Stat(filepath.Join(root, "run", "pods")); err == nil {
		matches, _ := filepath.Glob(filepath.Join(root, "run", "pods", "*", "pid-holder"))
		if len(matches) > 0 {
			t.Errorf("after pod stop, the holder's record remains: %v", matches)
		}
	}
	mustHull(t, root, "pod", "start", "pp")
	if st := strings.TrimSpace(mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "sleeper")); st != "running" {
		t.Errorf("after pod start, sleeper is %s", st)
	}
}

// A pod is found by its whole ID, its name or an ID prefix; a name wins
// over IDs it is a prefix of, and a prefix of two IDs is refused.
func TestPodLookup(t *testing.T) {
	root, _ := containerEnv(t)
	id := strings.TrimSpace(mustHull(t, root, "pod", "create", "--name", "lk1", "--network", "none"))
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", id) })
	// A second pod named by the first character of the first's ID (pods'
	// IDs are hex: some other pod shares it or not, so the name is
	// what decides).
	other := strings.TrimSpace(mustHull(t, root, "pod", "create", "--name", id[:1], "--network", "none"))
	t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", other) })
	name := func(ref string) (string, error) {
		out, _, err := hull(t, root, "pod", "inspect", "-f", "{{.Name}}", ref)
		return strings.TrimSpace(out), err
	}
	for ref, want := range map[string]string{id: "lk1", "lk1": "lk1", id[:12]: "lk1", other: id[:1], id[:1]: id[:1]} {
		if got, err := name(ref); err != nil || got != want {
			t.Errorf("pod inspect %s: %q, %v; want %s", ref, got, err, want)
		}
	}
	if got, err := name("nosuchpod"); err == nil || got != "" {
		t.Errorf("pod inspect nosuchpod: %q, no error", got)
	}
	if id[:2] == other[:2] {
		if _, err := name(id[:2]); err == nil {
			t.Errorf("pod inspect %s (a prefix of both pods' IDs): no error", id[:2])
		}
	}
}
