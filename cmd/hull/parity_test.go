package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Docker parity of the CLI (issue 13): what docker does, checked through
// hull's command line.

// Item 10: inspect templates see docker's JSON field names (docker falls
// back to the JSON document when the Go value lacks the field), and the
// Go names keep working.
func TestParityInspectDockerFieldNames(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	for _, f := range []string{"{{.Id}}", "{{.ID}}"} {
		if out := mustHull(t, root, "image", "inspect", "-f", f, fx.Busybox.Ref); out != fx.Busybox.ConfigDigest+"\n" {
			t.Errorf("image inspect -f %s: %q, want %s", f, out, fx.Busybox.ConfigDigest)
		}
	}
	for _, field := range []string{"Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
		"ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os", "Size", "VirtualSize",
		"GraphDriver", "RootFS", "Metadata"} {
		if _, _, err := hull(t, root, "image", "inspect", "-f", "{{json ."+field+"}}", fx.Busybox.Ref); err != nil {
			t.Errorf("image inspect -f '{{json .%s}}': %v", field, err)
		}
	}
	if out := mustHull(t, root, "image", "inspect", "-f", "{{.Size}} {{.RootFS.Type}}", fx.Busybox.Ref); strings.Contains(out, "e+") || !strings.HasSuffix(out, " layers\n") {
		t.Errorf("image inspect -f '{{.Size}} {{.RootFS.Type}}': %q", out)
	}
	mustHull(t, root, "create", "--name", "insp", fx.Busybox.Ref, "true")
	id := containerID(t, root, "insp")
	for _, args := range [][]string{{"inspect"}, {"container", "inspect"}} {
		for _, f := range []string{"{{.Id}}", "{{.ID}}"} {
			if out := mustHull(t, root, append(args, "-f", f, "insp")...); out != id+"\n" {
				t.Errorf("%v -f %s: %q, want %s", args, f, out, id)
			}
		}
	}
}

// Items 11 and 20: `images REPO` lists that repository only, and `images
// REPO:TAG` that tag only, though other names share the image ID.
func TestParityImagesFilterByRepository(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	mustHull(t, root, "tag", fx.Busybox.Ref, "other/repo:x")
	mustHull(t, root, "tag", fx.Busybox.Ref, fx.Busybox.Repo+":second")
	format := "{{.Repository}}:{{.Tag}}"
	for arg, want := range map[string]string{
		"other/repo":                "other/repo:x\n",
		"other/repo:x":              "other/repo:x\n",
		fx.Busybox.Ref:              fx.Busybox.Ref + "\n",
		fx.Busybox.Repo + ":second": fx.Busybox.Repo + ":second\n",
	} {
		if out := mustHull(t, root, "images", "--format", format, arg); out != want {
			t.Errorf("images %s: %q, want %q", arg, out, want)
		}
	}
	if out := mustHull(t, root, "images", "--format", format, fx.Busybox.Repo); strings.Count(out, "\n") != 2 || strings.Contains(out, "other/repo") {
		t.Errorf("images %s: %q, want its two tags", fx.Busybox.Repo, out)
	}
}

// Items 14 and 25: docker's exit statuses for usage errors. 125 for a
// flag docker cannot parse (every command), 1 for a word naming no
// command, a wrong argument count, and exec into a container that is not
// running.
func TestParityExitStatuses(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "create", "--name", "stopped", fx.Busybox.Ref, "true")
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"run", "--nosuchflag", fx.Busybox.Ref, "true"}, 125, "unknown flag: --nosuchflag"},
		{[]string{"create", "--nosuchflag", fx.Busybox.Ref, "true"}, 125, "unknown flag"},
		{[]string{"exec", "--nosuchflag", "stopped", "true"}, 125, "unknown flag"},
		{[]string{"ps", "--nosuchflag"}, 125, "unknown flag"},
		{[]string{"--nosuchflag", "ps"}, 125, "unknown flag"},
		{[]string{"exec", "stopped", "true"}, 1, "is not running"},
		{[]string{"exec", "nosuch", "true"}, 1, "nosuch"},
		{[]string{"nosuch"}, 1, `unknown command "nosuch"`},
		{[]string{"container", "exists", "x"}, 1, `unknown command "exists" for "hull container"`},
		{[]string{"image", "nosuch"}, 1, `unknown command "nosuch" for "hull image"`},
		{[]string{"system", "nosuch"}, 1, `unknown command "nosuch"`},
		{[]string{"rm"}, 1, "requires at least 1 argument"},
		{[]string{"container"}, 0, "Usage:"},
	} {
		out, err := hullProc(root, c.args...).CombinedOutput()
		if code := exitStatus(err); code != c.code || !strings.Contains(string(out), c.says) {
			t.Errorf("hull %s: exit %d, want %d saying %q:\n%s", strings.Join(c.args, " "), code, c.code, c.says, out)
		}
	}
}

// Item 15: a container running as root draws no warning (docker and
// podman print nothing).
func TestParityNoRootWarning(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "pull", "-q", fx.Busybox.Ref)
	var stdout, stderr bytes.Buffer
	cmd := hullProc(root, "run", "--rm", fx.Busybox.Ref, "echo", "hi")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if stdout.String() != "hi\n" || stderr.String() != "" {
		t.Errorf("run --rm as root: stdout %q, stderr %q; want hi and nothing", stdout.String(), stderr.String())
	}
}

// Item 17: the help says what hull has, not what it plans.
func TestParityHelpSaysWhatExists(t *testing.T) {
	out := mustHull(t, t.TempDir(), "--help")
	first, _, _ := strings.Cut(out, "\n")
	for _, absent := range []string{"pods", "CRI"} {
		if strings.Contains(first, absent) {
			t.Errorf("hull --help promises %s: %q", absent, first)
		}
	}
	for _, present := range []string{"images", "containers", "volumes", "OCI runtime"} {
		if !strings.Contains(first, present) {
			t.Errorf("hull --help does not mention %s: %q", present, first)
		}
	}
}

// Item 19: stopping a running --rm container succeeds and prints its
// name, though its monitor removes it meanwhile.
func TestParityStopRmContainer(t *testing.T) {
	root, fx := containerEnv(t)
	for _, timeout := range []string{"10", "0"} {
		mustHull(t, root, "run", "-d", "--rm", "--name", "gone", fx.Busybox.Ref, "sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait")
		var stdout, stderr bytes.Buffer
		cmd := hullProc(root, "stop", "-t", timeout, "gone")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stdout.String() != "gone\n" {
			t.Errorf("stop -t %s of a --rm container: %v, stdout %q, stderr %q", timeout, err, stdout.String(), stderr.String())
		}
		waitFor(t, func() bool {
			_, _, err := hull(t, root, "inspect", "gone")
			return err != nil
		})
	}
}

// docker's --format fields of ps, images, volume ls and history all
// evaluate (a field hull lacked failed the whole command).
func TestParityFormatFields(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "f", "-l", "k=v", "-v", "vol1:/data", fx.Busybox.Ref, "sleep", "100")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "--format", `{{.Labels}}|{{.Label "k"}}|{{.Mounts}}|{{.Networks}}|{{.LocalVolumes}}|{{.Names}}`}, "k=v|v|vol1|bridge|1|f"},
		{[]string{"images", "--format", "{{.Containers}}|{{.SharedSize}}|{{.UniqueSize}}|{{.VirtualSize}}"}, "N/A|N/A|N/A|"},
		{[]string{"volume", "ls", "--format", "{{.Name}}|{{.Links}}|{{.Size}}"}, "vol1|N/A|N/A"},
		{[]string{"history", "--format", "{{.ID}}|{{.CreatedSince}}|{{.Size}}", fx.Busybox.Ref}, "<missing>|"},
	} {
		out, errOut, err := hull(t, root, tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %v %s\n%s\nwant it to contain %q", tc.args, err, errOut, out, tc.want)
		}
	}
}

// Every field of docker 28's container inspect document that scripts
// read with -f exists in hull's (a missing one prints "<no value>").
func TestParityInspectFields(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "insp", "-p", "80", fx.Busybox.Ref, "sleep", "300")
	fields := []string{
		".Id", ".Created", ".Path", ".Args", ".State", ".Image", ".ResolvConfPath", ".HostnamePath", ".HostsPath",
		".LogPath", ".Name", ".RestartCount", ".Driver", ".Platform", ".MountLabel", ".ProcessLabel",
		".AppArmorProfile", ".ExecIDs", ".HostConfig", ".GraphDriver", ".GraphDriver.Name", ".GraphDriver.Data",
		".Mounts", ".Config", ".NetworkSettings",
		".State.Status", ".State.Running", ".State.Paused", ".State.Restarting", ".State.OOMKilled", ".State.Dead",
		".State.Pid", ".State.ExitCode", ".State.Error", ".State.StartedAt", ".State.FinishedAt",
		".Config.Hostname", ".Config.Domainname", ".Config.User", ".Config.AttachStdin", ".Config.AttachStdout",
		".Config.AttachStderr", ".Config.Tty", ".Config.OpenStdin", ".Config.StdinOnce", ".Config.Env", ".Config.Cmd",
		".Config.Image", ".Config.Volumes", ".Config.WorkingDir", ".Config.Entrypoint", ".Config.OnBuild", ".Config.Labels",
		".HostConfig.NetworkMode", ".HostConfig.PortBindings", ".HostConfig.RestartPolicy", ".HostConfig.AutoRemove",
		".HostConfig.Privileged", ".HostConfig.ReadonlyRootfs", ".HostConfig.CapAdd", ".HostConfig.CapDrop",
		".HostConfig.Dns", ".HostConfig.DnsOptions", ".HostConfig.DnsSearch", ".HostConfig.ExtraHosts",
		".HostConfig.IpcMode", ".HostConfig.PidMode", ".HostConfig.UTSMode", ".HostConfig.ShmSize", ".HostConfig.Memory",
		".HostConfig.NanoCpus", ".HostConfig.CpuShares", ".HostConfig.PidsLimit", ".HostConfig.LogConfig",
		".NetworkSettings.IPAddress", ".NetworkSettings.Gateway", ".NetworkSettings.MacAddress", ".NetworkSettings.Ports",
		".NetworkSettings.Networks", ".NetworkSettings.SandboxKey", ".NetworkSettings.IPPrefixLen",
	}
	// Each key must be in the document (a template prints a key that is
	// there with a null value and one that is missing alike).
	var docs []map[string]any
	if err := json.Unmarshal([]byte(mustHull(t, root, "inspect", "insp")), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	for _, f := range fields {
		var cur any = docs[0]
		for _, key := range strings.Split(strings.TrimPrefix(f, "."), ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				t.Errorf("inspect %s: %s is not an object", f, key)
				break
			}
			if cur, ok = m[key]; !ok {
				t.Errorf("inspect has no %s (no key %q)", f, key)
				break
			}
		}
	}
	if out := mustHull(t, root, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "insp"); !strings.Contains(out, ".") {
		t.Errorf("inspect -f NetworkSettings.Networks.bridge.IPAddress: %q", out)
	}
}
