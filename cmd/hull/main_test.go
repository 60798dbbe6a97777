package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"hull/internal/engine"
)

// isMountPoint reports whether dir appears as a mount point in mountinfo.
func isMountPoint(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(data), " "+dir+" ")
}

// funcName names the code of f (a wrapper's closure differs from the
// function it wraps).
func funcName(f func(*cobra.Command, []string) error) string {
	if f == nil {
		return "nil"
	}
	return runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
}

// describe lists a command's subtree: every command path with its flags.
func describe(c *cobra.Command) []string {
	var out []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		var flags []string
		c.Flags().VisitAll(func(f *pflag.Flag) { flags = append(flags, f.Name) })
		out = append(out, c.CommandPath()+" ["+strings.Join(flags, " ")+"]")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(c)
	slices.Sort(out)
	return out
}

// TestTreeForOneCommand: the tree built for one top-level command holds
// just that command, exactly as the whole tree has it (subcommands, flags,
// and its RunE wrapped alike), and a word naming no command gets the whole
// tree so cobra can resolve aliases and suggest.
func TestTreeForOneCommand(t *testing.T) {
	full := newRootCmd()
	for _, c := range full.Commands() {
		name := c.Name()
		if name == "help" || name == "completion" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			one := newRootCmdFor(name)
			var got *cobra.Command
			for _, sub := range one.Commands() {
				if sub.Name() == name {
					got = sub
				} else if sub.Name() != "help" && sub.Name() != "completion" {
					t.Errorf("tree for %q also built %q", name, sub.Name())
				}
			}
			if got == nil {
				t.Fatalf("tree for %q lacks it", name)
			}
			if w, g := describe(c), describe(got); !slices.Equal(w, g) {
				t.Errorf("%q differs from the whole tree's:\nwhole: %v\nbuilt: %v", name, w, g)
			}
			if w, g := funcName(c.RunE), funcName(got.RunE); w != g {
				t.Errorf("%q runs %s in the whole tree, %s in its own", name, w, g)
			}
		})
	}
	if n, all := len(newRootCmdFor("no-such-command").Commands()), len(full.Commands()); n != all {
		t.Errorf("unknown word: %d commands, want the whole tree's %d", n, all)
	}
}

// The exit status of run, create, start -a and exec failing before the
// container's process ran: what the engine says failed decides it.
func TestFailureStatus(t *testing.T) {
	notFound := errdefs.ErrNotFound.WithMessage("No such container: x")
	notRunning := errdefs.ErrFailedPrecondition.WithMessage("container x is not running")
	ambiguous := errdefs.ErrInvalidArgument.WithMessage("container ID prefix \"0\" is ambiguous")
	for _, c := range []struct {
		name      string
		err       error
		run, exec int
	}{
		{"command not found", &engine.StartError{Reason: engine.CommandNotFound, Err: errors.New("entrypoint x not found")}, 127, 127},
		{"command not executable", &engine.StartError{Reason: engine.CommandNotExecutable, Err: errors.New("/etc is a directory")}, 126, 126},
		{"setup failed", &engine.StartError{Reason: engine.SetupFailed, Err: notFound}, 125, 125},
		{"wrapped", fmt.Errorf("start: %w", &engine.StartError{Reason: engine.CommandNotFound, Err: notRunning}), 127, 127},
		{"missing container", notFound, 125, 1},
		{"ambiguous container", ambiguous, 125, 1},
		{"container not running", fmt.Errorf("exec: %w", notRunning), 125, 1},
		{"hull's own failure", errors.New("pipe: too many open files"), 125, 125},
		{"a name in use", errdefs.ErrAlreadyExists.WithMessage("the container name is already in use"), 125, 125},
	} {
		if got := failureStatus(c.err, false); got != c.run {
			t.Errorf("%s: status %d for run, want %d", c.name, got, c.run)
		}
		if got := failureStatus(c.err, true); got != c.exec {
			t.Errorf("%s: status %d for exec, want %d", c.name, got, c.exec)
		}
	}
}
