package engine

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/spec"
	"hull/internal/wire"
)

// A spare monitor gets its container's spec and record ahead of the ID,
// decoded, only when they are that container's; a spec it cannot decode
// (JSON, say) leaves it to read config.json; a bad header is an error.
func TestReadSpareIDTakesWhatWasSentAhead(t *testing.T) {
	spec := &specs.Spec{Root: &specs.Root{Path: "/r"}, Process: &specs.Process{Args: []string{"true"}}, Hostname: "h1"}
	started := time.Date(2026, 11, 27, 5, 0, 0, 7, time.UTC)
	// sent is what a command sends the spare: the spec of specID (with
	// record, its record too), then id.
	sent := func(specID, id string, record bool) string {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		e := &Engine{spare: &Spare{id: w, sync: w}}
		c := &Container{ID: specID, Name: "n1", Started: started, Config: Config{Image: "img"}}
		if record {
			e.offerSpare(nil, c, spec)
		} else {
			b, _ := wire.Append(nil, spec)
			e.spare.send(spareSpec, specID, b)
		}
		e.takeSpare(id, StartOptions{})
		b, _ := io.ReadAll(r)
		return string(b)
	}
	json := `{"root":{"path":"/r"},"process":{"args":["true"]},"hostname":"h1"}`
	for _, tc := range []struct {
		name, in, id        string
		spec, record, fails bool
	}{
		{"spec and record ahead", sent("c1", "c1", true), "c1", true, true, false},
		{"spec ahead", sent("c1", "c1", false), "c1", true, false, false},
		{"another container's spec and record", sent("c0", "c1", true), "c1", false, false, false},
		{"no spec", "c1\n", "c1", false, false, false},
		{"a spec in JSON", fmt.Sprintf("spec c1 %d\n%sc1\n", len(json), json), "c1", false, false, false},
		{"bad header", "spec c1 x\n{}c1\n", "", false, false, true},
		{"no id", "", "", false, false, true},
	} {
		// The spec counts as taken when it was given for the container
		// the monitor is then told (monitor.Prepared.Keep).
		var ahead *specs.Spec
		var aheadFor string
		id, record, err := readSpareID(strings.NewReader(tc.in), func(string, earlyAhead) {}, func(id string, s *specs.Spec, _ *Container) { ahead, aheadFor = s, id })
		spec := ahead
		if aheadFor != id {
			spec = nil
		}
		if (err != nil) != tc.fails || id != tc.id || (spec != nil) != tc.spec || (record != nil) != tc.record {
			t.Errorf("%s: id %q, spec %v, record %+v, err %v", tc.name, id, spec, record, err)
		}
		if ahead != nil && ahead.Hostname != "h1" {
			t.Errorf("%s: the spec given ahead is %+v", tc.name, ahead)
		}
		if spec != nil && (spec.Hostname != "h1" || spec.Linux == nil) {
			t.Errorf("%s: spec decoded as %+v", tc.name, spec)
		}
		if c := record; c != nil && (c.Name != "n1" || !c.Started.Equal(started) || c.Config.Image != "img") {
			t.Errorf("%s: record decoded as %+v", tc.name, c)
		}
	}
}

// A config.json Create left to later (the spare had the spec) is written
// by Close when nothing started it, and Close returns once it is there.
func TestCloseWritesConfigLeftToLater(t *testing.T) {
	path := t.TempDir() + "/config.json"
	c := &Container{Name: "n1", config: &configWrite{done: make(chan error, 1), write: func() error {
		time.Sleep(20 * time.Millisecond) // still writing when Close is called
		return os.WriteFile(path, []byte("{}"), 0o600)
	}}}
	e := &Engine{unwritten: []*Container{c}}
	e.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if err := c.waitConfig(); err != nil {
		t.Fatalf("a second wait: %v", err)
	}
}

// A pod container's spare is sent, as the creation begins, the
// namespaces and cgroups its spec will have, for its early process
// (sendEarly); not for a container in a user namespace.
func TestSendEarly(t *testing.T) {
	read := func(o spec.Options) (got []earlyAhead) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		s := &Spare{id: w, sync: w}
		sendEarly(s, "c1", &o)
		w.WriteString("c1\n")
		w.Close()
		id, _, err := readSpareID(r, func(id string, a earlyAhead) {
			if id != "c1" {
				t.Errorf("early process for %q", id)
			}
			got = append(got, a)
		}, func(string, *specs.Spec, *Container) { t.Error("a spec was read") })
		if err != nil || id != "c1" {
			t.Fatalf("id %q, err %v", id, err)
		}
		return got
	}
	o := spec.Options{Network: "ns:/run/p/net", IpcMode: "ns:/run/p/ipc", UTSMode: "ns:/run/p/uts", PidMode: "ns:/proc/9/ns/pid", CgroupsPath: "/kubepods/pod1/hull-c1"}
	got := read(o)
	want, _ := spec.Namespaces(o)
	if len(got) != 1 || got[0].CgroupsPath != o.CgroupsPath || !reflect.DeepEqual(got[0].Namespaces, want) || !got[0].Sealed {
		t.Errorf("sent %+v, want the namespaces %v, sealed (a joined pid namespace)", got, want)
	}
	o.PidMode = ""
	if got := read(o); len(got) != 1 || got[0].Sealed {
		t.Errorf("with a pid namespace of its own: sent %+v, want not sealed", got)
	}
	o.UsernsMode = "ns:/run/p/user"
	if got := read(o); len(got) != 0 {
		t.Errorf("in a user namespace: sent %+v, want nothing", got)
	}
}
