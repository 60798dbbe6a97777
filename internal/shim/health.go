package shim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HealthMain is `hull-shim health -- ROUND...`: the idle part of a
// container's health checks. Its parent is the container's monitor, which
// starts it when the container has a check; it runs ROUND (`hull health
// ID`: one round of probing, see the engine's ProbeRound) again and again,
// each time waiting as long as the round's line on stdout (Round) says,
// until the monitor exits. Between rounds a container's checks so cost
// the resident memory of this small static program; the large hull
// binary runs only for a round.
func HealthMain(argv []string) error {
	if len(argv) < 2 || argv[0] != "--" {
		return errors.New("hull-shim health is started by hull's monitor, not by hand")
	}
	round, parent := argv[1:], os.Getppid()
	Repeat(func() Round {
		var out strings.Builder
		cmd := exec.Command(round[0], round[1:]...)
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "hull-shim health: %v\n", err)
			return Round{Next: time.Second}
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// A round can take a probe's timeout; the monitor gone, the
		// round is of no use: it ends with this process.
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-done:
				if r, ok := ParseRound(out.String()); ok {
					return r
				}
				fmt.Fprintf(os.Stderr, "hull-shim health: %s: %v (output %q)\n", strings.Join(round, " "), err, out.String())
				return Round{Next: time.Second}
			case <-tick.C:
				if os.Getppid() != parent {
					cmd.Process.Kill()
					<-done
					return Round{}
				}
			}
		}
	})
	return nil
}

// Round is what a round of probing says of the next: run it after Next,
// or sooner, as soon as the container's process (Pid, started at Start,
// in clock ticks since boot as /proc shows it; 0: none) has exited,
// since a new run starts its health anew; Done: never again.
type Round struct {
	Next  time.Duration
	Pid   int
	Start uint64
	Done  bool
}

// String is the round's line: "next NS PID START", or "done".
func (r Round) String() string {
	if r.Done {
		return "done\n"
	}
	return fmt.Sprintf("next %d %d %d\n", int64(r.Next), r.Pid, r.Start)
}

// ParseRound reads a Round's line from a round's output (its last line).
func ParseRound(out string) (Round, bool) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if last == "done" {
		return Round{Done: true}, true
	}
	var r Round
	var next int64
	if n, err := fmt.Sscanf(last, "next %d %d %d", &next, &r.Pid, &r.Start); n != 3 || err != nil {
		return Round{}, false
	}
	r.Next = time.Duration(next)
	return r, true
}

// healthFirstRound is how long after its start the first round runs: the
// monitor starts the rounds while it starts the container, which is not
// yet running (nor to be slowed down by a round).
const healthFirstRound = 100 * time.Millisecond

// Repeat calls round until this process's parent exits (the container's
// monitor, whose pid holds through its hand-overs to hull-shim and back
// and through restarts: it exits once the container has stopped for
// good, or is removed), waiting between calls as each Round says. Once a
// round is done, it only waits for that. Outliving its parent, this
// process is reaped by init, never left a zombie.
func Repeat(round func() Round) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	parent := watch(os.Getppid(), 0)
	defer parent.close()
	r := Round{Next: healthFirstRound}
	for {
		if r.Done {
			r.Next = time.Hour
		}
		container := watch(r.Pid, r.Start)
		parentGone := waitEither(r.Next, parent, container)
		container.close()
		if parentGone {
			return
		}
		if !r.Done {
			r = round()
		}
	}
}

// watched is a process watched for its exit: through a pidfd, which turns
// readable the moment it exits, else polled.
type watched struct {
	pid   int
	start uint64
	fd    int
	ppid  bool // the parent: gone once getppid changes (on exit, children get another parent at once)
}

// watch watches pid, the process started at start (0: this process's
// parent, whatever its start); pid 0 is nothing (never exits).
func watch(pid int, start uint64) *watched {
	w := &watched{pid: pid, start: start, fd: -1, ppid: start == 0}
	if pid <= 0 {
		return w
	}
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		w.fd = fd
	}
	return w
}

func (w *watched) gone() bool {
	switch {
	case w.pid <= 0:
		return false
	case w.ppid:
		return os.Getppid() != w.pid
	}
	return ProcStart(w.pid) != w.start
}

func (w *watched) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
	}
}

// waitEither waits d, or until parent or other has exited; it reports
// whether parent has.
func waitEither(d time.Duration, parent, other *watched) bool {
	deadline := time.Now().Add(d)
	for {
		if parent.gone() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 || other.gone() {
			return false
		}
		var fds []unix.PollFd
		polled := false
		for _, w := range []*watched{parent, other} {
			if w.fd >= 0 {
				fds = append(fds, unix.PollFd{Fd: int32(w.fd), Events: unix.POLLIN})
			} else if w.pid > 0 {
				polled = true
			}
		}
		if polled {
			left = min(left, 100*time.Millisecond)
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if n > 0 && !parent.gone() && !other.gone() {
			// Readable for a moment while a process execs from another
			// thread (the monitor handing over): wait until it settles.
			time.Sleep(10 * time.Millisecond)
		} else if err != nil && !errors.Is(err, unix.EINTR) {
			time.Sleep(min(left, 100*time.Millisecond))
		}
	}
}

// ProcStart is a process's start time in clock ticks since boot (field
// 22 of /proc/PID/stat), or 0 if it does not exist or has exited.
func ProcStart(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	// A zombie has exited; its reaper (init, for a monitor whose starting
	// command is gone) may take its time. But a leader shown as a zombie
	// while its group still has threads is a process in the middle of
	// execve from another thread (the monitor handing over to its shim):
	// alive.
	if f[0] == "X" || f[0] == "Z" && f[17] == "1" {
		return 0
	}
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return start
}
