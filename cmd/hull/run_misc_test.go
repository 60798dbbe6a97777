package main

import (
	"os"
	"strings"
	"testing"
)

// The remaining docker run flags: those with an effect reach the
// container; the ones hull cannot honour are refused with why (125).
func TestRunMiscFlags(t *testing.T) {
	root, fx := containerEnv(t)
	out := mustHull(t, root, "run", "--rm", "--domainname", "example.org", fx.Busybox.Ref, "cat", "/proc/sys/kernel/domainname")
	if strings.TrimSpace(out) != "example.org" {
		t.Errorf("--domainname: the container's domain name is %q", out)
	}
	mustHull(t, root, "create", "--name", "exp", "--expose", "80", "--expose", "7000-7001/udp", fx.Busybox.Ref)
	if out := mustHull(t, root, "inspect", "-f", "{{json .Config.ExposedPorts}}", "exp"); strings.TrimSpace(out) != `{"7000/udp":{},"7001/udp":{},"80/tcp":{}}` {
		t.Errorf("--expose: ExposedPorts %s", out)
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.swappiness"); err == nil {
		id := strings.TrimSpace(mustHull(t, root, "run", "-d", "--memory-swappiness", "7", fx.Busybox.Ref, "sleep", "100"))
		b, err := os.ReadFile("/sys/fs/cgroup/memory/hull-" + id + "/memory.swappiness")
		if err != nil || strings.TrimSpace(string(b)) != "7" {
			t.Errorf("--memory-swappiness 7: memory.swappiness %q %v", b, err)
		}
	}
	// -q: no "Unable to find image" and no progress.
	other := t.TempDir()
	if _, errOut, err := hull(t, other, "run", "--rm", "-q", fx.Busybox.Ref, "true"); err != nil || strings.Contains(errOut, "Unable to find") {
		t.Errorf("run -q of an image not present: %v, stderr %q", err, errOut)
	}
	mustHull(t, root, "run", "--rm", "--runtime", "hull", "--volume-driver", "local", "--disable-content-trust", fx.Busybox.Ref, "true")
	for _, bad := range [][]string{
		{"--runtime", "runc"}, {"--volume-driver", "nfs"}, {"--storage-opt", "size=1G"}, {"--gpus", "all"},
		{"--use-api-socket"}, {"--disable-content-trust=false"}, {"--memory-swappiness", "101"}, {"--expose", "0"},
		{"--blkio-weight-device", "/dev/sda:100"},
	} {
		b, err := hullProc(root, append(append([]string{"run", "--rm"}, bad...), fx.Busybox.Ref, "true")...).CombinedOutput()
		if exitStatus(err) != 125 || !strings.Contains(string(b), strings.TrimPrefix(strings.SplitN(bad[0], "=", 2)[0], "--")) {
			t.Errorf("run %v: status %d, output %s; want 125 naming the flag", bad, exitStatus(err), b)
		}
	}
}
