package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"hull/internal/trace"
)

// ExecMain is `hull-shim exec -- RECORD...`: the supervisor of one process
// exec'd in a running container, so that the process does not depend on
// the command that asked for it (hull exec, later a CRI server) staying
// alive, as docker's and containerd's exec'd processes do not.
//
// The caller starts the shim first, while it prepares the exec, so that
// the shim's own start costs the exec no time. Its fd 3 is the control
// socket (a stream) to the caller, and it is a child subreaper:
//
//   - The caller's runtime sends the init to start (ExecInit, with the
//     init's descriptors and copies of the output pipes' read ends): the
//     shim starts it as its child, so the process the init forks into
//     the container is the shim's child too. The caller goes on driving
//     the init over the sync socket, and reads the process's output.
//   - The caller sends "pid N\n" once the process runs, with the pty
//     master attached when it has a terminal; the shim answers
//     "exit CODE\n" when the process has exited (shell style:
//     128+signal), and exits.
//   - If the control socket ends after the pid (the caller died, or gave
//     the process up: exec -d), the shim reads and discards the output so
//     that the process neither blocks nor dies of a closed pipe, and when
//     it exits, execs RECORD with the status appended (hull exec-exited
//     ID) to record the end in hull's database.
//   - An end before the pid is a failed exec: the shim reaps what there
//     is and exits.
func ExecMain(argv []string) error {
	if len(argv) < 2 || argv[0] != "--" {
		return errors.New("hull-shim exec is started by hull's engine, not by hand")
	}
	record := argv[1:]
	ctl := os.NewFile(3, "control")
	unix.CloseOnExec(3)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	// The terminal hanging up is the caller's business, not the shim's.
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)

	// One thread, no goroutines: a wake-up here is on the path of every
	// exec's start and end, and a second goroutine (with GOMAXPROCS=1)
	// waits for the runtime to hand it the processor.
	trace.Mark("shim exec: ready")
	initPid, drains, err := startInit(ctl)
	trace.Mark("shim exec: init started")
	if err != nil {
		reapAll()
		return err
	}
	pid, master, ok := readPid(ctl)
	if !ok {
		reapAll() // the exec failed, and the caller knows
		return nil
	}
	trace.Mark("shim exec: pid")
	// The init exits once it has forked the process; a zombie, it would
	// still count in the container's cgroup (pids.current, top).
	Reap(initPid)
	if master != nil {
		drains = append(drains, master)
	}
	code, ok := awaitExit(pid, ctl, drains)
	trace.Mark("shim exec: exited")
	if ok {
		return nil // the caller got the status and records the end
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	argv = append(append([]string(nil), record...), strconv.Itoa(code))
	err = unix.Exec(argv[0], argv, env)
	return fmt.Errorf("exec %s: %w", strings.Join(argv, " "), err)
}

// ExecInit is the init the runtime asks the shim to start, sent on the
// control socket with descriptors: the init's stdio, its Files more, then
// the binary when Exe is set (it is the caller's /proc/self/fd/N), then
// Drains copies of the output pipes' read ends for the shim.
type ExecInit struct {
	Path   string   `json:"path"`
	Exe    bool     `json:"exe,omitempty"`
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Files  int      `json:"files"`
	Drains int      `json:"drains"`
	// Pgid is the caller's process group, where the init goes: a
	// terminal's interrupt reaches the process as it would a child of the
	// caller (the shim has a group of its own).
	Pgid int `json:"pgid"`
}

// maxExecFDs bounds the descriptors of one ExecInit.
const maxExecFDs = 64

// SendExecInit sends the init to start: fds are the init's stdio and
// files, the binary's (if in.Exe), then the drains.
func SendExecInit(ctl *os.File, in ExecInit, fds []int) error {
	if len(fds) > maxExecFDs {
		return fmt.Errorf("exec init: %d descriptors, at most %d", len(fds), maxExecFDs)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return unix.Sendmsg(int(ctl.Fd()), b, unix.UnixRights(fds...), nil, 0)
}

// startInit receives the ExecInit and starts it, and returns its pid and
// the drains.
func startInit(ctl *os.File) (int, []*os.File, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*maxExecFDs))
	n, oobn, _, _, err := unix.Recvmsg(int(ctl.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return 0, nil, errors.New("hull-shim exec: the caller went before sending the init")
	}
	var in ExecInit
	if err := json.Unmarshal(buf[:n], &in); err != nil {
		return 0, nil, fmt.Errorf("hull-shim exec: the init: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if got, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), "init")
	}
	want := 3 + in.Files + in.Drains
	if in.Exe {
		want++
	}
	if len(files) != want {
		return 0, nil, fmt.Errorf("hull-shim exec: %d descriptors for the init, want %d", len(files), want)
	}
	path, rest := in.Path, files[3+in.Files:]
	if in.Exe {
		// Exec'd by its path in this process, close-on-exec (the init
		// does not get it), and above every descriptor the init is
		// given, which the start dup2s into place before the exec.
		high, err := unix.FcntlInt(rest[0].Fd(), unix.F_DUPFD_CLOEXEC, 1000)
		if err != nil {
			return 0, nil, fmt.Errorf("hull-shim exec: dup the init binary: %w", err)
		}
		path, rest = fmt.Sprintf("/proc/self/fd/%d", high), rest[1:]
	}
	init := &exec.Cmd{
		Path: path, Args: in.Args, Env: in.Env,
		Stdin: files[0], Stdout: files[1], Stderr: files[2], ExtraFiles: files[3 : 3+in.Files],
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pgid: in.Pgid},
	}
	err = init.Start()
	// The init has them: the caller must see the sync socket and the
	// output pipes end when the init and the process let go of them.
	for _, f := range files[:len(files)-len(rest)] {
		f.Close()
	}
	if err != nil {
		return 0, nil, fmt.Errorf("hull-shim exec: start init: %w", err)
	}
	return init.Process.Pid, rest, nil
}

// readPid reads the caller's "pid N" message and the pty master sent with
// it; false if the socket ends first.
func readPid(ctl *os.File) (int, *os.File, bool) {
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(ctl.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	var pid int
	if err != nil || n == 0 {
		return 0, nil, false
	}
	if _, err := fmt.Sscanf(string(buf[:n]), "pid %d\n", &pid); err != nil {
		return 0, nil, false
	}
	var master *os.File
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
			master = os.NewFile(uintptr(fds[0]), "pty")
		}
	}
	return pid, master, true
}

// awaitExit waits for the process pid (the shim's child) to exit and
// returns its status, shell style (128+signal), and whether the caller
// took it. Should the control socket end first (the caller is gone), it
// reads and discards the output meanwhile (drains), so that the process
// neither blocks on a full pipe nor dies of a closed one.
func awaitExit(pid int, ctl *os.File, drains []*os.File) (int, bool) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		pidfd = -1 // no pidfds (Linux < 5.3): wait blindly
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: int32(ctl.Fd()), Events: unix.POLLIN}}
	buf := make([]byte, 32*1024)
	callerGone := false
	for pidfd >= 0 {
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			break
		}
		if fds[0].Revents != 0 {
			break
		}
		for i := 1; i < len(fds); i++ {
			if fds[i].Revents == 0 {
				continue
			}
			n, _ := unix.Read(int(fds[i].Fd), buf)
			if n > 0 {
				continue
			}
			fds[i].Fd = -1 // ended (poll skips a negative fd)
			if i == 1 && !callerGone {
				callerGone = true
				for _, d := range drains {
					fds = append(fds, unix.PollFd{Fd: int32(d.Fd()), Events: unix.POLLIN})
				}
			}
		}
	}
	code := Reap(pid).Code
	if callerGone {
		return code, false
	}
	_, err = fmt.Fprintf(ctl, "exit %d\n", code)
	return code, err == nil
}

// reapAll reaps the shim's children until there is none.
func reapAll() {
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// ExecExit reads the shim's "exit CODE" report from the control socket;
// false if the socket ended without one.
func ExecExit(ctl io.Reader) (int, bool) {
	line, err := bufio.NewReader(ctl).ReadString('\n')
	if err != nil {
		return 0, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "exit ")))
	return code, err == nil
}

// SendExecPid tells the shim that the process runs, handing it the pty
// master (nil: none) that it keeps should the caller go.
func SendExecPid(ctl *os.File, pid int, master *os.File) error {
	var oob []byte
	if master != nil {
		oob = unix.UnixRights(int(master.Fd()))
	}
	return unix.Sendmsg(int(ctl.Fd()), []byte(fmt.Sprintf("pid %d\n", pid)), oob, nil, 0)
}
