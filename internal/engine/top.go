package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// TopResult is a container's processes as ps shows them (docker's
// ContainerTop): the column titles, and a row of columns per process.
type TopResult struct {
	Titles    []string
	Processes [][]string
}

// Top lists the processes of the running container ref. With no psArgs
// (or -ef) the columns are ps -ef's, read from /proc; other options go to
// the host's ps, whose rows of the container's processes are kept
// (docker's way of honouring any ps option).
func (e *Engine) Top(ctx context.Context, ref string, psArgs []string) (*TopResult, error) {
	c, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !c.IsRunning() {
		return nil, fmt.Errorf("container %s is not running", c.Name)
	}
	pids, err := e.rt.Ps(c.ID)
	if err != nil {
		return nil, fmt.Errorf("list the processes of %s: %w", c.Name, err)
	}
	if len(psArgs) > 0 && !(len(psArgs) == 1 && psArgs[0] == "-ef") {
		return hostPs(psArgs, pids)
	}
	return procTop(pids), nil
}

// procTop is ps -ef's columns for pids, read from /proc.
func procTop(pids []int) *TopResult {
	t := &TopResult{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}}
	for _, pid := range pids {
		p, err := readProc(pid)
		if err != nil {
			continue // exited meanwhile
		}
		t.Processes = append(t.Processes, []string{p.user, strconv.Itoa(pid), strconv.Itoa(p.ppid), strconv.Itoa(p.cpuPercent), p.stime, p.tty, p.cpuTime, p.cmd})
	}
	return t
}

// hostPs runs the host's ps with args and keeps the rows of pids.
func hostPs(args []string, pids []int) (*TopResult, error) {
	output, err := runHostPs(args)
	if err != nil {
		return nil, err
	}
	return filterPsOutput(output, pids)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on every
// Linux architecture hull runs on).
const clockTicks = 100

// procInfo is one ps -ef row, read from /proc.
type procInfo struct {
	user, stime, tty, cpuTime, cmd string
	ppid, cpuPercent               int
}

func readProc(pid int) (*procInfo, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(stat)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return nil, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	comm := s[open+1 : closing]
	f := strings.Fields(s[closing+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	// f[0] is field 3 (state): field N is f[N-3].
	num := func(field int) int64 { n, _ := strconv.ParseInt(f[field-3], 10, 64); return n }
	p := &procInfo{ppid: int(num(4)), tty: ttyName(num(7))}
	used := num(14) + num(15) // utime + stime, in ticks
	p.cpuTime = formatCPUTime(used / clockTicks)
	started := bootTime().Add(time.Duration(num(22)) * time.Second / clockTicks)
	if elapsed := time.Since(started).Seconds(); elapsed > 0 {
		p.cpuPercent = int(float64(used) / clockTicks / elapsed * 100)
	}
	p.stime = formatSTime(started)
	p.user = "?"
	if status, err := os.ReadFile(dir + "/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				if ids := strings.Fields(rest); len(ids) > 1 {
					p.user = ids[1] // effective uid, as ps shows
					if u, err := user.LookupId(ids[1]); err == nil {
						p.user = u.Username
					}
				}
			}
		}
	}
	cmdline, _ := os.ReadFile(dir + "/cmdline")
	p.cmd = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	if p.cmd == "" {
		p.cmd = "[" + comm + "]"
	}
	return p, nil
}

// ttyName decodes stat's tty_nr: "?" for none, pts/N, ttyN.
func ttyName(nr int64) string {
	if nr == 0 {
		return "?"
	}
	major := (nr >> 8) & 0xfff
	minor := (nr & 0xff) | ((nr >> 12) & 0xfff00)
	switch {
	case major >= 136 && major <= 143:
		return fmt.Sprintf("pts/%d", (major-136)*256+minor)
	case major == 4 && minor < 64:
		return fmt.Sprintf("tty%d", minor)
	case major == 4:
		return fmt.Sprintf("ttyS%d", minor-64)
	}
	return "?"
}

// formatCPUTime is ps's TIME: [DD-]HH:MM:SS.
func formatCPUTime(secs int64) string {
	d, h, m, s := secs/86400, secs/3600%24, secs/60%60, secs%60
	if d > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

// formatSTime is ps's STIME: the time today, the date this year, else
// the year.
func formatSTime(t time.Time) string {
	now := time.Now()
	switch {
	case t.YearDay() == now.YearDay() && t.Year() == now.Year():
		return t.Format("15:04")
	case t.Year() == now.Year():
		return t.Format("Jan02")
	}
	return t.Format("2006")
}

// bootTime is when the host booted (btime in /proc/stat).
func bootTime() time.Time {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return time.Unix(n, 0)
		}
	}
	return time.Time{}
}

var errNoPIDColumn = errors.New("ps output has no PID column: include pid in the options (e.g. -o pid,comm)")

// filterPsOutput keeps ps's header and the rows whose PID is one of
// pids, split into columns as docker does: at spaces, the last column
// (a command line, usually) taking the rest of the row.
func filterPsOutput(output []byte, pids []int) (*TopResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(output))
	if !sc.Scan() {
		return nil, errors.New("ps printed nothing")
	}
	t := &TopResult{Titles: strings.Fields(sc.Text())}
	col := -1
	for i, name := range t.Titles {
		if name == "PID" {
			col = i
		}
	}
	if col < 0 {
		return nil, errNoPIDColumn
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) <= col || !want[f[col]] {
			continue
		}
		if n := len(t.Titles); len(f) > n {
			f = append(f[:n-1], strings.Join(f[n-1:], " "))
		}
		t.Processes = append(t.Processes, f)
	}
	return t, nil
}

func runHostPs(args []string) ([]byte, error) {
	ps, err := exec.LookPath("ps")
	if err != nil {
		return nil, errors.New("ps options need the host's ps (install procps), or give none for the ps -ef columns")
	}
	out, err := exec.Command(ps, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("ps %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}
