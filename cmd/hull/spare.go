package main

// `hull run` needs a monitor for its container, and starting one (a hull
// process: the Go runtime, package initialisation, the database) takes
// longer than the rest of a short run's set-up on the CLI's side. So the
// monitor is started before it is known what it will monitor, as a spare
// (engine.StartSpare), and the sooner the better: the C constructor in
// spare.c starts it before this process's own Go runtime, as a copy of this
// command (same arguments, _HULL_SPARE set to the id the container will get
// when its process can be started ahead, see runtime.Early). The copy
// parses the same command line, so it knows what `hull monitor -` would
// have been told (--wait-attach unless -d, --new-netns with --network
// none, the early id unless -t, -i or -m), and becomes that monitor (run's
// RunE calls serveMonitor). The command adopts it (adoptedSpare); when the
// constructor could not start it, the command starts one itself.

/*
extern int hull_spare_pid, hull_spare_sync, hull_spare_id;
extern char hull_spare_early[65];
extern void hull_spare_start(int argc, char **argv);
static void __attribute__((constructor)) hull_spare_init(int argc, char **argv) { hull_spare_start(argc, argv); }
*/
import "C"

import (
	"os"

	"golang.org/x/sys/unix"

	"hull/internal/engine"
)

// spareOf is, in the copy of `hull run` the constructor started, the early
// id it was given; "" in any other process (a _HULL_SPARE without the
// constructor's pipes at descriptors 3 and 4 is ignored).
var spareOf = func() string {
	v := os.Getenv("_HULL_SPARE")
	// Not for anything this process starts (hull-shim execs back into
	// `hull monitor`).
	os.Unsetenv("_HULL_SPARE")
	for _, fd := range []int{engine.MonitorReportFD, engine.SpareMonitorFD} {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			return ""
		}
	}
	return v
}()

// adoptedSpare returns the spare monitor the constructor started, with the
// id the container gets if its process is started ahead; nil, "" if none
// was started. Only the first call gets it.
func adoptedSpare(waitAttach bool) (*engine.Spare, string) {
	pid := int(C.hull_spare_pid)
	if pid <= 0 {
		return nil, ""
	}
	C.hull_spare_pid = 0
	return engine.AdoptSpare(pid, int(C.hull_spare_sync), int(C.hull_spare_id), waitAttach), C.GoString(&C.hull_spare_early[0])
}
