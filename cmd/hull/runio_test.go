package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --mount is docker's long form of -v and --tmpfs: binds, volumes and
// tmpfs with their options, and errors that name the bad field.
func TestRunMountFlag(t *testing.T) {
	root, fx := containerEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustHull(t, root, "run", "--rm",
		"--mount", "type=bind,source="+host+",target=/h,readonly,bind-propagation=rslave",
		"--mount", "type=volume,src=mdata,dst=/v",
		"--mount", `type=tmpfs,destination=/t,"tmpfs-size=1m",tmpfs-mode=1770`,
		fx.Busybox.Ref, "sh", "-c",
		"cat /h/f; touch /h/x 2>/dev/null || echo h-ro; echo in-vol > /v/f; grep ' /t ' /proc/mounts; stat -c %a /t")
	for _, want := range []string{"from-host\n", "h-ro\n", "tmpfs /t tmpfs", "size=1024k", "1770\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if out := mustHull(t, root, "run", "--rm", "--mount", "src=mdata,dst=/v,ro", fx.Busybox.Ref, "sh", "-c", "cat /v/f; touch /v/y 2>/dev/null || echo v-ro"); out != "in-vol\nv-ro\n" {
		t.Errorf("named volume through --mount: %q", out)
	}
	for arg, want := range map[string]string{
		"type=bind,src=/no/such/dir,dst=/x":                "bind source path does not exist: /no/such/dir",
		"type=tmpfs,dst=/x,bogus=1":                        "unexpected key 'bogus' in 'bogus=1'",
		"type=tmpfs,dst=/x,nonsense":                       "invalid field 'nonsense' must be a key=value pair",
		"type=volume,dst=/x,tmpfs-size=1m":                 "cannot mix 'tmpfs-*' options with mount type 'volume'",
		"type=tmpfs,src=/x":                                "target is required",
		"type=bind,src=" + host + ",dst=/x,readonly=maybe": "invalid value for readonly: maybe",
		`type=bind,"src=` + host:                           "--mount",
	} {
		cmd := hullProc(root, "run", "--rm", "--mount", arg, fx.Busybox.Ref, "true")
		out, err := cmd.CombinedOutput()
		if code := exitStatus(err); code != 125 || !strings.Contains(string(out), want) {
			t.Errorf("--mount %s: exit %d, output %q; want 125 and %q", arg, code, out, want)
		}
	}
}

// --volumes-from mounts another container's volumes and binds at the
// same destinations, read-only with :ro.
func TestRunVolumesFrom(t *testing.T) {
	root, fx := containerEnv(t)
	host := t.TempDir()
	mustHull(t, root, "create", "--name", "data", "-v", "vfdata:/data", "-v", host+":/bind", "--tmpfs", "/tmp2", fx.Busybox.Ref, "true")
	out := mustHull(t, root, "run", "--rm", "--volumes-from", "data", fx.Busybox.Ref, "sh", "-c",
		"echo shared > /data/f && echo b > /bind/f && cat /data/f /bind/f; grep -c ' /tmp2 ' /proc/mounts; true")
	if out != "shared\nb\n0\n" {
		t.Errorf("--volumes-from data: %q", out)
	}
	out = mustHull(t, root, "run", "--rm", "--volumes-from", "data:ro", fx.Busybox.Ref, "sh", "-c",
		"cat /data/f; touch /data/g 2>/dev/null || echo ro")
	if out != "shared\nro\n" {
		t.Errorf("--volumes-from data:ro: %q", out)
	}
	cmd := hullProc(root, "run", "--rm", "--volumes-from", "nosuch", fx.Busybox.Ref, "true")
	if out, err := cmd.CombinedOutput(); exitStatus(err) != 125 || !strings.Contains(string(out), "nosuch") {
		t.Errorf("--volumes-from nosuch: exit %d, %q", exitStatus(err), out)
	}
	if n := strings.Count(mustHull(t, root, "ps", "-aq"), "\n"); n != 1 {
		t.Errorf("a failed --volumes-from left %d containers, want only data's", n)
	}
}
