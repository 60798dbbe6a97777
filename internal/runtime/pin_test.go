package runtime

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Pinned namespaces outlive the thread that made them: the host name is
// set in the UTS one, lo is up in the network one, the calling process
// stays in its own, and unpinning removes every pin.
func TestPinNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	hostBefore, _ := os.Hostname()
	if err := PinNamespaces(dir, []string{"net", "ipc", "uts"}, PinOptions{Hostname: "pinned-pod"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnpinNamespaces(dir) })
	for _, k := range []string{"net", "ipc", "uts"} {
		if !Pinned(dir, k) {
			t.Errorf("%s is not pinned", k)
		}
	}
	if h, _ := os.Hostname(); h != hostBefore {
		t.Errorf("this process's host name changed to %q", h)
	}
	out, err := exec.Command("nsenter", "--uts="+dir+"/uts", "--net="+dir+"/net", "sh", "-c", "hostname; ip -o link | awk '{print $2 $3}'").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != "pinned-pod" || !strings.HasPrefix(got[1], "lo:<LOOPBACK,UP") {
		t.Errorf("inside the pinned namespaces: %q, want the host name and only lo, up", out)
	}
	if err := UnpinNamespaces(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("after unpinning: %v", entries)
	}
	if err := PinNamespaces(dir, []string{"pid"}, PinOptions{}); err == nil {
		t.Error("pinning a pid namespace succeeded")
	}
}
