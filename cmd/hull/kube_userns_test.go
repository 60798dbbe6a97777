package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostUsers: false gives each pod a user namespace of its own block of
// 65536 host ids (never the host's first, never another live pod's):
// root inside, an unprivileged id outside, its volumes writable.
func TestKubeHostUsersFalse(t *testing.T) {
	root, fx := kubeEnv(t)
	// The root's directories open to the mapped root, as usernsEnv.
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o711); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(root), root, filepath.Join(root, "run")} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  hostUsers: false
  terminationGracePeriodSeconds: 1
  volumes:
  - name: scratch
    emptyDir: {}
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", "cat /proc/self/uid_map; id -u; touch /scratch/f && echo wrote; sleep 600"]
    volumeMounts:
    - name: scratch
      mountPath: /scratch
`, name, fx.Busybox.Ref)
	}
	applyYAML(t, root, pod("ns1")+"---\n"+pod("ns2"))
	maps := map[string]string{}
	for _, name := range []string{"ns1", "ns2"} {
		waitPod(t, root, name, "Running", func(p podJSON) bool { return p.Status.Phase == "Running" })
		var out string
		waitPod(t, root, name, "logging", func(p podJSON) bool {
			out = mustKube(t, root, "logs", name)
			return strings.Count(out, "\n") >= 3
		})
		f := strings.Fields(out)
		if len(f) < 5 || f[0] != "0" || f[1] == "0" || f[2] != "65536" || f[3] != "0" || f[4] != "wrote" {
			t.Errorf("pod %s: uid_map, id and a write to its emptyDir: %q; want 0 BLOCK 65536, uid 0, wrote", name, out)
			continue
		}
		maps[name] = f[1]
	}
	if maps["ns1"] != "" && maps["ns1"] == maps["ns2"] {
		t.Errorf("two pods share host ids %s", maps["ns1"])
	}
	if _, errOut, err := kubeStdin(t, root, strings.Replace(pod("hostnet"), "  hostUsers: false\n", "  hostUsers: false\n  hostNetwork: true\n", 1), "apply", "-f", "-"); err == nil || !strings.Contains(errOut, "spec.hostNetwork: Forbidden: when `pod.Spec.HostUsers` is false") {
		t.Errorf("hostUsers false with hostNetwork: %v %s", err, errOut)
	}
}
