package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A container whose spec joins a namespace by path (a pod's) takes the
// process StartEarlyFor started for that spec: the same pid runs the
// program, in the joined namespace; a spec of another shape (the same
// namespace made new) gets a process of its own.
func TestCreateTakesEarlyForJoinedNamespace(t *testing.T) {
	e := newEnv(t)
	r := &Runtime{Root: e.root, Warn: func(m string) { t.Log("runtime:", m) }}
	ns, err := NewNetNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nsPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.Fd())
	want, err := os.Readlink(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	join := func(s *specs.Spec) {
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = nsPath
			}
		}
	}
	script := sh(`echo "pid $$"; readlink /proc/self/ns/net`)
	for _, tc := range []struct {
		name         string
		early, spec  func(*specs.Spec) // the spec the process is started for, the one created
		takes, joins bool
		same         bool // Create gets the very spec the process was started for
	}{
		{"joined", join, join, true, true, false},
		{"made new at create", join, nil, false, false, false},
		// Create gets the spec the process was started for, its memory
		// limit set ahead (as a spare monitor's).
		{"joined, with a memory limit", withMemory(join), withMemory(join), true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, script, tc.spec)
			out, err := os.Create(filepath.Join(b, "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			spec, err := LoadSpec(b)
			if err != nil {
				t.Fatal(err)
			}
			ahead, err := LoadSpec(b)
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range ahead.Linux.Namespaces {
				if n.Type == specs.NetworkNamespace {
					ahead.Linux.Namespaces[i].Path = ""
				}
			}
			tc.early(ahead)
			id := e.id()
			early, err := r.StartEarlyFor(id, ahead, EarlyOptions{Stdout: out, Stderr: out})
			if err != nil {
				t.Fatal(err)
			}
			earlyPid := early.Pid()
			if tc.same {
				spec = ahead
			}
			pid, ws, got := runTaking(t, r, id, b, spec, early, out)
			if !ws.Exited() || ws.ExitStatus() != 0 || !strings.Contains(got, "pid 1\n") {
				t.Fatalf("container ended with %v:\n%s", ws, got)
			}
			if took := pid == earlyPid; took != tc.takes {
				t.Fatalf("took the early process: %v, want %v", took, tc.takes)
			}
			if joined := strings.Contains(got, want); joined != tc.joins {
				t.Errorf("in the namespace %s: %v, want %v:\n%s", want, joined, tc.joins, got)
			}
		})
	}
	// A terminal does not suit an early process.
	b := newBundle(t, []string{"true"}, func(s *specs.Spec) { join(s); s.Process.Terminal = true })
	spec, err := LoadSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	if early, err := r.StartEarlyFor(e.id(), spec, EarlyOptions{}); err == nil {
		early.Close()
		t.Error("StartEarlyFor started a process for a spec with a terminal")
	}
}

// withMemory is mutate and a 64 MB memory limit.
func withMemory(mutate func(*specs.Spec)) func(*specs.Spec) {
	return func(s *specs.Spec) {
		mutate(s)
		limit := int64(64 << 20)
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	}
}
