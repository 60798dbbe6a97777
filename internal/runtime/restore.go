package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/trace"
)

// RestoreOptions say how Restore brings a checkpointed container back.
type RestoreOptions struct {
	// Bundle holds the new container's config.json: its rootfs (already
	// mounted, with the checkpoint's file changes), mounts, cgroups and
	// namespaces. The dumped process tree is put back into it.
	Bundle string
	// CRIU is the criu binary; ImagesDir holds the images `criu dump`
	// wrote; WorkDir receives restore.log (the state directory if empty).
	CRIU, ImagesDir, WorkDir string
	// Descriptors are what fds 0, 1 and 2 of the dumped init pointed at
	// (readlink of /proc/PID/fd/N at dump time: "pipe:[1234]",
	// "/dev/null"); a pipe among them is replaced by the file at the same
	// index of Stdio (the monitor's new pipe ends), by criu's
	// --inherit-fd. A descriptor that is not a pipe is restored by criu
	// as it was dumped.
	Descriptors []string
	Stdio       [3]*os.File
	// ExternalNetNS: the dumped network namespace was not the
	// container's own (a pod's); the spec's network namespace path takes
	// its place.
	ExternalNetNS bool
	// FreshNetNS: the dumped network namespace was the container's own,
	// and its interfaces (a veth whose host end is gone) are not made
	// again: CRIU restores into a new, empty one (--empty-ns net), with
	// lo up, and leaves the processes stopped (--leave-stopped) for the
	// caller to connect the namespace to its networks; Continue then lets
	// them run.
	FreshNetNS bool
}

// restorePidFile is where criu writes the restored init's pid, in the
// state directory.
const restorePidFile = "restore.pid"

// Restore is Create and Start in one for a checkpointed container: the
// process tree comes back from CRIU's images instead of being spawned.
// Its cgroups are made and limited as Create makes them, and criu runs
// inside them (--manage-cgroups=ignore: the restored tasks are forked by
// criu and stay where it is). criu runs with --restore-sibling, so the
// restored init is the calling process's child, as Create's init is: a
// monitor reaps it and reads its status the same way. The new rootfs is
// criu's --root; each bind mount of the spec gets its new source
// (--external mnt[DEST]:SOURCE, the key the dump gave it); an external
// network namespace is the spec's (--inherit-fd fd[N]:extNetNs). On any
// failure everything made is undone; the error carries the end of
// criu's log.
func (r *Runtime) Restore(id string, o RestoreOptions) (c *Container, err error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if o.CRIU == "" {
		return nil, fmt.Errorf("container %s: restore: no criu binary", id)
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	if err := validateSpec(spec); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if spec.Process != nil && spec.Process.Terminal {
		return nil, fmt.Errorf("container %s: restore: a container with a terminal cannot be restored", id)
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		return nil, fmt.Errorf("container %s: rootfs: %w", id, err)
	}
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return nil, fmt.Errorf("state root %s: %w", r.Root, err)
	}
	dir := filepath.Join(r.Root, id)
	lock, err := r.claim(id, dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	c = &Container{ID: id, Bundle: bundle, Rootfs: rootfs, Spec: spec, Created: time.Now().UTC(), dir: dir}
	var cg *cgroups.Manager
	pid := 0
	defer func() {
		if err == nil {
			return
		}
		if pid > 0 {
			_ = syscallKillWait(pid)
		}
		if cg != nil {
			cg.Kill()
			_ = cg.Destroy()
		}
		os.RemoveAll(dir)
	}()
	c.CgroupPath = cgroups.ContainerPath(spec.Linux.CgroupsPath, id)
	if cg, err = cgroups.New(c.CgroupPath); err != nil {
		return nil, err
	}
	c.cg = cg
	if err = makeCgroups(id, dir, c.CgroupPath, cg); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	c.CgroupCreated = cg.Created
	if err = cg.Set(withDefaultDevices(spec)); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	c.SharedPidNS = true
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			c.SharedPidNS = false
		}
	}
	if c.SharedPidNS {
		return nil, fmt.Errorf("container %s: restore: a container without a pid namespace of its own cannot be restored", id)
	}

	if err = restoreMountpoints(rootfs, spec.Mounts); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	workDir := o.WorkDir
	if workDir == "" {
		workDir = dir
	}
	args := []string{"restore", "--images-dir", o.ImagesDir, "--work-dir", workDir,
		"--log-file", "restore.log", "-v4",
		"--root", rootfs, "--restore-detached", "--restore-sibling",
		"--pidfile", filepath.Join(dir, restorePidFile),
		"--manage-cgroups=ignore", "--file-locks"}
	for _, m := range spec.Mounts {
		if isBind(m) {
			args = append(args, "--external", "mnt["+m.Destination+"]:"+m.Source)
		}
	}
	if o.FreshNetNS {
		args = append(args, "--empty-ns", "net", "--leave-stopped")
	}
	// A masked file the dump found bound over (not by a tmpfs of the
	// container's own) was external: /dev/null again. A key the images
	// do not have is never looked up.
	for _, p := range spec.Linux.MaskedPaths {
		args = append(args, "--external", "mnt["+filepath.Clean(p)+"]:/dev/null")
	}
	// The IPC and UTS namespaces a pod's container joins are the new
	// pod's, not new ones made from the images.
	for _, t := range []specs.LinuxNamespaceType{specs.IPCNamespace, specs.UTSNamespace} {
		if p := nsPath(spec, t); p != "" {
			args = append(args, "--join-ns", nsName(t)+":"+p)
		}
	}
	// The inherited files are fds 3... of criu (ExtraFiles).
	var files []*os.File
	inherit := func(f *os.File, key string) {
		args = append(args, "--inherit-fd", fmt.Sprintf("fd[%d]:%s", 3+len(files), key))
		files = append(files, f)
	}
	for i, d := range o.Descriptors {
		if i < len(o.Stdio) && strings.HasPrefix(d, "pipe:") {
			if o.Stdio[i] == nil {
				return nil, fmt.Errorf("container %s: restore: no file for descriptor %d (%s)", id, i, d)
			}
			inherit(o.Stdio[i], d)
		}
	}
	// External: a pod's (then the spec joins the new pod's) or the host's
	// (then the spec has none, and CRIU, in the host's, dumped nothing).
	if path := nsPath(spec, specs.NetworkNamespace); o.ExternalNetNS && path != "" {
		ns, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("container %s: restore: network namespace: %w", id, err)
		}
		defer ns.Close()
		inherit(ns, "extNetNs")
	}
	// criu joins the container's cgroups before it execs (a shell that
	// writes its own pid into each, then execs criu: on v1 and hybrid
	// hosts no clone flag puts a child into every hierarchy at once).
	var procs []string
	for _, mt := range cg.Mounts() {
		procs = append(procs, filepath.Join(mt.Dir, "cgroup.procs"))
	}
	script := `n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"`
	argv := append([]string{"-c", script, "criu-in-cgroups", strconv.Itoa(len(procs))}, procs...)
	argv = append(argv, o.CRIU)
	argv = append(argv, args...)
	cmd := exec.Command("/bin/sh", argv...)
	cmd.ExtraFiles = files
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	trace.Mark("runtime: criu restore")
	if err = cmd.Run(); err != nil {
		return nil, fmt.Errorf("container %s: criu restore: %v: %s%s", id, err, strings.TrimSpace(out.String()), logTail(filepath.Join(workDir, "restore.log")))
	}
	trace.Mark("runtime: criu restored")
	b, rerr := os.ReadFile(filepath.Join(dir, restorePidFile))
	if rerr == nil {
		pid, rerr = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if rerr != nil {
		err = fmt.Errorf("container %s: criu restore: pid file: %w", id, rerr)
		return nil, err
	}
	c.Pid = pid
	if c.PidStartTime, _, err = procStartTime(pid); err != nil {
		return nil, fmt.Errorf("container %s: restored init exited at once: %w%s", id, err, logTail(filepath.Join(workDir, "restore.log")))
	}
	if o.FreshNetNS {
		if err = inNetNS(pid, loopbackUp); err != nil {
			return nil, fmt.Errorf("container %s: restored network namespace: %w", id, err)
		}
	}
	if err = c.save(); err != nil {
		return nil, err
	}
	return c, nil
}

// Continue lets the processes of a container restored with FreshNetNS run.
func (r *Runtime) Continue(c *Container) error {
	cg, err := c.Cgroup()
	if err != nil {
		return fmt.Errorf("container %s: %w", c.ID, err)
	}
	if err := cg.Signal(unix.SIGCONT); err != nil {
		return fmt.Errorf("container %s: resume the restored processes: %w", c.ID, err)
	}
	return nil
}

// inNetNS runs f on a locked thread in the network namespace of pid,
// which then returns to its own (or ends with the goroutine if it
// cannot).
func inNetNS(pid int, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- err
			return
		}
		defer own.Close()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			goruntime.UnlockOSThread()
			ch <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			ch <- err
			return
		}
		ferr := f()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- errors.Join(ferr, err) // the thread ends, locked
			return
		}
		goruntime.UnlockOSThread()
		ch <- ferr
	}()
	return <-ch
}

// isBind reports whether a spec mount is a bind mount (criu sees it as
// an external mount: its source is outside the container).
func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// nsPath is the path the spec gives a namespace of type t ("" if new or
// absent).
func nsPath(spec *specs.Spec, t specs.LinuxNamespaceType) string {
	if spec.Linux == nil {
		return ""
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			return ns.Path
		}
	}
	return ""
}

// logTail is the last error lines of a criu log, for an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var errs []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "Error") || strings.Contains(l, "error") {
			errs = append(errs, strings.TrimSpace(l))
		}
	}
	if len(errs) > 5 {
		errs = errs[len(errs)-5:]
	}
	if len(errs) == 0 {
		return " (log: " + path + ")"
	}
	return " (" + path + ": " + strings.Join(errs, "; ") + ")"
}

// syscallKillWait kills and reaps a restored init (the caller's child).
func syscallKillWait(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	_ = p.Kill()
	_, err = p.Wait()
	return errors.Join(err)
}

// restoreMountpoints makes the mount points a restore needs in a fresh
// rootfs: Create's init makes them as it mounts, but CRIU mounts onto what
// is there. A mount inside another file system of the spec (/dev/pts in
// /dev's tmpfs) is that file system's, whose contents CRIU restores.
func restoreMountpoints(rootfs string, mounts []specs.Mount) error {
	for _, m := range mounts {
		dest := filepath.Clean(m.Destination)
		inner := false
		for _, n := range mounts {
			if d := filepath.Clean(n.Destination); !isBind(n) && d != dest && strings.HasPrefix(dest, d+"/") {
				inner = true
			}
		}
		if inner {
			continue
		}
		dir := true
		if isBind(m) {
			if st, err := os.Stat(m.Source); err == nil && !st.IsDir() {
				dir = false
			}
		}
		_, f, err := securePath(rootfs, dest, dir)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}
