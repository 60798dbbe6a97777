package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
)

// Info describes the engine and the host features it relies on (`hull
// info`). Fields docker's `docker info` has carry docker's names, so a
// --format template written for docker works; the rest are hull's own.
type Info struct {
	// ID names this engine's root for good (docker's daemon ID): made
	// on the first Info and kept in <root>/engine-id.
	ID string
	// Name is the host's name.
	Name string

	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	Images            int

	// Driver is the snapshotter ("overlay" or "copy"); DriverStatus its
	// details as docker's name/value pairs.
	Driver       string
	DriverStatus [][2]string
	// LoggingDriver is the format of container logs: hull keeps the CRI
	// format podman calls k8s-file.
	LoggingDriver string
	// CgroupDriver is how cgroups are made: by hull itself in the
	// cgroup filesystem ("cgroupfs"); CgroupVersion is "1" or "2".
	CgroupDriver  string
	CgroupVersion string
	// SecurityOptions are docker's "name=..." entries for what confines
	// containers.
	SecurityOptions []string

	KernelVersion   string
	OperatingSystem string
	OSVersion       string
	OSType          string
	Architecture    string
	NCPU            int
	MemTotal        int64
	// DockerRootDir is hull's persistent state directory.
	DockerRootDir string

	// RunRoot is the runtime state directory.
	RunRoot string
	// ImageStore is the image store's directory (an OCI image layout).
	ImageStore string
	// CgroupMode is v1, hybrid or v2.
	CgroupMode     string
	Overlay        bool
	UserNamespaces bool
	Seccomp        bool
}

// Info counts the images and containers and probes the host.
func (e *Engine) Info(ctx context.Context) (*Info, error) {
	images, err := e.images.Count(ctx)
	if err != nil {
		return nil, err
	}
	containers, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	id, err := e.engineID()
	if err != nil {
		return nil, err
	}
	mode := cgroups.DetectMode()
	in := &Info{
		ID: id, Images: images, Containers: len(containers),
		Driver: e.cfg.Storage.Snapshotter, LoggingDriver: e.defaultLogDriver(), CgroupDriver: "cgroupfs",
		OSType: "linux", NCPU: goruntime.NumCPU(), MemTotal: memTotal(),
		DockerRootDir: e.cfg.Root, RunRoot: e.cfg.RunRoot, ImageStore: e.images.Store().Dir(),
		CgroupMode:     mode.String(),
		Overlay:        hasFilesystem("overlay"),
		UserNamespaces: readInt("/proc/sys/user/max_user_namespaces") > 0,
		Seccomp:        seccompAvailable(),
	}
	for _, c := range containers {
		switch {
		case c.State == StatePaused:
			in.ContainersPaused++
		case c.IsRunning() || c.State == StateRestarting:
			in.ContainersRunning++
		default:
			in.ContainersStopped++
		}
	}
	switch mode {
	case cgroups.Unified:
		in.CgroupVersion = "2"
	case cgroups.Legacy, cgroups.Hybrid:
		in.CgroupVersion = "1"
	}
	if in.Seccomp {
		in.SecurityOptions = append(in.SecurityOptions, "name=seccomp,profile=builtin")
	}
	if mode == cgroups.Unified {
		in.SecurityOptions = append(in.SecurityOptions, "name=cgroupns")
	}
	if os.Geteuid() != 0 {
		in.SecurityOptions = append(in.SecurityOptions, "name=rootless")
	}
	in.DriverStatus = [][2]string{{"Backing Filesystem", backingFilesystem(e.cfg.Root)}}
	if in.Driver == "overlay" {
		in.DriverStatus = append(in.DriverStatus, [2]string{"Native Overlay Diff", "true"})
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	in.KernelVersion = unix.ByteSliceToString(uts.Release[:])
	in.Architecture = unix.ByteSliceToString(uts.Machine[:])
	in.Name, _ = os.Hostname()
	in.OperatingSystem, in.OSVersion = osRelease()
	return in, nil
}

// engineID reads <root>/engine-id, making it the first time.
func (e *Engine) engineID() (string, error) {
	path := filepath.Join(e.cfg.Root, "engine-id")
	if data, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(data)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("engine id: %w", err)
	}
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	id := fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
	tmp, err := os.CreateTemp(e.cfg.Root, ".engine-id-*")
	if err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	_, err = tmp.WriteString(id + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The first of two concurrent writers wins; both read it back.
		err = os.Link(tmp.Name(), path)
		if errors.Is(err, os.ErrExist) {
			err = nil
		}
	}
	os.Remove(tmp.Name())
	if err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	data, err := os.ReadFile(path)
	return strings.TrimSpace(string(data)), err
}

// osRelease is the host's PRETTY_NAME and VERSION_ID (os-release(5)).
func osRelease() (name, version string) {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		data, _ = os.ReadFile("/usr/lib/os-release")
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if s, err := strconv.Unquote(v); err == nil {
			v = s
		}
		switch k {
		case "PRETTY_NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	if name == "" {
		name = "Linux"
	}
	return name, version
}

// memTotal is the host's memory in bytes.
func memTotal() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// backingFilesystem names the filesystem dir is on, as docker does.
func backingFilesystem(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.F2FS_SUPER_MAGIC:
		return "f2fs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func hasFilesystem(name string) bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

func readInt(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

// seccompAvailable reports whether the kernel offers seccomp filters.
func seccompAvailable() bool {
	data, err := os.ReadFile("/proc/self/status")
	return err == nil && strings.Contains(string(data), "\nSeccomp:")
}

// defaultLogDriver is the log driver of a container created without one:
// hull.toml's [logging] driver, else DefaultLogDriver.
func (e *Engine) defaultLogDriver() string {
	if d := e.cfg.Logging.Driver; d != "" {
		return d
	}
	return DefaultLogDriver
}
