package kube

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod's DNS and /etc/hosts, as kubelet makes them
// (pkg/kubelet/network/dns GetPodDNS; kubelet_pods.go makeHostsMount)
// for a node with no cluster DNS (kubelet without --cluster-dns, its
// --resolv-conf the default /etc/resolv.conf, no --cluster-domain):
// ClusterFirst falls back to Default with kubelet's MissingClusterDNS
// warning; Default is the node's resolv.conf; None starts empty; the
// pod's dnsConfig is merged over the result, then cut to the resolver's
// limits. The result goes to the runtime as the sandbox's DnsConfig
// (the CRI server writes the pod's resolv.conf); /etc/hosts is
// kubelet's own file, mounted into each container.

// The API server's limits on dnsConfig (and kubelet's on the merged
// result).
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

// hostResolvConf is kubelet's default --resolv-conf.
const hostResolvConf = "/etc/resolv.conf"

// validateDNS is the API server's check of dnsPolicy, dnsConfig and
// hostAliases.
func validateDNS(spec *field.Path, s *v1.PodSpec) field.ErrorList {
	var errs field.ErrorList
	switch s.DNSPolicy {
	case v1.DNSClusterFirstWithHostNet, v1.DNSClusterFirst, v1.DNSDefault, v1.DNSNone:
	case "":
		errs = append(errs, field.Required(spec.Child("dnsPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(spec.Child("dnsPolicy"), s.DNSPolicy,
			[]v1.DNSPolicy{v1.DNSClusterFirstWithHostNet, v1.DNSClusterFirst, v1.DNSDefault, v1.DNSNone}))
	}
	p, c := spec.Child("dnsConfig"), s.DNSConfig
	if s.DNSPolicy == v1.DNSNone {
		if c == nil {
			return append(errs, field.Required(p, "must provide `dnsConfig` when `dnsPolicy` is None"))
		}
		if len(c.Nameservers) == 0 {
			return append(errs, field.Required(p.Child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
		}
	}
	if c != nil {
		if len(c.Nameservers) > maxDNSNameservers {
			errs = append(errs, field.Invalid(p.Child("nameservers"), c.Nameservers, fmt.Sprintf("must not have more than %v nameservers", maxDNSNameservers)))
		}
		for i, ns := range c.Nameservers {
			errs = append(errs, validation.IsValidIPForLegacyField(p.Child("nameservers").Index(i), ns, false, nil)...)
		}
		if len(c.Searches) > maxDNSSearchPaths {
			errs = append(errs, field.Invalid(p.Child("searches"), c.Searches, fmt.Sprintf("must not have more than %v search paths", maxDNSSearchPaths)))
		}
		if len(strings.Join(c.Searches, " ")) > maxDNSSearchListChars {
			errs = append(errs, field.Invalid(p.Child("searches"), c.Searches, fmt.Sprintf("must not have more than %v characters (including spaces) in the search list", maxDNSSearchListChars)))
		}
		for i, s := range c.Searches {
			if s == "." {
				continue
			}
			s = strings.TrimSuffix(s, ".")
			// A subdomain that may hold underscores (SRV names).
			for _, m := range validation.IsDNS1123Subdomain(strings.ReplaceAll(s, "_", "a")) {
				errs = append(errs, field.Invalid(p.Child("searches").Index(i), s, m))
			}
		}
		for i, o := range c.Options {
			if o.Name == "" {
				errs = append(errs, field.Required(p.Child("options").Index(i), "must not be empty"))
			}
		}
	}
	for i, a := range s.HostAliases {
		ap := spec.Child("hostAliases").Index(i)
		errs = append(errs, validation.IsValidIPForLegacyField(ap.Child("ip"), a.IP, false, nil)...)
		for j, h := range a.Hostnames {
			for _, m := range validation.IsDNS1123Subdomain(h) {
				errs = append(errs, field.Invalid(ap.Child("hostnames").Index(j), h, m))
			}
		}
	}
	return errs
}

// dnsEvent is a warning kubelet records while forming a pod's DNS.
type dnsEvent struct{ reason, message string }

// podDNS is kubelet's GetPodDNS on a node without cluster DNS: the
// sandbox's DnsConfig and the warnings kubelet records with it.
func podDNS(pod *v1.Pod, resolvConf []byte) (*runtimeapi.DNSConfig, []dnsEvent) {
	var events []dnsEvent
	cfg := &runtimeapi.DNSConfig{}
	cluster := pod.Spec.DNSPolicy == v1.DNSClusterFirstWithHostNet ||
		(pod.Spec.DNSPolicy == v1.DNSClusterFirst && !pod.Spec.HostNetwork)
	if cluster {
		events = append(events, dnsEvent{"MissingClusterDNS", fmt.Sprintf(
			"pod: %q. kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
			fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID), v1.DNSClusterFirst, v1.DNSDefault)})
	}
	if pod.Spec.DNSPolicy != v1.DNSNone {
		cfg.Servers, cfg.Searches, cfg.Options = parseResolvConf(resolvConf)
	}
	if c := pod.Spec.DNSConfig; c != nil {
		cfg.Servers = uniq(append(cfg.Servers, c.Nameservers...))
		cfg.Searches = uniq(append(cfg.Searches, c.Searches...))
		cfg.Options = mergeOptions(cfg.Options, c.Options)
	}
	if len(cfg.Servers) > maxDNSNameservers {
		cfg.Servers = cfg.Servers[:maxDNSNameservers]
		events = append(events, dnsEvent{"DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(cfg.Servers, " ")})
	}
	if s, cut := fitSearches(cfg.Searches); cut {
		cfg.Searches = s
		events = append(events, dnsEvent{"DNSConfigForming", "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(s, " ")})
	}
	return cfg, events
}

// parseResolvConf is kubelet's reading of the node's resolv.conf:
// nameservers accumulate, the last search line wins (trailing dots and
// "." dropped), options accumulate with the last of a name winning.
func parseResolvConf(b []byte) (servers, searches, options []string) {
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		f := strings.Fields(l)
		if strings.HasPrefix(l, "#") || len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				servers = append(servers, f[1])
			}
		case "search":
			searches = nil
			for _, s := range f[1:] {
				if s != "." {
					searches = append(searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			for _, o := range f[1:] {
				options = setOption(options, o)
			}
		}
	}
	return servers, searches, options
}

// setOption sets option o (NAME or NAME:VALUE) in list, replacing one of
// the same name where it stands.
func setOption(list []string, o string) []string {
	name, _, _ := strings.Cut(o, ":")
	for i, old := range list {
		if n, _, _ := strings.Cut(old, ":"); n == name {
			list[i] = o
			return list
		}
	}
	return append(list, o)
}

// mergeOptions is kubelet's mergeDNSOptions: the pod's options over the
// node's, by name. (kubelet's order is a map's; here the node's first,
// then the pod's new ones, as written.)
func mergeOptions(existing []string, opts []v1.PodDNSConfigOption) []string {
	out := slices.Clone(existing)
	for _, o := range opts {
		s := o.Name
		if o.Value != nil && *o.Value != "" {
			s += ":" + *o.Value
		}
		out = setOption(out, s)
	}
	return out
}

// fitSearches is kubelet's formDNSSearchFitsLimits: at most 32 paths,
// none over 253 characters, the line at most 2048 characters (the last
// paths cut); cut says whether anything was.
func fitSearches(list []string) (out []string, cut bool) {
	if len(list) > maxDNSSearchPaths {
		list, cut = list[:maxDNSSearchPaths], true
	}
	for _, s := range list {
		if len(s) > validation.DNS1123SubdomainMaxLength {
			cut = true
			continue
		}
		out = append(out, s)
	}
	for len(out) > 0 && len(strings.Join(out, " ")) > maxDNSSearchListChars {
		out, cut = out[:len(out)-1], true
	}
	return out, cut
}

func uniq(list []string) []string {
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

// podDomain is kubelet's host domain of a pod with a subdomain (with no
// --cluster-domain the name ends in "svc.").
func podDomain(pod *v1.Pod) string {
	if pod.Spec.Subdomain == "" {
		return ""
	}
	return fmt.Sprintf("%s.%s.svc.", pod.Spec.Subdomain, pod.Namespace)
}

// hostsFile is kubelet's /etc/hosts for the pod: for a pod on the pod
// network the managed file (localhost lines, the pod's IPs with its host
// name, the host aliases); for hostNetwork the node's /etc/hosts with
// the host aliases.
func hostsFile(pod *v1.Pod, podIPs []string, nodeHosts []byte) []byte {
	var b bytes.Buffer
	if pod.Spec.HostNetwork {
		b.WriteString("# Kubernetes-managed hosts file (host network).\n")
		b.Write(nodeHosts)
	} else {
		b.WriteString("# Kubernetes-managed hosts file.\n")
		b.WriteString("127.0.0.1\tlocalhost\n")
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::0\tip6-localnet\n")
		b.WriteString("fe00::0\tip6-mcastprefix\n")
		b.WriteString("fe00::1\tip6-allnodes\n")
		b.WriteString("fe00::2\tip6-allrouters\n")
		name, domain := podHostname(pod), podDomain(pod)
		for _, ip := range podIPs {
			if domain != "" {
				fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, name, domain, name)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", ip, name)
			}
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.Bytes()
}

// hostsMount writes the pod's hosts file (etc-hosts in its directory,
// as kubelet's) and returns its mount on /etc/hosts, or nil when
// kubelet mounts none: a pod-network pod without an IP yet, or a
// container that mounts a volume on /etc/hosts itself.
func (k *kubelet) hostsMount(c *v1.Container) (*runtimeapi.Mount, error) {
	var podIPs []string
	if k.podIP != "" {
		podIPs = []string{k.podIP}
	}
	if len(podIPs) == 0 && !k.pod.Spec.HostNetwork {
		return nil, nil
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/etc/hosts" {
			return nil, nil
		}
	}
	var node []byte
	if k.pod.Spec.HostNetwork {
		var err error
		if node, err = os.ReadFile("/etc/hosts"); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(k.dir, "etc-hosts")
	if err := os.WriteFile(path, hostsFile(k.pod, podIPs, node), 0o644); err != nil {
		return nil, err
	}
	return &runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: path}, nil
}

// dnsConfig is the sandbox's DnsConfig, recording kubelet's warnings
// when record is set (once per sandbox made).
func (k *kubelet) dnsConfig(record bool) *runtimeapi.DNSConfig {
	resolv, err := os.ReadFile(hostResolvConf)
	if err != nil && record {
		k.event(v1.EventTypeWarning, "DNSConfigForming", "read the node's "+hostResolvConf+": "+err.Error())
	}
	cfg, events := podDNS(k.pod, resolv)
	if record {
		for _, e := range events {
			k.event(v1.EventTypeWarning, e.reason, e.message)
		}
	}
	return cfg
}
