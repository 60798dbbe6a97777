package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hull/internal/testenv"
)

// TestCommitMakesAnImageOfTheChanges commits a container that added,
// changed and deleted files and runs the new image: the changes are
// there, the deleted file is gone, -c CMD and ENV apply, and history
// shows the commit. With both snapshotters: overlay's upper dir is
// converted, copy's tree compared with the image's.
func TestCommitMakesAnImageOfTheChanges(t *testing.T) {
	for _, driver := range []string{"overlay", "copy"} {
		t.Run(driver, func(t *testing.T) {
			withSnapshotter(t, driver)
			testCommit(t, driver)
		})
	}
}

// withSnapshotter makes hull use the snapshot driver for the rest of t.
func withSnapshotter(t *testing.T, driver string) {
	conf := filepath.Join(t.TempDir(), "hull.toml")
	if err := os.WriteFile(conf, []byte("[storage]\nsnapshotter = \""+driver+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HULL_CONFIG", conf)
}

func testCommit(t *testing.T, driver string) {
	root, fx := containerEnv(t)
	if d := mustHull(t, root, "info", "-f", "{{.Driver}}"); d != driver+"\n" {
		t.Fatalf("the snapshotter is %q, not %s", d, driver)
	}
	mustHull(t, root, "run", "--name", "src", "-e", "FROM_RUN=1", fx.Busybox.Ref, "sh", "-c",
		"mkdir -p /data/sub && echo added > /data/sub/new && echo changed > /etc/passwd && rm /etc/group && mkdir /tmp/gone && rm -r /tmp/gone")

	out := mustHull(t, root, "commit", "-a", "Ann <ann@example.com>", "-m", "my change",
		"-c", `CMD ["sh", "-c", "cat /data/sub/new /etc/passwd; ls /etc/group 2>&1; echo env=$FROM_RUN$EXTRA"]`,
		"-c", "ENV EXTRA=x", "-c", "LABEL team=blue", "src", "mine/committed:v1")
	id := strings.TrimSpace(out)
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("commit printed %q, want the image ID", out)
	}
	got := mustHull(t, root, "run", "--rm", "mine/committed:v1")
	for _, want := range []string{"added\n", "changed\n", "No such file or directory", "env=1x"} {
		if !strings.Contains(got, want) {
			t.Errorf("the committed image's run lacks %q:\n%s", want, got)
		}
	}
	insp := mustHull(t, root, "image", "inspect", "mine/committed:v1")
	var docs []map[string]any
	if err := json.Unmarshal([]byte(insp), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("image inspect: %v\n%s", err, insp)
	}
	if docs[0]["Id"] != id || docs[0]["Author"] != "Ann <ann@example.com>" {
		t.Errorf("image inspect: Id %v Author %v, want %s and the author", docs[0]["Id"], docs[0]["Author"], id)
	}
	if labels := mustHull(t, root, "image", "inspect", "-f", "{{json .Config.Labels}}", "mine/committed:v1"); !strings.Contains(labels, `"team":"blue"`) {
		t.Errorf("labels: %s", labels)
	}
	hist := mustHull(t, root, "history", "--no-trunc", "mine/committed:v1")
	if lines := strings.Split(strings.TrimSpace(hist), "\n"); len(lines) < 3 || !strings.Contains(lines[1], "my change") || !strings.Contains(lines[1], id) {
		t.Errorf("history does not start with the commit:\n%s", hist)
	}

	// Nothing changed: no layer, an empty history entry; untagged.
	mustHull(t, root, "create", "--name", "same", fx.Busybox.Ref, "true")
	id2 := strings.TrimSpace(mustHull(t, root, "commit", "-c", "ENTRYPOINT /bin/echo", "same"))
	layers := mustHull(t, root, "image", "inspect", "-f", "{{len .RootFS.Layers}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}", id2)
	if strings.TrimSpace(layers) != `1 null ["/bin/sh","-c","/bin/echo"]` {
		t.Errorf("commit without changes: %s", layers)
	}

	for _, c := range []struct{ change, says string }{
		{"RUN echo hi", "RUN is not a valid change command"},
		{"ONBUILD RUN true", "ONBUILD is not supported"},
		{"EXPOSE 70000", "give a port"},
	} {
		if _, _, err := hull(t, root, "commit", "-c", c.change, "src"); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("commit -c %q: %v, want %q", c.change, err, c.says)
		}
	}
	if _, _, err := hull(t, root, "commit", "nosuch"); err == nil || !strings.Contains(err.Error(), "No such container") {
		t.Errorf("commit of a missing container: %v", err)
	}
}

// TestCommitPausesARunningContainer commits a running container: it
// is paused meanwhile (the events say so) and runs on after.
func TestCommitPausesARunningContainer(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "live", fx.Busybox.Ref, "sh", "-c", "echo hi > /hello; sleep 60")
	waitFor(t, func() bool {
		out, _, _ := hull(t, root, "exec", "live", "cat", "/hello")
		return out == "hi\n"
	})
	mustHull(t, root, "commit", "live", "live:snap")
	mustHull(t, root, "commit", "--pause=false", "live", "live:nopause")
	if st := mustHull(t, root, "inspect", "-f", "{{.State.Status}}", "live"); st != "running\n" {
		t.Errorf("after commit the container is %q", st)
	}
	ev := mustHull(t, root, "events", "--since", "1h", "--until", "0s", "--filter", "container=live")
	if strings.Count(ev, " pause ") != 1 || strings.Count(ev, " unpause ") != 1 || strings.Count(ev, " commit ") != 2 {
		t.Errorf("events: want one pause, one unpause and two commits:\n%s", ev)
	}
	for _, tag := range []string{"live:snap", "live:nopause"} {
		if out := mustHull(t, root, "run", "--rm", tag, "cat", "/hello"); out != "hi\n" {
			t.Errorf("%s: /hello is %q", tag, out)
		}
	}
}

// TestCommitOnAnOCIImage keeps an OCI image's manifest consistent: the
// committed layer is an OCI layer too.
func TestCommitOnAnOCIImage(t *testing.T) {
	_, fx := testenv.Setup(t, testenv.FixBusyboxOCI)
	root, _ := containerEnv(t)
	mustHull(t, root, "run", "--name", "oci", fx.BusyboxOCI.Ref, "sh", "-c", "echo oci > /made")
	mustHull(t, root, "commit", "oci", "oci:committed")
	out := mustHull(t, root, "image", "inspect", "-f", "{{.Manifest.MediaType}}{{range .LayerDetails}} {{.MediaType}}{{end}}", "oci:committed")
	want := "application/vnd.oci.image.manifest.v1+json application/vnd.oci.image.layer.v1.tar+gzip application/vnd.oci.image.layer.v1.tar+gzip\n"
	if out != want {
		t.Errorf("media types: %q, want %q", out, want)
	}
	if out := mustHull(t, root, "run", "--rm", "oci:committed", "cat", "/made"); out != "oci\n" {
		t.Errorf("the committed image's /made: %q", out)
	}
}
