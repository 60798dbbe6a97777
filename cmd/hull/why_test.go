package main

import (
	"strings"
	"testing"
)

// The course's central scenario: a service OOM-killed in a restart loop.
// Whatever the loop's state when asked (running again, or in its
// backoff), why names the OOM kills and the limit, and ps shows the kill
// while it restarts.
func TestWhyNamesOOMKillsInARestartLoop(t *testing.T) {
	root, fx := containerEnv(t)
	t.Setenv("HULL_RESTART_BACKOFF_MS", "200")
	mustHull(t, root, "run", "-d", "--name", "svc", "--restart", "on-failure", "-m", "32m", fx.Busybox.Ref,
		"sh", "-c", "echo serving; sleep 1; tail /dev/zero")
	var ps string
	waitFor(t, func() bool {
		ps = mustHull(t, root, "ps", "-a", "--filter", "name=svc", "--format", "{{.Status}}")
		return strings.HasPrefix(ps, "Restarting (")
	})
	if !strings.HasPrefix(ps, "Restarting (137) OOMKilled ") {
		t.Errorf("ps STATUS of an OOM-killed container restarting: %q", ps)
	}
	out := mustHull(t, root, "why", "svc")
	if !strings.Contains(out, "OOM") || !strings.Contains(out, "memory limit 32.0MiB") || !strings.Contains(out, "OOM kills: ") {
		t.Errorf("why does not name the OOM kills:\n%s", out)
	}
}

// Evidence is text: a tty session's escapes are not replayed on the
// reader's terminal, and of a container that ran several times only the
// last run's lines are shown, labelled.
func TestWhyEvidenceIsCleanAndFromTheLastRun(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "-t", "--name", "t1", fx.Busybox.Ref,
		"sh", "-c", `printf '\033[6n\033]0;title\007\033[1mhello\033[0m\r\n'; until [ -e /done ]; do sleep 0.1; done; exit 3`)
	// It exits once its output is logged (a tty's last output can be
	// lost when the process exits at once).
	waitFor(t, func() bool { return strings.Contains(mustHull(t, root, "logs", "t1"), "hello") })
	mustHull(t, root, "exec", "t1", "touch", "/done")
	mustHull(t, root, "wait", "t1")
	out := evidence(mustHull(t, root, "why", "t1"))
	if !strings.Contains(out, "hello") || strings.ContainsAny(out, "\x1b\x07\r") || strings.Contains(out, "title") {
		t.Errorf("why carries terminal controls: %q", out)
	}

	t.Setenv("HULL_RESTART_BACKOFF_MS", "20")
	mustHull(t, root, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", fx.Busybox.Ref, "sh", "-c", "echo attempt; exit 1")
	mustHull(t, root, "wait", "flaky")
	out = evidence(mustHull(t, root, "why", "flaky"))
	if n := strings.Count(out, "attempt"); n != 1 || !strings.Contains(out, "run 3") {
		t.Errorf("why shows %d lines of its 3 runs, want the last run's 1, labelled run 3:\n%s", n, out)
	}
}

// Errors the container's configuration explains are explained by it:
// writes under --read-only, a non-root user refused a root-owned file, a
// missing file, and a stop or kill by hull.
func TestWhyExplainsWhatTheConfigurationCauses(t *testing.T) {
	root, fx := containerEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"ro", []string{"--read-only", fx.Busybox.Ref, "sh", "-c", "echo x > /data.txt"},
			[]string{"--read-only: the root filesystem is read-only", "/data.txt", "--tmpfs"}},
		{"perm", []string{"-u", "1000", fx.Busybox.Ref, "sh", "-c", "echo x >> /etc/passwd"},
			[]string{"permission denied to uid 1000", "/etc/passwd, owned by uid 0"}},
		{"missing", []string{fx.Busybox.Ref, "cat", "/no/such/file"},
			[]string{"/no/such/file does not exist in the container"}},
	} {
		if code := exitStatus(hullProc(root, append([]string{"run", "--name", tc.name}, tc.args...)...).Run()); code != 1 {
			t.Fatalf("%s: exit status %d, want 1", tc.name, code)
		}
		out := mustHull(t, root, "why", tc.name)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("why %s lacks %q:\n%s", tc.name, w, out)
			}
		}
	}

	mustHull(t, root, "run", "-d", "--name", "st", fx.Busybox.Ref, "sleep", "300")
	mustHull(t, root, "stop", "-t", "1", "st")
	if out := mustHull(t, root, "why", "st"); !strings.Contains(out, "stopped by hull stop") || !strings.Contains(out, "SIGKILL") {
		t.Errorf("why of a stopped container:\n%s", out)
	}
	mustHull(t, root, "run", "-d", "--name", "kl", fx.Busybox.Ref, "sleep", "300")
	mustHull(t, root, "kill", "kl")
	mustHull(t, root, "wait", "kl")
	if out := mustHull(t, root, "why", "kl"); !strings.Contains(out, "killed by signal SIGKILL (9), sent by hull kill") {
		t.Errorf("why of a killed container:\n%s", out)
	}
}

// evidence is the Evidence part of why's output (the status quotes the
// command, which may hold what the evidence is checked for).
func evidence(why string) string {
	_, ev, _ := strings.Cut(why, "Evidence:")
	ev, _, _ = strings.Cut(ev, "\nNext:")
	return ev
}
