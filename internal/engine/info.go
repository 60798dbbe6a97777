package engine

import (
	"context"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
)

// Info describes the engine and the host features it relies on (`hull
// info`).
type Info struct {
	Root, RunRoot string
	// ImageStore is the image store's directory (an OCI image layout).
	ImageStore  string
	Snapshotter string
	Images      int
	Containers  int
	Running     int
	// CgroupMode is legacy, hybrid or unified.
	CgroupMode     string
	Kernel         string
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
	in := &Info{
		Root: e.cfg.Root, RunRoot: e.cfg.RunRoot, ImageStore: e.images.Store().Dir(), Snapshotter: e.cfg.Storage.Snapshotter,
		Images: images, Containers: len(containers),
		CgroupMode:     cgroups.DetectMode().String(),
		Overlay:        hasFilesystem("overlay"),
		UserNamespaces: readInt("/proc/sys/user/max_user_namespaces") > 0,
		Seccomp:        seccompAvailable(),
	}
	for _, c := range containers {
		if c.IsRunning() {
			in.Running++
		}
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	in.Kernel = unix.ByteSliceToString(uts.Release[:])
	return in, nil
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
