package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/engine"
	"hull/internal/reference"
	"hull/internal/spec"
	"hull/internal/trace"
)

// Containers. A CRI container is an engine container created in its
// sandbox's pod (Config.Pod): it joins the pod's pinned namespaces and
// binds its /etc files. This file maps ContainerConfig onto
// engine.Config and spec.Options, and the record back onto the CRI's
// status; the CRI metadata lives in reserved labels (io.hull.cri.name,
// io.hull.cri.attempt), stripped from answers.

// containerName is the engine name of a CRI container (dockershim's and
// CRI-O's scheme: unique because kubelet makes (pod uid, name, attempt)
// unique).
func containerName(m *runtimeapi.ContainerMetadata, p *engine.Pod) string {
	pm := sandboxMetadata(p)
	return engineName(fmt.Sprintf("k8s_%s_%s_%s_%s_%d", m.GetName(), pm.GetName(), pm.GetNamespace(), pm.GetUid(), m.GetAttempt()))
}

// CreateContainer creates a container in a ready sandbox. A refusal is
// recorded against the pod for `hull why pod/NAME` (kubeview.go), with
// what to do about it (next, by how far the create got).
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (_ *runtimeapi.CreateContainerResponse, rerr error) {
	resp, err := s.createContainerFrom(ctx, req, nil)
	if cie := (*engine.CheckpointImageError)(nil); errors.As(err, &cie) {
		// A checkpoint image (restore.go): known by the image record
		// the engine resolved, so other images pay nothing for it.
		return s.createFromCheckpointImage(ctx, req, cie)
	}
	return resp, err
}

// createContainerFrom is CreateContainer; with k (or an image.image that
// is a checkpoint archive's path, restore.go) the container is created to
// be restored from that checkpoint at its start.
func (s *Server) createContainerFrom(ctx context.Context, req *runtimeapi.CreateContainerRequest, k *engine.Checkpoint) (_ *runtimeapi.CreateContainerResponse, rerr error) {
	engine.Mark("cri: create asked")
	// From the view: read again once anything was committed (a stop).
	p, err := s.viewedSandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	next := "check the Pod's container spec against the error above"
	defer func() { s.recordCreate(p, req.GetConfig(), rerr, next) }()
	if p.State != engine.PodRunning {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("pod sandbox %s is not ready: create its containers in a running sandbox", p.ID))
	}
	cc := req.GetConfig()
	m := cc.GetMetadata()
	if m.GetName() == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("container config: metadata name is required")
	}
	if err := checkLabels("container", cc.GetLabels()); err != nil {
		return nil, err
	}
	img := cc.GetImage().GetImage()
	if img == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("container config: image.image is required (an image name or ID)")
	}
	if k == nil && isCheckpointArchive(img) {
		var err error
		if k, err = s.eng.OpenCheckpoint(img); err != nil {
			return nil, fmt.Errorf("container %s: restore from %s: %w", m.GetName(), img, err)
		}
		defer k.Close()
	}
	labels := userLabels(cc.GetLabels())
	labels[labelName] = m.GetName()
	labels[labelAttempt] = strconv.FormatUint(uint64(m.GetAttempt()), 10)
	if cc.GetStdinOnce() {
		labels[labelStdinOnce] = "1"
	}
	// kubelet sends the image's ID as image.image, the pod's name for it
	// as user_specified_image: kept for the statuses and hull ps.
	if u := cc.GetImage().GetUserSpecifiedImage(); u != "" && u != img {
		labels[labelImage] = u
	}
	if k != nil {
		// The checkpoint's image, by name for the statuses (Create
		// resolves it by the record's ID); a checkpoint image's as the
		// pod names it.
		if k.FromImage == "" {
			labels[labelImage] = k.Record.Image
		} else if labels[labelImage] == "" {
			labels[labelImage] = img
		}
		img = k.Record.Image
	}
	cfg := engine.Config{
		Image:       img,
		Pull:        "never", // kubelet pulls first, by its own policy
		Labels:      labels,
		Annotations: cc.GetAnnotations(),
		OpenStdin:   cc.GetStdin(),
		Pod:         p.ID,
	}
	o := &cfg.Spec
	if len(cc.GetCommand()) > 0 {
		o.Entrypoint, o.EntrypointSet = cc.GetCommand(), true
	}
	o.Cmd = cc.GetArgs()
	if k != nil && len(cc.GetCommand()) == 0 && len(cc.GetArgs()) == 0 {
		// What a restart of the restored container runs: the
		// checkpointed container's command.
		o.Entrypoint, o.EntrypointSet, o.Cmd = k.Config.Spec.Entrypoint, k.Config.Spec.EntrypointSet, k.Config.Spec.Cmd
	}
	o.WorkingDir = cc.GetWorkingDir()
	for _, kv := range cc.GetEnvs() {
		o.Env = append(o.Env, kv.GetKey()+"="+string(kv.GetValue()))
	}
	o.TTY = cc.GetTty()
	// Image volumes (imagevolume.go): mounted under the lock until the
	// container that binds them is recorded, released if it is not.
	var ivs []imageVolume
	if slices.ContainsFunc(cc.GetMounts(), func(m *runtimeapi.Mount) bool { return m.GetImage().GetImage() != "" }) {
		s.imageVolumes.Lock()
		defer s.imageVolumes.Unlock()
	}
	created := false
	defer func() {
		if !created && len(ivs) > 0 {
			s.releaseImageVolumesLocked(ctx, ivs)
		}
	}()
	next = "check the Pod's volumes against the error above: a hostPath source must exist or be a directory hull can make; an image volume's image must be on the node (kubelet pulls it) and its subPath in the image"
	for _, mt := range cc.GetMounts() {
		if mt.GetImage().GetImage() != "" {
			sm, iv, err := s.mountImageVolume(ctx, mt)
			if err != nil {
				return nil, err
			}
			ivs = append(ivs, iv)
			o.Mounts = append(o.Mounts, sm)
			continue
		}
		sm, err := mount(mt)
		if err != nil {
			return nil, err
		}
		o.Mounts = append(o.Mounts, sm)
	}
	if len(ivs) > 0 {
		b, _ := json.Marshal(ivs)
		labels[labelImageVolumes] = string(b)
	}
	for _, d := range cc.GetDevices() {
		o.Devices = append(o.Devices, spec.Device{PathOnHost: d.GetHostPath(), PathInContainer: d.GetContainerPath(), CgroupPermissions: d.GetPermissions()})
	}
	next = "check the container's resources against the error above: hugepage limits need the hugetlb controller, unified keys a cgroup v2 host"
	if err := setResources(o, cc.GetLinux().GetResources()); err != nil {
		return nil, err
	}
	next = "check the container's securityContext against the error above: a Localhost seccomp profile is a file on the node (under kubelet's seccomp directory) holding a profile; runAsGroup needs runAsUser"
	if err := setSecurity(o, cc.GetLinux().GetSecurityContext()); err != nil {
		return nil, err
	}
	if err := containerUserns(cc.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions(), p); err != nil {
		return nil, err
	}
	o.IDMapBinds = true // in a user namespace (the pod's), as kubelet expects
	m0 := podModes(p)
	o.PidMode, o.IpcMode, o.UTSMode = m0.PidMode, m0.IpcMode, m0.UTSMode
	next = "check kubelet's pod log directory: the container's log file could not be made there"
	if lp := cc.GetLogPath(); lp != "" {
		path := filepath.Join(p.Config.LogDirectory, lp)
		if !filepath.IsAbs(path) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container log path %q: the sandbox's log_directory and log_path must make an absolute path", path))
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("container log directory: %w", err)
		}
		cfg.LogConfig.Path = path
	}
	// Deferred: the writable layer, the spec and config.json follow the
	// answer (StartContainer waits for them; engine create_deferred.go).
	co := engine.CreateOptions{Config: cfg, Name: containerName(m, p), Pod: p, Deferred: true}
	// The spare bound to the pod's next container, with the ID it was
	// prepared for (spares.go bindPod); closed unless handed on.
	if k == nil {
		co.Spare, co.ID = s.spares.takeForPod(p.ID)
		co.Image = s.viewedImage(ctx, img)
	} else {
		co.Checkpoint, co.Deferred = k, false // restored: no spare (restore.go)
	}
	defer func() { co.Spare.Close() }()
	next = "an NRI plugin refused the container: see the plugin's log"
	done, err := s.nri.createContainer(ctx, p, &co) // the plugins' adjustments
	if err != nil {
		return nil, err
	}
	engine.Mark("cri: create mapped")
	next = "check the container's configuration against the error above (hull cri serve's log has the call)"
	var c *engine.Container
	if k != nil {
		c, err = s.eng.Create(ctx, co)
	} else {
		c, err = s.createContainer(ctx, co, p.ID)
	}
	co.Spare = nil // createContainer's
	if errdefs.IsNotFound(err) && c == nil {
		next = fmt.Sprintf("the image is not on the node: kubelet pulls it before the create unless the Pod's imagePullPolicy is Never, so it was removed in between or was never there; pull it (hull pull %s) or change the policy", imageName(cc))
	}
	if err != nil {
		if c != nil {
			s.eng.Remove(context.WithoutCancel(ctx), c.ID, true)
		}
		done(nil, err)
		return nil, err
	}
	created = true
	done(c, nil)
	return &runtimeapi.CreateContainerResponse{ContainerId: c.ID}, nil
}

// podModes are the namespace modes of a container of pod p for the
// namespaces the pod does not hold: the node's.
func podModes(p *engine.Pod) spec.Options {
	var o spec.Options
	if p.Config.Labels[labelPidMode] == "host" {
		o.PidMode = "host"
	}
	if p.Config.Labels[labelIpcMode] == "host" {
		o.IpcMode = "host"
	}
	if p.Config.Labels[labelNetMode] == "host" {
		o.UTSMode = "host"
	}
	return o
}

// mount is a CRI mount as a bind mount of the engine's.
func mount(m *runtimeapi.Mount) (spec.Mount, error) {
	if m.GetContainerPath() == "" || m.GetHostPath() == "" {
		return spec.Mount{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("mount %q:%q: host and container paths are required", m.GetHostPath(), m.GetContainerPath()))
	}
	if err := ensureHostPath(m.GetHostPath()); err != nil { // checks.go
		return spec.Mount{}, err
	}
	sm := spec.Mount{Type: "bind", Source: m.GetHostPath(), Destination: m.GetContainerPath(), ReadOnly: m.GetReadonly()}
	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		sm.Options = append(sm.Options, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		sm.Options = append(sm.Options, "rshared")
	default:
		sm.Options = append(sm.Options, "rprivate")
	}
	// selinux_relabel is ignored: this host has no SELinux.
	return mountExtras(m, sm)
}

// setResources sets the CRI's limits on o (0: unset), refusing what the
// host cannot enforce (engine.HostLimits).
func setResources(o *spec.Options, r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return nil
	}
	var err error
	if o.HugepageLimits, err = engine.HostLimits(hugepageLimits(r), r.GetUnified()); err != nil {
		return err
	}
	o.Unified = r.GetUnified()
	o.CPUShares, o.CPUQuota, o.CPUPeriod = r.GetCpuShares(), r.GetCpuQuota(), r.GetCpuPeriod()
	o.CpusetCpus, o.CpusetMems = r.GetCpusetCpus(), r.GetCpusetMems()
	o.Memory = r.GetMemoryLimitInBytes()
	if sw := r.GetMemorySwapLimitInBytes(); sw != 0 {
		o.MemorySwap = sw
	}
	if adj := int(r.GetOomScoreAdj()); adj != 0 {
		o.OomScoreAdj = &adj
	}
	return nil
}

// hugepageLimits are r's hugepage limits as the OCI spec has them.
func hugepageLimits(r *runtimeapi.LinuxContainerResources) []specs.LinuxHugepageLimit {
	var out []specs.LinuxHugepageLimit
	for _, h := range r.GetHugepageLimits() {
		out = append(out, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	return out
}

// setSecurity maps a CRI security context onto o. (runAsNonRoot is not
// in the CRI: kubelet checks it against ImageStatus's uid and username.)
func setSecurity(o *spec.Options, sc *runtimeapi.LinuxContainerSecurityContext) error {
	if sc == nil {
		o.Seccomp = "unconfined" // no profile asked: containerd's and CRI-O's default
		nnp := false
		o.NoNewPrivileges = &nnp
		return nil
	}
	switch {
	case sc.GetRunAsUser() != nil:
		o.User = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
	case sc.GetRunAsUsername() != "":
		o.User = sc.GetRunAsUsername()
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if o.User == "" {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("run_as_group %d is given without run_as_user or run_as_username: give the user too", g.GetValue()))
		}
		o.User += ":" + strconv.FormatInt(g.GetValue(), 10)
	}
	for _, g := range sc.GetSupplementalGroups() {
		o.GroupAdd = append(o.GroupAdd, strconv.FormatInt(g, 10))
	}
	o.GroupsStrict = sc.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict
	o.CapAdd = sc.GetCapabilities().GetAddCapabilities()
	o.CapDrop = sc.GetCapabilities().GetDropCapabilities()
	o.Privileged = sc.GetPrivileged()
	o.ReadOnlyRootfs = sc.GetReadonlyRootfs()
	nnp := sc.GetNoNewPrivs()
	o.NoNewPrivileges = &nnp
	o.CustomSystemPaths = true
	o.MaskedPaths, o.ReadonlyPaths = sc.GetMaskedPaths(), sc.GetReadonlyPaths()
	seccomp, err := seccompOf(sc)
	if err != nil {
		return err
	}
	o.Seccomp = seccomp
	return nil
}

// seccompOf is the engine's seccomp setting for a security context:
// RuntimeDefault is hull's default profile, Unconfined (and nothing
// asked, as containerd) none, Localhost the profile file.
func seccompOf(sc *runtimeapi.LinuxContainerSecurityContext) (string, error) {
	if p := sc.GetSeccomp(); p != nil {
		switch p.GetProfileType() {
		case runtimeapi.SecurityProfile_RuntimeDefault:
			return "", nil
		case runtimeapi.SecurityProfile_Unconfined:
			return "unconfined", nil
		case runtimeapi.SecurityProfile_Localhost:
			if !filepath.IsAbs(p.GetLocalhostRef()) {
				return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("seccomp localhost profile %q: give an absolute path", p.GetLocalhostRef()))
			}
			return p.GetLocalhostRef(), checkSeccompProfile(p.GetLocalhostRef())
		}
	}
	switch path := sc.GetSeccompProfilePath(); {
	case path == "runtime/default" || path == "docker/default":
		return "", nil
	case strings.HasPrefix(path, "localhost/"):
		return strings.TrimPrefix(path, "localhost"), checkSeccompProfile(strings.TrimPrefix(path, "localhost"))
	}
	return "unconfined", nil
}

// container returns the CRI container id names (an ID or unique prefix),
// or NotFound; containers made outside the CRI are not its.
func (s *Server) container(ctx context.Context, id string) (*engine.Container, error) {
	return s.containerFrom(ctx, id, s.eng.Get)
}

// containerFrom is container, looking the container up with get (the
// engine's Get, or the view's: records.go).
func (s *Server) containerFrom(ctx context.Context, id string, get func(context.Context, string) (*engine.Container, error)) (*engine.Container, error) {
	if id == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("no container ID given")
	}
	c, err := get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Config.Labels[labelName] == "" {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("container %s was not made through the CRI", c.Name))
	}
	if s.removing(c) {
		// RemoveContainer answered: it is gone for the CRI.
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("container %s is being removed", c.ID))
	}
	return c, nil
}

// podContainers are the containers of pod p the CRI shows: not those
// RemoveContainer answered for whose deletion is under way.
func (s *Server) podContainers(ctx context.Context, p *engine.Pod) ([]*engine.Container, error) {
	cs, err := s.eng.PodContainers(ctx, p)
	return slices.DeleteFunc(cs, s.removing), err
}

// removing says whether c's removal is under way: claimed (state
// removing: RemoveDeferred, another process's) or answered and not
// claimed yet (engine RemovalPending: RemoveIntended). The CRI no longer
// shows it.
func (s *Server) removing(c *engine.Container) bool {
	return c.State == engine.StateRemoving || s.eng.RemovalPending(c.ID)
}

// StartContainer starts a created container; it fails with the reason
// its process could not start (the container is then exited, with it).
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if c.State != engine.StateCreated {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s is %s: only a created container can be started", c.ID, c.State))
	}
	if err := s.remountImageVolumes(ctx, c); err != nil {
		return nil, err
	}
	if err := s.nri.startContainer(ctx, c); err != nil {
		return nil, err
	}
	defer s.spares.fill() // the spare taken at create is used or closed (spares.go take)
	st, err := s.eng.Start(ctx, c.ID, engine.StartOptions{Spare: s.spares.claim(c.ID), InRunningPod: true})
	if err == nil && st != nil {
		err = st.Ready()
	}
	if err != nil {
		return nil, sandboxNotRunning(err) // startpod.go
	}
	s.nri.postStartContainer(ctx, c.ID)
	s.warm(ctx, c.ID)
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops a container with its stop signal, killing it after
// timeout seconds. An unknown or stopped container is success.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.container(ctx, req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.eng.Stop(ctx, c.ID, time.Duration(max(req.GetTimeout(), 0))*time.Second); err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	s.nri.stopContainer(ctx, c.ID)
	s.warm(ctx, c.ID) // RemoveContainer comes next
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container (killed if running). An unknown
// container is success.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	// The record from the view, as fresh as Get's (records.go) and a
	// thirtieth of its cost (no row decoded again): kubelet removes a
	// container it has just seen stopped. The claim checks the row in
	// the database again.
	c, err := s.viewedContainer(ctx, req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	own := *c // the view's records are shared
	c = &own
	s.nri.stopContainer(ctx, c.ID)
	s.spares.drop(c.ID) // one never started
	// The answer comes once the removal is recorded as intended
	// (intents.go) and the container hidden from every call from then on
	// (container, ListContainers: removing); the claim, the kill, the
	// unmounts, layer, cgroups and record go after (engine
	// RemoveIntended), and a crash leaves them to Recover. Without the
	// intents file the answer waits for the claim and the kill
	// (RemoveDeferredOf). One with image volumes is removed whole first:
	// their release needs it gone.
	ivs := imageVolumes(c)
	switch r := s.removalIntents(); {
	case len(ivs) > 0:
		err = s.eng.Remove(ctx, c.ID, true)
	case r != nil && r.add(c.ID) == nil:
		trace.Mark("rm: intended")
		err = s.eng.RemoveIntended(ctx, c, true, func(error) { r.done() })
	default:
		err = s.eng.RemoveDeferredOf(ctx, c, true)
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	s.users.Delete(c.ID)
	s.releaseImageVolumes(ctx, ivs)
	s.nri.removeContainer(ctx, c)
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// removalIntents is the server's removal intents file, opened at the
// first call (nil: none; see Server.intents).
func (s *Server) removalIntents() *removalIntents {
	s.intentsOnce.Do(func() {
		if !s.opts.RemovalIntents || s.opts.Root == "" {
			return
		}
		r, err := openIntents(s.opts.Root)
		if err != nil {
			s.opts.Log.Warn("removals will be claimed before their answer", "error", err)
			return
		}
		s.intents = r
	})
	return s.intents
}

// containerState is the CRI's state of an engine state.
func containerState(c *engine.Container) runtimeapi.ContainerState {
	switch c.State {
	case engine.StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case engine.StateRunning, engine.StatePaused, engine.StateRestarting:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case engine.StateExited, engine.StateDead:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func containerMetadata(c *engine.Container) *runtimeapi.ContainerMetadata {
	attempt, _ := strconv.ParseUint(c.Config.Labels[labelAttempt], 10, 32)
	return &runtimeapi.ContainerMetadata{Name: c.Config.Labels[labelName], Attempt: uint32(attempt)}
}

// nanos is t in Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// containerImage is how the status calls name container c's image, as
// containerd's do (kubelet creates the container from the image's ID and
// shows the status's image.image as the pod's containerStatuses[].image,
// its image_ref as imageID): image.image is a repo tag of the image when
// it is stored (the pod's own name when it is one of them, else the
// first), else image.image as sent; user_specified_image is as sent (the
// image.image sent when none was); image_ref is the image's repo digest
// (one of the pod's repository first), else its ID. imgs are the stored
// image records (imageRecords).
func containerImage(c *engine.Container, imgs []*engine.Image) (*runtimeapi.ImageSpec, string) {
	spec := &runtimeapi.ImageSpec{Image: c.Config.Image, UserSpecifiedImage: c.ImageName()}
	var name, repo string // the pod's name for the image, normalised, and its repository
	if n := c.ImageName(); !reference.LooksLikeID(n) {
		if r, err := reference.Parse(n); err == nil {
			name, repo = r.String(), r.Name()
		}
	}
	var tag, digest string
	for _, r := range imgs {
		if r.ID() != c.ImageID {
			continue
		}
		for _, t := range r.Names {
			if tag == "" || t == name {
				tag = t
			}
		}
		for _, d := range r.RepoDigests {
			if digest == "" || strings.HasPrefix(d, repo+"@") && !strings.HasPrefix(digest, repo+"@") {
				digest = d
			}
		}
	}
	if tag != "" {
		spec.Image = tag
	}
	if digest == "" {
		digest = c.ImageID
	}
	return spec, digest
}

// imageRecords are the stored image records for containerImage, from the
// view (records.go: asked after the container was read from it, they
// cost nothing while nothing was committed); none (the image then named
// as sent) if they cannot be read: the status is still worth answering.
func (s *Server) imageRecords(ctx context.Context) []*engine.Image {
	v, err := s.view(ctx)
	var imgs []*engine.Image
	if err == nil {
		imgs, err = v.Images(ctx)
	}
	if err != nil {
		s.opts.Log.Debug("read the image records for a status", "error", err)
	}
	return imgs
}

// ContainerStatus reports a container: state, times, exit code and
// reason, image, labels, annotations, mounts, log path and limits.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.viewedContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	img, ref := containerImage(c, s.imageRecords(ctx))
	st := &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    containerMetadata(c),
		State:       containerState(c),
		CreatedAt:   nanos(c.Created),
		StartedAt:   nanos(c.Started),
		Image:       img,
		ImageRef:    ref,
		ImageId:     c.ImageID,
		Labels:      userLabels(c.Config.Labels),
		Annotations: c.Config.Annotations,
		LogPath:     c.Config.LogConfig.Path,
		User:        s.containerUser(ctx, c), // groups.go
	}
	if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		st.FinishedAt = nanos(c.Finished)
		st.ExitCode = int32(c.ExitCode)
		switch {
		case c.OOMKilled:
			st.Reason = "OOMKilled"
		case c.ExitCode == 0:
			st.Reason = "Completed"
		default:
			st.Reason = "Error"
		}
		st.Message = c.Error
	}
	ivs := imageVolumes(c)
	for _, m := range c.Config.Spec.Mounts {
		if m.Type != "bind" {
			continue
		}
		if i := slices.IndexFunc(ivs, func(iv imageVolume) bool { return iv.Path == m.Destination }); i >= 0 {
			st.Mounts = append(st.Mounts, ivs[i].criMount())
			continue
		}
		cm := &runtimeapi.Mount{ContainerPath: m.Destination, HostPath: m.Source, Readonly: m.ReadOnly, RecursiveReadOnly: slices.Contains(m.Options, "rro")}
		for _, opt := range m.Options {
			switch opt {
			case "rslave", "slave":
				cm.Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case "rshared", "shared":
				cm.Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		st.Mounts = append(st.Mounts, cm)
	}
	o := c.Config.Spec
	st.Resources = &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{
		CpuShares: o.CPUShares, CpuQuota: o.CPUQuota, CpuPeriod: o.CPUPeriod,
		CpusetCpus: o.CpusetCpus, CpusetMems: o.CpusetMems,
		MemoryLimitInBytes: o.Memory, MemorySwapLimitInBytes: o.MemorySwap,
	}}
	if o.OomScoreAdj != nil {
		st.Resources.Linux.OomScoreAdj = int64(*o.OomScoreAdj)
	}
	for _, h := range o.HugepageLimits {
		st.Resources.Linux.HugepageLimits = append(st.Resources.Linux.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: h.Pagesize, Limit: h.Limit})
	}
	st.Resources.Linux.Unified = o.Unified
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if req.GetVerbose() {
		if resp.Info, err = s.containerInfo(c); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// containerInfo is ContainerStatus's verbose info: "info", a JSON
// document with the keys of containerd's that hull has (crictl inspect
// shows it as .info; scripts read .info.pid and .info.runtimeSpec): the
// sandbox, the process's pid (0 unless it runs), removing (false: a
// container being removed is not found), the writable layer's snapshot,
// the runtime ("hull": its own OCI runtime), the runtime spec (the
// container's config.json; none if its creation failed); and hull's own:
// the monitor's pid, the bundle and root filesystem, the lifecycle stage.
// containerd's "config" (the CRI config as sent) is not kept. Read only
// when asked: the status without it reads no file.
func (s *Server) containerInfo(c *engine.Container) (map[string]string, error) {
	rt, err := s.eng.ContainerRuntimeOf(c)
	if err != nil {
		return nil, err
	}
	info := struct {
		SandboxID   string `json:"sandboxID"`
		Pid         int    `json:"pid"`
		Removing    bool   `json:"removing"`
		SnapshotKey string `json:"snapshotKey"`
		Snapshotter string `json:"snapshotter"`
		RuntimeType string `json:"runtimeType"`
		MonitorPid  int    `json:"monitorPid,omitempty"`
		Bundle      string `json:"bundle"`
		Rootfs      string `json:"rootfs"`
		Stage       string `json:"stage"`
	}{
		SandboxID: c.Config.Pod, SnapshotKey: rt.SnapshotKey, Snapshotter: rt.Snapshotter, RuntimeType: "hull",
		Bundle: rt.Bundle, Rootfs: rt.Rootfs, Stage: c.Stage,
	}
	if c.State == engine.StateRunning || c.State == engine.StatePaused {
		info.Pid, info.MonitorPid = c.Pid, c.MonitorPid
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("container %s: verbose status: %w", c.ID, err)
	}
	// The spec as hull wrote it, spliced in: encoding it as a
	// json.RawMessage would scan its tens of kilobytes again (critest's
	// status benchmark asks verbose).
	if spec := bytes.TrimSpace(rt.Spec); len(spec) > 0 {
		b = append(append(append(b[:len(b)-1], `,"runtimeSpec":`...), spec...), '}')
	}
	return map[string]string{"info": string(b)}, nil
}

// ListContainers lists the CRI containers, filtered by ID (or prefix),
// state, sandbox ID (or prefix) and labels.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	cs, err := s.viewedContainers(ctx)
	if err != nil {
		return nil, err
	}
	f := req.GetFilter()
	imgs := s.imageRecords(ctx)
	// The image names depend on the image records too: the messages kept
	// are of the records read at one reading of them (a reading's records
	// are new).
	var gen *engine.Image
	if len(imgs) > 0 {
		gen = imgs[0]
	}
	list := func(c *engine.Container) bool {
		switch {
		case c.Config.Labels[labelName] == "" || c.Config.Pod == "" || s.removing(c):
		case f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()):
		case f.GetPodSandboxId() != "" && !strings.HasPrefix(c.Config.Pod, f.GetPodSandboxId()):
		case f.GetState() != nil && f.GetState().GetState() != containerState(c):
		case !matchLabels(c.Config.Labels, f.GetLabelSelector()):
		default:
			return true
		}
		return false
	}
	out := s.listedContainers.build(gen, cs, list, func(c *engine.Container) *runtimeapi.Container {
		img, ref := containerImage(c, imgs)
		return &runtimeapi.Container{
			Id:           c.ID,
			PodSandboxId: c.Config.Pod,
			Metadata:     containerMetadata(c),
			Image:        img,
			ImageRef:     ref,
			ImageId:      c.ImageID,
			State:        containerState(c),
			CreatedAt:    nanos(c.Created),
			Labels:       userLabels(c.Config.Labels),
			Annotations:  c.Config.Annotations,
		}
	})
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// ExecSync runs a command in a running container and returns its output
// and exit code; past the timeout (seconds, 0 for none) the command is
// killed and the call fails with DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	x, err := s.eng.Exec(ctx, c.ID, engine.ExecSpec{Args: req.GetCmd()}, engine.ExecIO{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, err
	}
	done := make(chan int, 1)
	go func() { done <- x.Wait() }()
	var timeout <-chan time.Time
	if t := req.GetTimeout(); t > 0 {
		timer := time.NewTimer(time.Duration(t) * time.Second)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case code := <-done:
		return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
	case <-timeout:
		x.Kill(unix.SIGKILL)
		<-done
		return nil, status.Error(codes.DeadlineExceeded, fmt.Sprintf("command %q in container %s timed out after %ds", strings.Join(req.GetCmd(), " "), c.ID, req.GetTimeout()))
	case <-ctx.Done():
		x.Kill(unix.SIGKILL)
		<-done
		return nil, ctx.Err()
	}
}

// UpdateContainerResources changes a container's CPU, memory and hugepage
// limits, unified cgroup v2 settings and OOM score adjustment (engine
// Update: recorded, and applied at once while it runs). What the host
// cannot enforce is refused, as at CreateContainer (engine.HostLimits).
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.container(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r := req.GetLinux()
	if r == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	var u engine.UpdateOptions
	set := func(dst **int64, v int64) {
		if v != 0 {
			*dst = &v
		}
	}
	set(&u.CPUShares, r.GetCpuShares())
	set(&u.CPUQuota, r.GetCpuQuota())
	set(&u.CPUPeriod, r.GetCpuPeriod())
	set(&u.Memory, r.GetMemoryLimitInBytes())
	set(&u.MemorySwap, r.GetMemorySwapLimitInBytes())
	if v := r.GetCpusetCpus(); v != "" {
		u.CpusetCpus = &v
	}
	if v := r.GetCpusetMems(); v != "" {
		u.CpusetMems = &v
	}
	// The engine refuses what the host cannot enforce (HostLimits).
	u.HugepageLimits, u.Unified = hugepageLimits(r), r.GetUnified()
	if adj := int(r.GetOomScoreAdj()); adj != 0 {
		u.OomScoreAdj = &adj
	}
	if err := s.nri.updateContainer(ctx, c, &u); err != nil {
		return nil, err
	}
	s.spares.drop(c.ID) // its spec would be stale: Start reads config.json
	if _, err := s.eng.Update(ctx, c.ID, u); err != nil {
		return nil, err
	}
	s.nri.postUpdateContainer(ctx, c.ID)
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}
