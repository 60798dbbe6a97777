package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// User namespaces (`hostUsers: false`), as kubelet's userns manager
// gives them: each such pod gets a block of 65536 host ids of its own
// (block N maps container ids 0-65535 to host ids N×65536…), the first
// block (the host's own users) never, two live pods never the same one.
// The block is chosen at apply, under the store's lock, and recorded in
// the pod's directory (`userns`), so it goes with the pod; the sandbox
// then asks hull-cri for a pod user namespace of those mappings (CRI
// NamespaceMode POD), which its containers share and its volumes are
// idmapped into.

const (
	usernsBlock     = 65536
	usernsMaxBlocks = 1<<32/usernsBlock - 1 // host ids are 32 bits
)

// hostUsersFalse reports a pod asking for its own user namespace.
func hostUsersFalse(pod *v1.Pod) bool {
	return pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers
}

// validateHostUsers is the API server's check: a pod with its own user
// namespace shares none of the host's other namespaces.
func validateHostUsers(s *v1.PodSpec, path *field.Path) field.ErrorList {
	if s.HostUsers == nil || *s.HostUsers {
		return nil
	}
	var errs field.ErrorList
	for _, f := range []struct {
		set  bool
		name string
	}{{s.HostNetwork, "hostNetwork"}, {s.HostPID, "hostPID"}, {s.HostIPC, "hostIPC"}} {
		if f.set {
			errs = append(errs, field.Forbidden(path.Child(f.name), "when `pod.Spec.HostUsers` is false"))
		}
	}
	return errs
}

// allocateUserns gives the pod recorded in dir the lowest block no other
// pod of the store has.
func (s *Store) allocateUserns(dir string) (int, error) {
	// Beside the pods' directory, not in it: every entry there is a
	// namespace.
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(s.dir), "userns.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, fmt.Errorf("user namespace of pod %s: %w", filepath.Base(dir), err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("user namespace of pod %s: %w", filepath.Base(dir), err)
	}
	used := map[int]bool{}
	files, _ := filepath.Glob(filepath.Join(s.dir, "*", "*", "userns"))
	for _, f := range files {
		if n, ok := readUserns(filepath.Dir(f)); ok {
			used[n] = true
		}
	}
	for n := 1; n <= usernsMaxBlocks; n++ {
		if !used[n] {
			if err := os.WriteFile(filepath.Join(dir, "userns"), []byte(strconv.Itoa(n)+"\n"), 0o600); err != nil {
				return 0, fmt.Errorf("user namespace of pod %s: %w", filepath.Base(dir), err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("user namespace of pod %s: every block of %d host ids is taken", filepath.Base(dir), usernsBlock)
}

// readUserns is the block recorded for the pod in dir.
func readUserns(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "userns"))
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil && n > 0
}

// usernsOptions are the CRI user namespace options of the pod in dir
// (nil: the host's).
func usernsOptions(pod *v1.Pod, dir string) *runtimeapi.UserNamespace {
	if !hostUsersFalse(pod) {
		return nil
	}
	n, ok := readUserns(dir)
	if !ok {
		return nil
	}
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: uint32(n * usernsBlock), Length: usernsBlock}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}
}
