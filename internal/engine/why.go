package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

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
}

// Why diagnoses a container.
func (e *Engine) Why(ctx context.Context, ref string) (*Diagnosis, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	d := &Diagnosis{Container: c.Name, Stage: c.Stage}
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
	case (c.Stage == StageCreate || c.Stage == StageStart) && c.Error != "":
		d.Status = fmt.Sprintf("the container failed to %s (exit code %d); its process never ran", c.Stage, c.ExitCode)
		d.Evidence = []string{c.Error}
		switch c.ExitCode {
		case 127:
			d.Next = fmt.Sprintf("check the command %q exists in the image (hull image mount %s shows its files), or give another with --entrypoint", c.Config.Path, c.Image)
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
		d.Next = fmt.Sprintf("follow its output with: hull logs -f %s", c.Name)
	case c.State == StatePaused:
		d.Status = "paused: its processes are frozen"
		d.Next = fmt.Sprintf("resume it with: hull unpause %s", c.Name)
	case c.State == StateCreated:
		d.Status = "created but never started"
		d.Next = fmt.Sprintf("start it with: hull start %s", c.Name)
	case c.State == StateRestarting:
		d.Status = fmt.Sprintf("crashing and restarting: last exit code %d, restart %d, next attempt after %s (backoff)",
			c.ExitCode, c.RestartCount, c.BackoffUntil.Local().Format(time.TimeOnly))
		d.Evidence = e.exitEvidence(c)
		d.Next = fmt.Sprintf("find why it exits in its logs: hull logs %s", c.Name)
	default:
		d.Stage = StageExited
		d.Evidence = e.exitEvidence(c)
		switch {
		case c.OOMKilled:
			d.Status = "killed by the kernel's OOM killer: it used more memory than its limit"
			if c.MemoryLimit > 0 {
				d.Evidence = append([]string{fmt.Sprintf("memory limit %s, peak usage %s", bytesHuman(c.MemoryLimit), bytesHuman(c.MemoryPeak))}, d.Evidence...)
			}
			d.Next = "raise the limit (-m) or find what grows in the process"
		case c.State == StateDead:
			d.Status = c.Error
			d.Next = fmt.Sprintf("finish removing it: hull rm %s", c.Name)
		case c.Error != "":
			d.Status = c.Error
			d.Next = fmt.Sprintf("start it again with: hull start %s", c.Name)
		case c.Signal != 0:
			d.Status = fmt.Sprintf("killed by signal %s (%d)", unix.SignalName(unix.Signal(c.Signal)), c.Signal)
			d.Next = "a stop, kill, or another process sent it; hull events shows stops and kills"
		case c.ExitCode == 0:
			d.Status = fmt.Sprintf("completed: %q exited with code 0", cmd)
			d.Next = "nothing to fix; hull logs shows what it printed"
		default:
			d.Status = fmt.Sprintf("crashed: %q exited with code %d", cmd, c.ExitCode)
			d.Next = fmt.Sprintf("read the last lines it wrote: hull logs --tail 50 %s", c.Name)
		}
		if c.RestartCount > 0 {
			d.Evidence = append(d.Evidence, fmt.Sprintf("restarted %d times before this", c.RestartCount))
		}
	}
	return d, nil
}

// exitEvidence is the exit facts plus the last log lines.
func (e *Engine) exitEvidence(c *Container) []string {
	var ev []string
	if !c.Finished.IsZero() {
		ev = append(ev, fmt.Sprintf("exit code %d at %s", c.ExitCode, c.Finished.Local().Format(time.RFC3339)))
	}
	lines := tailLog(e.LogPath(c.ID), 5)
	if len(lines) > 0 {
		ev = append(ev, "last output:")
		for _, l := range lines {
			ev = append(ev, "  "+l)
		}
	}
	return ev
}

func tailLog(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		r, err := streams.ParseLine(sc.Text())
		if err != nil {
			continue
		}
		lines = append(lines, r.Stream+": "+r.Line)
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

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
