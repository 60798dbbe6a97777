package engine

import (
	"context"
	"os"
	"strconv"

	"hull/internal/hugeheap"
	"hull/internal/spec"
)

// Spares of a caller's own: a long-lived front end (the CRI server) that
// creates a container in one call and starts it in another, maybe
// concurrently with other calls, keeps spare monitors itself (NewSpare)
// and passes one per container: Create sends it the container's spec and
// record ahead (CreateOptions.Spare), Start hands it the container
// (StartOptions.Spare). The engine's own spare (UseSpare, the CLI's) is
// not involved: it stays the one of a single command.

// NewSpare starts a spare monitor for a caller to keep (see above): a
// `hull monitor -` (MonitorCommand) that opens its engine and waits for a
// container. It prepares nothing before it is sent a spec; once sent one,
// it starts the container's process as the spec says, in its pod's
// namespaces and its cgroups (MonitorOptions.EarlyOnSpec), and opens the
// container's log and attach socket. One never handed a
// container ends when Close is called, or when this process exits (it
// reads end-of-file). Nil if it could not start.
//
// pooled says the spare may wait long for its container (a pool's): it
// starts without huge pages for its heap (hugeheap.SmallPagesEnv), whose
// unused parts it would keep all that time (3.5 MB more per idle spare,
// measured), while a spare bound at once (a new pod's) takes them for a
// quicker start.
func (e *Engine) NewSpare(pooled bool) *Spare {
	if e.MonitorCommand == nil {
		return nil
	}
	cmd := e.MonitorCommand(SpareID, false)
	cmd.Args = append(cmd.Args, "--"+MonitorFlagEarlyOnSpec)
	if pooled {
		cmd.Env = append(cmd.Environ(), hugeheap.SmallPagesEnv+"=1")
	}
	// This process's sealed copy of hull-init, for the spare to adopt
	// (runtime.SealedInit): descriptor 5, after the spare's own two.
	if f, err := e.rt.SealedInit(); err == nil {
		defer f.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		cmd.Env = append(cmd.Environ(), spareSealedInitEnv+"=5")
	}
	return StartSpare(cmd, false)
}

// spareSealedInitEnv names the descriptor of the sealed copy of
// hull-init a spare is given (NewSpare).
const spareSealedInitEnv = "HULL_SEALED_INIT_FD"

// adoptSealedInit makes the sealed copy of hull-init this spare was given
// (NewSpare) its runtime's, or its own copy when it was given none.
func (e *Engine) adoptSealedInit() {
	v := os.Getenv(spareSealedInitEnv)
	os.Unsetenv(spareSealedInitEnv) // not for the processes it starts
	if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
		if e.rt.AdoptSealedInit(fd) == nil {
			return
		}
	}
	e.rt.PrepareSealedInit()
}

// Pid is the spare monitor's process id: once Start has handed it a
// container, that container's monitor (its MonitorPid).
func (s *Spare) Pid() int { return s.proc.Pid }

// Exited says whether the spare monitor's process has ended (an unusable
// spare: Start would start a monitor of its own).
func (s *Spare) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// PrepareSpare sends spare s, which the caller binds to pod p for the
// pod's next container, to be created with the id it chose (NewID;
// CreateOptions.ID and Spare then), what that container's first process
// needs: the namespaces joinPod gives a container of p with options o
// (the caller's namespace modes, such as a host pid namespace), and its
// cgroups under the pod's parent. The spare starts the process at once
// (monitor.Prepared.StartEarlyIn), so that when the container is created,
// maybe a while later (kubelet pulls its image first), it is waiting in
// the pod's namespaces. The create sends its own shape again: a container
// whose namespaces turn out otherwise gets a process started anew. Only
// for a running pod.
func (e *Engine) PrepareSpare(ctx context.Context, s *Spare, id string, p *Pod, o spec.Options) {
	if s == nil || p == nil || p.State != PodRunning {
		return
	}
	cfg := Config{Pod: p.ID, Spec: o}
	if _, err := e.joinPod(ctx, &cfg, p); err != nil {
		return
	}
	cfg.Spec.CgroupsPath = containerCgroupsPath(id, cfg.Spec.CgroupParent)
	sendEarly(s, id, &cfg.Spec)
}
