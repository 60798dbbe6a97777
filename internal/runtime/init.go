package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/seccomp"
	"hull/internal/trace"
)

func init() {
	// Package init runs on the main thread with the main goroutine
	// locked to it; keep it there, so the thread that unshares and execs
	// is the thread group leader whose namespaces /proc/PID/ns shows.
	if IsInit() {
		goruntime.LockOSThread()
	}
}

// testHookSetup, set only by this package's tests in the init the test
// binary becomes (see TestMain), checks the process as its Go setup starts
// ("start") and just before it execs the user's program ("exec"); an
// error fails the setup.
var testHookSetup func(stage string) error

// IsInit reports whether this process is a container init or exec'd
// process started by this package (the nsenter constructor already ran).
func IsInit() bool { return os.Getenv("_HULL_SYNCFD") != "" }

// InitMain runs the container side of create or exec and never returns:
// it either execs the user process or exits with status 1 after reporting
// the failure to the parent. cmd/hull calls it before anything else when
// IsInit is true.
func InitMain() {
	// Credentials, capabilities, seccomp and no_new_privs are per
	// thread; everything below runs on this one, which then execs.
	goruntime.LockOSThread()
	trace.Mark("init: main")
	syncFD, _ := strconv.Atoi(os.Getenv("_HULL_SYNCFD"))
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "_HULL_") {
			os.Unsetenv(kv[:strings.IndexByte(kv, '=')])
		}
	}
	// Hooks this process runs must not inherit the sync socket (nor
	// the fifo and console below): a hook outliving the init would hide
	// its death from the parent.
	unix.CloseOnExec(syncFD)
	sync := os.NewFile(uintptr(syncFD), "sync")
	buf := make([]byte, 1<<20)
	var cfg initConfig
	tree, err := readMsgFD(sync, buf, &cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hull init: read config: %v\n", err)
		os.Exit(1)
	}
	cfg.rootfsTree = tree // sent with it to an early process (see Early)
	trace.Mark("init: config read")
	err = containerInit(&cfg, sync, buf)
	// Only failures get here.
	_ = sendMsg(sync, syncMsg{Type: "error", Error: err.Error()})
	fmt.Fprintf(os.Stderr, "hull init: %v\n", err)
	os.Exit(1)
}

// askParent sends the parent a request (typ) and waits for its typ-done;
// what names the request in errors.
func askParent(sync *os.File, buf []byte, typ, what string) error {
	if err := sendMsg(sync, syncMsg{Type: typ}); err != nil {
		return err
	}
	var m syncMsg
	if err := readMsg(sync, buf, &m); err != nil {
		return fmt.Errorf("wait for %s: %w", what, err)
	}
	if m.Type != typ+"-done" {
		return fmt.Errorf("%s failed: %s", what, m.Error)
	}
	return nil
}

func containerInit(cfg *initConfig, sync *os.File, buf []byte) error {
	if testHookSetup != nil {
		if err := testHookSetup("start"); err != nil {
			return err
		}
	}
	for _, fd := range []int{cfg.FifoFD, cfg.ConsoleFD} {
		if fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	spec := cfg.Spec
	proc := spec.Process
	if proc == nil || len(proc.Args) == 0 {
		return errors.New("process.args is empty")
	}
	if !cfg.Exec || cfg.ConsoleFD >= 0 {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	// The host's /proc, kept open across pivot_root to reopen exec.fifo
	// (the container may not mount a procfs of its own).
	procFD := -1
	if !cfg.Exec {
		fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /proc: %w", err)
		}
		procFD = fd
		if cfg.NewNet {
			if err := loopbackUp(); err != nil {
				return err
			}
		}
		if err := setupRootfs(cfg, sync, buf); err != nil {
			return err
		}
		trace.Mark("init: rootfs ready")
		reopenNullStdio()
		if cfg.NewUTS {
			if spec.Hostname != "" {
				if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
					return fmt.Errorf("sethostname %q: %w", spec.Hostname, err)
				}
			}
			if spec.Domainname != "" {
				if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
					return fmt.Errorf("setdomainname %q: %w", spec.Domainname, err)
				}
			}
		} else if spec.Hostname != "" {
			return errors.New("hostname is set but the container has no UTS namespace of its own")
		}
	}
	if cfg.ConsoleFD >= 0 {
		if err := setupConsole(cfg.ConsoleFD, proc.ConsoleSize); err != nil {
			return err
		}
	} else if cfg.Exec && proc.Terminal {
		return errors.New("process.terminal needs a console socket")
	}
	for _, rl := range cfg.Rlimits {
		res, ok := rlimitByName[rl.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		// syscall.Setrlimit also stops the Go runtime from restoring
		// its startup RLIMIT_NOFILE at exec.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return fmt.Errorf("setrlimit %s soft=%d hard=%d: %w", rl.Type, rl.Soft, rl.Hard, err)
		}
	}
	if cfg.NewCgroup {
		// Unless the constructor joined them, the parent moves us into
		// the container's cgroups while we boot; the new cgroup
		// namespace must be rooted there, so wait for the move. Only this
		// thread (the one that execs, and the thread group leader
		// /proc/PID/ns shows) needs the namespace.
		if !cfg.InCgroups {
			if err := askParent(sync, buf, "cgroup", "cgroup placement"); err != nil {
				return err
			}
		}
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if !cfg.Exec {
		if err := sendMsg(sync, syncMsg{Type: "ready"}); err != nil {
			return err
		}
		// Block until `start` opens the fifo for reading.
		fd, err := unix.Openat(procFD, "self/fd/"+strconv.Itoa(cfg.FifoFD), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open exec fifo: %w", err)
		}
		trace.Mark("init: started")
		if _, err := unix.Write(fd, []byte{'0'}); err != nil {
			return fmt.Errorf("write exec fifo: %w", err)
		}
		// fd stays open: it is close-on-exec, so `start` sees EOF exactly
		// when the user process has replaced this one, and only then
		// reports the container running (a signal sent after that
		// reaches the user's program, not this init).
		unix.Close(procFD)
		unix.Close(cfg.FifoFD)

		if spec.Hooks != nil {
			st := cfg.State
			// cfg.State.Pid is the pid the host sees (the spec's); ours may be 1.
			if st.Pid == 0 {
				st.Pid = os.Getpid()
			}
			st.Status = specs.StateCreated
			for _, h := range spec.Hooks.StartContainer {
				if err := runHook(h, st); err != nil {
					return fmt.Errorf("startContainer hook: %w", err)
				}
			}
		}
	}
	return finalize(cfg)
}

// finalize turns this process into the user process: working directory,
// user, capabilities, no_new_privs, seccomp, fds, execve.
func finalize(cfg *initConfig) error {
	proc := cfg.Spec.Process
	cwd := proc.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd %q set in config.json: %w", cwd, err)
	}
	// A cwd reached through a leaked host fd (/proc/self/fd/N) lies
	// outside our root; the kernel then reports it as "(unreachable)...".
	// Refuse rather than start the process on the host's filesystem
	// (the CVE-2024-21626 class).
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("cwd %q is outside the container (%q, %v)", cwd, wd, err)
	}
	if proc.OOMScoreAdj != nil && cfg.Exec {
		_ = os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*proc.OOMScoreAdj)), 0)
	}
	env := proc.Env
	path, err := lookPath(proc.Args[0], env)
	if err != nil {
		return err
	}
	var sc *specs.LinuxSeccomp
	if cfg.Spec.Linux != nil {
		sc = cfg.Spec.Linux.Seccomp
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, so it
	// goes in before the capabilities are dropped (the remaining
	// syscalls must then be allowed by it); with no_new_privs it goes
	// in last, just before execve.
	if sc != nil && !proc.NoNewPrivileges {
		if err := loadSeccomp(cfg, sc); err != nil {
			return err
		}
	}
	if err := setUser(proc); err != nil {
		return err
	}
	if proc.User.Umask != nil {
		unix.Umask(int(*proc.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	if err := applyCaps(proc.Capabilities); err != nil {
		return err
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	// Nothing but stdio and the preserved fds may reach the user
	// process (the CVE-2024-21626 class of leaks).
	if err := cloexecFrom(3 + cfg.PreserveFDs); err != nil {
		return err
	}
	if sc != nil && proc.NoNewPrivileges {
		if err := loadSeccomp(cfg, sc); err != nil {
			return err
		}
	}
	if testHookSetup != nil {
		if err := testHookSetup("exec"); err != nil {
			return err
		}
	}
	trace.Mark("init: exec")
	err = unix.Exec(path, proc.Args, env)
	return fmt.Errorf("exec %s: %w", proc.Args[0], err)
}

// lookPath finds the program the way a shell would, using the PATH of the
// container's environment (not the runtime's).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("exec %s: %w", name, err)
		}
		return name, nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			pathEnv = kv[5:]
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: %w", name, exec.ErrNotFound)
}

// setUser switches to the process user. PR_SET_KEEPCAPS keeps the
// permitted set across the uid change so applyCaps can set what the spec
// asks for even for a non-root user.
func setUser(proc *specs.Process) error {
	u := proc.User
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	// Raw syscalls change this thread's credentials only. That is all
	// execve passes on (it ends the other threads), and it spares the
	// signal to every thread that the libc and Go wrappers send to keep
	// a process's threads alike.
	gids := append([]uint32{}, u.AdditionalGids...)
	var list unsafe.Pointer
	if len(gids) > 0 {
		list = unsafe.Pointer(&gids[0])
	}
	// setgroups is refused in a user namespace whose setgroups file says
	// deny; then only an empty request is fine to skip.
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(list), 0); e != 0 && !(len(gids) == 0 && e == unix.EPERM) {
		return fmt.Errorf("setgroups %v: %w", gids, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	return nil
}

var rlimitByName = map[string]int{
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
}

// marshalState renders a state for hooks.
func marshalState(st specs.State) []byte {
	b, _ := json.Marshal(st)
	return b
}

// cloexecFrom marks every fd >= first close-on-exec. close_range does it in
// one call; some kernels and sandboxes refuse it (EPERM seen on this
// project's CI VM without no_new_privs), so fall back to /proc/self/fd and
// then to every possible fd number.
func cloexecFrom(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
				_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
			}
		}
		return nil
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	for fd := first; uint64(fd) < rl.Cur; fd++ {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	}
	return nil
}

// loadSeccomp installs the filter the parent compiled, or compiles sc here
// when it sent none.
func loadSeccomp(cfg *initConfig, sc *specs.LinuxSeccomp) error {
	if cfg.Seccomp != nil {
		return cfg.Seccomp.Install()
	}
	return seccomp.Load(sc)
}

// reopenNullStdio replaces each of fds 0-2 that is the host's /dev/null
// (what a monitor gives a container without input) with the container's
// own /dev/null, opened the same way. Nothing changes for the program;
// but a checkpoint's CRIU can then dump the file like any other of the
// container's, where the host's, on a mount outside the container, would
// have to be declared external and found again at restore.
func reopenNullStdio() {
	for fd := 0; fd <= 2; fd++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			continue
		}
		null, err := unix.Open("/dev/null", flags&unix.O_ACCMODE|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // no /dev/null in the container: keep the host's
		}
		var own unix.Stat_t
		if unix.Fstat(null, &own) == nil && own.Dev != st.Dev {
			unix.Dup3(null, fd, 0)
		}
		unix.Close(null)
	}
}
