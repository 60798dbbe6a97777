package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// hostResolv is the node's nameservers, search line and options as
// kubelet reads /etc/resolv.conf (its default --resolv-conf).
func hostResolv(t *testing.T) (servers, search, options []string) {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 1 && f[0] == "nameserver":
			servers = append(servers, f[1])
		case len(f) > 0 && f[0] == "search":
			search = nil
			for _, s := range f[1:] {
				if s != "." {
					search = append(search, strings.TrimSuffix(s, "."))
				}
			}
		case len(f) > 0 && f[0] == "options":
			options = append(options, f[1:]...)
		}
	}
	return servers, search, options
}

// resolvLines is resolv.conf's content as the test expects it written.
func resolvLines(servers, search, options []string) string {
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String()
}

// dnsPolicy, dnsConfig and hostAliases as kubelet applies them on a
// node without cluster DNS: /etc/resolv.conf and /etc/hosts inside the
// containers (nothing is resolved: the nameservers are loopback
// addresses nobody asks).
func TestKubeDNSHosts(t *testing.T) {
	root, fx := kubeEnv(t)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: dns-first
spec:
  terminationGracePeriodSeconds: 1
  hostname: web
  subdomain: grp
  hostAliases:
  - ip: 10.210.0.7
    hostnames: [db.local, cache.local]
  - ip: "fd00::7"
    hostnames: [six.local]
  dnsConfig:
    nameservers: [127.0.0.2]
    searches: [a.example, b.example]
    options:
    - name: ndots
      value: "2"
    - name: edns0
  containers:
  - name: c
    image: %[1]s
    command: ["sh", "-c", "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo END; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: dns-none
spec:
  terminationGracePeriodSeconds: 1
  dnsPolicy: None
  dnsConfig:
    nameservers: [127.0.0.3, 127.0.0.4]
    searches: [x.test]
    options:
    - name: timeout
      value: "1"
  containers:
  - name: c
    image: %[1]s
    command: ["sh", "-c", "cat /etc/resolv.conf; echo END; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: dns-hostnet
spec:
  terminationGracePeriodSeconds: 1
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  hostAliases:
  - ip: 10.210.0.8
    hostnames: [hn.local]
  dnsConfig:
    searches: [h.example]
    options:
    - name: ndots
      value: "3"
  containers:
  - name: c
    image: %[1]s
    command: ["sh", "-c", "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo END; sleep 3600"]
`, fx.Busybox.Ref)
	applyYAML(t, root, manifest)
	servers, search, options := hostResolv(t)
	logs := func(pod string) string {
		return waitKubeOut(t, root, "printing its files", func(out string) bool { return strings.Contains(out, "END") }, "logs", pod)
	}

	// ClusterFirst without cluster DNS: Default (the node's resolv.conf)
	// with the pod's dnsConfig merged, and kubelet's warning.
	p := waitPod(t, root, "dns-first", "running", running)
	want := resolvLines(uniqStrings(append(servers, "127.0.0.2"))[:min(3, len(uniqStrings(append(servers, "127.0.0.2"))))],
		append(search, "a.example", "b.example"), append(options, "ndots:2", "edns0")) +
		"---\n# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
		p.Status.PodIP + "\tweb.grp.default.svc.\tweb\n\n# Entries added by HostAliases.\n" +
		"10.210.0.7\tdb.local\tcache.local\nfd00::7\tsix.local\nEND\n"
	if got := logs("dns-first"); got != want {
		t.Errorf("dns-first files:\n%s\nwant:\n%s", got, want)
	}
	ev := mustKube(t, root, "get", "events")
	if !strings.Contains(ev, `MissingClusterDNS`) || !strings.Contains(ev, `kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`) {
		t.Errorf("events: no MissingClusterDNS warning:\n%s", ev)
	}

	// None: the pod's dnsConfig alone.
	if got, want := logs("dns-none"), resolvLines([]string{"127.0.0.3", "127.0.0.4"}, []string{"x.test"}, []string{"timeout:1"})+"END\n"; got != want {
		t.Errorf("dns-none resolv.conf:\n%s\nwant:\n%s", got, want)
	}

	// ClusterFirstWithHostNet on the host's network without cluster DNS:
	// Default too, with its dnsConfig; /etc/hosts is the node's with the
	// aliases.
	nodeHosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	want = resolvLines(servers, append(search, "h.example"), append(options, "ndots:3")) + "---\n# Kubernetes-managed hosts file (host network).\n" + string(nodeHosts) +
		"\n# Entries added by HostAliases.\n10.210.0.8\thn.local\nEND\n"
	if got := logs("dns-hostnet"); got != want {
		t.Errorf("dns-hostnet files:\n%s\nwant:\n%s", got, want)
	}

	// The API server's checks.
	bad := func(spec string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n%s  containers:\n  - name: c\n    image: %s\n", spec, fx.Busybox.Ref)
	}
	for _, tc := range []struct{ name, spec, want string }{
		{"policy", "  dnsPolicy: Cluster\n", `spec.dnsPolicy: Unsupported value: "Cluster": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"`},
		{"none without config", "  dnsPolicy: None\n", "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"},
		{"none without servers", "  dnsPolicy: None\n  dnsConfig:\n    searches: [a.b]\n", "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"},
		{"four nameservers", "  dnsConfig:\n    nameservers: [127.0.0.1, 127.0.0.2, 127.0.0.3, 127.0.0.4]\n", `spec.dnsConfig.nameservers: Invalid value: ["127.0.0.1","127.0.0.2","127.0.0.3","127.0.0.4"]: must not have more than 3 nameservers`},
		{"bad nameserver", "  dnsConfig:\n    nameservers: [dns.local]\n", `spec.dnsConfig.nameservers[0]: Invalid value: "dns.local": must be a valid IP address`},
		{"33 searches", "  dnsConfig:\n    searches: [" + strings.Repeat("a.b, ", 32) + "a.b]\n", `spec.dnsConfig.searches: Invalid value:`},
		{"long search line", "  dnsConfig:\n    searches: [" + strings.TrimSuffix(strings.Repeat(strings.Repeat("a", 60)+"."+strings.Repeat("b", 60)+", ", 17), ", ") + "]\n", `must not have more than 2048 characters (including spaces) in the search list`},
		{"empty option", "  dnsConfig:\n    options:\n    - value: \"1\"\n", `spec.dnsConfig.options[0]: Required value: must not be empty`},
		{"alias ip", "  hostAliases:\n  - ip: nowhere\n    hostnames: [a]\n", `spec.hostAliases[0].ip: Invalid value: "nowhere": must be a valid IP address`},
		{"alias name", "  hostAliases:\n  - ip: 10.210.0.9\n    hostnames: [Bad_Name]\n", `spec.hostAliases[0].hostnames[0]: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain`},
	} {
		t.Run(tc.name, func(t *testing.T) { applyRefused(t, root, bad(tc.spec), tc.want) })
	}
}

func uniqStrings(list []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
