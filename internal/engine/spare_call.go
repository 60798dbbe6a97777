package engine

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
func (e *Engine) NewSpare() *Spare {
	if e.MonitorCommand == nil {
		return nil
	}
	cmd := e.MonitorCommand(SpareID, false)
	cmd.Args = append(cmd.Args, "--"+MonitorFlagEarlyOnSpec)
	return StartSpare(cmd, false)
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
