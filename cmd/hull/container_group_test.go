package main

import (
	"regexp"
	"strings"
	"testing"
)

// dockerContainerCommands are docker 28's `docker container` subcommands
// hull has (port and update belong to other work).
var dockerContainerCommands = []string{
	"attach", "commit", "cp", "create", "diff", "exec", "export", "inspect", "kill", "logs", "ls", "pause", "prune",
	"rename", "restart", "rm", "run", "start", "stats", "stop", "top", "unpause", "wait",
}

// TestContainerCommandsBothWays checks that every container command is
// reachable under `hull container` and (but for ls and prune) at the top
// level, and that `hull history` is `hull image history`.
func TestContainerCommandsBothWays(t *testing.T) {
	root, fx := containerEnv(t)
	for _, name := range dockerContainerCommands {
		paths := [][]string{{"container", name}}
		if name != "ls" && name != "prune" {
			paths = append(paths, []string{name})
		}
		for _, p := range paths {
			cmd, _, err := newRootCmd().Find(p)
			if err != nil || cmd.Name() != name {
				t.Errorf("hull %s: not a command (%v)", strings.Join(p, " "), err)
			}
		}
	}
	for _, alias := range []string{"ps", "list"} {
		if cmd, _, err := newRootCmd().Find([]string{"container", alias}); err != nil || cmd.Name() != "ls" {
			t.Errorf("hull container %s is not container ls (%v)", alias, err)
		}
	}

	mustHull(t, root, "container", "run", "--name", "c1", fx.Busybox.Ref, "true")
	if out := mustHull(t, root, "container", "ls", "-a", "--format", "{{.Names}} {{.State}}"); out != "c1 exited\n" {
		t.Errorf("container ls -a: %q", out)
	}
	if out := mustHull(t, root, "container", "inspect", "--format", "{{.Name}}", "c1"); !strings.Contains(out, "c1") {
		t.Errorf("container inspect: %q", out)
	}
	mustHull(t, root, "container", "rm", "c1")

	top := mustHull(t, root, "history", "--no-trunc", fx.Busybox.Ref)
	img := mustHull(t, root, "image", "history", "--no-trunc", fx.Busybox.Ref)
	if top != img || !strings.Contains(top, "CREATED BY") {
		t.Errorf("history differs from image history:\n%s\n---\n%s", top, img)
	}
	if out := mustHull(t, root, "history", "-q", fx.Busybox.Ref); strings.TrimSpace(out) == "" {
		t.Error("history -q printed nothing")
	}
	raw := mustHull(t, root, "history", "--human=false", fx.Busybox.Ref)
	if rows := strings.Split(strings.TrimSpace(raw), "\n"); len(rows) < 2 || !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*\s\d+\s`).MatchString(rows[1]) {
		t.Errorf("history --human=false wants RFC 3339 times and sizes in bytes:\n%s", raw)
	}
}
