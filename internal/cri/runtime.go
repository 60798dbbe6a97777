package cri

import (
	"context"
	"encoding/json"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/runtime"
)

// Version names the runtime and the CRI version it speaks.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0", // the kubelet runtime API version, fixed by the API
		RuntimeName:       RuntimeName,
		RuntimeVersion:    s.opts.Version,
		RuntimeApiVersion: APIVersion,
	}, nil
}

// Status reports the runtime ready, and the network ready when there is
// a pod network (cninet.go: NetworkPluginNotReady without one); verbose adds hull's info and this server's
// configuration as JSON, which `crictl info` prints.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			s.networkCondition(),
		}},
		// The default handler (""): hull's own runtime. Recursive
		// read-only mounts where the kernel has mount_setattr; user
		// namespaces when this kernel makes them with idmapped mounts
		// (userns.go).
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{
			RecursiveReadOnlyMounts: runtime.RecursiveReadOnlySupported(),
			UserNamespaces:          s.eng.UserNamespacesSupported(),
		}}},
		// SupplementalGroupsPolicy: Strict leaves out the image's
		// /etc/group memberships; ContainerStatus reports the identity.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if !req.GetVerbose() {
		return resp, nil
	}
	info, err := s.eng.Info(ctx)
	if err != nil {
		return nil, err
	}
	resp.Info = map[string]string{}
	if b, err := json.Marshal(info); err == nil {
		resp.Info["info"] = string(b)
	}
	cfg := map[string]any{
		"root": s.opts.Root, "runRoot": s.opts.RunRoot, "cgroupDriver": "cgroupfs",
		"pinnedImages": s.opts.PinnedImages, "network": s.networkInfo(),
		"podCIDRs": s.PodCIDRs(),
		// Where containers' state lives (containerd's key, which critest
		// reads to find a filesystem to try idmapped mounts on: its parent).
		"stateDir": filepath.Join(s.opts.RunRoot, "containers"),
	}
	if b, err := json.Marshal(cfg); err == nil {
		resp.Info["config"] = string(b)
	}
	return resp, nil
}

// RuntimeConfig tells kubelet hull makes cgroups itself in the cgroup
// filesystem, so kubelet's cgroupDriver must be cgroupfs (kubelet uses
// this answer instead of its own setting, with no fallback).
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{
		Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS},
	}, nil
}
