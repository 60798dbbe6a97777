package runtime

import (
	"context"
	"fmt"
	"net"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// DialInNetNS dials addr from inside the network namespace at nsPath (a
// pinned namespace file, or /proc/PID/ns/net): the socket is made on a
// locked thread moved into the namespace, and stays in it, so the
// connection is one a process of that namespace would make (its
// loopback, its routes). The thread then returns to its own namespace;
// should that fail, it is never unlocked, so Go ends it rather than
// running other goroutines in the wrong namespace.
func DialInNetNS(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		c, back, err := dialIn(ctx, nsPath, network, addr)
		if back {
			goruntime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// dialIn enters the namespace on this (locked) thread, dials and goes
// back; back reports whether the thread is in its own namespace again.
func dialIn(ctx context.Context, nsPath, network, addr string) (c net.Conn, back bool, err error) {
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, err
	}
	defer own.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, true, fmt.Errorf("network namespace: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("enter network namespace %s: %w", nsPath, err)
	}
	var d net.Dialer
	c, err = d.DialContext(ctx, network, addr)
	if serr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); serr != nil {
		if c != nil {
			c.Close()
		}
		return nil, false, fmt.Errorf("leave network namespace %s: %w", nsPath, serr)
	}
	return c, true, err
}
