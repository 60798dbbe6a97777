package shim

import (
	"reflect"
	"testing"
)

// The command line the monitor renders (Argv) parses back, in the shim,
// to the same Args.
func TestArgvParsesBack(t *testing.T) {
	want := Args{Pid: 42, TTY: true, HasListener: true, HasIn: true, Log: "/l/container.log", LogMaxSize: 10 << 20,
		LogMaxFiles: 3, CgroupPath: "/hull-x", OOMBaseline: 7, ExitFile: "/r/exit.json", Resume: []string{"/bin/hull", "monitor", "x"}}
	argv := want.Argv("/bin/hull-shim")
	if argv[0] != "/bin/hull-shim" {
		t.Fatalf("argv %q: path first", argv)
	}
	var got Args
	fs := got.flagSet()
	if err := fs.Parse(argv[1:]); err != nil {
		t.Fatal(err)
	}
	got.Resume = fs.Args()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("argv %q parses to %+v, want %+v", argv, got, want)
	}
}
