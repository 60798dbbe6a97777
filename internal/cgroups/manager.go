package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A Manager owns one container's cgroup in every hierarchy the host mounts.
//
// Lifecycle: New resolves the directories without touching anything; Create
// makes the ones that do not exist yet (and remembers exactly which, so that
// Destroy removes only those); Apply moves a process in; Set writes the
// resource limits of the OCI spec; Freeze/Thaw implement pause and resume;
// Stats and OOMKills read the counters; Destroy removes what Create made.
// A manager is rebuilt in another process with Load from the Path and
// Created values saved in the container's state.
//
// On v1 and hybrid hosts each controller has its own directory
// (/sys/fs/cgroup/<controller>/<path>); on hybrid hosts the process is also
// placed in the empty cgroup2 hierarchy at /sys/fs/cgroup/unified so tools
// that track processes there see it. On v2 hosts there is one directory and
// controllers are enabled in the ancestors' cgroup.subtree_control.
type Manager struct {
	Mode Mode
	// Path is the cgroup path below each hierarchy root, e.g. /hull-<id>.
	Path string
	// Created lists the directories this manager made, parents first.
	Created []string

	v1      map[string]string // controller -> mountpoint of its hierarchy
	unified string            // mountpoint of the cgroup2 hierarchy, if any
}

// Mount is one cgroup hierarchy: where the host mounts it, which controllers
// it carries, and this container's directory in it.
type Mount struct {
	Mountpoint  string
	Controllers []string // empty for cgroup2
	Dir         string
	V2          bool
}

// EnginePath is where the engine puts a container's cgroup: /hull-<id>,
// one level below the root as runc's default, named so a listing shows
// whose it is. (A shared /hull parent, docker-style, had to be made and
// removed with each container: twelve more mkdirs and rmdirs a start on a
// v1 host, or left behind.)
func EnginePath(id string) string { return "/hull-" + id }

// ContainerPath turns an OCI cgroupsPath into a path below the hierarchy
// roots, as runc does: empty means /<id>; a relative path is taken from
// the root; the systemd form "slice:prefix:name" becomes
// /slice/prefix-name.scope.
func ContainerPath(cgroupsPath, id string) string {
	if cgroupsPath == "" {
		return "/" + id
	}
	if parts := strings.Split(cgroupsPath, ":"); len(parts) == 3 && !strings.HasPrefix(cgroupsPath, "/") {
		slice := parts[0]
		if slice == "" {
			slice = "system.slice"
		}
		return filepath.Join("/", slice, parts[1]+"-"+parts[2]+".scope")
	}
	return filepath.Join("/", cgroupsPath)
}

// New resolves the container's cgroup directories for path (see
// ContainerPath). Nothing is created.
func New(path string) (*Manager, error) {
	m := &Manager{Mode: DetectMode(), Path: filepath.Clean("/" + path)}
	if m.Mode == Unavailable {
		return nil, errors.New("cgroups: no cgroup filesystem mounted at " + DefaultMountpoint)
	}
	if err := m.discover(); err != nil {
		return nil, err
	}
	return m, nil
}

// Load rebuilds the manager of an existing container.
func Load(path string, created []string) (*Manager, error) {
	m, err := New(path)
	if err != nil {
		return nil, err
	}
	m.Created = created
	return m, nil
}

// discover reads /proc/self/mountinfo for cgroup and cgroup2 mounts.
func (m *Manager) discover() error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	m.v1 = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		pre := strings.Fields(line[:sep])
		post := strings.Fields(line[sep+3:])
		if len(pre) < 5 || len(post) < 3 {
			continue
		}
		mnt := pre[4]
		if !strings.HasPrefix(mnt, DefaultMountpoint) {
			continue
		}
		switch post[0] {
		case "cgroup2":
			if m.unified == "" {
				m.unified = mnt
			}
		case "cgroup":
			for _, opt := range strings.Split(post[2], ",") {
				switch opt {
				case "rw", "ro", "xattr", "clone_children", "noprefix", "nsdelegate", "cpuset_v2_mode", "favordynmods":
					continue
				}
				if strings.HasPrefix(opt, "release_agent=") {
					continue
				}
				if _, ok := m.v1[opt]; !ok {
					m.v1[opt] = mnt
				}
			}
		}
	}
	return sc.Err()
}

// Mounts lists every hierarchy with the container's directory in it.
func (m *Manager) Mounts() []Mount {
	var out []Mount
	byMnt := map[string][]string{}
	for c, mnt := range m.v1 {
		byMnt[mnt] = append(byMnt[mnt], c)
	}
	for mnt, cs := range byMnt {
		sort.Strings(cs)
		out = append(out, Mount{Mountpoint: mnt, Controllers: cs, Dir: filepath.Join(mnt, m.Path)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mountpoint < out[j].Mountpoint })
	if m.unified != "" {
		out = append(out, Mount{Mountpoint: m.unified, Dir: filepath.Join(m.unified, m.Path), V2: true})
	}
	return out
}

// dir is the container's directory for a v1 controller, or the unified
// directory on v2 hosts; "" when the host lacks the controller.
func (m *Manager) dir(controller string) string {
	if m.Mode == Unified {
		return filepath.Join(m.unified, m.Path)
	}
	if mnt, ok := m.v1[controller]; ok {
		return filepath.Join(mnt, m.Path)
	}
	return ""
}

// Create makes the container's directories. Directories that already exist
// (a pod's parent cgroup, say) are used but never recorded for removal.
func (m *Manager) Create() error {
	for _, mt := range m.Mounts() {
		// A parent that existed a moment ago can be removed by the
		// last container leaving it (see Destroy), or by another
		// pod's teardown (shared /kubepods levels): then start over.
		var err error
		for attempt := 0; attempt < 20; attempt++ {
			// ENODEV: a file of a directory being removed.
			if err = m.createIn(mt); !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENODEV) {
				break
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) createIn(mt Mount) error {
	rel := strings.Split(strings.Trim(m.Path, "/"), "/")
	cur := mt.Mountpoint
	for _, part := range rel {
		if part == "" {
			continue
		}
		parent := cur
		cur = filepath.Join(cur, part)
		if mt.V2 && m.Mode == Unified {
			if err := enableControllers(parent); err != nil {
				return err
			}
		}
		if err := os.Mkdir(cur, 0o755); err != nil {
			if errors.Is(err, os.ErrExist) {
				// Another process may have made it and not yet filled
				// its cpuset (pods of different supervisors share
				// /kubepods/<qos>): fill it, or the leaf inherits empty
				// sets and accepts no process. Both files: it may be
				// between its write of cpus and that of mems.
				if contains(mt.Controllers, "cpuset") && !cpusetFilled(cur) {
					if err := fillCpuset(mt.Mountpoint, cur); err != nil {
						return err
					}
				}
				continue
			}
			return fmt.Errorf("cgroups: create %s: %w", cur, err)
		}
		m.Created = append(m.Created, cur)
		if contains(mt.Controllers, "cpuset") {
			if err := fillCpuset(mt.Mountpoint, cur); err != nil {
				return err
			}
		}
	}
	return nil
}

// enableControllers turns on, for the children of dir, every controller dir
// itself has. Needed on v2 for the leaf to get the interface files.
func enableControllers(dir string) error {
	b, err := readFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	ctrls := strings.Fields(string(b))
	if len(ctrls) == 0 {
		return nil
	}
	cur, _ := readFile(filepath.Join(dir, "cgroup.subtree_control"))
	have := strings.Fields(string(cur))
	var add []string
	for _, c := range ctrls {
		if !contains(have, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(add, " ")), 0); err != nil {
		// Enable what can be enabled one by one (a controller may be
		// busy in a threaded subtree); the leaf reports what is missing.
		for _, a := range add {
			_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(a), 0)
		}
	}
	return nil
}

// cpusetFilled says whether a v1 cpuset cgroup has both its sets (or
// cannot be read: the join reports what is wrong).
func cpusetFilled(dir string) bool {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if b, err := readFile(filepath.Join(dir, f)); err == nil && strings.TrimSpace(string(b)) == "" {
			return false
		}
	}
	return true
}

// fillCpuset gives dir its parent's cpuset, first filling the parent
// (and so on up) if its sets are empty: a shared level that another
// process removed and made again after this one looked at it, and has
// not filled yet. dir, once it exists, keeps its parents from being
// removed, so what it inherits stays.
func fillCpuset(mountpoint, dir string) error {
	parent := filepath.Dir(dir)
	if strings.HasPrefix(parent, mountpoint+"/") && !cpusetFilled(parent) {
		if err := fillCpuset(mountpoint, parent); err != nil {
			return err
		}
	}
	return inheritCpuset(parent, dir)
}

// inheritCpuset copies cpuset.cpus and cpuset.mems from parent: a v1 cpuset
// cgroup with empty sets accepts no process.
func inheritCpuset(parent, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		b, err := readFile(filepath.Join(parent, f))
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if err := writeFile(dir, f, strings.TrimSpace(string(b))); err != nil {
			return err
		}
	}
	return nil
}

// Apply moves pid into every one of the container's directories.
func (m *Manager) Apply(pid int) error {
	for _, mt := range m.Mounts() {
		if err := writeFile(mt.Dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Exists reports whether the container's cgroup directories are present.
func (m *Manager) Exists() bool {
	for _, mt := range m.Mounts() {
		if _, err := os.Stat(mt.Dir); err != nil {
			return false
		}
	}
	return true
}

// Procs lists the pids in the container's cgroup.
func (m *Manager) Procs() ([]int, error) {
	dir := m.dir("pids")
	if dir == "" {
		dir = m.dir("memory")
	}
	if dir == "" {
		if ms := m.Mounts(); len(ms) > 0 {
			dir = ms[0].Dir
		}
	}
	b, err := readFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Signal sends sig to every process in the cgroup. The cgroup is frozen
// while signalling so a forking process cannot escape the sweep.
func (m *Manager) Signal(sig syscall.Signal) error {
	frozen := m.Freeze() == nil
	pids, err := m.Procs()
	for _, p := range pids {
		_ = unix.Kill(p, sig)
	}
	if frozen {
		_ = m.Thaw()
	}
	return err
}

// Kill ends every process in the container's cgroups (SIGKILL) and waits,
// up to a second, until they are gone, so the directories can be removed.
func (m *Manager) Kill() {
	if procs, _ := m.Procs(); len(procs) == 0 {
		return
	}
	_ = m.Signal(unix.SIGKILL)
	for i := 0; i < 500; i++ {
		if procs, _ := m.Procs(); len(procs) == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Freeze stops every process of the container (pause).
func (m *Manager) Freeze() error { return m.setFrozen(true) }

// Thaw resumes them.
func (m *Manager) Thaw() error { return m.setFrozen(false) }

func (m *Manager) setFrozen(frozen bool) error {
	if m.Mode == Unified {
		dir := m.dir("")
		v := "0"
		if frozen {
			v = "1"
		}
		if err := writeFile(dir, "cgroup.freeze", v); err != nil {
			return err
		}
		for wait := freezeWait(); wait(); {
			b, err := readFile(filepath.Join(dir, "cgroup.events"))
			if err != nil {
				return fmt.Errorf("cgroups: %w", err)
			}
			if strings.Contains(string(b), "frozen "+v) {
				return nil
			}
		}
		return fmt.Errorf("cgroups: %s did not reach frozen=%s", dir, v)
	}
	dir := m.dir("freezer")
	if dir == "" {
		return errors.New("cgroups: the freezer controller is not mounted")
	}
	want := "THAWED"
	if frozen {
		want = "FROZEN"
	}
	for wait := freezeWait(); wait(); {
		if err := writeFile(dir, "freezer.state", want); err != nil {
			return err
		}
		b, err := readFile(filepath.Join(dir, "freezer.state"))
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
	}
	return fmt.Errorf("cgroups: %s did not reach %s", dir, want)
}

// freezeWait paces the checks of a freeze or thaw: the first at once,
// then after pauses growing from 1 to 10 ms, for up to 10 s in all (a
// loaded host can take a while to stop every task); false when time is up.
func freezeWait() func() bool {
	deadline := time.Now().Add(10 * time.Second)
	pause := time.Duration(0)
	return func() bool {
		if pause > 0 {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(pause)
		}
		pause = min(max(2*pause, time.Millisecond), 10*time.Millisecond)
		return true
	}
}

// FreezerDir is the container's directory that holds its freezer
// (cgroup.freeze on v2, freezer.state on v1), "" when v1 has no freezer
// mounted: what CRIU's --freeze-cgroup takes.
func (m *Manager) FreezerDir() string {
	if m.Mode == Unified {
		return m.dir("")
	}
	return m.dir("freezer")
}

// Frozen reports whether the container is paused.
func (m *Manager) Frozen() bool {
	if m.Mode == Unified {
		b, err := readFile(filepath.Join(m.dir(""), "cgroup.freeze"))
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}
	dir := m.dir("freezer")
	if dir == "" {
		return false
	}
	b, err := readFile(filepath.Join(dir, "freezer.state"))
	return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
}

// Destroy removes the directories Create made, deepest first. The
// container's own directory goes with any sub-cgroups the container made
// below it; a parent Create made (/hull, say) is removed only once empty,
// since other containers may share it. Processes must be gone; a directory
// still busy after a short wait is an error naming it.
func (m *Manager) Destroy() error {
	leaves := map[string]bool{}
	for _, mt := range m.Mounts() {
		leaves[mt.Dir] = true
	}
	var errs []error
	for i := len(m.Created) - 1; i >= 0; i-- {
		d := m.Created[i]
		if !leaves[d] {
			_ = unix.Rmdir(d) // shared parent: fine to leave while in use
			continue
		}
		if err := removeTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		m.Created = nil
	}
	return errors.Join(errs...)
}

// removeTree removes a cgroup and any below it. The first rmdir usually
// succeeds: listing a v1 cgroup's few dozen files first would cost more
// than the removal itself.
func removeTree(dir string) error {
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	// Killed processes leave the cgroup as they finish exiting, which on a
	// loaded host can take a while: wait up to 10s, backing off.
	deadline := time.Now().Add(10 * time.Second)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("cgroups: remove %s: %w", dir, err)
		}
		time.Sleep(pause)
	}
}

// writeFile writes val to a cgroup file with plain system calls: an
// os.File registers every cgroup file with the poller (cgroupfs files are
// pollable), six more calls per write, and a container start makes a few
// dozen writes.
func writeFile(dir, name, val string) error {
	p := filepath.Join(dir, name)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: open %s: %w", p, err)
	}
	_, err = unix.Write(fd, []byte(val))
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroups: write %q to %s: %w", val, p, err)
	}
	return nil
}

// readFile reads a cgroup file with plain system calls (see writeFile).
func readFile(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func readUint(dir, name string) (uint64, error) {
	b, err := readFile(filepath.Join(dir, name))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return ^uint64(0), nil
	}
	return strconv.ParseUint(s, 10, 64)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Set writes the resource limits. Unset fields are left alone; a limit for
// a controller the host does not have is an error naming the controller.
func (m *Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Devices) > 0 {
		// Both v1's writes and v2's filter program follow the rules in
		// order; the repeats specs bring (the runtime's defaults over
		// the spec's own) change nothing.
		c := *r
		c.Devices = compactDeviceRules(r.Devices)
		r = &c
	}
	if m.Mode == Unified {
		return m.setV2(r)
	}
	return m.setV1(r)
}

func (m *Manager) need(controller string) (string, error) {
	d := m.dir(controller)
	if d == "" {
		return "", fmt.Errorf("cgroups: the %s controller is not mounted on this host", controller)
	}
	return d, nil
}
