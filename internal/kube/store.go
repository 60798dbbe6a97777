package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"hull/internal/engine"
)

// The pods' state on disk, under <root>/kube/pods/<namespace>/<name>/:
//
//	pod.json       the object as applied (metadata, spec); written once by apply
//	status.json    its v1.PodStatus; written by the supervisor after every change
//	events.json    its events, oldest first; written by the supervisor
//	kubelet.json   the supervisor's own state (sandbox, containers, back-offs),
//	               so a restarted supervisor carries on where the last one was
//	supervisor     the supervisor's pid (a live one holds supervisor.lock)
//	delete         written by delete: the grace period; the supervisor then
//	               tears the pod down and removes the directory
//	logs/          the sandbox's CRI log directory (<container>/<attempt>.log)
//
// Each file has one writer and is replaced whole (write, fsync, rename),
// so readers never see half a file and need no lock.

// Store is the pod directory tree of one hull root.
type Store struct{ dir string }

// NewStore is the store under a hull root.
func NewStore(root string) *Store { return &Store{dir: engine.KubePodsDir(root)} }

// PodDir is a pod's directory.
func (s *Store) PodDir(namespace, name string) string { return filepath.Join(s.dir, namespace, name) }

// Event is one of a pod's events, as `describe` lists them.
type Event struct {
	Type    string    `json:"type"` // Normal or Warning
	Reason  string    `json:"reason"`
	From    string    `json:"from"`
	Message string    `json:"message"`
	First   time.Time `json:"firstTimestamp"`
	Last    time.Time `json:"lastTimestamp"`
	Count   int       `json:"count"`
}

// PodRecord is a pod as the store holds it.
type PodRecord struct {
	Pod    *v1.Pod
	Events []Event
	Dir    string
}

// writeJSON replaces path with v's JSON atomically.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'), true)
}

// writeFile replaces the file at path with b whole: written to a
// temporary file, synced first when durable, renamed into place.
func writeFile(path string, b []byte, durable bool) error {
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// Create records a new pod; it fails with os.ErrExist when one of that
// name is there.
func (s *Store) Create(pod *v1.Pod) error {
	dir := s.PodDir(pod.Namespace, pod.Name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "pod.json"), pod); err != nil {
		os.RemoveAll(dir)
		return err
	}
	return nil
}

// Get reads a pod with its status and events; os.ErrNotExist when there
// is none.
func (s *Store) Get(namespace, name string) (*PodRecord, error) {
	dir := s.PodDir(namespace, name)
	pod := &v1.Pod{}
	if err := readJSON(filepath.Join(dir, "pod.json"), pod); err != nil {
		return nil, err
	}
	var st v1.PodStatus
	if err := readJSON(filepath.Join(dir, "status.json"), &st); err == nil {
		pod.Status = st
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if pod.Status.Phase == "" {
		pod.Status.Phase = v1.PodPending
	}
	if pod.Status.QOSClass == "" {
		pod.Status.QOSClass = QOSClass(pod)
	}
	rec := &PodRecord{Pod: pod, Dir: dir}
	_ = readJSON(filepath.Join(dir, "events.json"), &rec.Events)
	if g, ok := s.deleting(dir); ok {
		if pod.DeletionTimestamp == nil {
			t := metav1.NewTime(g.At)
			pod.DeletionTimestamp = &t
		}
		pod.DeletionGracePeriodSeconds = &g.GracePeriod
	}
	return rec, nil
}

// List reads the pods of a namespace ("" for all), by namespace and name.
func (s *Store) List(namespace string) ([]*PodRecord, error) {
	dirs, err := s.podDirs(namespace)
	if err != nil {
		return nil, err
	}
	var out []*PodRecord
	for _, d := range dirs {
		rec, err := s.Get(d[0], d[1])
		if err != nil {
			continue // being created or removed
		}
		out = append(out, rec)
	}
	return out, nil
}

// podDirs lists the pods of a namespace ("" for all) as namespace and
// name, by namespace and name, without reading them.
func (s *Store) podDirs(namespace string) ([][2]string, error) {
	nss := []string{namespace}
	if namespace == "" {
		entries, err := os.ReadDir(s.dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		nss = nss[:0]
		for _, e := range entries {
			if e.IsDir() { // a namespace (nothing else belongs here)
				nss = append(nss, e.Name())
			}
		}
	}
	var out [][2]string
	for _, ns := range nss {
		entries, err := os.ReadDir(filepath.Join(s.dir, ns))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue // a pod being removed
			}
			out = append(out, [2]string{ns, e.Name()})
		}
	}
	return out, nil
}

// deletion is what delete asks of a pod's supervisor.
type deletion struct {
	At          time.Time `json:"at"`
	GracePeriod int64     `json:"gracePeriodSeconds"`
}

func (s *Store) deleting(dir string) (deletion, bool) {
	var d deletion
	err := readJSON(filepath.Join(dir, "delete"), &d)
	return d, err == nil
}

// MarkDeleted asks for the pod's removal with a grace period.
func (s *Store) MarkDeleted(dir string, grace int64) error {
	if d, ok := s.deleting(dir); ok && d.GracePeriod <= grace {
		return nil // already asked, with no longer a grace period
	}
	return writeJSON(filepath.Join(dir, "delete"), deletion{At: time.Now().UTC(), GracePeriod: grace})
}

// supervisorPID is the pid of the pod's live supervisor, or 0.
func supervisorPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "supervisor"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(cmdline), "\x00supervise\x00") || !strings.Contains(string(cmdline), dir) {
		if err == nil && applierOf(pid, dir) { // applier.go
			return pid
		}
		return 0 // gone, or the pid is another process's now
	}
	return pid
}
