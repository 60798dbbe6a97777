package cri

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/checkpoint"
	"hull/internal/engine"
	"hull/internal/testenv"
)

// Fakes of CRIU (fakeCRIU).
const (
	criuCheckFails = iota // `criu check` fails as Debian's 3.17.1 does here
	criuDumpFails         // every dump fails, writing a dump.log
	criuDumpHangs         // every dump hangs until interrupted
)

// fakeCRIU writes a criu reporting version 4.1.1 that fails as mode says.
func fakeCRIU(t *testing.T, mode int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "criu")
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Version: 4.1.1'; exit 0; fi\n"
	switch mode {
	case criuDumpHangs:
		script += "if [ \"$1\" = check ]; then echo 'Looks good.'; exit 0; fi\nexec sleep 60\n"
	case criuDumpFails:
		script += "if [ \"$1\" = check ]; then echo 'Looks good.'; exit 0; fi\n" +
			"while [ $# -gt 0 ]; do if [ \"$1\" = --images-dir ]; then dir=$2; fi; shift; done\n" +
			"echo 'Error (criu/cr-dump.c:1): fake: the dump failed on purpose' > \"$dir/dump.log\"\n" +
			"touch \"$dir/inventory.img\"\nexit 1\n"
	default:
		script += "echo 'Error (criu/vdso.c:627): vdso: Unexpected rt vDSO area bounds' >&2\nexit 1\n"
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// tarNames are the member names of the tar in b.
func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(strings.NewReader(string(b)))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// counterScript is a script that writes a growing count to its log.
const counterScript = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"

// logLines counts the lines of a container's log file.
func logLines(t *testing.T, pod *runtimeapi.PodSandboxConfig, name string) int {
	b, _ := os.ReadFile(filepath.Join(pod.LogDirectory, name, "0.log"))
	return strings.Count(string(b), "\n")
}

// waitCounting waits until a container's log grows past n lines.
func waitCounting(t *testing.T, pod *runtimeapi.PodSandboxConfig, name string, n int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got := logLines(t, pod, name); got > n {
			return got
		}
	}
	t.Fatalf("container %s's counter is stuck at %d lines", name, logLines(t, pod, name))
	return 0
}

// checkRunning checks every container is running and not paused.
func checkRunning(t *testing.T, c *client, ids ...string) {
	t.Helper()
	for _, id := range ids {
		ec, err := c.eng.Get(ctxT(t), id)
		if err != nil || ec.State != engine.StateRunning {
			t.Errorf("container %s: %v, %v; want it running (not paused)", id, ec.State, err)
		}
	}
}

// TestCheckpointContainer checkpoints a running container that wrote a
// file and deleted one: the archive holds CRIU's images, the spec, the
// record and the rootfs changes, and the container runs on, counting.
func TestCheckpointContainer(t *testing.T) {
	testenv.NeedCRIU(t)
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "ck")
	podID := runSandbox(t, c, pod)
	script := "echo written > /written; rm /etc/group; " + counterScript
	id := createContainer(t, c, f, podID, pod, "count", nil, "sh", "-c", script)
	startContainer(t, c, id)
	n := waitCounting(t, pod, "count", 2)

	loc := filepath.Join(t.TempDir(), "checkpoint-ck_default-count-2026.tar")
	if _, err := c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: loc, Timeout: 60}); err != nil {
		t.Fatalf("CheckpointContainer: %v", err)
	}
	m := testenv.TarMembers(t, loc)
	var names []string
	for name := range m {
		names = append(names, name)
	}
	for _, want := range []string{"checkpoint/", "checkpoint/inventory.img", "checkpoint/dump.log", "spec.dump", "config.dump", "rootfs-diff.tar"} {
		if _, ok := m[want]; !ok {
			t.Errorf("archive lacks %s (has %v)", want, names)
		}
	}
	if !slices.ContainsFunc(names, func(n string) bool {
		return strings.HasPrefix(n, "checkpoint/pages-") && strings.HasSuffix(n, ".img")
	}) {
		t.Errorf("archive has no checkpoint/pages-*.img: %v", names)
	}

	var rec checkpoint.Record
	if err := json.Unmarshal(m["config.dump"], &rec); err != nil {
		t.Fatalf("config.dump: %v\n%s", err, m["config.dump"])
	}
	if rec.Version != 1 || rec.ID != id || rec.Name == "" || rec.Image != f.Busybox.Ref || !strings.HasPrefix(rec.ImageID, "sha256:") ||
		rec.Created.IsZero() || rec.Checkpointed.Before(rec.Created) || rec.TTY || !rec.ExternalNetNS || rec.CRIUVersion == "" {
		t.Errorf("config.dump = %+v", rec)
	}
	if rec.CRI == nil || rec.CRI.Name != "count" || rec.CRI.PodSandboxID != podID || rec.CRI.PodName != "ck" || rec.CRI.PodNamespace != "default" || rec.CRI.PodUID != "uid-ck" {
		t.Errorf("config.dump cri = %+v", rec.CRI)
	}
	if len(rec.Descriptors) != 3 || !strings.HasPrefix(rec.Descriptors[1], "pipe:[") || !strings.HasPrefix(rec.Descriptors[2], "pipe:[") {
		t.Errorf("config.dump descriptors = %q; want fds 1 and 2 the log pipes", rec.Descriptors)
	}
	var cfg engine.Config
	if err := json.Unmarshal(rec.Engine, &cfg); err != nil || cfg.Pod != podID {
		t.Errorf("config.dump engine = %s (%v); want the engine config, in pod %s", rec.Engine, err, podID)
	}

	var sp specs.Spec
	if err := json.Unmarshal(m["spec.dump"], &sp); err != nil {
		t.Fatalf("spec.dump: %v", err)
	}
	if sp.Process == nil || !slices.Equal(sp.Process.Args, []string{"sh", "-c", script}) || sp.Hostname != "ck" {
		t.Errorf("spec.dump is not the container's spec: process %+v, hostname %q", sp.Process, sp.Hostname)
	}

	diff := tarNames(t, m["rootfs-diff.tar"])
	if !slices.Contains(diff, "written") || !slices.Contains(diff, "etc/.wh.group") {
		t.Errorf("rootfs-diff.tar = %v; want written and the whiteout etc/.wh.group", diff)
	}
	if ents, _ := os.ReadDir(filepath.Dir(loc)); len(ents) != 1 {
		t.Errorf("the location's directory holds %d entries; want the archive only", len(ents))
	}

	if st := containerStatus(t, c, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("after the checkpoint the container is %v", st.State)
	}
	checkRunning(t, c, id)
	waitCounting(t, pod, "count", max(n, logLines(t, pod, "count"))+3)

	// Refusals.
	code := func(err error) codes.Code { return status.Code(err) }
	_, err := c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: "nosuch", Location: loc + ".2"})
	if code(err) != codes.NotFound {
		t.Errorf("CheckpointContainer of an unknown container: %v; want NotFound", err)
	}
	_, err = c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: "/nonexistent/dir/x.tar"})
	if code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "/nonexistent/dir") {
		t.Errorf("CheckpointContainer into a missing directory: %v; want InvalidArgument naming it", err)
	}

	t.Setenv("HULL_CRIU", fakeCRIU(t, criuCheckFails))
	_, err = c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: loc + ".3"})
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "criu check") || !strings.Contains(err.Error(), "make criu") {
		t.Errorf("CheckpointContainer with a broken CRIU: %v; want FailedPrecondition saying what to do", err)
	}
	t.Setenv("HULL_CRIU", fakeCRIU(t, criuDumpFails))
	_, err = c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: loc + ".4"})
	if err == nil || !strings.Contains(err.Error(), "failed on purpose") || !strings.Contains(err.Error(), "container k8s_count_ck_default") {
		t.Errorf("CheckpointContainer whose dump fails: %v; want the error naming the container and quoting dump.log", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(loc)); len(ents) != 1 {
		t.Errorf("failed checkpoints left files: %d entries", len(ents))
	}
	checkRunning(t, c, id) // and thawed: it counts on
	waitCounting(t, pod, "count", logLines(t, pod, "count")+3)

	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	_, err = c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: loc + ".5"})
	if code(err) != codes.FailedPrecondition {
		t.Errorf("CheckpointContainer of a stopped container: %v; want FailedPrecondition", err)
	}
}

// TestCheckpointPod checkpoints a pod of two counting containers into a
// directory (pod.dump and an archive each), both running afterwards;
// bad requests fail and leave the directory empty.
func TestCheckpointPod(t *testing.T) {
	testenv.NeedCRIU(t)
	realCRIU := os.Getenv("HULL_CRIU")
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "ckpod")
	pod.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 0}}
	podID := runSandbox(t, c, pod)
	a := createContainer(t, c, f, podID, pod, "a", nil, "sh", "-c", counterScript)
	b := createContainer(t, c, f, podID, pod, "b", nil, "sh", "-c", counterScript)
	stopped := createContainer(t, c, f, podID, pod, "done", nil, "true")
	for _, id := range []string{a, b, stopped} {
		startContainer(t, c, id)
	}
	waitExited(t, c, stopped)
	waitCounting(t, pod, "a", 2)
	waitCounting(t, pod, "b", 2)

	empty := func(dir string) {
		t.Helper()
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s holds %d entries after a failed CheckpointPod; want none", dir, len(ents))
		}
	}
	out := t.TempDir()
	for _, tc := range []struct {
		what string
		req  *runtimeapi.CheckpointPodRequest
		code codes.Code
		says string
	}{
		{"no containers", &runtimeapi.CheckpointPodRequest{}, codes.InvalidArgument, "no container IDs"},
		{"a duplicate", &runtimeapi.CheckpointPodRequest{ContainerIds: []string{a, b, a}}, codes.InvalidArgument, "listed twice"},
		{"a stopped container", &runtimeapi.CheckpointPodRequest{ContainerIds: []string{a, stopped}}, codes.FailedPrecondition, "not running"},
		{"an option", &runtimeapi.CheckpointPodRequest{ContainerIds: []string{a}, Options: map[string]string{"tcp-established": "true"}}, codes.InvalidArgument, `"tcp-established"`},
		{"a relative path", &runtimeapi.CheckpointPodRequest{ContainerIds: []string{a}, OutputPath: "rel"}, codes.InvalidArgument, "absolute"},
		{"a missing directory", &runtimeapi.CheckpointPodRequest{ContainerIds: []string{a}, OutputPath: filepath.Join(out, "nosuch")}, codes.InvalidArgument, "existing directory"},
	} {
		tc.req.PodSandboxId = podID
		if tc.req.OutputPath == "" {
			tc.req.OutputPath = out
		}
		_, err := c.rt.CheckpointPod(ctx, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("CheckpointPod with %s: %v; want %v saying %s", tc.what, err, tc.code, tc.says)
		}
		empty(out)
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	_, err := c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: podID, OutputPath: full, ContainerIds: []string{a}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("CheckpointPod into a non-empty directory: %v; want InvalidArgument", err)
	}
	_, err = c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: "nosuch", OutputPath: out, ContainerIds: []string{a}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("CheckpointPod of an unknown pod: %v; want NotFound", err)
	}

	// Without a working CRIU, before anything is paused; with one whose
	// dumps fail, after: all resumed, nothing left.
	t.Setenv("HULL_CRIU", fakeCRIU(t, criuCheckFails))
	_, err = c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: podID, OutputPath: out, ContainerIds: []string{a, b}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "make criu") {
		t.Errorf("CheckpointPod with a broken CRIU: %v; want FailedPrecondition saying what to do", err)
	}
	empty(out)
	t.Setenv("HULL_CRIU", fakeCRIU(t, criuDumpFails))
	_, err = c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: podID, OutputPath: out, ContainerIds: []string{a, b}})
	if err == nil || !strings.Contains(err.Error(), "failed on purpose") {
		t.Errorf("CheckpointPod whose dump fails: %v; want the dump.log's error", err)
	}
	empty(out)
	checkRunning(t, c, a, b)
	t.Setenv("HULL_CRIU", fakeCRIU(t, criuDumpHangs))
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, err = c.rt.CheckpointPod(short, &runtimeapi.CheckpointPodRequest{PodSandboxId: podID, OutputPath: out, ContainerIds: []string{a, b}})
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("CheckpointPod past its deadline: %v; want DeadlineExceeded", err)
	}
	// The server answers when the dump is interrupted; the client may
	// have given up first.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ea, _ := c.eng.Get(ctx, a); ea != nil && ea.State == engine.StateRunning {
			if eb, _ := c.eng.Get(ctx, b); eb != nil && eb.State == engine.StateRunning {
				break
			}
		}
	}
	empty(out)
	checkRunning(t, c, a, b)
	waitCounting(t, pod, "a", logLines(t, pod, "a")+3)
	t.Setenv("HULL_CRIU", realCRIU)

	evs, err := c.eng.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	since := evs[len(evs)-1].Seq
	if _, err := c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: podID, OutputPath: out, ContainerIds: []string{b, a}}); err != nil {
		t.Fatalf("CheckpointPod: %v", err)
	}
	// One cut: both paused before either is dumped, resumed after both.
	evs, err = c.eng.Events(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, ev := range evs {
		if (ev.ID == a || ev.ID == b) && slices.Contains([]string{"pause", "checkpoint", "unpause"}, ev.Action) {
			seq = append(seq, ev.Action)
		}
	}
	if want := []string{"pause", "pause", "checkpoint", "checkpoint", "unpause", "unpause"}; !slices.Equal(seq, want) {
		t.Errorf("CheckpointPod's events = %v; want %v", seq, want)
	}
	var rec checkpoint.PodRecord
	raw, err := os.ReadFile(filepath.Join(out, checkpoint.PodFile))
	if err == nil {
		err = json.Unmarshal(raw, &rec)
	}
	if err != nil || rec.Version != 1 || !slices.Equal(rec.Containers, []string{"b", "a"}) || rec.Checkpointed.IsZero() {
		t.Errorf("pod.dump = %+v (%v)", rec, err)
	}
	var sc runtimeapi.PodSandboxConfig
	if err := protojson.Unmarshal(rec.SandboxConfig, &sc); err != nil || sc.GetMetadata().GetName() != "ckpod" || sc.GetMetadata().GetUid() != "uid-ckpod" ||
		sc.GetHostname() != "ckpod" || sc.GetLabels()["app"] != "ckpod" || len(sc.GetPortMappings()) != 1 || len(sc.GetDnsConfig().GetServers()) != 1 {
		t.Errorf("pod.dump sandbox config = %v (%v)", &sc, err)
	}
	for _, name := range []string{"a", "b"} {
		m := testenv.TarMembers(t, filepath.Join(out, "containers", name+".tar"))
		if _, ok := m["checkpoint/inventory.img"]; !ok {
			t.Errorf("containers/%s.tar lacks its images", name)
		}
		var r checkpoint.Record
		if err := json.Unmarshal(m["config.dump"], &r); err != nil || r.CRI == nil || r.CRI.Name != name {
			t.Errorf("containers/%s.tar config.dump = %+v (%v)", name, r, err)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 2 {
		t.Errorf("the output directory holds %d entries; want pod.dump and containers", len(ents))
	}
	checkRunning(t, c, a, b)
	waitCounting(t, pod, "a", logLines(t, pod, "a")+3)
	waitCounting(t, pod, "b", logLines(t, pod, "b")+3)
}

// TestCheckpointRefusals: what a restore could not rebuild is refused
// before anything is dumped: a container sharing its pod's PID
// namespace, and one with a terminal.
func TestCheckpointRefusals(t *testing.T) {
	testenv.NeedCRIU(t)
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	shared := sandboxConfig(t, "sharedpid")
	shared.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	sharedID := runSandbox(t, c, shared)
	inShared := createContainer(t, c, f, sharedID, shared, "s", nil, "sleep", "60")
	startContainer(t, c, inShared)

	pod := sandboxConfig(t, "tty")
	podID := runSandbox(t, c, pod)
	tty := createContainer(t, c, f, podID, pod, "t", func(cc *runtimeapi.ContainerConfig) { cc.Tty, cc.Stdin = true, true }, "sleep", "60")
	startContainer(t, c, tty)

	loc := filepath.Join(t.TempDir(), "c.tar")
	for id, says := range map[string]string{inShared: "PID namespace", tty: "terminal"} {
		_, err := c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: loc})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), says) {
			t.Errorf("CheckpointContainer of %s: %v; want FailedPrecondition saying %s", id, err, says)
		}
		checkRunning(t, c, id)
	}
	out := t.TempDir()
	_, err := c.rt.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: sharedID, OutputPath: out, ContainerIds: []string{inShared}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "PID namespace") {
		t.Errorf("CheckpointPod of a shared-PID pod: %v; want FailedPrecondition", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(loc)); len(ents) != 0 {
		t.Errorf("refused checkpoints left %d files", len(ents))
	}
}
