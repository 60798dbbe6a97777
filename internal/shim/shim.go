// Package shim is the small supervisor a detached container runs under
// once it has started. The monitor (the hull binary, large: it creates the
// container) execs hull-shim in its own process — so the shim is still the
// container init's parent — handing it the output pipes or pty master, the
// attach listener and the log. The shim copies output to the log and to
// attached clients, routes their input, reaps the container, reads the OOM
// count, and execs hull again ("hull monitor ID --resume ...") only to
// record the exit and apply the restart policy (a stop records it sooner,
// from the exit file the shim leaves first: exitfile.go). A running container so
// costs the resident memory of this small static program, not of hull.
//
// It is pure Go (CGO_ENABLED=0): hull-shim is built static.
package shim

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/streams"
	"hull/internal/trace"
)

// Exit is how the container ended, as the shim passes it back to hull.
type Exit struct {
	Code        int    `json:"code"`
	Signal      int    `json:"signal,omitempty"`
	OOMKilled   bool   `json:"oom,omitempty"`
	At          int64  `json:"at"` // unix nanoseconds
	MemoryPeak  uint64 `json:"peak,omitempty"`
	MemoryLimit uint64 `json:"limit,omitempty"`
	// Pid is the container's process that ended (in the exit file).
	Pid int `json:"pid,omitempty"`
}

// The descriptors the monitor hands over (-1 or absent: none).
const (
	FDListener = 3
	FDOut      = 4 // stdout pipe, or the pty master with a terminal
	FDErr      = 5
	FDIn       = 6
)

// The flags the shim adds to the monitor's command line (Args.Resume)
// when it execs back into it: the exit, as JSON, and the descriptor of
// the attach listener it kept.
const (
	ResumeFlag     = "resume"
	ListenerFDFlag = "listener-fd"
)

// Args are the shim's command line, built by the monitor.
type Args struct {
	Pid         int
	TTY         bool
	HasListener bool
	HasIn       bool
	Log         string
	LogMaxSize  int64
	LogMaxFiles int
	CgroupPath  string
	OOMBaseline uint64
	// ExitFile, if set, is where the exit is written before the exec
	// back into hull (WriteExit), for a stopper to record it sooner.
	ExitFile string
	// Resume is the hull command line that records the exit; the shim
	// appends --resume=<Exit as JSON> (ResumeFlag) and ListenerFDFlag.
	Resume []string
}

// flagSet is the shim's command line, bound to a's fields: Main parses
// it and Argv renders it, so each flag is named in this one place.
func (a *Args) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("hull-shim", flag.ContinueOnError)
	fs.IntVar(&a.Pid, "pid", 0, "container init pid")
	fs.BoolVar(&a.TTY, "tty", false, "")
	fs.BoolVar(&a.HasListener, "listener", false, "")
	fs.BoolVar(&a.HasIn, "stdin", false, "")
	fs.StringVar(&a.Log, "log", "", "")
	fs.Int64Var(&a.LogMaxSize, "log-max-size", 0, "")
	fs.IntVar(&a.LogMaxFiles, "log-max-files", 1, "")
	fs.StringVar(&a.CgroupPath, "cgroup", "", "")
	fs.Uint64Var(&a.OOMBaseline, "oom-baseline", 0, "")
	fs.StringVar(&a.ExitFile, "exit-file", "", "")
	return fs
}

// Argv renders a for exec: path first.
func (a Args) Argv(path string) []string {
	var b Args
	fs := b.flagSet()
	b = a // the flags read b's fields
	argv := []string{path}
	fs.VisitAll(func(f *flag.Flag) { argv = append(argv, "--"+f.Name+"="+f.Value.String()) })
	return append(append(argv, "--"), a.Resume...)
}

// Main is hull-shim's body.
func Main(argv []string) error {
	var a Args
	fs := a.flagSet()
	if err := fs.Parse(argv); err != nil {
		return err
	}
	a.Resume = fs.Args()
	// The shim allocates little (output chunks); collecting only near a
	// small limit keeps the collector, and the pages it touches, idle.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(16 << 20)
	if a.Pid <= 0 || len(a.Resume) == 0 {
		return errors.New("hull-shim is started by hull's monitor, not by hand")
	}
	log, err := streams.OpenLog(a.Log, a.LogMaxSize, a.LogMaxFiles)
	if err != nil {
		return err
	}
	var srv *streams.Server
	if a.HasListener {
		srv, err = inheritListener(FDListener)
		if err != nil {
			return err
		}
	}
	var out, errf, master, in *os.File
	if a.TTY {
		master = pollable(FDOut, "pty")
	} else {
		out, errf = pollable(FDOut, "stdout"), pollable(FDErr, "stderr")
	}
	if a.HasIn {
		in = os.NewFile(FDIn, "stdin")
	}
	outputs := streams.Pump(log, srv, out, errf, master, in)
	TrimPages()
	settle := time.AfterFunc(2*time.Second, TrimPages)

	x := Reap(a.Pid)
	trace.Mark("shim: reaped")
	settle.Stop()
	if m, err := cgroups.Load(a.CgroupPath, nil); err == nil {
		if mem, err := m.Memory(); err == nil {
			x.OOMKilled = mem.OOMKills > a.OOMBaseline
			x.MemoryPeak, x.MemoryLimit = mem.Peak, mem.Limit
		}
	}
	trace.Mark("shim: stats")
	if srv != nil {
		srv.CloseInput()
	} else if in != nil {
		in.Close()
	}
	// The pty holds what the container wrote last until it is read:
	// the copy drains it and ends at EIO (a process left holding the
	// terminal: at AwaitOutputs' deadline). Closing the master first
	// lost a short-lived container's output.
	streams.AwaitOutputs(outputs, out, errf, master)
	if master != nil {
		master.Close()
	}
	log.Close()
	trace.Mark("shim: drained")
	if a.ExitFile != "" {
		x.Pid = a.Pid
		if err := WriteExit(a.ExitFile, x); err != nil {
			fmt.Fprintf(os.Stderr, "hull-shim: %v\n", err) // the monitor records it all the same
		}
		trace.Mark("shim: exit file written")
	}

	// Back to hull, keeping the attach listener for the monitor: a copy
	// above every descriptor in use, left open across the exec.
	report, _ := json.Marshal(x)
	resume := append(append([]string(nil), a.Resume...), "--"+ResumeFlag+"="+string(report))
	if srv != nil {
		if f, err := srv.Listener().(*net.UnixListener).File(); err == nil {
			if fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD, 100); err == nil {
				resume = append(resume, fmt.Sprintf("--%s=%d", ListenerFDFlag, fd))
			}
		}
	}
	// GOMAXPROCS=1 was for the shim alone (see the monitor's handOver).
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	err = unix.Exec(resume[0], resume, env)
	return fmt.Errorf("exec %s: %w", strings.Join(resume, " "), err)
}

// inheritListener serves attach clients on the listener at fd, which this
// process inherited across an exec. FileListener works on a copy; closing
// the original through its *os.File (not by number) keeps a finalizer
// from closing the number again later, when it may name something else.
func inheritListener(fd int) (*streams.Server, error) {
	f := os.NewFile(uintptr(fd), "attach")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("attach listener (fd %d): %w", fd, err)
	}
	return streams.Serve(ln), nil
}

// InheritListener is inheritListener for the monitor that a shim execs.
func InheritListener(fd int) (*streams.Server, error) { return inheritListener(fd) }

// Reap waits for the child pid to end and says how: its exit code, or
// 128+signal for a signal, as shells report it.
func Reap(pid int) Exit {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	x := Exit{At: time.Now().UnixNano()}
	switch {
	case ws.Exited():
		x.Code = ws.ExitStatus()
	case ws.Signaled():
		x.Signal = int(ws.Signal())
		x.Code = 128 + x.Signal
	}
	return x
}

// pollable opens an inherited pipe for Go's poller. The monitor's hand-over
// leaves the pipes in blocking mode (taking a descriptor from an os.File
// does), and a file opened on a blocking descriptor takes no read
// deadline, which ends the output's copy once the container has exited
// (streams.AwaitOutputs).
func pollable(fd int, name string) *os.File {
	unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}
