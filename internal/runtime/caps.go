package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capNames maps OCI capability names to numbers (linux/capability.h).
var capNames = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// CapabilityNames lists every capability hull knows, for `features`.
func CapabilityNames() []string {
	out := make([]string, len(capNames))
	for n, v := range capNames {
		out[v] = n
	}
	return out
}

// lastCap is the highest capability the running kernel knows.
func lastCap() uint {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 40
	}
	return uint(v)
}

func capMask(names []string, last uint) ([2]uint32, error) {
	var m [2]uint32
	for _, n := range names {
		c, ok := capNames[strings.ToUpper(n)]
		if !ok {
			return m, fmt.Errorf("unknown capability %q", n)
		}
		if c > last {
			continue // the kernel is older than the name; nothing to grant
		}
		m[c/32] |= 1 << (c % 32)
	}
	return m, nil
}

// applyCaps sets the five capability sets: bounding (dropped one by one),
// effective/permitted/inheritable (capset) and ambient (raised one by one,
// which needs them in permitted and inheritable first).
func applyCaps(c *specs.LinuxCapabilities) error {
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	last := lastCap()
	if err := raiseEffective(); err != nil {
		return err
	}
	bounding, err := capMask(c.Bounding, last)
	if err != nil {
		return err
	}
	for i := uint(0); i <= last; i++ {
		if bounding[i/32]&(1<<(i%32)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", i, err)
		}
	}
	eff, err := capMask(c.Effective, last)
	if err != nil {
		return err
	}
	perm, err := capMask(c.Permitted, last)
	if err != nil {
		return err
	}
	inh, err := capMask(c.Inheritable, last)
	if err != nil {
		return err
	}
	// A capability this process does not hold (the host's own bounding
	// set lacks it) cannot be granted; the parent has warned about it.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	for i := 0; i < 2; i++ {
		eff[i] &= cur[i].Permitted
		perm[i] &= cur[i].Permitted
		inh[i] &= cur[i].Permitted | cur[i].Inheritable
	}
	data := [2]unix.CapUserData{
		{Effective: eff[0], Permitted: perm[0], Inheritable: inh[0]},
		{Effective: eff[1], Permitted: perm[1], Inheritable: inh[1]},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for _, n := range c.Ambient {
		v := capNames[strings.ToUpper(n)]
		if v > last || perm[v/32]&inh[v/32]&(1<<(v%32)) == 0 {
			continue // ambient needs it permitted and inheritable
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(v), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", n, err)
		}
	}
	return nil
}

// raiseEffective makes the effective set equal the permitted set. After
// the switch to a non-root user (with PR_SET_KEEPCAPS) the effective set
// is empty, but dropping from the bounding set needs CAP_SETPCAP in it.
func raiseEffective() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// unavailableCaps lists the requested capabilities this process cannot
// pass on (not in its own permitted set), so the caller can warn.
func unavailableCaps(c *specs.LinuxCapabilities) []string {
	if c == nil {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, n := range set {
			v, ok := capNames[strings.ToUpper(n)]
			if !ok || seen[n] || v > 63 {
				continue
			}
			seen[n] = true
			if cur[v/32].Permitted&(1<<(v%32)) == 0 {
				out = append(out, n)
			}
		}
	}
	return out
}
