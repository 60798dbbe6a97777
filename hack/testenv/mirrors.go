package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// printMirrors prints, for each of hosts, the line "MIRROR <host>
// <addr>/<host>": hull pulls that host's stand-ins, pushed under
// ADDR/<host>/<path>, under their own names through that mirror. The
// lines are not TOML on purpose: registries-toml turns them into
// hull.toml's [registries] block, mirrors_only included, so that no
// script can paste the mirrors without it.
func printMirrors(addr string, hosts map[string]bool) {
	for h := range hosts {
		fmt.Printf("MIRROR %s %s/%s\n", h, addr, h)
	}
}

// registriesTOML reads printMirrors' lines on stdin (other lines are
// ignored: the output of several critest-images / kubelet-images runs
// may be joined) and prints hull.toml's whole [registries] block:
// mirrors_only = true, then [registries.mirrors] with one mirror per
// host. With mirrors_only, a name the local registry lacks fails instead
// of being pulled from its real registry: tests and benchmarks contact
// only 127.0.0.1. The block is a table of its own, so it goes after any
// other top-level keys and before or after other tables.
func registriesTOML(args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("registries-toml: no arguments expected, got %q", args)
	}
	return writeRegistriesTOML(os.Stdout, os.Stdin)
}

// writeRegistriesTOML is registriesTOML from in to out.
func writeRegistriesTOML(out io.Writer, in io.Reader) error {
	mirrors := map[string]string{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MIRROR ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 {
			return fmt.Errorf("registries-toml: malformed line %q: want MIRROR <host> <location>", sc.Text())
		}
		if loc, dup := mirrors[f[0]]; dup && loc != f[1] {
			return fmt.Errorf("registries-toml: host %s has two mirrors, %s and %s", f[0], loc, f[1])
		}
		mirrors[f[0]] = f[1]
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("registries-toml: read stdin: %w", err)
	}
	if len(mirrors) == 0 {
		return fmt.Errorf("registries-toml: no MIRROR lines on stdin")
	}
	fmt.Fprintln(out, "# mirrors_only: what the local registry lacks fails, never reaching the real one")
	fmt.Fprintln(out, "[registries]")
	fmt.Fprintln(out, "mirrors_only = true")
	fmt.Fprintln(out, "[registries.mirrors]")
	hosts := make([]string, 0, len(mirrors))
	for h := range mirrors {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		fmt.Fprintf(out, "%q = [%q]\n", h, mirrors[h])
	}
	return nil
}
