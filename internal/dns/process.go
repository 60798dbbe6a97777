package dns

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A network's server is one process, `hull dns NETWORK`, with two files
// in the directory Ensure and Run are given (<runRoot>/networks/dns):
//
//	NETWORK.pid   flocked by the server for its whole life, its pid inside
//	              (written by Ensure): held = a server runs or is dying;
//	              the lock goes with the process, however it ends (kill
//	              -9 included), once all its threads have ended
//	NETWORK.lock  flocked briefly by whoever decides whether a server is
//	              needed: a starter (Ensure) and a server about to exit
//	              (Run), so that a container attaching while the server
//	              leaves is never left without one
//	NETWORK.log   the server's stdout and stderr
//
// Ensure runs after the attachment's record is written. Under the lock it
// finds the pidfile held (a server runs, and will see the record before it
// decides to exit, as it decides under the same lock) or takes it, binds
// the server's sockets itself and starts the process with both: queries
// sent before the process is up wait in the sockets' queues, so nobody
// waits for it to start, and two racing Ensures end with one server.
//
// A server killed (-9) leaves the pidfile unlocked: the next Ensure for the
// network (the next container attaching to it) starts a new one, but until
// then the network's containers resolve nothing. The lock goes only when
// the last of the killed process's threads has ended, which on a loaded
// host can be well after its leader is a zombie: an Ensure finding the
// pidfile held by a process that is exiting waits for it to be gone, with
// its sockets, and starts a new one.

// Files passed to the server process (its fds 3, 4, 5).
const (
	fdPidfile = 3 + iota
	fdUDP
	fdTCP
)

// InheritedEnv is set in the server process's environment by Ensure; Run
// takes its sockets from the descriptors it names.
const InheritedEnv = "_HULL_DNS_FDS"

// StartOptions say how to start a network's server.
type StartOptions struct {
	// Dir holds the pidfiles, locks and logs of the servers.
	Dir     string
	Network string
	// Addr is where it listens (port 53): the network's gateway.
	Addr netip.Addr
	// Command is the server's command line (hull ... dns NETWORK).
	Command []string
}

// Ensure starts the network's server unless one runs (see above). It
// binds Addr's port 53 itself: an error says the port is taken.
func Ensure(o StartOptions) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("network %s: name server: %w", o.Network, err)
	}
	unlock, err := lockFile(filepath.Join(o.Dir, o.Network+".lock"), true)
	if err != nil {
		return fmt.Errorf("network %s: name server: %w", o.Network, err)
	}
	defer unlock()
	pidfile, err := os.OpenFile(filepath.Join(o.Dir, o.Network+".pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("network %s: name server: %w", o.Network, err)
	}
	defer pidfile.Close()
	running, err := lockPidfile(pidfile, o.Network)
	if err != nil || running {
		return err
	}
	udp, tcp, err := listen(o.Addr)
	if errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("network %s: its name server: %w (another DNS server on the host listens on all addresses? bind it to its own)", o.Network, err)
	}
	if err != nil {
		return fmt.Errorf("network %s: its name server: %w", o.Network, err)
	}
	defer udp.Close()
	defer tcp.Close()
	log, err := os.OpenFile(filepath.Join(o.Dir, o.Network+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("network %s: name server: %w", o.Network, err)
	}
	defer log.Close()
	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{pidfile, udp, tcp}
	cmd.Env = append(os.Environ(), InheritedEnv+"="+strconv.Itoa(fdPidfile))
	// Its own session, away from the container's terminal and signals;
	// and the sibling of the caller (a container's monitor), not its
	// child: the server outlives the monitor, which must not be left
	// with a zombie to reap, nor hand it to hull-shim.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: unix.CLONE_PARENT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("network %s: start the name server: %w", o.Network, err)
	}
	// The pid is in the pidfile before the network's lock is let go, so
	// that the next Ensure finding the pidfile held can tell a server
	// that runs from one that is dying (lockPidfile).
	pidfile.Truncate(0)
	pidfile.WriteAt([]byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0)
	cmd.Process.Release()
	return nil
}

// exitWait bounds how long Ensure waits for a killed server to be gone.
const exitWait = 5 * time.Second

// lockPidfile takes the network's pidfile for a new server, unless a
// server runs (running). Held by a server that is exiting (killed), it
// waits for that server to be gone: the leader of a killed process is a
// zombie while its other threads are still ending and still hold its
// files, the pidfile's lock and the port's sockets; taking it for a
// running server would leave the network without one.
func lockPidfile(pidfile *os.File, network string) (running bool, err error) {
	deadline := time.Now().Add(exitWait)
	for {
		err := unix.Flock(int(pidfile.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		pid := readPid(pidfile)
		if err == nil {
			// The last server killed, it may have let go of the lock
			// and not yet of the port.
			if pid != 0 && exiting(pid) {
				waitGone(pid, time.Until(deadline))
			}
			return false, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return false, fmt.Errorf("network %s: name server: lock %s: %w", network, pidfile.Name(), err)
		}
		if pid == 0 || !exiting(pid) {
			return true, nil
		}
		if !time.Now().Before(deadline) {
			return false, fmt.Errorf("network %s: the name server (pid %d) was killed but still holds %s: %w", network, pid, pidfile.Name(), err)
		}
		if !waitGone(pid, time.Until(deadline)) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// exiting says whether process pid has begun to exit, or is gone: its
// leader thread is past the start of exit (PF_EXITING in its flags, a
// zombie). Not its command line: that of a process just started is empty
// for a moment after the exec that Ensure waits for.
func exiting(pid int) bool {
	const pfExiting = 0x4 // PF_EXITING, include/linux/sched.h
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 7 {
		return true
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfExiting != 0 || f[0] == "Z" || f[0] == "X"
}

// waitGone waits up to timeout for process pid to have ended, all its
// threads: only then are its files closed, its locks and ports free. It
// says false if it could not tell (the process reaped already, its
// files closed, or no pidfds).
func waitGone(pid int, timeout time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	// A pidfd is readable once the whole thread group has exited.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, max(1, int(timeout/time.Millisecond)))
		if !errors.Is(err, unix.EINTR) {
			return true
		}
	}
}

// listen binds addr's port 53, UDP and TCP, and returns both as files.
func listen(addr netip.Addr) (udp, tcp *os.File, err error) {
	ap := netip.AddrPortFrom(addr, 53)
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s/udp: %w", ap, err)
	}
	defer uc.Close()
	tl, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s/tcp: %w", ap, err)
	}
	defer tl.Close()
	if udp, err = uc.File(); err != nil {
		return nil, nil, err
	}
	if tcp, err = tl.File(); err != nil {
		udp.Close()
		return nil, nil, err
	}
	return udp, tcp, nil
}

// lockFile flocks path (made if missing), waiting if wait, and returns
// the unlock.
func lockFile(path string, wait bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// RunOptions configure the server process.
type RunOptions struct {
	Dir     string
	Network string
	Zone    Zone
	// Idle reports whether the network has no attachment left.
	Idle func() bool
	// Poll is how often Idle is asked, Linger how long it must have
	// said so before the server exits (1 s and 3 s if zero): a
	// container restarting finds the server still there.
	Poll, Linger time.Duration
}

// Run is the server process Ensure started: it serves the sockets it was
// given until the network has been idle for Linger, then exits under the
// network's lock (see above).
func Run(o RunOptions) error {
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	if o.Linger == 0 {
		o.Linger = 3 * time.Second
	}
	if os.Getenv(InheritedEnv) == "" {
		return fmt.Errorf("network %s: the name server is started by hull when a container attaches to the network, not by hand", o.Network)
	}
	os.Unsetenv(InheritedEnv)
	pidfile := os.NewFile(fdPidfile, "pidfile")
	udpFile, tcpFile := os.NewFile(fdUDP, "udp"), os.NewFile(fdTCP, "tcp")
	udp, err := net.FilePacketConn(udpFile)
	if err != nil {
		return fmt.Errorf("network %s: name server: udp socket: %w", o.Network, err)
	}
	tcp, err := net.FileListener(tcpFile)
	if err != nil {
		return fmt.Errorf("network %s: name server: tcp socket: %w", o.Network, err)
	}
	udpFile.Close()
	tcpFile.Close()
	fmt.Printf("%s hull dns %s: serving on %s (pid %d)\n", time.Now().Format(time.RFC3339), o.Network, udp.LocalAddr(), os.Getpid())

	s := NewServer(o.Zone)
	done := make(chan error, 1)
	go func() { done <- s.Serve(udp, tcp) }()
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	var idleSince time.Time
	for {
		select {
		case err := <-done:
			return fmt.Errorf("network %s: name server: %w", o.Network, err)
		case now := <-tick.C:
			if !o.Idle() {
				idleSince = time.Time{}
				continue
			}
			if idleSince.IsZero() {
				idleSince = now
			}
			if now.Sub(idleSince) < o.Linger || !exitIfIdle(o, s, pidfile) {
				continue
			}
			<-done
			fmt.Printf("%s hull dns %s: no container left, exiting\n", time.Now().Format(time.RFC3339), o.Network)
			return nil
		}
	}
}

// exitIfIdle decides under the network's lock: still idle, the server
// closes its sockets and lets go of the pidfile, so that the next Ensure,
// waiting for the lock, starts a new one; else it goes on.
func exitIfIdle(o RunOptions, s *Server, pidfile *os.File) bool {
	unlock, err := lockFile(filepath.Join(o.Dir, o.Network+".lock"), true)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// The run root is gone: nobody can start another server there.
	case err != nil:
		return false
	default:
		defer unlock()
	}
	if !o.Idle() {
		return false
	}
	s.Shutdown()
	pidfile.Truncate(0)
	pidfile.Close()
	return true
}

// Running returns the pid of the network's server, 0 if none runs. It
// reads the pidfile and looks the process up (a server killed -9 leaves
// its pid behind); it takes no lock, which would make a starter think a
// server runs.
func Running(dir, network string) int {
	f, err := os.Open(filepath.Join(dir, network+".pid"))
	if err != nil {
		return 0
	}
	defer f.Close()
	if pid := readPid(f); pid != 0 && isServer(pid, network) {
		return pid
	}
	return 0
}

// readPid returns the pid in pidfile, 0 if none.
func readPid(pidfile *os.File) int {
	var buf [32]byte
	n, _ := pidfile.ReadAt(buf[:], 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// isServer says whether process pid is network's server and alive: a
// dying process's command line is empty (its leader has let go of its
// memory), as is a zombie's (and, for a moment, that of a server just
// started).
func isServer(pid int, network string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte("\x00dns\x00"+network+"\x00"))
}
