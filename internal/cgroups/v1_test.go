package cgroups

import (
	"math/rand"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Devices is the devices controller of cgroup v1 as rules leave it: a
// default behaviour and exceptions to it, each rule written in order.
func v1Devices(rules []specs.LinuxDeviceCgroup) (bool, map[string]bool) {
	allowAll, exceptions := true, map[string]bool{}
	for _, r := range rules {
		rule := DeviceRule(r)
		if rule[:6] == "a *:* " {
			allowAll, exceptions = r.Allow, map[string]bool{}
			continue
		}
		if r.Allow != allowAll {
			exceptions[rule] = true
		} else {
			delete(exceptions, rule)
		}
	}
	return allowAll, exceptions
}

// Compacting leaves the devices controller exactly as the full list does,
// with the duplicates hull's specs and the runtime's defaults make gone.
func TestCompactDeviceRulesKeepsTheOutcome(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	pool := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(-1), Minor: i64(-1), Access: "m"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
		{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "b", Major: i64(8), Minor: i64(-1), Access: "r"},
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 5000; i++ {
		var rules []specs.LinuxDeviceCgroup
		for n := r.Intn(12); n > 0; n-- {
			rules = append(rules, pool[r.Intn(len(pool))])
		}
		wantAll, want := v1Devices(rules)
		gotAll, got := v1Devices(compactDeviceRules(rules))
		if gotAll != wantAll || len(got) != len(want) {
			t.Fatalf("rules %v: compacted to %v, outcome %v %v, want %v %v", rules, compactDeviceRules(rules), gotAll, got, wantAll, want)
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("rules %v: compacted to %v lost %s", rules, compactDeviceRules(rules), k)
			}
		}
	}
	// A spec of hull's with the runtime's defaults around it: 30 rules,
	// 12 of which change anything.
	defaults := []specs.LinuxDeviceCgroup{pool[2], {Allow: true, Type: "b", Major: i64(-1), Minor: i64(-1), Access: "m"}}
	for _, d := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}} {
		defaults = append(defaults, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(d[0]), Minor: i64(d[1]), Access: "rwm"})
	}
	full := append(append(append([]specs.LinuxDeviceCgroup{pool[0], pool[0]}, defaults...), defaults...), defaults[2:8]...)
	if got := compactDeviceRules(full); len(got) != 12 {
		t.Errorf("compacted %d rules to %d, want 12: %v", len(full), len(got), got)
	}
}
