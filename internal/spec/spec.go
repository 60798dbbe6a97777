// Package spec turns an image's config plus the options of `hull run` and
// `hull create` into the OCI runtime spec (config.json) that hull's runtime
// executes. It follows docker's rules wherever a docker user would notice
// a difference: how --entrypoint and the command combine, how -u is
// resolved against the image's own /etc/passwd, the default capability set,
// the default mounts, devices and masked paths. hull differs on purpose in
// one place: no-new-privileges is on unless asked otherwise.
package spec

import (
	"errors"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options are the per-container settings of `hull run`/`create` (docker's flags).
type Options struct {
	ID       string // container ID (64 hex)
	Name     string
	Hostname string // default: first 12 chars of ID (the host's name with Network "host")

	// Process
	Entrypoint    []string // --entrypoint; with EntrypointSet and empty, clears the image's
	EntrypointSet bool
	Cmd           []string // args after the image; empty: image Cmd
	Env           []string // KEY=VALUE, merged over the image's Env (later wins)
	WorkingDir    string   // -w; default image WorkingDir or "/"
	User          string   // -u user[:group], names or ids, resolved in the rootfs
	TTY           bool     // -t: process.terminal
	Init          bool     // --init: InitPath runs as PID 1 with the process as its child
	InitPath      string   // host path of the init binary, mounted read-only at InitTarget

	// Security
	Privileged      bool
	CapAdd, CapDrop []string // names with or without CAP_, "ALL" allowed, any case
	NoNewPrivileges *bool    // nil: true (hull's default)
	Seccomp         string   // "": hull's default profile; "unconfined"; or a docker-format JSON file
	ReadOnlyRootfs  bool

	// Storage
	Mounts []Mount           // -v, named volumes (resolved to a host dir by the engine), --mount
	Tmpfs  map[string]string // --tmpfs /path[:opts]: path -> opts
	// ExtraMounts are appended last as they are: the engine's
	// /etc/hostname, /etc/hosts and /etc/resolv.conf.
	ExtraMounts []specs.Mount

	// Resources (0 = unset)
	Memory, MemoryReservation, MemorySwap int64 // bytes; MemorySwap -1 = unlimited
	NanoCPUs                              int64 // --cpus 1.5 => 1.5e9
	CPUShares                             int64
	CpusetCpus                            string
	PidsLimit                             int64 // -1 unlimited
	Ulimits                               []Ulimit

	// Namespaces
	Network     string // "none" or "" (new netns with only lo) or "host"
	CgroupsPath string // e.g. "/hull/<id>"
	Annotations map[string]string
}

// Mount is one -v, --mount or named volume.
type Mount struct {
	Type                string // bind, volume, tmpfs
	Source, Destination string
	ReadOnly            bool
	Options             []string
}

// Ulimit is one --ulimit name=soft[:hard].
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Generate builds the spec. rootfs is the container's mounted root
// filesystem (absolute path): users, groups and the working directory are
// looked up in it, and spec.Root.Path points at it.
func Generate(img *v1.ConfigFile, rootfs string, o Options) (*specs.Spec, error) {
	return nil, errors.New("spec.Generate: not implemented yet")
}
