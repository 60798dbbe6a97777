package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/checkpoint"
	"hull/internal/engine"
)

// Checkpoints are the engine's (engine.Checkpoint over package
// checkpoint, which drives CRIU): CheckpointContainer writes one
// container's archive where kubelet asks, CheckpointPod a consistent cut
// of a pod's containers into a directory. Both leave the containers
// running, as kubelet's checkpoint API expects.

// defaultCheckpointTimeout bounds a CheckpointContainer whose request
// sets no timeout (CRI: 0 is the runtime's default).
const defaultCheckpointTimeout = 5 * time.Minute

// CheckpointContainer dumps a running container with CRIU into the
// archive at req.Location (an uncompressed tar: CRIU's images, the spec,
// hull's record of the container and its rootfs changes; see package
// checkpoint). The container keeps running.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	c, err := s.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	loc := req.GetLocation()
	if loc == "" || !filepath.IsAbs(loc) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("checkpoint container %s: location %q is not an absolute path", c.ID, loc))
	}
	timeout := defaultCheckpointTimeout
	if t := req.GetTimeout(); t > 0 {
		timeout = time.Duration(t) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = s.eng.Checkpoint(ctx, c.ID, engine.CheckpointOptions{
		Export: loc, LeaveRunning: true, Timeout: timeout, CRI: s.criRecord(ctx, c),
	})
	return &runtimeapi.CheckpointContainerResponse{}, err
}

// criRecord is config.dump's CRI part for container c.
func (s *Server) criRecord(ctx context.Context, c *engine.Container) *checkpoint.CRIRecord {
	m := containerMetadata(c)
	rec := &checkpoint.CRIRecord{Name: m.Name, Attempt: m.Attempt, PodSandboxID: c.Config.Pod}
	if p, err := s.eng.GetPod(ctx, c.Config.Pod); err == nil {
		pm := sandboxMetadata(p)
		rec.PodName, rec.PodNamespace, rec.PodUID = pm.Name, pm.Namespace, pm.Uid
	}
	return rec
}

// CheckpointPod checkpoints the request's containers of a running pod
// into req.OutputPath as one consistent cut: every container is paused
// (the engine's freezer pause) before any is dumped, each is dumped
// while all stay paused, and all are resumed before the answer, whatever
// it is. The directory then holds pod.dump and containers/<name>.tar
// (package checkpoint); on error it is left empty, as it was given.
//
// No options are supported: any key is refused.
func (s *Server) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	p, err := s.sandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("checkpoint pod %s: ", p.ID) + fmt.Sprintf(format, args...))
	}
	if keys := sortedKeys(req.GetOptions()); len(keys) > 0 {
		return nil, bad("option %q is not supported (hull takes no checkpoint options)", keys[0])
	}
	if p.State != engine.PodRunning {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("checkpoint pod %s: the pod sandbox is not ready", p.ID))
	}
	out := req.GetOutputPath()
	if out == "" || !filepath.IsAbs(out) {
		return nil, bad("output path %q is not an absolute path", out)
	}
	ents, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, bad("output path %s is not an existing directory", out)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint pod %s: %w", p.ID, err)
	}
	if len(ents) > 0 {
		return nil, bad("output path %s is not empty", out)
	}
	ids := req.GetContainerIds()
	if len(ids) == 0 {
		return nil, bad("no container IDs given")
	}
	var ctrs []*engine.Container
	seen, names := map[string]bool{}, map[string]bool{}
	for _, id := range ids {
		c, err := s.container(ctx, id)
		if err != nil {
			return nil, err
		}
		if seen[c.ID] {
			return nil, bad("container %s is listed twice", c.ID)
		}
		seen[c.ID] = true
		if c.Config.Pod != p.ID {
			return nil, bad("container %s is not in this pod", c.ID)
		}
		if c.State != engine.StateRunning {
			return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("checkpoint pod %s: container %s is %s, not running", p.ID, c.ID, c.State))
		}
		name := containerMetadata(c).Name
		if names[name] {
			return nil, bad("two containers are named %s", name)
		}
		names[name] = true
		ctrs = append(ctrs, c)
	}
	if p.Config.Labels[labelPidMode] != "" {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf(
			"checkpoint pod %s: its containers share a PID namespace (the pod's or the node's), which hull cannot checkpoint yet", p.ID))
	}
	if _, err := checkpoint.FindCRIU(); err != nil {
		return nil, fmt.Errorf("checkpoint pod %s: %w", p.ID, err)
	}

	err = s.checkpointPod(ctx, p, ctrs, out)
	if err != nil {
		// Partial artifacts go; the directory stays (the caller's).
		ents, _ := os.ReadDir(out)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(out, e.Name()))
		}
		return nil, err
	}
	return &runtimeapi.CheckpointPodResponse{}, nil
}

// checkpointPod pauses ctrs, dumps each into out and resumes them.
func (s *Server) checkpointPod(ctx context.Context, p *engine.Pod, ctrs []*engine.Container, out string) (rerr error) {
	var paused []*engine.Container
	defer func() {
		// Resumed whatever happened, the deadline too.
		bg := context.WithoutCancel(ctx)
		for _, c := range paused {
			if err := s.eng.ResumeAfterCheckpoint(bg, c.ID); err != nil && rerr == nil {
				rerr = fmt.Errorf("checkpoint pod %s: resume container %s: %w", p.ID, c.ID, err)
			}
		}
	}()
	for _, c := range ctrs {
		if err := s.eng.PauseForCheckpoint(ctx, c.ID, out); err != nil {
			return fmt.Errorf("checkpoint pod %s: pause container %s: %w", p.ID, c.ID, err)
		}
		paused = append(paused, c)
	}
	engine.Mark("checkpoint pod: paused")
	if err := os.Mkdir(filepath.Join(out, checkpoint.PodContainersDir), 0o700); err != nil {
		return fmt.Errorf("checkpoint pod %s: %w", p.ID, err)
	}
	var timeout time.Duration // CRIU's own, within the call's deadline
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Second)
	}
	var names []string
	for _, c := range ctrs {
		name := containerMetadata(c).Name
		archive := filepath.Join(out, filepath.FromSlash(checkpoint.ContainerArchiveName(name)))
		if _, err := s.eng.Checkpoint(ctx, c.ID, engine.CheckpointOptions{
			Export: archive, LeaveRunning: true, Timeout: timeout, CRI: s.criRecord(ctx, c),
		}); err != nil {
			return fmt.Errorf("checkpoint pod %s: %w", p.ID, err)
		}
		names = append(names, name)
	}
	cfg, err := protojson.Marshal(sandboxConfigOf(p))
	if err != nil {
		return fmt.Errorf("checkpoint pod %s: %w", p.ID, err)
	}
	rec, err := json.MarshalIndent(checkpoint.PodRecord{
		Version: checkpoint.RecordVersion, SandboxConfig: cfg, Containers: names, Checkpointed: time.Now().UTC(),
	}, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(out, checkpoint.PodFile), rec, 0o600)
	}
	if err != nil {
		return fmt.Errorf("checkpoint pod %s: %w", p.ID, err)
	}
	engine.Mark("checkpoint pod: written")
	return nil
}

// sandboxConfigOf is the PodSandboxConfig pod p was run with, as far as
// the engine's pod keeps it (metadata, host name, log directory, DNS,
// ports, labels, annotations, cgroup parent, sysctls, namespace modes).
func sandboxConfigOf(p *engine.Pod) *runtimeapi.PodSandboxConfig {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     sandboxMetadata(p),
		Hostname:     p.Config.Hostname,
		LogDirectory: p.Config.LogDirectory,
		Labels:       userLabels(p.Config.Labels),
		Annotations:  p.Config.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent:    p.Config.CgroupParent,
			Sysctls:         p.Config.Sysctls,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaceOptions(p)},
		},
	}
	n := p.Config.Net
	if len(n.DNS) > 0 || len(n.DNSSearch) > 0 || len(n.DNSOptions) > 0 {
		cfg.DnsConfig = &runtimeapi.DNSConfig{Servers: n.DNS, Searches: n.DNSSearch, Options: n.DNSOptions}
	}
	for _, pm := range n.Ports {
		m := &runtimeapi.PortMapping{ContainerPort: int32(pm.ContainerPort), HostPort: int32(pm.HostPort)}
		if pm.Protocol == "udp" {
			m.Protocol = runtimeapi.Protocol_UDP
		}
		if pm.HostIP.IsValid() {
			m.HostIp = pm.HostIP.String()
		}
		cfg.PortMappings = append(cfg.PortMappings, m)
	}
	return cfg
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
