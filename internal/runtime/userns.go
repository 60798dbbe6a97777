package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// User namespaces made outside a container's create. An idmapped mount
// (mount_setattr MOUNT_ATTR_IDMAP) takes a user namespace's descriptor
// and only its mapping counts, so a container's root filesystem can be
// idmapped before its own user namespace exists, with another one of the
// same mapping. A Go process cannot unshare a user namespace (it is
// multi-threaded), so a helper process is started in a new one, given its
// mapping (as Go's exec does: the child waits until both maps are
// written) and its namespace kept by descriptor or bind mount; the helper
// is the given program (hull-init --pause: static, tiny), which runs only
// until its namespaces are held.

// startInUserNamespace starts helper --pause in a new user namespace with
// the mappings, and in new namespaces of the extra clone flags (owned by
// that user namespace).
func startInUserNamespace(helper string, uids, gids []specs.LinuxIDMapping, extra uintptr) (*exec.Cmd, error) {
	if len(uids) == 0 || len(gids) == 0 {
		return nil, errors.New("a user namespace needs both a uid and a gid mapping")
	}
	conv := func(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		out := make([]syscall.SysProcIDMap, len(ms))
		for i, m := range ms {
			out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
		}
		return out
	}
	cmd := exec.Command(helper, "--pause")
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | extra,
		UidMappings: conv(uids), GidMappings: conv(gids),
		// setgroups stays allowed: the container's root sets its
		// supplementary groups.
		GidMappingsEnableSetgroups: true,
		Setsid:                     true,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start a user namespace helper (%s): %w", helper, err)
	}
	return cmd, nil
}

// NewUserNamespace returns a descriptor of a new user namespace with the
// mappings (for idmapped mounts); it lives as long as the descriptor.
func NewUserNamespace(helper string, uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	cmd, err := startInUserNamespace(helper, uids, gids, 0)
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("user namespace helper: %w", err)
	}
	return f, nil
}

// UserNamespaceOptions are PinUserNamespaces' user namespace.
type UserNamespaceOptions struct {
	// Helper is the program started in the namespaces (hull-init).
	Helper     string
	UIDs, GIDs []specs.LinuxIDMapping
	// PID: the helper is also the first process of a new PID namespace
	// in the user namespace, and is left running to hold it (returned
	// by PinNamespaces; the caller records, pins and later kills it).
	PID bool
}

// PinUserNamespaces is PinNamespaces for a pod with a user namespace: it
// pins a new user namespace on dir/user too, and the other namespaces are
// owned by it, so a container that joins it may join them (CRI-O's pods
// with user namespaces are made the same way). The helper is started in
// all the new namespaces at once (the user namespace first, so it owns
// the others), they are pinned from /proc/PID/ns, and then set up from a
// thread that joins the pinned ones (the host's root may: it is
// privileged over every user namespace below its own). With u.PID the
// helper is left running as the holder of the pod's PID namespace and
// returned. On error nothing is left pinned or running.
func PinUserNamespaces(dir string, kinds []string, o PinOptions, u UserNamespaceOptions) (p *os.Process, err error) {
	flags := 0
	for _, k := range kinds {
		f, ok := PinKinds[k]
		if !ok {
			return nil, fmt.Errorf("pin namespaces: unknown kind %q (net, ipc, uts)", k)
		}
		flags |= f
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pin namespaces: %w", err)
	}
	defer func() {
		if err != nil {
			UnpinNamespaces(dir)
		}
	}()
	extra := uintptr(flags)
	if u.PID {
		extra |= unix.CLONE_NEWPID
	}
	cmd, err := startInUserNamespace(u.Helper, u.UIDs, u.GIDs, extra)
	if err != nil {
		return nil, fmt.Errorf("pin namespaces: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/"
	for _, k := range append([]string{"user"}, kinds...) {
		target := filepath.Join(dir, k)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("pin namespaces: %w", err)
		}
		f.Close()
		if err := unix.Mount(proc+k, target, "", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("pin namespaces: bind %s namespace on %s: %w", k, target, err)
		}
	}
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		ok, err := configureOnThread(dir, kinds, o)
		if ok {
			goruntime.UnlockOSThread()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		return nil, err
	}
	if !u.PID {
		return nil, nil
	}
	keep = true
	go cmd.Wait() // reaped by this process if it outlives the holder
	return cmd.Process, nil
}

// configureOnThread joins the pinned namespaces in dir (not the user
// one) on this locked thread, sets them up and returns to the thread's
// own; ok says it is back in them.
func configureOnThread(dir string, kinds []string, o PinOptions) (ok bool, err error) {
	var own, pinned []*os.File
	defer func() {
		for _, f := range slices.Concat(own, pinned) {
			f.Close()
		}
	}()
	for _, k := range kinds {
		f, err := os.Open("/proc/thread-self/ns/" + k)
		if err != nil {
			return true, fmt.Errorf("pin namespaces: %w", err)
		}
		own = append(own, f)
		if f, err = os.Open(filepath.Join(dir, k)); err != nil {
			return true, fmt.Errorf("pin namespaces: %w", err)
		}
		pinned = append(pinned, f)
	}
	joined := 0
	for i, k := range kinds {
		if err = unix.Setns(int(pinned[i].Fd()), PinKinds[k]); err != nil {
			err = fmt.Errorf("pin namespaces: join the pinned %s namespace: %w", k, err)
			break
		}
		joined++
	}
	if err == nil {
		err = configure(kinds, o)
	}
	for i := range joined {
		if serr := unix.Setns(int(own[i].Fd()), PinKinds[kinds[i]]); serr != nil {
			return false, errors.Join(err, fmt.Errorf("pin namespaces: return to the host's %s namespace: %w", kinds[i], serr))
		}
	}
	return true, err
}
