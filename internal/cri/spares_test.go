package cri

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
	"hull/internal/hugeheap"
)

// idleSpares is how many spares p has ready.
func (p *sparePool) idleSpares() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// podSpare is the spare bound to pod's next container and its ID (nil,
// "": none).
func (p *sparePool) podSpare(pod string) (*engine.Spare, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.podNext[pod]
	return ps.spare, ps.id
}

// waitSpare waits until the server's pool has a spare ready for pod's
// next container (filled in the background, or bound to the pod), so
// that the next CreateContainer in it binds one.
func waitSpare(t *testing.T, c *client, pod string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s, _ := c.srv.spares.podSpare(pod); s != nil || c.srv.spares.idleSpares() > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the spare pool is still empty")
		}
	}
}

// waitIdleSpare waits until the server's pool has an idle spare.
func waitIdleSpare(t *testing.T, c *client) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); c.srv.spares.idleSpares() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the spare pool is still empty")
		}
	}
}

// RunPodSandbox binds an idle spare to the pod's next container, with
// an ID chosen for it: the spare starts that container's first process
// in the pod's namespaces at once (its state directory appears), the
// next CreateContainer gets that ID and spare, and the container runs
// with the spare as its monitor. A pod removed before it had a container
// ends its spare, the process and its state and cgroups with it.
func TestRunPodSandboxBindsSpare(t *testing.T) {
	c, f := serveRuntimeWith(t, Options{Spares: 1})
	ctx := ctxT(t)
	pod := sandboxConfig(t, "podspare")
	waitIdleSpare(t, c)
	podID := runSandbox(t, c, pod)
	spare, id := c.srv.spares.podSpare(podID)
	if spare == nil {
		t.Fatal("RunPodSandbox bound no spare to the pod, with one idle")
	}
	state := filepath.Join(c.root, "run", "runtime", id)
	waitPath(t, state, "the process started ahead for the pod's next container")
	cid := createContainer(t, c, f, podID, pod, "app", nil, "sleep", "600")
	if cid != id {
		t.Errorf("CreateContainer made %s; want the ID chosen with the pod's spare, %s", cid, id)
	}
	startContainer(t, c, cid)
	wantRunningUnder(t, c, cid, spare.Pid(), "the pod's spare")

	// A pod removed with its spare unused.
	waitIdleSpare(t, c)
	other := sandboxConfig(t, "podspare2")
	otherID := runSandbox(t, c, other)
	spare, id = c.srv.spares.podSpare(otherID)
	if spare == nil {
		t.Fatal("RunPodSandbox bound no spare to the second pod")
	}
	state = filepath.Join(c.root, "run", "runtime", id)
	waitPath(t, state, "the process started ahead for the second pod's next container")
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: otherID}); err != nil {
		t.Fatal(err)
	}
	if !gone(spare.Pid()) {
		t.Errorf("the spare %d of a removed pod is still there", spare.Pid())
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("the state of the process started ahead is left: %v", err)
	}
	for _, cg := range cgroupDirsOf(t, id) {
		t.Errorf("cgroup left of the process started ahead: %s", cg)
	}
}

// waitPath waits for path to exist (what: for the failure).
func waitPath(t *testing.T, path, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s", what, path)
		}
	}
}

// cgroupDirsOf are the cgroup directories, in any hierarchy, whose name
// holds id.
func cgroupDirsOf(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir("/sys/fs/cgroup", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Contains(d.Name(), id) {
			out = append(out, path)
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// gone says whether process pid has ended (and was reaped).
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// With spares, CreateContainer binds a warm spare monitor to the
// container and StartContainer hands the container to it: the running
// container's monitor is that spare, and its output reaches the log the
// spare opened ahead. A container removed before it started ends its
// spare, with the attach socket it opened; so does one whose resources
// are updated before it starts, which then starts with a monitor of its
// own from config.json, with the update.
func TestStartContainerTakesBoundSpare(t *testing.T) {
	c, f := serveRuntimeWith(t, Options{Spares: 1})
	ctx := ctxT(t)
	pod := sandboxConfig(t, "spare")
	podID := runSandbox(t, c, pod)

	waitSpare(t, c, podID)
	id := createContainer(t, c, f, podID, pod, "app", nil, "sh", "-c", "echo from the spare; exec sleep 600")
	pid := c.srv.spares.boundPid(id)
	if pid == 0 {
		t.Fatal("CreateContainer bound no spare, with one ready")
	}
	startContainer(t, c, id)
	if pid := c.srv.spares.boundPid(id); pid != 0 {
		t.Errorf("the spare %d is still bound after StartContainer", pid)
	}
	wantRunningUnder(t, c, id, pid, "the spare bound at create")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log, _ := os.ReadFile(containerStatus(t, c, id).LogPath)
		if strings.Contains(string(log), " stdout F from the spare\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log = %q; want the container's output", log)
		}
	}

	// One with a memory limit: its process is started ahead too (its
	// state directory is there before StartContainer), with the limit.
	waitSpare(t, c, podID)
	limited := createContainer(t, c, f, podID, pod, "limited", func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}}
	}, "sleep", "600")
	state := filepath.Join(c.root, "run", "runtime", limited)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(state); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process started ahead for the container with a memory limit (%s)", state)
		}
	}
	startContainer(t, c, limited)
	if s := containerStatus(t, c, limited); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING || s.Resources.GetLinux().GetMemoryLimitInBytes() != 64<<20 {
		t.Errorf("container with a memory limit: %v, resources %v", s.State, s.Resources)
	}
	if out, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: limited, Cmd: []string{"cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}, Timeout: 10}); err != nil || strings.TrimSpace(string(out.Stdout)) != "67108864" {
		t.Errorf("the container's memory limit reads %q (%v); want 67108864", out.GetStdout(), err)
	}

	// Removed before it started: its spare ends, with what it opened.
	waitSpare(t, c, podID)
	never := createContainer(t, c, f, podID, pod, "never", nil, "sleep", "600")
	npid := c.srv.spares.boundPid(never)
	if npid == 0 {
		t.Fatal("CreateContainer bound no spare, with one ready")
	}
	sock := c.eng.AttachSocket(never)
	if _, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: never}); err != nil {
		t.Fatal(err)
	}
	if !gone(npid) {
		t.Errorf("the spare %d of a container removed before it started is still there", npid)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("attach socket %s left by the spare (%v)", sock, err)
	}

	// Updated before it started: the spare's spec would be stale.
	waitSpare(t, c, podID)
	upd := createContainer(t, c, f, podID, pod, "updated", nil, "sleep", "600")
	upid := c.srv.spares.boundPid(upd)
	if upid == 0 {
		t.Fatal("CreateContainer bound no spare, with one ready")
	}
	if _, err := c.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: upd,
		Linux: &runtimeapi.LinuxContainerResources{CpuShares: 300}}); err != nil {
		t.Fatal(err)
	}
	if !gone(upid) {
		t.Errorf("the spare %d of a container updated before it started is still there", upid)
	}
	startContainer(t, c, upd)
	if s := containerStatus(t, c, upd); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING || s.Resources.GetLinux().GetCpuShares() != 300 {
		t.Errorf("updated container: %v, resources %v; want running with 300 CPU shares", s.State, s.Resources)
	}

	// A sandbox stopped with a container never started ends its spare.
	waitSpare(t, c, podID)
	left := createContainer(t, c, f, podID, pod, "left", nil, "sleep", "600")
	lpid := c.srv.spares.boundPid(left)
	if lpid == 0 {
		t.Fatal("CreateContainer bound no spare, with one ready")
	}
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if !gone(lpid) {
		t.Errorf("the spare %d of a stopped sandbox's container is still there", lpid)
	}
	if _, err := c.rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
}

// spareMonitors are the pids of the spare monitors (`hull monitor -`) on
// root.
func spareMonitors(root string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		b, _ := os.ReadFile(f)
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, root) && slices.Contains(args, "monitor") && slices.Contains(args, "-") {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// hull-cri killed between CreateContainer and StartContainer, the
// container's spare bound with its process started ahead: every spare
// reads end-of-file and ends what it prepared (the early process, its
// cgroups and state directory, the attach socket); the next server starts
// the container with a monitor of its own, and removes it and its
// sandbox leaving nothing.
func TestKilledWithBoundSpare(t *testing.T) {
	e := newFaultEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pod, podID := e.hostPod(ctx)
	p := e.start("")
	for deadline := time.Now().Add(30 * time.Second); len(spareMonitors(e.root)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("hull-cri started no spare monitor")
		}
	}
	cc := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: e.f.Busybox.Ref},
		Command: []string{"sh", "-c", "echo started late; exec sleep 60"}, LogPath: "c/0.log",
	}
	cr, err := p.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cc, SandboxConfig: pod})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.ContainerId
	state := filepath.Join(e.root, "run", "runtime", id)
	// The bound spare starts the container's process ahead: its state
	// directory appears. The creation, answered once recorded, ends with
	// config.json (a kill before that is TestKilledDuringCreateContainer's).
	config := filepath.Join(e.root, "containers", id, "config.json")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err1 := os.Stat(state)
		_, err2 := os.Stat(config)
		if err1 == nil && err2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no early process for %s (state %s: %v) or no end of its creation (%v)", id, state, err1, err2)
		}
	}
	spares := spareMonitors(e.root)
	p.cmd.Process.Kill()
	<-p.exited
	p.conn.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left := slices.DeleteFunc(slices.Clone(spares), gone)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spare monitors %v still run after hull-cri was killed", left)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("the early process's state %s is left (%v)", state, err)
	}

	p = e.start("")
	defer p.stop(t)
	if _, err := p.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer after the restart: %v", err)
	}
	st, err := p.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("status %v, %v; want running", st, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log, _ := os.ReadFile(st.Status.LogPath)
		if strings.Contains(string(log), " stdout F started late\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log = %q; want the container's output", log)
		}
	}
	if _, err := p.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	for _, left := range e.containerMounts(5 * time.Second) {
		t.Errorf("left after RemoveContainer: %s", left)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left after the sandbox: %v", left)
	}
}

// A pool takes more than its size in a burst: right after a take it keeps
// one spare more (target), so that pods made one after another each find a
// spare that booted; once the burst is over the extra idle spare ends.
func TestSparePoolBurst(t *testing.T) {
	p := &sparePool{size: 1}
	if got := p.target(); got != 1 {
		t.Errorf("target of a pool never taken from: %d; want its size, 1", got)
	}
	p.lastTake = time.Now()
	if got := p.target(); got != 2 {
		t.Errorf("target right after a take: %d; want 2", got)
	}
	p.lastTake = time.Now().Add(-burstWindow - time.Second)
	if got := p.target(); got != 1 {
		t.Errorf("target after the burst: %d; want 1", got)
	}
	given := &sparePool{} // GiveSpare's: size 0, never refilled
	given.lastTake = time.Now()
	if got := given.target(); got != 0 {
		t.Errorf("target of a pool of size 0 in a burst: %d; want 0", got)
	}
	p.idle = []*engine.Spare{nil, nil} // two idle (Close of nil is nothing)
	p.trimIdle()
	if len(p.idle) != 1 {
		t.Errorf("after trimIdle the pool keeps %d idle spares; want 1", len(p.idle))
	}
}

// A spare left idle past idleTextRelease gives back the pages of hull's
// text and read-only data and keeps them given back while it waits (its
// Go runtime, returning as usual, would map most of them back: the kernel
// maps a binary's page cache in folios of up to 2 MB). Its runtime still
// wakes now and then, and maps folios back each time: sysmon for some
// milliseconds after the first drop (1 to 5 MB, depending on how the page
// cache split hull into folios; 6 MB once, failing this test when the
// spare dropped them only once), a signal. The spare drops them again
// (idle.ReleaseAndWait): after 100 ms, and at most 10 s after a wake-up.
// Bound to a pod then, it still starts the pod's container as its
// monitor.
func TestIdleSpareKeepsItsTextReleased(t *testing.T) {
	c, f := serveRuntimeWith(t, Options{Spares: 1})
	waitIdleSpare(t, c)
	c.srv.spares.mu.Lock()
	spare := c.srv.spares.idle[0]
	c.srv.spares.mu.Unlock()
	pid := spare.Pid()
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	// A pool's spare starts without huge pages (engine.NewSpare(pooled)):
	// it may wait long, keeping their unwritten rest.
	if env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ"); err != nil {
		t.Fatal(err)
	} else if !strings.Contains("\x00"+string(env), "\x00"+hugeheap.SmallPagesEnv+"=1\x00") {
		t.Errorf("the pool's spare %d was started without %s=1", pid, hugeheap.SmallPagesEnv)
	}
	waitTextReleased(t, pid, exe, "the idle spare")
	time.Sleep(time.Second) // the spare's runtime has gone back to sleep
	if resident, size := residentOfReadOnly(t, pid, exe); resident*4 >= size {
		t.Errorf("the idle spare %d mapped its text back: %d of %d kB of %s resident", pid, resident, size, exe)
	}
	// SIGURG, the runtime's own preemption signal, which it otherwise
	// ignores, runs its signal handler.
	if err := syscall.Kill(pid, syscall.SIGURG); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	waitTextReleased(t, pid, exe, "the idle spare woken by a signal")

	pod := sandboxConfig(t, "idlespare")
	podID := runSandbox(t, c, pod)
	bound, _ := c.srv.spares.podSpare(podID)
	if bound == nil || bound.Pid() != pid {
		t.Fatalf("RunPodSandbox bound spare %v; want the idle one, %d", bound, pid)
	}
	cid := createContainer(t, c, f, podID, pod, "app", nil, "sleep", "600")
	startContainer(t, c, cid)
	wantRunningUnder(t, c, cid, pid, "the spare that idled")
}

// waitTextReleased waits until fewer than a quarter of the read-only
// mappings of exe by process pid (which: for the failure) are resident.
func waitTextReleased(t *testing.T, pid int, exe, which string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resident, size := residentOfReadOnly(t, pid, exe)
		if size == 0 {
			t.Fatalf("spare %d maps no read-only part of %s", pid, exe)
		}
		if resident*4 < size {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %d still has %d of %d kB of %s resident", which, pid, resident, size, exe)
		}
	}
}

// wantRunningUnder checks that container id runs with process pid (which:
// for the failure) as its monitor.
func wantRunningUnder(t *testing.T, c *client, id string, pid int, which string) {
	t.Helper()
	rec, err := c.eng.Get(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.MonitorPid != pid {
		t.Errorf("the container's monitor is %d; want %s, %d", rec.MonitorPid, which, pid)
	}
	if s := containerStatus(t, c, id); s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("state %v; want running", s.State)
	}
}

// residentOfReadOnly sums, over process pid's read-only mappings of exe,
// their resident kB and their size in kB.
func residentOfReadOnly(t *testing.T, pid int, exe string) (resident, size int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		t.Fatal(err)
	}
	ours := false
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 6 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			ours = fields[5] == exe && !strings.Contains(fields[1], "w")
		case ours && len(fields) == 3 && fields[0] == "Size:":
			n, _ := strconv.Atoi(fields[1])
			size += n
		case ours && len(fields) == 3 && fields[0] == "Rss:":
			n, _ := strconv.Atoi(fields[1])
			resident += n
		}
	}
	return resident, size
}
