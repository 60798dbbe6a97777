package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// NewNetNS makes a new, empty network namespace and returns a handle on
// it, for Prepared.NetNS. Making one is most of what unsharing a
// container's namespaces costs (half a millisecond here, the kernel sets up
// every network protocol's per-namespace state), so a monitor waiting for
// its container makes it ahead, while it would otherwise be idle.
//
// It is made on a locked thread that then returns to the namespace it was
// in, so no goroutine ever runs in it (nor is the thread discarded: it may
// be the process's main thread, which Go never ends).
func NewNetNS() (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		ns, err := newNetNS()
		if err != nil {
			// Still in the new namespace: the thread must end with us.
			ch <- result{err: err}
			return
		}
		goruntime.UnlockOSThread()
		ch <- result{f: ns}
	}()
	r := <-ch
	return r.f, r.err
}

// newNetNS unshares a network namespace on this (locked) thread, opens it
// and returns the thread to its own. An error leaves the thread in the new
// namespace only if going back failed.
func newNetNS() (*os.File, error) {
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("new network namespace: %w", err)
	}
	defer own.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("new network namespace: %w", err)
	}
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err == nil {
		err = unix.Setns(int(own.Fd()), unix.CLONE_NEWNET)
		if err != nil {
			ns.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("new network namespace: %w", err)
	}
	return ns, nil
}

// joinPath is how the namespace constructor (package nsenter) joins a
// namespace of type typ that this process holds open as f: by a path to
// f's descriptor here, which it opens once told to go on. Nothing is
// passed down to the container's process.
func joinPath(typ string, f *os.File) string {
	return fmt.Sprintf("%s=/proc/%d/fd/%d", typ, os.Getpid(), f.Fd())
}

// loopbackUp brings up lo in this thread's network namespace. A new
// namespace has lo down, so even 127.0.0.1 is unreachable; docker and runc
// bring it up in every namespace they make, and programs rely on it. One
// ioctl pair on a socket: microseconds on the start path.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}
