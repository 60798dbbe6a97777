package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/spec"
	"hull/internal/streams"
)

// Diagnosis is `hull why`: where in its lifecycle a container stopped, the
// evidence, and what to check next.
type Diagnosis struct {
	Container string   `json:"Container"`
	Stage     string   `json:"Stage"`  // image pull, create, start, running, exited
	Status    string   `json:"Status"` // the one-line verdict
	Evidence  []string `json:"Evidence"`
	Next      string   `json:"Next"`
	// Containers are a pod's containers' own diagnoses (WhyPod).
	Containers []*Diagnosis `json:"Containers,omitempty"`
}

// Why diagnoses a container.
func (e *Engine) Why(ctx context.Context, ref string) (*Diagnosis, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			if d := e.whyForgotten(ctx, ref); d != nil {
				return d, nil
			}
		}
		return nil, err
	}
	d := &Diagnosis{Container: c.Name, Stage: c.Stage}
	h, err := e.history(ctx, c)
	if err != nil {
		return nil, err
	}
	cmd := strings.TrimSpace(c.Config.Path + " " + strings.Join(c.Config.Args, " "))
	switch {
	case c.CreationInterrupted():
		d.Status = fmt.Sprintf("creation was interrupted at the %s stage: the hull command creating it died", c.Stage)
		d.Evidence = []string{c.Error}
		d.Next = fmt.Sprintf("remove it (hull rm %s) and create it again", c.Name)
	case c.Stage == StagePull && c.Error != "":
		d.Status = "the image could not be pulled, so the container never started"
		d.Evidence = []string{c.Error}
		d.Next = fmt.Sprintf("check the image reference and the registry: hull pull %s", c.Image)
	case c.Stage == StageNetwork && c.Error != "":
		d.Status = fmt.Sprintf("the container's network could not be set up (exit code %d); its process never ran", c.ExitCode)
		d.Evidence = []string{c.Error}
		d.Next = "check the networks and published ports against the error above (hull network ls, hull network inspect NAME; a host port in use: pick another with -p)"
	case c.Stage == StageRestore && c.Error != "":
		d.Status = fmt.Sprintf("the container's restore from its checkpoint failed (exit code %d); its process never ran", c.ExitCode)
		d.Evidence = []string{c.Error}
		d.Next = fmt.Sprintf("read CRIU's restore.log (named above) for the cause; hull start %s tries the restore again", c.Name)
	case (c.Stage == StageCreate || c.Stage == StageStart) && c.Error != "":
		d.Status = fmt.Sprintf("the container failed to %s (exit code %d); its process never ran", c.Stage, c.ExitCode)
		d.Evidence = []string{c.Error}
		switch c.ExitCode {
		case 127:
			other := "give another with --entrypoint"
			if c.Kubernetes() {
				other = "set another as the container's command in the Pod"
			}
			d.Next = fmt.Sprintf("check the command %q exists in the image (hull image mount %s shows its files), or %s", c.Config.Path, c.ImageName(), other)
		case 126:
			d.Next = "the command exists but cannot run: check its mode and that the image matches this host's architecture (--platform)"
		default:
			d.Next = "check the options (mounts, user, limits) against the error above"
		}
	case c.State == StateRunning:
		d.Status = fmt.Sprintf("running since %s (pid %d)", c.Started.Local().Format(time.RFC3339), c.Pid)
		if c.RestartCount > 0 {
			d.Evidence = append(d.Evidence, fmt.Sprintf("restarted %d times", c.RestartCount))
		}
		if h.ooms > 0 {
			d.Evidence = append(d.Evidence, oomEvidence(c, h)...)
		}
		d.Next = fmt.Sprintf("follow its output with: hull logs -f %s", c.Name)
	case c.State == StatePaused:
		d.Status = "paused: its processes are frozen"
		d.Next = fmt.Sprintf("resume it with: hull unpause %s", c.Name)
	case c.State == StateCreated && c.restorePending():
		d.Status = fmt.Sprintf("created from a checkpoint of container %s taken %s; its start restores it", shortID(c.Config.Restore.From), c.Config.Restore.Checkpointed.Local().Format(time.RFC3339))
		d.Next = fmt.Sprintf("start it with: hull start %s", c.Name)
	case c.State == StateCreated:
		d.Status = "created but never started"
		d.Next = fmt.Sprintf("start it with: hull start %s", c.Name)
	case c.State == StateRestarting:
		restarting := fmt.Sprintf("restart %d, next attempt after %s (backoff)", c.RestartCount, c.BackoffUntil.Local().Format(time.TimeOnly))
		d.Evidence = e.exitEvidence(c, h)
		if c.OOMKilled {
			d.Status = "killed by the kernel's OOM killer and restarting: it used more memory than its limit; " + restarting
			d.Evidence = append(oomEvidence(c, h), d.Evidence...)
			d.Next = "raise the limit (-m) or find what grows in the process"
			break
		}
		d.Status = fmt.Sprintf("crashing and restarting: last exit code %d, %s", c.ExitCode, restarting)
		d.Next = fmt.Sprintf("find why it exits in its logs: hull logs %s", c.Name)
		if h.ooms > 0 {
			d.Evidence = append(d.Evidence, oomEvidence(c, h)...)
		}
		if why, next := e.explainError(c, h.lastError); why != "" {
			d.Status += "; " + why
			d.Next = next
		}
	default:
		d.Stage = StageExited
		d.Evidence = e.exitEvidence(c, h)
		switch {
		case c.OOMKilled:
			d.Status = "killed by the kernel's OOM killer: it used more memory than its limit"
			d.Evidence = append(oomEvidence(c, h), d.Evidence...)
			d.Next = "raise the limit (-m) or find what grows in the process"
		case c.State == StateDead:
			d.Status = c.Error
			d.Next = fmt.Sprintf("finish removing it: hull rm %s", c.Name)
		case c.Error != "":
			d.Status = c.Error
			d.Next = fmt.Sprintf("start it again with: hull start %s", c.Name)
		case h.kill != 0:
			switch {
			case c.Signal == h.kill:
				d.Status = fmt.Sprintf("killed by signal %s, sent by hull kill", signalText(c.Signal))
			case c.Signal != 0:
				d.Status = fmt.Sprintf("killed by signal %s after hull kill sent %s", signalText(c.Signal), signalText(h.kill))
			default:
				d.Status = fmt.Sprintf("exited with code %d after hull kill sent signal %s", c.ExitCode, signalText(h.kill))
			}
			d.Next = fmt.Sprintf("nothing to fix if that was meant; start it again with: hull start %s", c.Name)
		case c.StopRequested:
			switch {
			case c.Signal == int(unix.SIGKILL) && h.stopKilled:
				d.Status = fmt.Sprintf("stopped by hull stop: killed by signal SIGKILL (9) when it did not exit on its stop signal, %s, in time", stopSignal(c))
			case c.Signal != 0:
				d.Status = fmt.Sprintf("stopped by hull stop: killed by signal %s", signalText(c.Signal))
			default:
				d.Status = fmt.Sprintf("stopped by hull stop (signal %s): it exited with code %d", stopSignal(c), c.ExitCode)
			}
			d.Next = fmt.Sprintf("nothing to fix if that was meant; start it again with: hull start %s", c.Name)
		case c.Signal != 0:
			d.Status = fmt.Sprintf("killed by signal %s (%d)", unix.SignalName(unix.Signal(c.Signal)), c.Signal)
			d.Next = "a stop, kill, or another process sent it; hull events shows stops and kills"
		case c.ExitCode == 0:
			d.Status = fmt.Sprintf("completed: %q exited with code 0", cmd)
			d.Next = "nothing to fix; hull logs shows what it printed"
		default:
			d.Status = fmt.Sprintf("crashed: %q exited with code %d", cmd, c.ExitCode)
			d.Next = fmt.Sprintf("read the last lines it wrote: hull logs --tail 50 %s", c.Name)
			if why, next := e.explainError(c, h.lastError); why != "" {
				d.Status += ": " + why
				d.Next = next
			}
		}
		if c.RestartCount > 0 {
			d.Evidence = append(d.Evidence, fmt.Sprintf("restarted %d times before this", c.RestartCount))
		}
		if h.ooms > 0 && !c.OOMKilled {
			d.Evidence = append(d.Evidence, oomEvidence(c, h)...)
		}
	}
	e.whyHealth(c, d)
	return d, nil
}

// runHistory is what the event log and the log file say about a
// container's runs: its record holds only the last run, and a restart
// loop's OOM kills or a stop are explained by what came before.
type runHistory struct {
	exits, ooms int // runs that ended (die events), and OOM kills among them
	// run is the last run's number, counting the runs the events kept;
	// since is when the run before it ended: the last run's log lines
	// are those after it.
	run   int
	since time.Time
	// kill is the signal a hull kill sent during the last run (0: none);
	// stopKilled, that a hull stop resorted to SIGKILL then.
	kill       int
	stopKilled bool
	// lines are the last run's last lines, lastError its last line on
	// stderr (any stream with a terminal); earlier, that earlier runs
	// printed something.
	lines     []string
	lastError string
	earlier   bool
}

// whyLines is how many of the last run's lines why shows.
const whyLines = 5

func (e *Engine) history(ctx context.Context, c *Container) (*runHistory, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT time, action, attrs FROM events
		WHERE type = 'container' AND id = ? AND action IN ('die', 'oom', 'kill', 'stop') ORDER BY seq`, c.ID)
	if err != nil {
		return nil, fmt.Errorf("read the events of container %s: %w", c.Name, err)
	}
	defer rows.Close()
	h := &runHistory{}
	for rows.Next() {
		var t int64
		var action, attrs string
		if err := rows.Scan(&t, &action, &attrs); err != nil {
			return nil, fmt.Errorf("read the events of container %s: %w", c.Name, err)
		}
		at := time.Unix(0, t)
		during := !c.Started.IsZero() && at.After(c.Started) // the last run
		switch action {
		case "die":
			h.exits++
			if !during {
				h.since = at
				h.run = h.exits
			}
		case "oom":
			h.ooms++
		case "kill":
			if during {
				var a map[string]string
				json.Unmarshal([]byte(attrs), &a)
				h.kill, _ = strconv.Atoi(a["signal"])
			}
		case "stop":
			h.stopKilled = h.stopKilled || during
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the events of container %s: %w", c.Name, err)
	}
	h.run++
	h.tailLog(e.ContainerLogPath(c), c.Config.Spec.TTY)
	return h, nil
}

// tailLog reads the last run's last lines from a CRI-format log, with
// terminal control sequences removed.
func (h *runHistory) tailLog(path string, tty bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		r, err := streams.ParseLine(sc.Text())
		if err != nil {
			continue
		}
		if !r.Time.After(h.since) {
			h.earlier = true
			continue
		}
		line := cleanLine(r.Line)
		if strings.TrimSpace(line) == "" {
			continue
		}
		if r.Stream == "stderr" || tty {
			h.lastError = line
		}
		h.lines = append(h.lines, r.Stream+": "+line)
		if len(h.lines) > whyLines {
			h.lines = h.lines[1:]
		}
	}
}

// cleanLine removes what a terminal would interpret rather than show
// (CSI and OSC sequences, other escapes, C0 controls but tab, DEL): a
// tty session's log holds cursor queries and colours that would act on
// the reader's terminal or show as noise.
func cleanLine(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == 0x1b && i+1 < len(s) && s[i+1] == '[': // CSI: parameters, then a final byte
			i += 2
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
				i++
			}
		case ch == 0x1b && i+1 < len(s) && (s[i+1] == ']' || s[i+1] == 'P' || s[i+1] == '_' || s[i+1] == '^'): // OSC and other strings: to BEL or ST
			i += 2
			for i < len(s) && s[i] != 0x07 && !(s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\') {
				i++
			}
			if i < len(s) && s[i] == 0x1b {
				i++
			}
		case ch == 0x1b: // a two-byte escape
			i++
		case ch == '\t' || ch >= 0x20 && ch != 0x7f:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// exitEvidence is the exit facts plus the last run's last log lines.
func (e *Engine) exitEvidence(c *Container, h *runHistory) []string {
	var ev []string
	if !c.Finished.IsZero() {
		ev = append(ev, fmt.Sprintf("exit code %d at %s", c.ExitCode, c.Finished.Local().Format(time.RFC3339)))
	}
	header := "last output:"
	if h.run > 1 {
		header = fmt.Sprintf("last output of run %d (the last; earlier runs' output: hull logs %s):", h.run, c.Name)
	}
	switch {
	case len(h.lines) > 0:
		ev = append(ev, header)
		for _, l := range h.lines {
			ev = append(ev, "  "+l)
		}
	case h.earlier:
		ev = append(ev, fmt.Sprintf("run %d printed nothing (earlier runs' output: hull logs %s)", h.run, c.Name))
	}
	return ev
}

// oomEvidence is the memory limit and peak, and how many runs the OOM
// killer ended.
func oomEvidence(c *Container, h *runHistory) []string {
	var ev []string
	if c.MemoryLimit > 0 {
		ev = append(ev, fmt.Sprintf("memory limit %s, peak usage %s", bytesHuman(c.MemoryLimit), bytesHuman(c.MemoryPeak)))
	}
	if h.ooms > 0 {
		ev = append(ev, fmt.Sprintf("OOM kills: %d of its %d exits", h.ooms, max(h.exits, h.ooms)))
	}
	return ev
}

// explainError says what in the container's configuration explains the
// error its last line reports (EROFS, EACCES, ENOENT), and what to do; ""
// for another error.
func (e *Engine) explainError(c *Container, line string) (why, next string) {
	o := c.Config.Spec
	path := errorPath(line)
	at := ""
	if path != "" {
		at = " " + path
	}
	switch {
	case strings.Contains(line, "Read-only file system"):
		if m := mountAt(o.Mounts, path); m != nil && m.ReadOnly {
			return fmt.Sprintf("it writes to%s on %s, mounted read-only", at, m.Destination),
				fmt.Sprintf("mount %s read-write (drop :ro) or write elsewhere", m.Destination)
		}
		if o.ReadOnlyRootfs {
			return fmt.Sprintf("it writes to%s, and --read-only: the root filesystem is read-only", at),
				"write to a volume (-v) or a --tmpfs mounted where it writes, or drop --read-only"
		}
		return fmt.Sprintf("it writes to%s on a read-only filesystem", at), "check the container's mounts: hull inspect " + c.Name
	case strings.Contains(line, "Permission denied"):
		uid, gid, ok := e.processUser(c)
		who := "its user"
		if ok {
			who = fmt.Sprintf("uid %d (gid %d)", uid, gid)
		}
		why = fmt.Sprintf("permission denied to %s", who)
		if path != "" {
			why += " on " + path
			if owner := e.fileOwner(c, path); owner != "" {
				why += ", " + owner
			}
		}
		if ok && uid == 0 {
			return why, "root was refused: check for a read-only or noexec mount, or a dropped capability (--cap-drop)"
		}
		return why, "give that user access (chown or chmod in the image or the volume), or run as another user with -u"
	case strings.Contains(line, "No such file or directory"):
		if path == "" {
			return "a file it needs does not exist in the container", "check the paths in its command and configuration against the image: hull image mount " + c.Image
		}
		return fmt.Sprintf("%s does not exist in the container", path),
			fmt.Sprintf("add it to the image or mount it (-v); hull image mount %s shows the image's files", c.Image)
	}
	return "", ""
}

// errorPath is the first absolute path in an error line, such as
// "sh: can't create /etc/x: Read-only file system".
func errorPath(line string) string {
	for _, f := range strings.Fields(line) {
		f = strings.Trim(f, "'\"`‘’“”:,;()[]")
		if strings.HasPrefix(f, "/") {
			return f
		}
	}
	return ""
}

// mountAt is the mount that holds path, the deepest.
func mountAt(mounts []spec.Mount, path string) *spec.Mount {
	var best *spec.Mount
	for i, m := range mounts {
		d := strings.TrimSuffix(m.Destination, "/")
		if path == d || strings.HasPrefix(path, d+"/") {
			if best == nil || len(d) > len(best.Destination) {
				best = &mounts[i]
			}
		}
	}
	return best
}

// processUser is the uid and gid the container's process runs as, from
// its bundle (the user was resolved in its root filesystem at create).
func (e *Engine) processUser(c *Container) (uid, gid uint32, ok bool) {
	data, err := os.ReadFile(filepath.Join(e.persistDir(c.ID), "config.json"))
	if err != nil {
		return 0, 0, false
	}
	var s specs.Spec
	if json.Unmarshal(data, &s) != nil || s.Process == nil {
		return 0, 0, false
	}
	return s.Process.User.UID, s.Process.User.GID, true
}

// fileOwner describes path in the container's own files (its snapshot:
// the root filesystem may be unmounted after the exit): "owned by uid 0
// (gid 0), mode -rw-r--r--", "it does not exist", or "" if unknown (a
// volume's file, or no snapshot).
func (e *Engine) fileOwner(c *Container, path string) string {
	if mountAt(c.Config.Spec.Mounts, path) != nil {
		return ""
	}
	mounts, err := e.snap.Mounts(context.Background(), snapshotKey(c.ID))
	if err != nil || len(mounts) != 1 {
		return ""
	}
	var dirs []string
	m := mounts[0]
	if m.Type == "bind" {
		dirs = []string{m.Source}
	}
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, "upperdir="); ok {
			dirs = append([]string{v}, dirs...)
		} else if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			dirs = append(dirs, strings.Split(v, ":")...)
		}
	}
	for _, d := range dirs {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(d, path), &st); err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 { // an overlay whiteout: deleted
			break
		}
		mode := os.FileMode(st.Mode & 0o777)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			mode |= os.ModeDir
		}
		return fmt.Sprintf("owned by uid %d (gid %d), mode %s", st.Uid, st.Gid, mode)
	}
	return ""
}

func signalText(sig int) string {
	return fmt.Sprintf("%s (%d)", unix.SignalName(unix.Signal(sig)), sig)
}

// stopSignal is the signal hull stop sends the container first.
func stopSignal(c *Container) string { return signalText(int(c.stopSignal())) }

func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// whyForgotten explains a container that is not there because its image
// could not be had (Create kept no record, as docker does): the newest
// destroy event of that name or ID carries the error. Nil if none does.
func (e *Engine) whyForgotten(ctx context.Context, ref string) *Diagnosis {
	events, err := e.Events(ctx, 0)
	if err != nil {
		return nil
	}
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		if ev.Type != "container" || (ev.Name != ref && (len(ref) < 12 || !strings.HasPrefix(ev.ID, ref))) {
			continue
		}
		if ev.Action != "destroy" || ev.Attrs["stage"] != StagePull {
			return nil // a later container of that name
		}
		return &Diagnosis{
			Container: ev.Name, Stage: StagePull,
			Status:   fmt.Sprintf("the image could not be pulled, so no container was created (%s; nothing was kept, and the name is free)", ev.Time.Local().Format(time.DateTime)),
			Evidence: []string{ev.Attrs["error"]},
			Next:     fmt.Sprintf("check the image reference and the registry: hull pull %s", ev.Attrs["image"]),
		}
	}
	return nil
}
