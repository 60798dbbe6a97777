package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Stats are the counters a supervisor needs about a container.
type Stats struct {
	Memory  MemoryStats  `json:"memory"`
	Pids    PidsStats    `json:"pids"`
	CPU     CPUStats     `json:"cpu"`
	BlockIO BlockIOStats `json:"block_io"`
}

// BlockIOStats are bytes read from and written to block devices, summed
// over devices. On v1 only I/O the kernel attributes to the cgroup counts
// (direct I/O and reads; buffered writeback is charged to the root).
type BlockIOStats struct {
	Read  uint64 `json:"read"`
	Write uint64 `json:"write"`
}

// MemoryStats are in bytes; Limit is 0 when unlimited.
type MemoryStats struct {
	Usage    uint64 `json:"usage"`
	Peak     uint64 `json:"peak"`
	Limit    uint64 `json:"limit"`
	OOMKills uint64 `json:"oom_kills"`
	// OOMEvents counts times the limit was hit (kills or not).
	OOMEvents uint64 `json:"oom_events"`
}

// PidsStats counts tasks; Limit is 0 when unlimited.
type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit"`
}

// CPUStats is total CPU time used, in nanoseconds.
type CPUStats struct {
	UsageNanos uint64 `json:"usage_nanos"`
}

const unlimitedV1 = 1 << 62

// Stats reads the container's counters. Controllers the host lacks read
// as zero.
func (m *Manager) Stats() (*Stats, error) {
	mem, err := m.Memory()
	if err != nil {
		return nil, err
	}
	s := &Stats{Memory: mem}
	if m.Mode == Unified {
		d := m.dir("")
		s.Pids.Current, _ = readUint(d, "pids.current")
		if l, err := readUint(d, "pids.max"); err == nil && l != ^uint64(0) {
			s.Pids.Limit = l
		}
		if cs, err := readKV(filepath.Join(d, "cpu.stat")); err == nil {
			s.CPU.UsageNanos = cs["usage_usec"] * 1000
		}
		s.BlockIO = ioStatV2(filepath.Join(d, "io.stat"))
		return s, nil
	}
	if d := m.dir("pids"); d != "" {
		s.Pids.Current, _ = readUint(d, "pids.current")
		if l, err := readUint(d, "pids.max"); err == nil && l != ^uint64(0) {
			s.Pids.Limit = l
		}
	}
	if d := m.dir("cpuacct"); d != "" {
		s.CPU.UsageNanos, _ = readUint(d, "cpuacct.usage")
	}
	if d := m.dir("blkio"); d != "" {
		s.BlockIO = ioServiceBytesV1(d)
	}
	return s, nil
}

// OOMKills is Memory's OOMKills alone (one file read, where Memory reads
// five): the count a monitor takes just before it starts the container.
func (m *Manager) OOMKills() (uint64, error) {
	file, key := "memory.oom_control", "oom_kill"
	d := m.dir("memory")
	if m.Mode == Unified {
		file, d = "memory.events", m.dir("")
	}
	if d == "" {
		return 0, nil
	}
	kv, err := readKV(filepath.Join(d, file))
	if err != nil {
		return 0, fmt.Errorf("cgroups: %w", err)
	}
	return kv[key], nil
}

// Memory reads only the memory counters: what a monitor needs when its
// container exits (was it OOM-killed, how close to its limit did it get),
// at a third of the reads of Stats. It fails when the cgroup is gone.
func (m *Manager) Memory() (MemoryStats, error) {
	var s MemoryStats
	if m.Mode == Unified {
		d := m.dir("")
		if _, err := os.Stat(d); err != nil {
			return s, fmt.Errorf("cgroups: %w", err)
		}
		s.Usage, _ = readUint(d, "memory.current")
		s.Peak, _ = readUint(d, "memory.peak")
		if l, err := readUint(d, "memory.max"); err == nil && l != ^uint64(0) {
			s.Limit = l
		}
		if ev, err := readKV(filepath.Join(d, "memory.events")); err == nil {
			s.OOMKills = ev["oom_kill"]
			s.OOMEvents = ev["oom"]
		}
		return s, nil
	}
	d := m.dir("memory")
	if d == "" {
		return s, nil
	}
	if _, err := os.Stat(d); err != nil {
		return s, fmt.Errorf("cgroups: %w", err)
	}
	s.Usage, _ = readUint(d, "memory.usage_in_bytes")
	s.Peak, _ = readUint(d, "memory.max_usage_in_bytes")
	if l, err := readUint(d, "memory.limit_in_bytes"); err == nil && l < unlimitedV1 {
		s.Limit = l
	}
	if oc, err := readKV(filepath.Join(d, "memory.oom_control")); err == nil {
		s.OOMKills = oc["oom_kill"]
	}
	s.OOMEvents, _ = readUint(d, "memory.failcnt")
	return s, nil
}

// ioServiceBytesV1 sums the Read and Write lines ("8:0 Read 4096") of the
// throttle policy's counters, which count whatever the scheduler (docker
// reads the same file).
func ioServiceBytesV1(dir string) BlockIOStats {
	var b BlockIOStats
	data, err := readFile(filepath.Join(dir, "blkio.throttle.io_service_bytes_recursive"))
	if err != nil {
		if data, err = readFile(filepath.Join(dir, "blkio.throttle.io_service_bytes")); err != nil {
			return b
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			b.Read += n
		case "Write":
			b.Write += n
		}
	}
	return b
}

// ioStatV2 sums rbytes= and wbytes= over the devices of io.stat
// ("8:0 rbytes=4096 wbytes=0 rios=1 ...").
func ioStatV2(path string) BlockIOStats {
	var b BlockIOStats
	data, err := readFile(path)
	if err != nil {
		return b
	}
	for _, field := range strings.Fields(string(data)) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "rbytes":
			b.Read += n
		case "wbytes":
			b.Write += n
		}
	}
	return b
}

// OOMNotifier delivers one value on C for every OOM event in the
// container's cgroup (v1: an eventfd registered in cgroup.event_control on
// memory.oom_control; v2: inotify on memory.events). The value is the
// oom_kill count read at that moment; on v1 the event can arrive just
// before the kill is counted, so read Stats after the process is gone for
// the final count. Close releases it.
type OOMNotifier struct {
	C     <-chan uint64
	close func()
}

// Close stops the notifier.
func (n *OOMNotifier) Close() { n.close() }

// NotifyOOM starts watching for OOM kills. The channel is closed when the
// cgroup goes away.
func (m *Manager) NotifyOOM() (*OOMNotifier, error) {
	ch := make(chan uint64, 16)
	if m.Mode == Unified {
		d := m.dir("")
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("cgroups: inotify: %w", err)
		}
		if _, err := unix.InotifyAddWatch(fd, filepath.Join(d, "memory.events"), unix.IN_MODIFY); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("cgroups: watch %s/memory.events: %w", d, err)
		}
		f := os.NewFile(uintptr(fd), "inotify")
		go func() {
			defer close(ch)
			var last uint64
			buf := make([]byte, 4096)
			for {
				if _, err := f.Read(buf); err != nil {
					return
				}
				ev, err := readKV(filepath.Join(d, "memory.events"))
				if err != nil {
					return
				}
				if k := ev["oom_kill"]; k > last {
					last = k
					ch <- k
				}
			}
		}()
		return &OOMNotifier{C: ch, close: func() { f.Close() }}, nil
	}
	d := m.dir("memory")
	if d == "" {
		return nil, errors.New("cgroups: the memory controller is not mounted")
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cgroups: eventfd: %w", err)
	}
	oc, err := os.Open(filepath.Join(d, "memory.oom_control"))
	if err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := writeFile(d, "cgroup.event_control", strconv.Itoa(efd)+" "+strconv.Itoa(int(oc.Fd()))); err != nil {
		unix.Close(efd)
		oc.Close()
		return nil, err
	}
	ef := os.NewFile(uintptr(efd), "eventfd")
	go func() {
		defer close(ch)
		defer oc.Close()
		buf := make([]byte, 8)
		for {
			if _, err := ef.Read(buf); err != nil {
				return
			}
			// The eventfd also fires when the cgroup is removed.
			if _, err := os.Stat(d); err != nil {
				return
			}
			kv, _ := readKV(filepath.Join(d, "memory.oom_control"))
			ch <- kv["oom_kill"]
		}
	}()
	return &OOMNotifier{C: ch, close: func() { ef.Close() }}, nil
}
