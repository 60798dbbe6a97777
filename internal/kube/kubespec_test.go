package kube

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podDNS merges and cuts as kubelet's GetPodDNS without cluster DNS.
func TestPodDNS(t *testing.T) {
	node := []byte("# comment\nnameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch old.example\nsearch corp.example. .\noptions ndots:1 rotate\noptions ndots:3\n")
	str := func(s string) *string { return &s }
	many := make([]string, 33)
	for i := range many {
		many[i] = fmt.Sprintf("s%02d%s.example", i, strings.Repeat("x", 60)) // 71 characters
	}
	for _, tc := range []struct {
		name                       string
		pod                        v1.PodSpec
		servers, searches, options []string
		events                     []string
	}{
		{"cluster first falls back", v1.PodSpec{DNSPolicy: v1.DNSClusterFirst},
			[]string{"10.0.0.1", "10.0.0.2"}, []string{"corp.example"}, []string{"ndots:3", "rotate"}, []string{"MissingClusterDNS"}},
		{"cluster first on the host network is Default", v1.PodSpec{DNSPolicy: v1.DNSClusterFirst, HostNetwork: true},
			[]string{"10.0.0.1", "10.0.0.2"}, []string{"corp.example"}, []string{"ndots:3", "rotate"}, nil},
		{"with host net", v1.PodSpec{DNSPolicy: v1.DNSClusterFirstWithHostNet, HostNetwork: true},
			[]string{"10.0.0.1", "10.0.0.2"}, []string{"corp.example"}, []string{"ndots:3", "rotate"}, []string{"MissingClusterDNS"}},
		{"default merged and cut", v1.PodSpec{DNSPolicy: v1.DNSDefault, DNSConfig: &v1.PodDNSConfig{
			Nameservers: []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"},
			Searches:    []string{"a.example", "corp.example"},
			Options:     []v1.PodDNSConfigOption{{Name: "ndots", Value: str("5")}, {Name: "edns0"}},
		}}, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, []string{"corp.example", "a.example"}, []string{"ndots:5", "rotate", "edns0"},
			[]string{"DNSConfigForming: Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.0.0.1 10.0.0.2 10.0.0.3"}},
		{"none", v1.PodSpec{DNSPolicy: v1.DNSNone, DNSConfig: &v1.PodDNSConfig{Nameservers: []string{"10.0.0.9"}}},
			[]string{"10.0.0.9"}, nil, nil, nil},
		{"searches cut", v1.PodSpec{DNSPolicy: v1.DNSNone, DNSConfig: &v1.PodDNSConfig{Nameservers: []string{"10.0.0.9"}, Searches: many}},
			// 32 paths, then the 28 that fit 2048 characters
			[]string{"10.0.0.9"}, many[:28], nil, []string{"DNSConfigForming: Search Line limits were exceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: tc.pod}
			pod.Name, pod.Namespace, pod.UID = "p", "default", "u"
			cfg, events := podDNS(pod, node)
			if !reflect.DeepEqual(cfg.Servers, tc.servers) || !reflect.DeepEqual(cfg.Searches, tc.searches) || !reflect.DeepEqual(cfg.Options, tc.options) {
				t.Errorf("servers %q searches %q options %q; want %q %q %q", cfg.Servers, cfg.Searches, cfg.Options, tc.servers, tc.searches, tc.options)
			}
			if len(events) != len(tc.events) {
				t.Fatalf("events %v; want %v", events, tc.events)
			}
			for i, e := range events {
				if got := e.reason + ": " + e.message; !strings.HasPrefix(got, tc.events[i]) {
					t.Errorf("event %q; want %q", got, tc.events[i])
				}
			}
		})
	}
}

// fenceposts rounds as the controller's ResolveFenceposts.
func TestFenceposts(t *testing.T) {
	for _, tc := range []struct {
		replicas               int32
		surge, unavailable     string
		wantSurge, wantUnavail int
	}{
		{4, "25%", "25%", 1, 1},
		{3, "25%", "25%", 1, 0}, // surge rounds up, unavailable down
		{10, "25%", "25%", 3, 2},
		{1, "25%", "25%", 1, 0},
		{5, "0", "0%", 0, 1}, // both 0: one unavailable
		{5, "2", "1", 2, 1},
	} {
		d := &appsv1.Deployment{}
		d.Spec.Replicas = &tc.replicas
		s, u := intstr.Parse(tc.surge), intstr.Parse(tc.unavailable)
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}}
		if gs, gu := fenceposts(d); gs != tc.wantSurge || gu != tc.wantUnavail {
			t.Errorf("%d replicas, %s/%s: surge %d unavailable %d; want %d %d", tc.replicas, tc.surge, tc.unavailable, gs, gu, tc.wantSurge, tc.wantUnavail)
		}
	}
}

// resourceValue divides and rounds up as kubelet, a limit not set being
// the node's allocatable.
func TestDownwardResourceValue(t *testing.T) {
	c := &v1.Container{Name: "c", Resources: resources("250m", "100M", "", "")}
	pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{*c}}}
	dw := &downward{allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi")}}
	for _, tc := range []struct{ res, divisor, want string }{
		{"requests.cpu", "", "1"}, {"requests.cpu", "1m", "250"}, {"limits.cpu", "", "4"}, {"limits.cpu", "1m", "4000"},
		{"requests.memory", "1Mi", "96"}, {"requests.memory", "1k", "100000"}, {"limits.memory", "1Gi", "8"},
		{"requests.ephemeral-storage", "", "0"},
	} {
		fs := &v1.ResourceFieldSelector{Resource: tc.res}
		if tc.divisor != "" {
			fs.Divisor = resource.MustParse(tc.divisor)
		}
		if got, err := dw.resourceValue(pod, c, fs); err != nil || got != tc.want {
			t.Errorf("%s / %s: %q %v; want %q", tc.res, tc.divisor, got, err, tc.want)
		}
	}
}
