package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Pinned namespaces outlive every process: a pod's network, IPC and UTS
// namespaces exist from the pod's start to its stop whether or not a
// container of it runs, and its containers join them by path (CRI-O's
// pinns does the same; a pause process would hold them at the cost of a
// process per pod). Each is a bind mount of the namespace's nsfs file on
// DIR/KIND.

// PinKinds are the namespaces PinNamespaces can make.
var PinKinds = map[string]int{"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS}

// PinOptions set up the pinned namespaces as they are made.
type PinOptions struct {
	// Hostname is set in a new UTS namespace.
	Hostname string
	// Sysctls are written in the new namespaces (net.*, kernel.* of IPC).
	Sysctls map[string]string
}

// PinNamespaces makes new namespaces of the given kinds (net, ipc, uts)
// and pins each on dir/KIND; lo is brought up in a new network namespace.
// On error nothing is left pinned.
func PinNamespaces(dir string, kinds []string, o PinOptions) error {
	flags := 0
	for _, k := range kinds {
		f, ok := PinKinds[k]
		if !ok {
			return fmt.Errorf("pin namespaces: unknown kind %q (net, ipc, uts)", k)
		}
		flags |= f
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin namespaces: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		ok, err := pinOnThread(dir, kinds, flags, o)
		if ok {
			goruntime.UnlockOSThread()
		} // else the thread is in the new namespaces: it ends with us
		done <- err
	}()
	if err := <-done; err != nil {
		UnpinNamespaces(dir)
		return err
	}
	return nil
}

// pinOnThread unshares on this locked thread, pins, and returns the
// thread to its own namespaces; ok says that it is back in them.
func pinOnThread(dir string, kinds []string, flags int, o PinOptions) (ok bool, err error) {
	var own []*os.File
	defer func() {
		for _, f := range own {
			f.Close()
		}
	}()
	for _, k := range kinds {
		f, err := os.Open("/proc/thread-self/ns/" + k)
		if err != nil {
			return true, fmt.Errorf("pin namespaces: %w", err)
		}
		own = append(own, f)
	}
	if err := unix.Unshare(flags); err != nil {
		return true, fmt.Errorf("pin namespaces: unshare: %w", err)
	}
	err = setUp(dir, kinds, o)
	for i, k := range kinds {
		if serr := unix.Setns(int(own[i].Fd()), PinKinds[k]); serr != nil {
			return false, errors.Join(err, fmt.Errorf("pin namespaces: return to the host's %s namespace: %w", k, serr))
		}
	}
	return true, err
}

// setUp configures the thread's new namespaces and pins them.
func setUp(dir string, kinds []string, o PinOptions) error {
	if err := configure(kinds, o); err != nil {
		return err
	}
	return pin(dir, kinds)
}

// configure sets up the thread's namespaces: host name, lo, sysctls.
func configure(kinds []string, o PinOptions) error {
	for _, k := range kinds {
		switch k {
		case "uts":
			if o.Hostname != "" {
				if err := unix.Sethostname([]byte(o.Hostname)); err != nil {
					return fmt.Errorf("pin namespaces: hostname %q: %w", o.Hostname, err)
				}
			}
		case "net":
			if err := loopbackUp(); err != nil {
				return fmt.Errorf("pin namespaces: %w", err)
			}
		}
	}
	for key, value := range o.Sysctls {
		if err := os.WriteFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), []byte(value), 0o644); err != nil {
			return fmt.Errorf("pin namespaces: sysctl %s=%s: %w", key, value, err)
		}
	}
	return nil
}

// pin bind-mounts the thread's namespaces of kinds on dir/KIND.
func pin(dir string, kinds []string) error {
	for _, k := range kinds {
		target := filepath.Join(dir, k)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o600)
		if err != nil {
			return fmt.Errorf("pin namespaces: %w", err)
		}
		f.Close()
		if err := unix.Mount("/proc/thread-self/ns/"+k, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin namespaces: bind %s namespace on %s: %w", k, target, err)
		}
	}
	return nil
}

// UnpinNamespaces unmounts and removes what PinNamespaces pinned in dir
// (each namespace ends once no process is in it); missing pins are fine.
func UnpinNamespaces(dir string) error {
	var errs []error
	for _, k := range []string{"net", "ipc", "uts", "user"} {
		target := filepath.Join(dir, k)
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unpin %s: %w", target, err))
			continue
		}
		if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Pinned says whether dir/kind is a pinned namespace.
func Pinned(dir, kind string) bool {
	var st unix.Statfs_t
	return unix.Statfs(filepath.Join(dir, kind), &st) == nil && st.Type == unix.NSFS_MAGIC
}
