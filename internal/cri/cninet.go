package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// The pod network, as kubelet's runtimes choose it: the first CNI
// configuration in lexical order in the CNI configuration directory
// (--cni-conf-dir, default /etc/cni/net.d), its plugins from the plugin
// directories (--cni-bin-dir, default /usr/lib/cni and /opt/cni/bin).
// It is read again at every RunPodSandbox and Status, so a network
// provider that writes its conflist after the server started is picked
// up then, as containerd and CRI-O do. RunPodSandbox imports it as one of
// hull's networks (engine.ImportNetwork) and attaches the sandbox to it:
// natively when it is made only of reference plugins hull implements
// (bridge + host-local, portmap, firewall, tuning), through libcni
// otherwise.
//
// With no CNI configuration directory (Options.CNIConfDir "", given as
// `--cni-conf-dir ''`), sandboxes join hull's default network instead,
// the `bridge` of hull.toml's [network]: explicit, never a fallback for an
// empty directory.
//
// UpdateRuntimeConfig's pod CIDR is kept in <run-root>/cri/pod-cidr and
// reported by Status; a conflist that holds the text {{.PodCIDR}} gets it
// in its place (containerd's conf_template variable), so a template for
// a node's pod range can be dropped into the directory as it is.

// DefaultCNIConfDir is where kubelet's runtimes read the pod network.
const DefaultCNIConfDir = "/etc/cni/net.d"

// podCIDRVar is the placeholder of the pod CIDR in a conflist.
const podCIDRVar = "{{.PodCIDR}}"

// podNet is the server's pod network state.
type podNet struct {
	mu      sync.Mutex
	podCIDR string // kubelet's, comma-separated if several
	loaded  bool
	warned  map[string]bool // skipped files' errors, warned about once
}

func (s *Server) podCIDRFile() string { return filepath.Join(s.opts.RunRoot, "cri", "pod-cidr") }

// podCIDR is the pod CIDR kubelet last sent ("" if none yet).
func (s *Server) podCIDR() string {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	if !s.net.loaded && s.opts.RunRoot != "" {
		if b, err := os.ReadFile(s.podCIDRFile()); err == nil {
			s.net.podCIDR = strings.TrimSpace(string(b))
		}
		s.net.loaded = true
	}
	return s.net.podCIDR
}

// UpdateRuntimeConfig takes kubelet's pod CIDR (the node's
// spec.podCIDR(s), comma-separated): kept for the conflists that use it
// and reported by Status.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := strings.TrimSpace(req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr())
	if cidr == "" {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil // nothing to change, as containerd
	}
	var norm []string
	for _, c := range strings.Split(cidr, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("pod CIDR %q: %v (give CIDRs such as 10.244.1.0/24, comma-separated)", cidr, err))
		}
		norm = append(norm, p.Masked().String())
	}
	cidr = strings.Join(norm, ",")
	s.podCIDR() // load first: the file's value must not overwrite this one later
	if s.opts.RunRoot != "" {
		if err := os.MkdirAll(filepath.Dir(s.podCIDRFile()), 0o700); err != nil {
			return nil, fmt.Errorf("pod CIDR: %w", err)
		}
		if err := os.WriteFile(s.podCIDRFile(), []byte(cidr+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("pod CIDR: %w", err)
		}
	}
	s.net.mu.Lock()
	s.net.podCIDR = cidr
	s.net.mu.Unlock()
	s.opts.Log.Info("pod CIDR", "cidr", cidr)
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// PodCIDRs are the pod CIDRs kubelet last sent (none before it has).
func (s *Server) PodCIDRs() []netip.Prefix {
	var out []netip.Prefix
	for _, c := range strings.Split(s.podCIDR(), ",") {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// errNoNetwork is the class of "the pod network is not ready".
var errNoNetwork = errdefs.ErrFailedPrecondition

// podConflist reads the pod network's conflist with the pod CIDR put in:
// its path and data, or an errNoNetwork error saying what is missing in
// kubelet's words.
func (s *Server) podConflist() (string, []byte, error) {
	dir := s.opts.CNIConfDir
	path, data, skipped, err := engine.PodConflist(dir)
	s.net.mu.Lock()
	for _, e := range skipped { // once each: kubelet asks Status every few seconds
		if !s.net.warned[e.Error()] {
			if s.net.warned == nil {
				s.net.warned = map[string]bool{}
			}
			s.net.warned[e.Error()] = true
			s.opts.Log.Warn("CNI configuration skipped", "error", e)
		}
	}
	s.net.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, errNoNetwork.WithMessage(fmt.Sprintf("Network plugin returns error: no CNI configuration file in %s. Has your network provider started?", dir))
	}
	if err != nil {
		return "", nil, errNoNetwork.WithMessage("Network plugin returns error: " + err.Error())
	}
	if bytes.Contains(data, []byte(podCIDRVar)) {
		cidr := s.podCIDR()
		if cidr == "" {
			return "", nil, errNoNetwork.WithMessage(fmt.Sprintf("Network plugin returns error: %s uses %s and no pod CIDR is known yet (kubelet sends the node's with UpdateRuntimeConfig)", path, podCIDRVar))
		}
		first, _, _ := strings.Cut(cidr, ",")
		data = bytes.ReplaceAll(data, []byte(podCIDRVar), []byte(strings.TrimSpace(first)))
	}
	return path, data, nil
}

// podNetwork is the network a new sandbox joins: the pod network
// imported as hull's network of its name, or hull's default network
// without a CNI configuration directory.
func (s *Server) podNetwork(ctx context.Context) (string, error) {
	if s.opts.CNIConfDir == "" {
		return engine.NetworkBridge, nil
	}
	path, data, err := s.podConflist()
	if err != nil {
		return "", err
	}
	name, err := s.eng.ImportNetwork(ctx, data, path)
	if err != nil {
		return "", errNoNetwork.WithMessage("Network plugin returns error: " + err.Error())
	}
	return name, nil
}

// networkCondition is Status's NetworkReady: true with hull's default
// network or a pod network to read, else false with kubelet's reason.
func (s *Server) networkCondition() *runtimeapi.RuntimeCondition {
	c := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if s.opts.CNIConfDir == "" {
		return c
	}
	if _, _, err := s.podConflist(); err != nil {
		c.Status, c.Reason, c.Message = false, "NetworkPluginNotReady", err.Error()
	}
	return c
}

// networkInfo is Status's verbose account of the pod network.
func (s *Server) networkInfo() map[string]any {
	info := map[string]any{"podCIDR": s.podCIDR(), "cniConfDir": s.opts.CNIConfDir, "cniBinDirs": s.opts.CNIBinDirs}
	if s.opts.CNIConfDir == "" {
		info["network"] = "hull default network (bridge): --cni-conf-dir is empty"
		return info
	}
	if path, _, err := s.podConflist(); err == nil {
		info["conflist"] = path
	}
	return info
}
