package main

import (
	"testing"
)

// TestDiffListsChangesLikeDocker checks docker's A/C/D lines and order
// with both snapshotters: additions with their new directories, a
// deletion, a change, the parents of additions and deletions, a
// directory deleted and made again (opaque in overlay: what it held is
// deleted), and nothing for the files hull mounts over (/etc/hosts).
// The opaque directory also survives commit: the new image's /data holds
// only what the container left.
func TestDiffListsChangesLikeDocker(t *testing.T) {
	for _, driver := range []string{"overlay", "copy"} {
		t.Run(driver, func(t *testing.T) {
			withSnapshotter(t, driver)
			root, fx := containerEnv(t)
			mustHull(t, root, "run", "--name", "quiet", fx.Busybox.Ref, "true")
			if out := mustHull(t, root, "diff", "quiet"); out != "" {
				t.Errorf("diff of a container that changed nothing:\n%s", out)
			}
			mustHull(t, root, "run", "--name", "c1", fx.Busybox.Ref, "sh", "-c",
				"mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && echo x >> /etc/passwd && rm /etc/group")
			want := "A /data\nA /data/a\nA /data/sub\nA /data/sub/b\nC /etc\nD /etc/group\nC /etc/passwd\n"
			if out := mustHull(t, root, "container", "diff", "c1"); out != want {
				t.Errorf("diff:\n%s\nwant:\n%s", out, want)
			}
			mustHull(t, root, "commit", "c1", "stage:1")
			mustHull(t, root, "run", "--name", "c2", "stage:1", "sh", "-c", "rm -rf /data && mkdir /data && echo c > /data/c")
			want = "C /data\nD /data/a\nA /data/c\nD /data/sub\n"
			if out := mustHull(t, root, "diff", "c2"); out != want {
				t.Errorf("diff of a directory made again:\n%s\nwant:\n%s", out, want)
			}
			mustHull(t, root, "commit", "c2", "stage:2")
			if out := mustHull(t, root, "run", "--rm", "stage:2", "sh", "-c", "ls /data; cat /data/c"); out != "c\nc\n" {
				t.Errorf("the committed image's /data: %q", out)
			}
			if _, _, err := hull(t, root, "diff", "nosuch"); err == nil {
				t.Error("diff of a missing container succeeded")
			}
		})
	}
}
