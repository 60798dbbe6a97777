package cri

import (
	"context"
	"encoding/json"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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

// Status reports the runtime and the network ready (sandboxes get
// hull's default network, see sandbox.go); verbose adds hull's info and this server's
// configuration as JSON, which `crictl info` prints.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			{Type: runtimeapi.NetworkReady, Status: true},
		}},
		// The default handler (""): hull's own runtime. User namespaces
		// when this kernel makes them with idmapped mounts (userns.go);
		// recursive read-only mounts are not claimed yet.
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{UserNamespaces: s.eng.UserNamespacesSupported()}}},
		Features:        &runtimeapi.RuntimeFeatures{},
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
		"pinnedImages": s.opts.PinnedImages, "network": "hull default network (bridge)",
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
