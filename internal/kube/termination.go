package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/streams"
)

// Termination messages, as kubelet makes and reads them (kuberuntime
// makeMounts, getTerminationMessage, readLastStringFromContainerLogs): a
// file of the pod's, writable by any user, is bind-mounted at the
// container's terminationMessagePath; when the container has exited,
// what it wrote there (at most 4096 bytes) becomes the message of its
// terminated state. With terminationMessagePolicy FallbackToLogsOnError a
// failed container that wrote nothing gets the end of its log instead
// (the last 80 lines, at most 2048 bytes). The CRI knows nothing of
// this: it is the kubelet's job, so a real kubelet on hull-cri does the
// same.

const (
	maxTerminationMessage  = 4096 // kubecontainer.MaxContainerTerminationMessageLength
	maxTerminationLogLines = 80   // MaxContainerTerminationMessageLogLines
	maxTerminationLogBytes = 2048 // MaxContainerTerminationMessageLogLength

	annTerminationMessagePath   = "io.kubernetes.container.terminationMessagePath"
	annTerminationMessagePolicy = "io.kubernetes.container.terminationMessagePolicy"
)

// terminationMount makes the termination message file of c's attempt in
// the pod's directory and returns its mount (nil when c has no
// terminationMessagePath).
func (k *kubelet) terminationMount(c *v1.Container, attempt uint32) (*runtimeapi.Mount, error) {
	if c.TerminationMessagePath == "" {
		return nil, nil
	}
	dir := filepath.Join(k.dir, "containers", c.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("termination message file of container %s: %w", c.Name, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("termination-log.%d", attempt))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666)
	if err != nil {
		return nil, fmt.Errorf("termination message file of container %s: %w", c.Name, err)
	}
	f.Close()
	// Writable by the container's user, whoever it is (kubelet: 0666).
	if err := os.Chmod(path, 0o666); err != nil {
		return nil, fmt.Errorf("termination message file of container %s: %w", c.Name, err)
	}
	return &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: path}, nil
}

// withTerminationMessage adds to t (the terminated state of the exited
// CRI container cs) what the container left as its termination message,
// kubelet's way: after the runtime's own message, separated by ": ".
// Read once per container (messages), since an exited container's file
// and log no longer change.
func (k *kubelet) withTerminationMessage(t *v1.ContainerStateTerminated, cs *runtimeapi.ContainerStatus) *v1.ContainerStateTerminated {
	if cs.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		return t
	}
	msg, ok := k.messages[cs.GetId()]
	if !ok {
		msg = terminationMessage(cs)
		if k.messages == nil {
			k.messages = map[string]string{}
		}
		k.messages[cs.GetId()] = msg
	}
	if msg != "" {
		if t.Message != "" {
			t.Message += ": "
		}
		t.Message += msg
	}
	return t
}

// terminationMessage is what the exited container cs wrote to its
// termination message file, or the end of its log when its policy says
// so and it failed having written nothing.
func terminationMessage(cs *runtimeapi.ContainerStatus) string {
	path := cs.GetAnnotations()[annTerminationMessagePath]
	fallback := cs.GetAnnotations()[annTerminationMessagePolicy] == string(v1.TerminationMessageFallbackToLogsOnError) &&
		cs.GetExitCode() != 0 && cs.GetReason() != "ContainerCannotRun"
	if path != "" {
		for _, m := range cs.GetMounts() {
			if m.GetContainerPath() != path {
				continue
			}
			if b, err := readAtMost(m.GetHostPath(), maxTerminationMessage); err == nil && len(b) > 0 {
				return string(b)
			}
		}
	}
	if !fallback || cs.GetLogPath() == "" {
		return ""
	}
	return lastLogLines(cs.GetLogPath(), maxTerminationLogLines, maxTerminationLogBytes)
}

func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := f.Read(b)
	if m > 0 {
		err = nil
	}
	return b[:m], err
}

// lastLogLines is the end of a CRI log: its last lines (both streams, as
// written), then its last bytes.
func lastLogLines(path string, lines, bytes int) string {
	r, err := streams.OpenLogReader(context.Background(), path, streams.LogReadOptions{Tail: lines})
	if err != nil {
		return ""
	}
	defer r.Close()
	var b strings.Builder
	for {
		rec, err := r.Next()
		if err != nil {
			break
		}
		b.WriteString(rec.Line)
		if !rec.Partial {
			b.WriteByte('\n')
		}
	}
	s := b.String()
	if len(s) > bytes {
		s = s[len(s)-bytes:]
	}
	return s
}
