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

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/checkpoint"
	"hull/internal/engine"
)

// Restores come in two ways, both ending in containers created to be
// restored at StartContainer (the engine's Config.Restore: the monitor
// runs criu restore in place of the container's create and start):
//
//   - CreateContainer whose image.image is the absolute path of a
//     checkpoint archive (CheckpointContainer's output), as CRI-O takes
//     one: the container is created in the request's sandbox from the
//     archive (its image, by ID, must be on the node; its writable
//     layer's changes laid over a fresh root filesystem), with the
//     request's mounts, resources, log path and labels;
//   - CreateContainer whose image is a checkpoint image (package
//     checkpoint: the archive's members as its one layer, annotated with
//     the checkpointed container's name), as kubelet sends a Pod's image
//     after pulling it, by ID or name: the engine's Create refuses it
//     with a CheckpointImageError (found on the image record, in memory),
//     and the container is created again from the archive read out of
//     the image's layer (createFromCheckpointImage), as above;
//   - RestorePod from a pod checkpoint (CheckpointPod's directory): a
//     new sandbox from the request's config, and each container of the
//     checkpoint created from its archive as above.

// isCheckpointArchive reports whether a CreateContainer image.image names
// a checkpoint archive: an absolute path to a file (an image reference
// never starts with a slash).
func isCheckpointArchive(img string) bool {
	if !filepath.IsAbs(img) {
		return false
	}
	st, err := os.Stat(img)
	return err == nil && st.Mode().IsRegular()
}

// RestorePod restores a pod checkpoint (CheckpointPod's layout: pod.dump
// and containers/<name>.tar) into a new pod sandbox run from req.Config,
// with one container per req.ContainerConfigs entry, matched to the
// checkpoint's by metadata name, each left CREATED: StartContainer
// restores its processes. The checkpoint directory is only read.
//
// Refused before anything is made: an empty or duplicated container
// name, names that are not exactly the checkpoint's, a non-empty
// unknown runtime handler, any option (hull takes none), a container
// config whose image or command contradicts the checkpointed container's,
// a checkpoint image missing from the node. On any later error every
// container and the sandbox the call made are removed.
func (s *Server) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (_ *runtimeapi.RestorePodResponse, rerr error) {
	dir := req.GetCheckpointPath()
	bad := func(format string, args ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("restore pod from %s: ", dir) + fmt.Sprintf(format, args...))
	}
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, bad("checkpoint path %q is not an absolute path", dir)
	}
	if h := req.GetRuntimeHandler(); h != "" {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("restore pod from %s: runtime handler %q: hull has only its default handler (\"\")", dir, h))
	}
	if keys := sortedKeys(req.GetOptions()); len(keys) > 0 {
		return nil, bad("option %q is not supported (hull takes no restore options)", keys[0])
	}
	if req.GetConfig() == nil {
		return nil, bad("no pod sandbox config")
	}
	b, err := os.ReadFile(filepath.Join(dir, checkpoint.PodFile))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, bad("no %s: not a pod checkpoint", checkpoint.PodFile)
	}
	if err != nil {
		return nil, fmt.Errorf("restore pod from %s: %w", dir, err)
	}
	var rec checkpoint.PodRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, bad("%s: %v", checkpoint.PodFile, err)
	}
	if rec.Version != checkpoint.RecordVersion {
		return nil, bad("%s is version %d; this hull reads version %d", checkpoint.PodFile, rec.Version, checkpoint.RecordVersion)
	}
	ccs := req.GetContainerConfigs()
	if len(ccs) == 0 {
		return nil, bad("no container configs given")
	}
	names := map[string]bool{}
	for _, cc := range ccs {
		name := cc.GetMetadata().GetName()
		if name == "" {
			return nil, bad("a container config has no metadata name")
		}
		if names[name] {
			return nil, bad("two container configs are named %s", name)
		}
		names[name] = true
		if !slices.Contains(rec.Containers, name) {
			return nil, bad("container %s is not in the checkpoint (it holds %v)", name, rec.Containers)
		}
	}
	for _, name := range rec.Containers {
		if !names[name] {
			return nil, bad("the checkpoint's container %s has no container config", name)
		}
	}

	// Every archive read and checked before anything is made.
	archives := make([]*engine.Checkpoint, len(ccs))
	defer func() {
		for _, k := range archives {
			k.Close()
		}
	}()
	for i, cc := range ccs {
		name := cc.GetMetadata().GetName()
		k, err := s.eng.OpenCheckpoint(filepath.Join(dir, filepath.FromSlash(checkpoint.ContainerArchiveName(name))))
		if err != nil {
			return nil, fmt.Errorf("restore pod from %s: container %s: %w", dir, name, err)
		}
		archives[i] = k
		if err := s.checkRestoreConfig(ctx, cc, k); err != nil {
			return nil, fmt.Errorf("restore pod from %s: %w", dir, err)
		}
	}

	run, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: req.GetConfig(), RuntimeHandler: req.GetRuntimeHandler()})
	if err != nil {
		return nil, fmt.Errorf("restore pod from %s: run the sandbox: %w", dir, err)
	}
	podID := run.GetPodSandboxId()
	// The spare bound to the pod's next container started its process in
	// the pod ahead; the restored ones use none.
	s.spares.dropPod(podID)
	var made []string
	defer func() {
		if rerr == nil {
			return
		}
		bg := context.WithoutCancel(ctx)
		for _, id := range made {
			s.RemoveContainer(bg, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		}
		s.StopPodSandbox(bg, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
		s.RemovePodSandbox(bg, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
	}()
	resp := &runtimeapi.RestorePodResponse{PodSandboxId: podID}
	for i, cc := range ccs {
		cc = proto.Clone(cc).(*runtimeapi.ContainerConfig)
		if cc.Image == nil {
			cc.Image = &runtimeapi.ImageSpec{}
		}
		cc.Image.Image = archives[i].Path
		created, err := s.createContainerFrom(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: podID, Config: cc, SandboxConfig: req.GetConfig(),
		}, archives[i])
		if err != nil {
			return nil, fmt.Errorf("restore pod from %s: container %s: %w", dir, cc.GetMetadata().GetName(), err)
		}
		made = append(made, created.GetContainerId())
		resp.RestoredContainers = append(resp.RestoredContainers, &runtimeapi.RestoredContainer{
			Name: cc.GetMetadata().GetName(), ContainerId: created.GetContainerId(),
		})
	}
	return resp, nil
}

// checkRestoreConfig fails a RestorePod container config that contradicts
// the checkpointed container it is matched with: its image (the ID or
// the name, as kubelet sends either) and its command and args, when
// given, must be the checkpointed process's.
func (s *Server) checkRestoreConfig(ctx context.Context, cc *runtimeapi.ContainerConfig, k *engine.Checkpoint) error {
	name := cc.GetMetadata().GetName()
	mismatch := func(format string, args ...any) error {
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %s: ", name) + fmt.Sprintf(format, args...))
	}
	if img := cc.GetImage().GetImage(); img != "" && img != k.Record.ImageID && img != k.Record.Image {
		if got, err := s.eng.ImageResolve(ctx, img); err != nil || got.ID() != k.Record.ImageID {
			return mismatch("image %s is not the checkpointed container's (%s, %s)", img, k.Record.Image, k.Record.ImageID)
		}
	}
	if err := s.eng.CheckImage(ctx, k); err != nil {
		return err
	}
	ran := append([]string{k.Config.Path}, k.Config.Args...)
	if cmd := cc.GetCommand(); len(cmd) > 0 {
		if want := append(slices.Clone(cmd), cc.GetArgs()...); k.Config.Path != "" && !slices.Equal(want, ran) {
			return mismatch("command %q is not the checkpointed process's %q", want, ran)
		}
	} else if args := cc.GetArgs(); len(args) > 0 && k.Config.Path != "" {
		if len(args) > len(ran) || !slices.Equal(args, ran[len(ran)-len(args):]) {
			return mismatch("args %q are not the checkpointed process's (%q)", args, ran)
		}
	}
	return nil
}

// createFromCheckpointImage is CreateContainer of a container whose image
// is the checkpoint image cie names: the archive is read out of its layer
// and the container created from it as from an archive's path.
func (s *Server) createFromCheckpointImage(ctx context.Context, req *runtimeapi.CreateContainerRequest, cie *engine.CheckpointImageError) (*runtimeapi.CreateContainerResponse, error) {
	name := req.GetConfig().GetMetadata().GetName()
	shown := req.GetConfig().GetImage().GetUserSpecifiedImage()
	if shown == "" {
		shown = cie.Image
	}
	k, err := s.eng.OpenCheckpointImage(ctx, cie.ID, engine.CheckpointImageOptions{Shown: shown})
	if err != nil {
		return nil, fmt.Errorf("container %s: restore: %w", name, err)
	}
	defer k.Close()
	resp, err := s.createContainerFrom(ctx, req, k)
	if err != nil {
		return nil, fmt.Errorf("container %s: restore from checkpoint image %s: %w", name, shown, err)
	}
	return resp, nil
}
