// Package faults is hull's standing fault-injection campaign (issue 11): it
// kills hull processes (the CLI, the monitor, the shim-exec'd monitor) with
// SIGKILL at named stages (HULL_FAULT, see internal/trace) and after random
// delays, during pull, run -d, run --rm, start, stop, exec and rm, and
// checks that the next commands recover: no container left in a
// transitional state, no lost record, the right exit statuses, and nothing
// orphaned (process, mount, cgroup, snapshot, container directory) once
// everything is removed.
//
// The tests drive the built binary (HULL_BIN, as `make test`, `make faults`
// and `make stress` pass it) in private temp roots, against a local
// registry (internal/testenv). They need root.
//
//	go test ./test/faults/                      short pass (a few kills per operation)
//	HULL_FAULTS=full go test ./test/faults/     every mark of every operation, random delays, several rounds
//	                                            (HULL_FAULTS_ROUNDS, default 3; HULL_FAULTS_SEED replays the delays)
//	HULL_STRESS=1 go test -run Churn ./test/faults/   1000 containers of mixed churn, then the leak count
//	                                            (HULL_STRESS_N containers, HULL_STRESS_WORKERS at a time)
//
// Each prints its figures: faults injected / stuck / lost / leaked (and
// wrong statuses, failed recovery commands, what `hull system check`
// reports where the build has it); the churn count and its leaks.
package faults
