package checkpoint

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/trace"
)

// randomName is 16 random hex digits, for a work file's name.
func randomName() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Container is what Dump needs of a running container, as the runtime
// and the engine record it.
type Container struct {
	// Name names the container in errors.
	Name string
	// Pid is the container's init in the host PID namespace: the root of
	// the tree CRIU dumps.
	Pid int
	// Bundle holds config.json, archived as spec.dump; Rootfs is the
	// root filesystem on the host (CRIU's --root); Spec is config.json
	// decoded.
	Bundle, Rootfs string
	Spec           *specs.Spec
	// Cgroup is the container's cgroup: frozen for the whole dump, so
	// that the images and the rootfs diff are one moment of it.
	Cgroup *cgroups.Manager
	// Record is config.dump with what the engine knows (ID, name, image,
	// creation, engine config, CRI metadata); Dump fills in the rest.
	Record Record
	// WriteRootfsDiff writes the writable layer's changes as an OCI
	// layer tar (the engine's `hull diff` changes).
	WriteRootfsDiff func(ctx context.Context, w io.Writer) error
}

// DumpOptions tune Dump.
type DumpOptions struct {
	// LeaveRunning keeps the container running after the dump (CRI:
	// always); without it CRIU kills its processes once they are dumped.
	LeaveRunning bool
	// TCPEstablished dumps established TCP connections (a pod's address
	// changes on restore, so only when asked).
	TCPEstablished bool
	// Timeout bounds CRIU's freezing and dumping (--timeout); 0 is
	// CRIU's default.
	Timeout time.Duration
	// Record, if set, is given the checkpoint's Marker before each step
	// a killed process would leave undone (the freeze, CRIU's start, the
	// temporary files); Dump stops if it fails. The caller keeps the
	// marker beside the container and removes it once Dump returns.
	Record func(Marker) error
}

// Dump checkpoints container c into the archive at path archive.
//
// The container's cgroup is frozen first (unless it is already, as a pod
// checkpoint holds its containers), CRIU dumps the process tree from the
// frozen cgroup (--freeze-cgroup: it seizes the frozen tasks and leaves
// the cgroup as it found it), the writable layer's changes are read while
// the processes still cannot change them, and the cgroup is thawed again
// (if Dump froze it). The archive is written beside its final path and
// renamed there only when complete.
//
// On failure nothing is left at archive, the container runs again (CRIU
// thaws the tasks it seized on failure; the cgroup is thawed here), and
// the error names the container and quotes the end of CRIU's dump.log.
func Dump(ctx context.Context, criu *CRIU, c *Container, o DumpOptions, archive string) (rerr error) {
	fail := func(err error) error { return fmt.Errorf("checkpoint container %s: %w", c.Name, err) }
	if err := checkSupported(c); err != nil {
		return fail(err)
	}
	freezer := c.Cgroup.FreezerDir()
	if freezer == "" {
		return fail(errdefs.ErrFailedPrecondition.WithMessage("the freezer cgroup controller is not mounted"))
	}
	specBytes, err := os.ReadFile(filepath.Join(c.Bundle, "config.json"))
	if err != nil {
		return fail(err)
	}

	// The work directory sits beside the archive (the caller chose a
	// file system with room for it), so the final rename stays there.
	// Its name, and the temporary archive's, are recorded in the marker
	// before either exists.
	dir := filepath.Dir(archive)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return fail(errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the archive's directory %s does not exist", dir)))
		}
		return fail(err)
	}
	stem := filepath.Join(dir, WorkPrefix+randomName())
	wasFrozen := c.Cgroup.Frozen()
	m := NewMarker()
	m.Work, m.Temp, m.Froze = stem+".d", stem+".tar", !wasFrozen
	record := func() error {
		if o.Record == nil {
			return nil
		}
		return o.Record(m)
	}
	if err := record(); err != nil {
		return fail(err)
	}
	trace.Mark("checkpoint: marked")
	work := m.Work
	if err := os.Mkdir(work, 0o700); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	images := filepath.Join(work, ImagesDir)
	if err := os.Mkdir(images, 0o700); err != nil {
		return fail(err)
	}

	rec := c.Record
	rec.Version, rec.CRIUVersion = RecordVersion, criu.Version
	rec.TTY = c.Spec.Process != nil && c.Spec.Process.Terminal
	for fd := range 3 {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", c.Pid, fd))
		if err != nil {
			target = "" // closed
		}
		rec.Descriptors = append(rec.Descriptors, target)
	}
	args := []string{"dump", "--tree", strconv.Itoa(c.Pid), "--images-dir", images,
		"--log-file", DumpLog, "-v4", "--root", c.Rootfs, "--freeze-cgroup", freezer,
		"--manage-cgroups=ignore", "--file-locks"}
	if o.LeaveRunning {
		args = append(args, "--leave-running")
	}
	if o.TCPEstablished {
		args = append(args, "--tcp-established")
	}
	if o.Timeout > 0 {
		args = append(args, "--timeout", strconv.Itoa(int(max(o.Timeout/time.Second, 1))))
	}
	ext, externalNet, err := externals(c)
	if err != nil {
		return fail(err)
	}
	rec.ExternalNetNS = externalNet
	for _, e := range ext {
		args = append(args, "--external", e)
	}

	if !wasFrozen {
		if err := c.Cgroup.Freeze(); err != nil {
			c.Cgroup.Thaw()
			return fail(fmt.Errorf("freeze: %w", err))
		}
	}
	trace.Mark("checkpoint: frozen")
	thawed := false
	thaw := func() error {
		if wasFrozen || thawed {
			return nil
		}
		thawed = true
		err := c.Cgroup.Thaw()
		if !o.LeaveRunning && errors.Is(err, fs.ErrNotExist) {
			// CRIU killed the tasks after the dump, and the monitor
			// has reaped the init and removed its cgroups already.
			return nil
		}
		return err
	}
	defer func() {
		if err := thaw(); err != nil && rerr == nil {
			rerr = fail(fmt.Errorf("thaw: %w", err))
		}
		if rerr != nil && !processAlive(c.Pid) && o.LeaveRunning {
			rerr = fmt.Errorf("%w (and its init %d is gone)", rerr, c.Pid)
		}
	}()

	rec.Checkpointed = time.Now().UTC()
	started := func(pid int) error {
		m.CRIU, m.CRIUStart = pid, procStart(pid)
		if err := record(); err != nil {
			return err
		}
		trace.Mark("checkpoint: criu started")
		return nil
	}
	if err := runCRIU(ctx, criu, args, images, started); err != nil {
		return fail(err)
	}
	trace.Mark("checkpoint: dumped")
	// Still frozen (CRIU restores the freezer state it found): the
	// writable layer is the one the images were taken with.
	diff, err := os.Create(filepath.Join(work, RootfsDiffFile))
	if err == nil {
		err = c.WriteRootfsDiff(ctx, diff)
		if cerr := diff.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fail(fmt.Errorf("rootfs diff: %w", err))
	}
	if err := thaw(); err != nil {
		return fail(fmt.Errorf("thaw: %w", err))
	}
	trace.Mark("checkpoint: thawed")
	if o.LeaveRunning && !processAlive(c.Pid) {
		return fail(fmt.Errorf("its init %d is gone after the dump", c.Pid))
	}

	recBytes, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := writeArchive(work, m.Temp, archive, specBytes, recBytes); err != nil {
		return fail(err)
	}
	return nil
}

// checkSupported refuses what a restore could not rebuild: a terminal
// (its pty's other end is the monitor's), and a PID namespace that is not
// the container's own (a pod's shared one, or the host's: CRIU restores a
// tree whose root is its PID namespace's init).
func checkSupported(c *Container) error {
	if c.Spec.Process != nil && c.Spec.Process.Terminal {
		return errdefs.ErrFailedPrecondition.WithMessage("it has a terminal (tty), which hull cannot checkpoint yet")
	}
	own := false
	if c.Spec.Linux != nil {
		for _, ns := range c.Spec.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace && ns.Path == "" {
				own = true
			}
		}
	}
	if !own {
		return errdefs.ErrFailedPrecondition.WithMessage("it shares a PID namespace (its pod's or the host's), which hull cannot checkpoint yet")
	}
	return nil
}

// externals are CRIU's --external arguments for the container: every
// bind mount of its spec and each masked path bound over (key: the
// destination, see mountKey), and a network namespace it does not own
// (extNetNs). externalNet says the namespace is not its own.
func externals(c *Container) (ext []string, externalNet bool, err error) {
	mounted, err := mountpoints(c.Pid)
	if err != nil {
		return nil, false, err
	}
	seen := map[string]bool{}
	add := func(dest string) {
		if !seen[dest] {
			seen[dest] = true
			ext = append(ext, fmt.Sprintf("mnt[%s]:%s", dest, mountKey(dest)))
		}
	}
	for _, m := range c.Spec.Mounts {
		dest := path.Clean(m.Destination)
		if isBind(m) && mounted[dest] != "" {
			add(dest)
		}
	}
	if c.Spec.Linux != nil {
		for _, p := range c.Spec.Linux.MaskedPaths {
			p = path.Clean(p)
			if fstype := mounted[p]; fstype != "" && fstype != "tmpfs" {
				add(p) // /dev/null bound over a file
			}
		}
		for _, ns := range c.Spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace && ns.Path == "" {
				return ext, false, nil
			}
		}
	}
	// Joined (a pod's) or absent (the host's): not the container's own.
	var theirs, ours unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", c.Pid), &theirs); err != nil {
		return nil, false, fmt.Errorf("network namespace: %w", err)
	}
	if err := unix.Stat("/proc/self/ns/net", &ours); err != nil {
		return nil, false, fmt.Errorf("network namespace: %w", err)
	}
	if theirs.Ino != ours.Ino {
		// The host's is not dumped at all (it is CRIU's own).
		ext = append(ext, fmt.Sprintf("net[%d]:%s", theirs.Ino, extNetNs))
	}
	return ext, true, nil
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// mountpoints maps the mount points the init sees (paths in its root) to
// their file system types; the topmost mount wins.
func mountpoints(pid int) (map[string]string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		out[unescapeMountinfo(fields[4])] = fields[sep+1]
	}
	return out, sc.Err()
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// runCRIU runs criu with args, calling started with its pid once it
// runs (killing it if started fails). A context that ends interrupts it
// (CRIU then undoes what it did: the tasks it seized are released). A
// failure quotes the end of the log in images.
//
// CRIU dies with its parent (Pdeathsig SIGKILL): a hull process killed
// mid-dump leaves no CRIU dumping on behind it. The kernel then detaches
// the tasks CRIU had seized and they run on once their cgroup is thawed
// (checked with CRIU 4.1.1 killed at every stage of a dump, its parasite
// code in the tasks included); the marker's Undo thaws it.
func runCRIU(ctx context.Context, criu *CRIU, args []string, images string, started func(pid int) error) error {
	cmd := exec.CommandContext(ctx, criu.Path, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	// The parent death signal follows the thread that forked: keep this
	// goroutine on it until CRIU is waited for.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("criu dump: %w", err)
	}
	if err := started(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	if trace.On() {
		done := make(chan struct{})
		defer close(done)
		go markSeized(filepath.Join(images, DumpLog), done)
	}
	err := cmd.Wait()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	tail := logTail(filepath.Join(images, DumpLog))
	if tail == "" {
		tail = strings.TrimSpace(out.String())
	}
	return fmt.Errorf("criu dump: %w: %s", err, tail)
}

// markSeized marks "checkpoint: criu in the tasks" once CRIU's log says
// its parasite code runs in the dumped tasks (they are seized), unless
// done closes first: the stage a fault test kills the dumping process at
// to check that the tasks survive CRIU's death there. Only with tracing
// on (it polls the log).
func markSeized(log string, done <-chan struct{}) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		if b, err := os.ReadFile(log); err == nil && bytes.Contains(b, []byte("Putting parasite blob")) {
			trace.Mark("checkpoint: criu in the tasks")
			return
		}
	}
}

// logTail is the end of a CRIU log: its error lines (the last few), or
// else its last lines.
func logTail(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var errs []string
	for _, l := range lines {
		if strings.Contains(l, "Error") || strings.Contains(l, "error") {
			errs = append(errs, strings.TrimSpace(l))
		}
	}
	pick := errs
	if len(pick) == 0 {
		pick = lines
	}
	if len(pick) > 5 {
		pick = pick[len(pick)-5:]
	}
	return "dump.log: " + strings.Join(pick, " | ")
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// State is the field after the command's closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// writeArchive writes the archive from work (the images and the rootfs
// diff) to the temporary file temp beside archive and renames it there.
func writeArchive(work, temp, archive string, spec, rec []byte) (rerr error) {
	f, err := os.OpenFile(temp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if rerr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	now := time.Now()
	addBytes := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	addFile := func(name, file string) error {
		src, err := os.Open(file)
		if err != nil {
			return err
		}
		defer src.Close()
		st, err := src.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, src)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: ImagesDir + "/", Mode: 0o700, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(work, ImagesDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := addFile(ImagesDir+"/"+e.Name(), filepath.Join(work, ImagesDir, e.Name())); err != nil {
			return err
		}
	}
	if err := addBytes(SpecFile, spec); err != nil {
		return err
	}
	if err := addBytes(ConfigFile, rec); err != nil {
		return err
	}
	if err := addFile(RootfsDiffFile, filepath.Join(work, RootfsDiffFile)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), archive)
}
