package main

import (
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
