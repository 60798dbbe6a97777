// Package checkpoint is a container's checkpoint: its process tree dumped
// by CRIU, and the archive that carries the dump with everything a restore
// needs to rebuild the container around it.
//
// The archive is an uncompressed tar. It is what CRI CheckpointContainer
// writes at the location kubelet chooses, what `hull container checkpoint
// --export FILE` writes, and what a restore reads:
//
//	checkpoint/       CRIU's images (criu dump --images-dir), dump.log beside them
//	spec.dump         the container's OCI runtime spec (its bundle's config.json)
//	config.dump       JSON of Record: who the container was and what it ran
//	rootfs-diff.tar   the writable layer's changes as an OCI layer (.wh. whiteouts)
//
// A pod checkpoint (CRI CheckpointPod's output_path) is a directory holding
// pod.dump (JSON of PodRecord) and containers/<name>.tar, one archive per
// container.
//
// The dump and the restore agree on CRIU's external resources by key: a
// bind mount (and each masked path bound over) is external with its
// destination as key, a network namespace the container does not own with
// the key extNetNs. Both sides build those keys from the helpers here.
package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

// Names of an archive's members and of a pod checkpoint's files.
const (
	// ImagesDir holds CRIU's image files (and DumpLog).
	ImagesDir = "checkpoint"
	// DumpLog is CRIU's log of the dump, inside ImagesDir.
	DumpLog = "dump.log"
	// SpecFile is the OCI runtime spec at dump time.
	SpecFile = "spec.dump"
	// ConfigFile is the JSON of Record.
	ConfigFile = "config.dump"
	// RootfsDiffFile is the writable layer's changes as an OCI layer tar.
	RootfsDiffFile = "rootfs-diff.tar"

	// PodFile is a pod checkpoint's JSON of PodRecord.
	PodFile = "pod.dump"
	// PodContainersDir holds a pod checkpoint's container archives,
	// each named by ContainerArchiveName.
	PodContainersDir = "containers"
)

// RecordVersion is the version of Record and PodRecord this code writes.
const RecordVersion = 1

// extNetNs is the CRIU external key of a network namespace the container
// does not own (a pod's or the host's): dump marks it with
// `--external net[INODE]:extNetNs`, restore hands the new namespace in
// with `--inherit-fd fd[N]:extNetNs`.
const extNetNs = "extNetNs"

// mountKey is the CRIU external key of a bind mount (or a masked path bound
// over): its destination in the container, so that restore can map each
// key to the new container's source without any other record.
func mountKey(destination string) string { return destination }

// Record is config.dump: the container the checkpoint was taken of.
type Record struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	// Image is the image as the user named it; ImageID its config digest
	// (sha256:...), on whose fresh rootfs restore applies rootfs-diff.tar.
	Image        string    `json:"image"`
	ImageID      string    `json:"imageID"`
	Created      time.Time `json:"created"`
	Checkpointed time.Time `json:"checkpointed"`
	TTY          bool      `json:"tty"`
	// ExternalNetNS: the network namespace was not the container's own
	// (a pod's or the host's); it was dumped as external (extNetNs).
	ExternalNetNS bool `json:"externalNetNS"`
	// Descriptors are what fds 0, 1 and 2 of the container's init pointed
	// at (readlink of /proc/PID/fd/N: "pipe:[1234]", "/dev/null", ...).
	Descriptors []string `json:"descriptors"`
	// Engine is the container's engine configuration as hull stores it
	// (engine.Config), kept raw so this package stays below the engine.
	Engine json.RawMessage `json:"engine"`
	// CRI is set when the container was created through the CRI.
	CRI         *CRIRecord `json:"cri,omitempty"`
	CRIUVersion string     `json:"criuVersion"`
}

// CRIRecord is a CRI container's metadata and its pod's.
type CRIRecord struct {
	Name         string `json:"name"`
	Attempt      uint32 `json:"attempt"`
	PodSandboxID string `json:"podSandboxID"`
	PodName      string `json:"podName"`
	PodNamespace string `json:"podNamespace"`
	PodUID       string `json:"podUID"`
}

// PodRecord is pod.dump: the pod a pod checkpoint was taken of.
type PodRecord struct {
	Version int `json:"version"`
	// SandboxConfig is the sandbox's CRI PodSandboxConfig as protojson.
	SandboxConfig json.RawMessage `json:"sandboxConfig"`
	// Containers are the containers' metadata names, in the order of the
	// request; each has PodContainersDir/<name>.tar.
	Containers   []string  `json:"containers"`
	Checkpointed time.Time `json:"checkpointed"`
}

// ContainerArchiveName is a pod checkpoint's archive path (relative to its
// directory) for the container of metadata name name.
func ContainerArchiveName(name string) string {
	return PodContainersDir + "/" + name + ".tar"
}

// MinCRIU is the oldest CRIU hull drives: 3.x fails `criu check` on
// current kernels (the vDSO layout changed), and 4.1 is what hull was
// tested with.
const MinCRIU = "4.1"

// CRIU is a CRIU binary that passed its checks.
type CRIU struct {
	Path    string
	Version string // "4.1.1"
}

var criuChecks struct {
	sync.Mutex
	byPath map[string]criuCheck
}

type criuCheck struct {
	criu *CRIU
	err  error
}

// FindCRIU returns the CRIU hull uses: $HULL_CRIU when set, else `criu`
// on PATH. The binary is checked once per path and process (its version
// must be at least MinCRIU and `criu check` must pass); when none works
// the error is a failed precondition naming the binary, its version and
// what `criu check` said, and what to do.
func FindCRIU() (*CRIU, error) {
	path := os.Getenv("HULL_CRIU")
	if path == "" {
		found, err := exec.LookPath("criu")
		if err != nil {
			return nil, errdefs.ErrFailedPrecondition.WithMessage(
				"checkpoint: no CRIU: HULL_CRIU is not set and there is no criu on PATH; " + criuAdvice)
		}
		path = found
	}
	criuChecks.Lock()
	defer criuChecks.Unlock()
	if c, ok := criuChecks.byPath[path]; ok {
		return c.criu, c.err
	}
	c, err := checkCRIU(path)
	if criuChecks.byPath == nil {
		criuChecks.byPath = map[string]criuCheck{}
	}
	criuChecks.byPath[path] = criuCheck{c, err}
	return c, err
}

const criuAdvice = "install CRIU >= " + MinCRIU + " (`make criu` builds one) and set HULL_CRIU to its path or put it on PATH"

func checkCRIU(path string) (*CRIU, error) {
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf(
			"checkpoint: CRIU %s does not run: %v: %s; %s", path, err, lastLine(out), criuAdvice))
	}
	version := parseCRIUVersion(out)
	if version == "" || !versionAtLeast(version, MinCRIU) {
		shown := version
		if shown == "" {
			shown = strconv.Quote(lastLine(out))
		}
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf(
			"checkpoint: CRIU %s is version %s, older than %s; %s", path, shown, MinCRIU, criuAdvice))
	}
	out, err = exec.Command(path, "check").CombinedOutput()
	if err != nil {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf(
			"checkpoint: CRIU %s (version %s) fails `criu check`: %s; %s", path, version, checkComplaint(out, err), criuAdvice))
	}
	return &CRIU{Path: path, Version: version}, nil
}

// parseCRIUVersion reads "Version: 4.1.1" out of `criu --version`.
func parseCRIUVersion(out []byte) string {
	for line := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// versionAtLeast compares dotted numeric versions ("4.1.1" >= "4.1").
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range w {
		var hn int
		if i < len(h) {
			n, err := strconv.Atoi(strings.TrimFunc(h[i], func(r rune) bool { return r < '0' || r > '9' }))
			if err != nil {
				return false
			}
			hn = n
		}
		wn, _ := strconv.Atoi(w[i])
		if hn != wn {
			return hn > wn
		}
	}
	return true
}

// checkComplaint is what `criu check` said: its error lines, else its
// last line, else the exit status.
func checkComplaint(out []byte, err error) string {
	var lines []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(line, "Error") || strings.Contains(line, "error") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	if len(lines) > 0 {
		return strings.Join(lines, "; ")
	}
	if l := lastLine(out); l != "" {
		return l
	}
	return err.Error()
}

func lastLine(out []byte) string {
	out = bytes.TrimSpace(out)
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	return string(out)
}
