package monitor

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"hull/internal/runtime"
	"hull/internal/shim"
)

// Shim configures the hand-over of detached containers to hull-shim.
type Shim struct {
	Path string // the static hull-shim binary
	// Resume is the hull command line ("hull ... monitor ID") the shim
	// execs to record the exit; it appends --resume and --listener-fd.
	Resume []string
	// ExitFile is where the shim leaves the exit before its exec back
	// (shim.WriteExit), for the engine's Stop to record it at once.
	ExitFile string
}

// handOver execs hull-shim in this process, which then supervises the
// running container (it stays the init's parent). It returns only if the
// descriptors could not be prepared; the monitor then supervises the
// container itself.
func (m *mon) handOver(c *runtime.Container, baseline uint64, io *stdio) {
	args := shim.Args{
		Pid: c.Pid, TTY: io.master != nil, HasIn: io.in != nil,
		Log: m.cfg.LogPath, LogMaxSize: m.cfg.LogMaxSize, LogMaxFiles: m.cfg.LogMaxFiles,
		CgroupPath: c.CgroupPath, OOMBaseline: baseline, Resume: m.cfg.Shim.Resume, ExitFile: m.cfg.Shim.ExitFile,
	}
	src := map[int]*os.File{}
	if io.master != nil {
		src[shim.FDOut] = io.master
	} else {
		src[shim.FDOut], src[shim.FDErr] = io.out, io.err
	}
	if io.in != nil {
		src[shim.FDIn] = io.in
	}
	if m.srv != nil {
		if ul, ok := m.srv.Listener().(*net.UnixListener); ok {
			if f, err := ul.File(); err == nil {
				src[shim.FDListener] = f
				args.HasListener = true
			}
		}
	}
	// Park every source above the targets first, so placing one never
	// overwrites another; dup3 with no flags leaves the copies open across
	// the exec.
	parked := map[int]int{}
	for target, f := range src {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			fmt.Fprintf(os.Stderr, "monitor: hand-over to %s: %v; supervising here\n", m.cfg.Shim.Path, err)
			return
		}
		parked[target] = fd
	}
	// From here the low descriptors are the shim's, whatever they were
	// (the database's among them): if the exec fails this process cannot
	// go on safely, so it exits and the next hull command finds the
	// container unsupervised, stops it and says why.
	for target, fd := range parked {
		if err := unix.Dup3(fd, target, 0); err != nil {
			fmt.Fprintf(os.Stderr, "monitor: hand-over to %s: %v\n", m.cfg.Shim.Path, err)
			os.Exit(125)
		}
		unix.Close(fd)
	}
	// One P from the start: the shim never needs two cores, and each P
	// (its caches, its thread) costs resident memory for the container's
	// whole life.
	err := unix.Exec(m.cfg.Shim.Path, args.Argv(m.cfg.Shim.Path), append(os.Environ(), "GOMAXPROCS=1"))
	fmt.Fprintf(os.Stderr, "monitor: exec %s: %v\n", m.cfg.Shim.Path, err)
	os.Exit(125)
}
