package main

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestKubeLifecycleHooks: postStart runs after the start (exec), a
// failing postStart kills the container and restarts it
// (FailedPostStartHook), and preStop runs before the stop signal when
// the pod is deleted (httpGet from the host, to a server of the test's
// on loopback, while the container still runs).
func TestKubeLifecycleHooks(t *testing.T) {
	root, fx := kubeEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	preStop := make(chan string, 10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The container still runs while its preStop hook does.
		out, _, err := kube(t, root, "exec", "hooks", "--", "cat", "/tmp/poststart")
		preStop <- fmt.Sprintf("%s %s %v", r.URL.Path, strings.TrimSpace(out), err)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: hooks
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "echo started > /tmp/poststart"]
      preStop:
        httpGet:
          host: 127.0.0.1
          port: %[2]d
          path: /prestop
---
apiVersion: v1
kind: Pod
metadata:
  name: badhook
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "echo hook-broke; exit 7"]
`, fx.Busybox.Ref, port))

	waitPod(t, root, "hooks", "running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	if out := mustKube(t, root, "exec", "hooks", "--", "cat", "/tmp/poststart"); out != "started\n" {
		t.Errorf("postStart's file: %q", out)
	}

	waitPod(t, root, "badhook", "restarted after its postStart hook failed", func(p podJSON) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	out := mustKube(t, root, "describe", "pod", "badhook")
	for _, want := range []string{
		`Warning\s+FailedPostStartHook\s+.*Exec lifecycle hook \(\[sh -c echo hook-broke; exit 7\]\) for Container "c" in Pod "badhook_default\([0-9a-f-]+\)" failed - error: command 'sh -c echo hook-broke; exit 7' exited with 7: , message: "hook-broke\\n"`,
		`Normal\s+Killing\s+.*FailedPostStartHook`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe badhook lacks %s:\n%s", want, out)
		}
	}
	waitPod(t, root, "badhook", "waiting after its failed hook", func(p podJSON) bool {
		w := p.waiting()
		return w == "PostStartHookError" || w == "CrashLoopBackOff"
	})

	mustKube(t, root, "delete", "pod", "hooks")
	select {
	case got := <-preStop:
		if got != "/prestop started <nil>" {
			t.Errorf("preStop hook: %q; want a GET of /prestop while the container ran", got)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("no preStop request")
	}
}
