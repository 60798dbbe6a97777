package cri

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateRuntimeConfig: kubelet sends the node's pod CIDR (one, or an IPv4
// and an IPv6 one, comma-separated) once it knows it, and again only when
// it changes. The server keeps it in <run-root>/cri/pod-cidr, so a
// restarted server still has it (kubelet does not send it again), and
// Status's verbose config shows it; the sandbox networking (a CNI
// conflist's host-local ranges, the default network's subnet) takes it
// from PodCIDR. An empty CIDR changes nothing, as containerd's.

// podCIDRFile is where the pod CIDR is kept.
func (s *Server) podCIDRFile() string { return filepath.Join(s.opts.RunRoot, "cri", "pod-cidr") }

// UpdateRuntimeConfig records the pod CIDR.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := strings.TrimSpace(req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr())
	if cidr == "" {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
	}
	var norm []string
	for _, c := range strings.Split(cidr, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("pod CIDR %q: %v (give CIDRs such as 10.244.1.0/24, comma-separated)", cidr, err))
		}
		norm = append(norm, p.Masked().String())
	}
	path := s.podCIDRFile()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("record the pod CIDR: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(norm, ",")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("record the pod CIDR: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("record the pod CIDR: %w", err)
	}
	s.opts.Log.Info("pod CIDR", "cidr", strings.Join(norm, ","))
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// PodCIDRs are the pod CIDRs kubelet last sent (none before it has).
func (s *Server) PodCIDRs() []netip.Prefix {
	data, err := os.ReadFile(s.podCIDRFile())
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, c := range strings.Split(strings.TrimSpace(string(data)), ",") {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p)
		}
	}
	return out
}
