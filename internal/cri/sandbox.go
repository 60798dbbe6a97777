package cri

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
)

// Pod sandboxes. A sandbox is an engine pod (pods.go in the engine: its
// namespaces pinned, no pause process), the object `hull pod ls` shows.
// This file only translates: PodSandboxConfig to engine.PodConfig, the
// pod record back to the CRI's status. The CRI metadata and namespace
// modes the engine has no field for are kept in reserved labels
// (io.hull.cri.*), which answers never show.
//
// Networking: a sandbox that does not use the node's network joins the
// pod network (cninet.go: the CNI configuration directory's first
// conflist, or hull's default network without one), its port mappings
// published on it and its DNS config written to its resolv.conf.

// Reserved labels: the sandbox's CRI metadata, and its namespace modes
// for PID and IPC (which the engine pod does not keep).
const (
	labelPrefix       = "io.hull.cri."
	labelSandbox      = engine.LabelCRISandbox // "1" on every CRI pod
	labelPodName      = labelPrefix + "pod.name"
	labelPodNamespace = labelPrefix + "pod.namespace"
	labelPodUID       = labelPrefix + "pod.uid"
	labelAttempt      = labelPrefix + "attempt"
	labelPidMode      = labelPrefix + "pid"        // "host" for NODE, "pod" for POD
	labelIpcMode      = labelPrefix + "ipc"        // "host" for NODE
	labelNetMode      = labelPrefix + "net"        // "host" for NODE
	labelName         = engine.LabelCRIContainer   // a container's metadata name
	labelStdinOnce    = labelPrefix + "stdin-once" // "1": a container's stdin_once (streaming.go)
	labelImage        = engine.LabelCRIImage       // a container's user_specified_image
)

// checkLabels refuses labels that use hull's reserved prefix.
func checkLabels(what string, labels map[string]string) error {
	for k := range labels {
		if strings.HasPrefix(k, labelPrefix) {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s label %q: the prefix %s is reserved for hull's own labels", what, k, labelPrefix))
		}
	}
	return nil
}

// userLabels is labels without the reserved ones.
func userLabels(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if !strings.HasPrefix(k, labelPrefix) {
			out[k] = v
		}
	}
	return out
}

// podName is the engine name of a sandbox (dockershim's scheme: unique
// because kubelet makes (uid, attempt) unique).
func podName(m *runtimeapi.PodSandboxMetadata) string {
	return engineName(fmt.Sprintf("k8s_POD_%s_%s_%s_%d", m.GetName(), m.GetNamespace(), m.GetUid(), m.GetAttempt()))
}

// maxName is the longest engine name (validName's limit).
const maxName = 128

// engineName is name cut to fit the engine's names, a hash of the whole
// name keeping it unique (the CRI metadata is in labels, not parsed from
// the name).
func engineName(name string) string {
	if len(name) <= maxName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxName-17] + "_" + hex.EncodeToString(sum[:8])
}

// RunPodSandbox creates and starts an engine pod: namespaces pinned,
// network attached, /etc files written. A failure removes what was made.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	engine.Mark("cri: run asked")
	c := req.GetConfig()
	m := c.GetMetadata()
	if m.GetName() == "" || m.GetUid() == "" || m.GetNamespace() == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("pod sandbox config: metadata name, uid and namespace are required")
	}
	if h := req.GetRuntimeHandler(); h != "" {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("runtime handler %q: hull has only its default handler (\"\")", h))
	}
	if err := checkLabels("pod sandbox", c.GetLabels()); err != nil {
		return nil, err
	}
	labels := userLabels(c.GetLabels())
	labels[labelSandbox] = "1"
	labels[labelPodName], labels[labelPodNamespace], labels[labelPodUID] = m.GetName(), m.GetNamespace(), m.GetUid()
	labels[labelAttempt] = strconv.FormatUint(uint64(m.GetAttempt()), 10)

	ns := c.GetLinux().GetSecurityContext().GetNamespaceOptions()
	var err error
	cfg := engine.PodConfig{
		Hostname:     c.GetHostname(),
		Labels:       labels,
		Annotations:  c.GetAnnotations(),
		Sysctls:      c.GetLinux().GetSysctls(),
		CgroupParent: c.GetLinux().GetCgroupParent(),
		LogDirectory: c.GetLogDirectory(),
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname() // as containerd (the pod's name may not fit a host name)
	}
	if err := podUserns(ns.GetUsernsOptions(), &cfg); err != nil {
		return nil, err
	}
	share := []string{"net"}
	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		labels[labelPidMode] = "host"
	case runtimeapi.NamespaceMode_POD:
		// One PID namespace for the pod, held by a holder process (the
		// engine's podpid.go). POD is also the mode of a config that
		// sets none (kubelet always sets one: CONTAINER unless
		// shareProcessNamespace).
		labels[labelPidMode] = "pod"
		share = append(share, "pid")
	}
	if ns.GetIpc() == runtimeapi.NamespaceMode_NODE {
		labels[labelIpcMode] = "host"
	} else {
		share = append(share, "ipc")
	}
	if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE {
		// The node's network and host name (as containerd): nothing to
		// pin for either.
		labels[labelNetMode] = "host"
		cfg.Network = engine.NetworkHost
		cfg.Hostname, _ = os.Hostname()
	} else {
		share = append(share, "uts")
		if cfg.Network, err = s.podNetwork(ctx); err != nil {
			return nil, err
		}
		for _, pm := range c.GetPortMappings() {
			p, err := portMapping(pm)
			if err != nil {
				return nil, err
			}
			cfg.Net.Ports = append(cfg.Net.Ports, p)
		}
	}
	if d := c.GetDnsConfig(); d != nil {
		// The pod's resolv.conf is the config's, on the host's network
		// too (as containerd writes it); no search paths is none, not
		// the host's.
		cfg.Net.DNS, cfg.Net.DNSSearch, cfg.Net.DNSOptions = d.GetServers(), d.GetSearches(), d.GetOptions()
		if len(cfg.Net.DNSSearch) == 0 && (len(cfg.Net.DNS) > 0 || len(cfg.Net.DNSOptions) > 0) {
			cfg.Net.DNSSearch = []string{"."}
		}
	}
	cfg.Share = share
	if labels[labelCgroup], err = planPodCgroup(cfg.CgroupParent); err != nil { // podcgroup.go
		return nil, err
	}
	// Recorded first: a server killed from here on leaves a pod in state
	// created, which the next one removes (recover.go).
	// With NRI the pod stays hidden until the plugins have seen it.
	defer s.nri.hidePod(podName(m))()
	defer s.nri.blockSync()()
	engine.Mark("cri: pod planned")
	p, err := s.eng.CreatePod(ctx, podName(m), cfg)
	if err != nil {
		return nil, err
	}
	engine.Mark("cri: sandbox recorded")
	err = makePodCgroup(cfg.CgroupParent, labels[labelCgroup], c.GetLinux())
	if err == nil {
		engine.Mark("cri: sandbox cgroup made")
		var started *engine.Pod
		// The pod's next container gets a spare whose process starts in
		// the pod's namespaces while its network is set up (spares.go).
		bind := func(up *engine.Pod) { s.spares.bindPod(ctx, up, podModes(up)) }
		if started, err = s.eng.StartPodPinned(ctx, p.ID, bind); err == nil {
			err = s.nri.runPodSandbox(ctx, started)
		}
	}
	if err != nil {
		s.spares.dropPod(p.ID)
		s.removeSandbox(context.WithoutCancel(ctx), p)
		return nil, err
	}
	s.warmPod(ctx, p.ID)
	engine.Mark("cri: run answered")
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: p.ID}, nil
}

// portMapping is a CRI port mapping as the engine's.
func portMapping(pm *runtimeapi.PortMapping) (engine.PortMapping, error) {
	out := engine.PortMapping{Protocol: "tcp"}
	switch pm.GetProtocol() {
	case runtimeapi.Protocol_UDP:
		out.Protocol = "udp"
	case runtimeapi.Protocol_SCTP:
		return out, errdefs.ErrInvalidArgument.WithMessage("port mapping: SCTP is not supported (use TCP or UDP)")
	}
	if pm.GetContainerPort() <= 0 || pm.GetContainerPort() > 65535 || pm.GetHostPort() < 0 || pm.GetHostPort() > 65535 {
		return out, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("port mapping %d->%d: ports are 1-65535", pm.GetHostPort(), pm.GetContainerPort()))
	}
	out.ContainerPort, out.HostPort = uint16(pm.GetContainerPort()), uint16(pm.GetHostPort())
	if ip := pm.GetHostIp(); ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return out, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("port mapping host IP %q: %v", ip, err))
		}
		out.HostIP = a
	}
	return out, nil
}

// sandbox returns the CRI pod id names (an ID or unique ID prefix), or a
// NotFound error; pods `hull pod create` made are not sandboxes.
func (s *Server) sandbox(ctx context.Context, id string) (*engine.Pod, error) {
	return s.sandboxFrom(ctx, id, s.eng.GetPod)
}

// sandboxFrom is sandbox, looking the pod up with get (the engine's
// GetPod, or the view's: records.go).
func (s *Server) sandboxFrom(ctx context.Context, id string, get func(context.Context, string) (*engine.Pod, error)) (*engine.Pod, error) {
	if id == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("no pod sandbox ID given")
	}
	p, err := get(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Config.Labels[labelSandbox] == "" {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pod %s is not a CRI pod sandbox (hull pod manages it)", p.Name))
	}
	if s.nri.podHidden(p.Name) {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pod sandbox %s is still being made (NRI plugins are answering its RunPodSandbox)", p.ID))
	}
	return p, nil
}

// StopPodSandbox stops the sandbox's containers (killed: kubelet has
// stopped them with their grace periods already) and takes its network
// and namespaces down. An unknown sandbox is success.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	p, err := s.sandbox(ctx, req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.nri.stopPodSandbox(ctx, p); err != nil {
		return nil, err
	}
	// A container never started keeps no process in the pod's namespaces
	// (its spare's early process ends while the pod stops).
	err = s.spares.dropPodWhile(p.ID, func() error {
		_, err := s.eng.StopPod(ctx, p.ID, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes the sandbox and its containers (running ones
// killed). An unknown sandbox is success.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	p, err := s.sandbox(ctx, req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	cs, _ := s.podContainers(ctx, p) // removed with it: their image volumes and cached users go
	var ivs []imageVolume
	for _, c := range cs {
		ivs = append(ivs, imageVolumes(c)...)
	}
	if err := s.nri.removePodSandbox(ctx, p); err != nil {
		return nil, err
	}
	s.spares.dropPod(p.ID) // of containers never started
	if err := s.removeSandbox(ctx, p); err != nil {
		return nil, err
	}
	s.releaseImageVolumes(ctx, ivs)
	for _, c := range cs {
		s.users.Delete(c.ID)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// sandboxMetadata is the CRI metadata kept in a pod's reserved labels.
func sandboxMetadata(p *engine.Pod) *runtimeapi.PodSandboxMetadata {
	l := p.Config.Labels
	attempt, _ := strconv.ParseUint(l[labelAttempt], 10, 32)
	return &runtimeapi.PodSandboxMetadata{Name: l[labelPodName], Namespace: l[labelPodNamespace], Uid: l[labelPodUID], Attempt: uint32(attempt)}
}

func sandboxState(p *engine.Pod) runtimeapi.PodSandboxState {
	if p.State == engine.PodRunning {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// namespaceOptions are the sandbox's namespace modes.
func namespaceOptions(p *engine.Pod) *runtimeapi.NamespaceOption {
	mode := func(key string) runtimeapi.NamespaceMode {
		if p.Config.Labels[key] == "host" {
			return runtimeapi.NamespaceMode_NODE
		}
		return runtimeapi.NamespaceMode_POD
	}
	o := &runtimeapi.NamespaceOption{Network: mode(labelNetMode), Ipc: mode(labelIpcMode), Pid: runtimeapi.NamespaceMode_CONTAINER}
	switch p.Config.Labels[labelPidMode] {
	case "host":
		o.Pid = runtimeapi.NamespaceMode_NODE
	case "pod":
		o.Pid = runtimeapi.NamespaceMode_POD
	}
	o.UsernsOptions = usernsOptions(p)
	return o
}

// PodSandboxStatus reports a sandbox: READY while its namespaces are
// pinned, its IPs, namespace modes, labels and annotations; verbose adds
// the engine's pod record as "info".
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	p, err := s.viewedSandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	v, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	st := &runtimeapi.PodSandboxStatus{
		Id:          p.ID,
		Metadata:    sandboxMetadata(p),
		State:       sandboxState(p),
		CreatedAt:   p.Created.UnixNano(),
		Linux:       &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: namespaceOptions(p)}},
		Labels:      userLabels(p.Config.Labels),
		Annotations: p.Config.Annotations,
	}
	if p.Config.Network != engine.NetworkHost {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{}
		for i, ip := range v.PodIPs(p) {
			if i == 0 {
				st.Network.Ip = ip.String()
			} else {
				st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip.String()})
			}
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.GetVerbose() {
		resp.Info = s.sandboxInfo(p)
	}
	return resp, nil
}

// sandboxInfo is PodSandboxStatus's verbose info: "info", a JSON document
// of the engine's pod record (ID, Name, Created, State, Config) with the
// keys of containerd's that hull has (crictl inspectp shows it as .info):
// pid, the holder of the pod's PID namespace if it shares one, else 0 (a
// pod has no process of its own: its namespaces are pinned files), and
// netNamespaceClosed; and hull's own: the pinned namespace files by kind
// (nsenter --net=PATH enters the pod's network), the runtime ("hull").
func (s *Server) sandboxInfo(p *engine.Pod) map[string]string {
	rt := s.eng.PodRuntimeOf(p)
	_, net := rt.Namespaces["net"]
	b, _ := json.Marshal(struct {
		*engine.Pod
		Pid         int               `json:"pid"`
		NetNSClosed bool              `json:"netNamespaceClosed"`
		Namespaces  map[string]string `json:"namespaces"`
		RuntimeType string            `json:"runtimeType"`
	}{p, rt.HolderPid, p.Config.Network != engine.NetworkHost && !net, rt.Namespaces, "hull"})
	return map[string]string{"info": string(b)}
}

// ListPodSandbox lists the CRI sandboxes (not `hull pod create`'s),
// newest first, filtered by ID (or prefix), state and labels.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	pods, err := s.viewedPods(ctx)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	list := func(p *engine.Pod) bool {
		switch {
		case p.Config.Labels[labelSandbox] == "" || s.nri.podHidden(p.Name):
		case f.GetId() != "" && !strings.HasPrefix(p.ID, f.GetId()):
		case f.GetState() != nil && f.GetState().GetState() != sandboxState(p):
		case !matchLabels(p.Config.Labels, f.GetLabelSelector()):
		default:
			return true
		}
		return false
	}
	out := s.listedPods.build(nil, pods, list, func(p *engine.Pod) *runtimeapi.PodSandbox {
		return &runtimeapi.PodSandbox{
			Id:          p.ID,
			Metadata:    sandboxMetadata(p),
			State:       sandboxState(p),
			CreatedAt:   p.Created.UnixNano(),
			Labels:      userLabels(p.Config.Labels),
			Annotations: p.Config.Annotations,
		}
	})
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// matchLabels says whether labels has every key=value of selector.
func matchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
