package engine

import (
	"fmt"
	"strconv"
	"strings"

	"hull/internal/monitor"
	"hull/internal/spec"
)

// The parsers of docker's option syntax, for front ends that take it
// (the CLI's flags, a compose file): each gives what Config holds, or an
// error that names what is wrong.

// RestartPolicy is when a container's monitor starts it again.
type RestartPolicy = monitor.RestartPolicy

// Mount is a -v/--mount volume or bind mount of a container.
type Mount = spec.Mount

// Ulimit is one --ulimit.
type Ulimit = spec.Ulimit

// ParseRestartPolicy parses --restart: no, on-failure[:N], always or
// unless-stopped.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "no", "always", "unless-stopped":
		if hasMax {
			return p, fmt.Errorf("--restart %s: only on-failure takes a retry count", s)
		}
	case "on-failure":
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return p, fmt.Errorf("--restart %s: the retry count must be a non-negative number", s)
			}
			p.MaxRetries = n
		}
	default:
		return p, fmt.Errorf("--restart %q: use no, on-failure[:N], always or unless-stopped", s)
	}
	return p, nil
}

// ParseEnv parses -e values: KEY=VALUE, or KEY alone for the value in
// this process's environment.
func ParseEnv(values []string) ([]string, error) { return spec.ParseEnv(values) }

// ParseEnvFile reads an --env-file.
func ParseEnvFile(path string) ([]string, error) { return spec.ParseEnvFile(path) }

// ParseVolume parses -v SRC:DST[:OPTS].
func ParseVolume(s string) (Mount, error) { return spec.ParseVolume(s) }

// ParseTmpfs parses --tmpfs DST[:OPTS].
func ParseTmpfs(s string) (dest, opts string, err error) { return spec.ParseTmpfs(s) }

// ParseUlimit parses --ulimit NAME=SOFT[:HARD].
func ParseUlimit(s string) (Ulimit, error) { return spec.ParseUlimit(s) }

// ParseMemory parses a size such as 32m or 1g, in bytes.
func ParseMemory(s string) (int64, error) { return spec.ParseMemory(s) }

// ParseMemorySwap parses --memory-swap: a size, or -1 for unlimited.
func ParseMemorySwap(s string) (int64, error) { return spec.ParseMemorySwap(s) }

// ParseCPUs parses --cpus 1.5 into nano-CPUs.
func ParseCPUs(s string) (int64, error) { return spec.ParseCPUs(s) }

// Device is one --device.
type Device = spec.Device

// ThrottleDevice is one --device-{read,write}-{bps,iops}.
type ThrottleDevice = spec.ThrottleDevice

// ParseSysctl parses --sysctl KEY=VALUE, refusing a sysctl no namespace
// of the container isolates (docker's list).
func ParseSysctl(s string) (key, value string, err error) { return spec.ParseSysctl(s) }

// ParseDevice parses --device HOST[:CONTAINER][:PERMISSIONS].
func ParseDevice(s string) (Device, error) { return spec.ParseDevice(s) }

// CheckDeviceCgroupRule checks --device-cgroup-rule 'c 1:3 mr'.
func CheckDeviceCgroupRule(s string) error {
	_, err := spec.ParseDeviceCgroupRule(s)
	return err
}

// ParseThrottleDevice parses --device-{read,write}-bps DEVICE:SIZE, or
// with iops DEVICE:NUMBER.
func ParseThrottleDevice(s string, iops bool) (ThrottleDevice, error) {
	return spec.ParseThrottleDevice(s, iops)
}

// CheckNamespaceModes checks --pid, --ipc, --uts, --cgroupns (and their
// conflicts with --hostname) before anything is created.
func CheckNamespaceModes(o spec.Options) error { return spec.CheckNamespaceModes(o) }

// ConfigWarnings are docker's warnings for options of c the host cannot
// honour, which are dropped rather than refused (--kernel-memory, an
// --oom-kill-disable or --blkio-weight the kernel lacks).
func ConfigWarnings(c Config) []string { return spec.Warnings(c.Spec) }

// CheckCgroupParent checks --cgroup-parent.
func CheckCgroupParent(p string) error { return spec.CheckCgroupParent(p) }

// ApplySecurityOpt applies one --security-opt to o.
func ApplySecurityOpt(o *spec.Options, so string) error { return spec.ApplySecurityOpt(o, so) }

// ParseLabelFile reads a --label-file: key=value lines.
func ParseLabelFile(path string) ([]string, error) { return spec.ParseLabelFile(path) }

// ParseMount parses docker's long form --mount
// type=bind|volume|tmpfs,src=,dst=,readonly,... (a CSV record).
func ParseMount(s string) (Mount, error) { return spec.ParseMount(s) }

// ParseVolumesFrom parses --volumes-from CONTAINER[:ro|rw].
func ParseVolumesFrom(s string) (VolumesFrom, error) {
	name, mode, _ := strings.Cut(s, ":")
	v := VolumesFrom{Container: name, Mode: mode}
	if name == "" {
		return v, fmt.Errorf("--volumes-from %q: name a container (CONTAINER[:ro|rw])", s)
	}
	if mode != "" && mode != "ro" && mode != "rw" {
		return v, fmt.Errorf("--volumes-from %q: invalid mode %q (use ro or rw)", s, mode)
	}
	return v, nil
}

// Streams are the standard streams a foreground run attaches (-a).
type Streams struct{ Stdin, Stdout, Stderr bool }

// ParseAttach parses run's -a/--attach values (stdin, stdout, stderr, in
// any case); none given means stdout and stderr, as docker's.
func ParseAttach(values []string) (Streams, error) {
	if len(values) == 0 {
		return Streams{Stdout: true, Stderr: true}, nil
	}
	var s Streams
	for _, v := range values {
		switch strings.ToLower(v) {
		case "stdin":
			s.Stdin = true
		case "stdout":
			s.Stdout = true
		case "stderr":
			s.Stderr = true
		default:
			return s, fmt.Errorf("invalid argument %q for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", v)
		}
	}
	return s, nil
}

// ParseExpose parses --expose PORT[/PROTO] or START-END[/PROTO].
func ParseExpose(v string) ([]string, error) { return spec.ParseExpose(v) }
