package kube

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
)

// A supervisor is one long-lived process per live pod that spends
// nearly all its time asleep between relists, with about 1 MB of live
// heap: memory it holds matters more than the CPU of a few more
// collections. Measured (docs/kube.md "Known limits"): kubelet's
// default GOGC=100 keeps a 4 MB heap goal (and the pages of the sandbox
// setup's peak) resident; glibc gives each thread that calls into C
// (SQLite) an arena of its own.

// supervisorGOGC is the supervisor's GC percent unless GOGC is set.
const supervisorGOGC = 25

// supervisorEnv is added to the supervisor's environment when it is
// started: glibc reads it once, at the process's start.
var supervisorEnv = []string{"MALLOC_ARENA_MAX=1"}

// tuneSupervisorMemory keeps the malloc setting from the processes the
// supervisor starts.
func tuneSupervisorMemory() {
	os.Unsetenv("MALLOC_ARENA_MAX")
}

// startGOGC lets a `hull kube` command collect less often than Go's
// default, unless GOGC is set: a command is short (or, for a watch, holds
// little), and apply's and a new supervisor's first round (the manifest's
// strict decoding, the sandbox, the containers) allocate most of what
// they ever do; each collection on the 2-core test machine took processor
// time from the processes starting the pod. A supervisor lowers it once
// its first round is recorded (lowerGOGC).
func startGOGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(startGCPercent)
	}
}

// startGCPercent is a command's GC percent until a supervisor lowers it.
const startGCPercent = 400

// lowerGOGC sets the supervisor's GC percent, unless GOGC is set. Supervise
// calls it once the pod's first round is recorded: that round (the
// sandbox, the pulls, the containers' creation and start) allocates most
// of what a supervisor ever does, and with the low percent it ran several
// collections more, on the path from apply to Running.
func lowerGOGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(supervisorGOGC)
	}
}

// freeHeapLimit is how much free heap (pages the Go runtime holds but
// no object uses) a supervisor keeps between rounds.
const freeHeapLimit = 1 << 20

// releaseFreeMemory returns free heap pages to the system when a round
// left more than freeHeapLimit of them: the runtime's scavenger returns
// them only slowly, and a round that made a sandbox (its network setup
// reads the whole nftables ruleset) peaks at several MB. An idle round
// allocates little and costs one metrics read.
func releaseFreeMemory() {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 && s[0].Value.Uint64() > freeHeapLimit {
		debug.FreeOSMemory()
	}
}
