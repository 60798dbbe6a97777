package main

import (
	"fmt"
	"slices"
	"strings"
)

// filterSet is a parsed list of docker --filter key=value arguments:
// values of one key are ORed, keys ANDed.
type filterSet map[string][]string

func parseFilterSet(args []string, known ...string) (filterSet, error) {
	fs := filterSet{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad filter %q: use key=value", a)
		}
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("bad filter %q: unknown key %q (use %s)", a, k, strings.Join(known, ", "))
		}
		fs[k] = append(fs[k], v)
	}
	return fs, nil
}

// anyOf: the key was not given, or one of its values passes ok.
func (fs filterSet) anyOf(key string, ok func(string) bool) bool {
	vals, given := fs[key]
	if !given {
		return true
	}
	return slices.ContainsFunc(vals, ok)
}

// labelMatches is docker's label filter: "k" needs the label, "k=v" its value.
func labelMatches(labels map[string]string, want string) bool {
	k, v, has := strings.Cut(want, "=")
	got, ok := labels[k]
	return ok && (!has || got == v)
}
