package cri

import (
	"context"
	"errors"

	"github.com/containerd/errdefs"

	"hull/internal/engine"
)

// What a killed server leaves, and how the next one deals with it.
//
// RunPodSandbox records the sandbox's pod before anything else exists
// (its namespaces, network attachment, cgroup), and the pod is running
// only once all of them do; so a pod of a sandbox left in state created
// was never handed to kubelet, which will ask again under the same name.
// Recover removes such pods with everything of theirs (containers,
// attachment and addresses by their records, pins, the cgroup hull was to
// make) before the server answers. A sandbox killed after its start is
// adopted: it is READY, and kubelet finds it by its metadata.
//
// A container killed during CreateContainer is the engine's: its record
// comes first and the engine reconciles a half-made one (state created,
// listed by ListContainers, removed by RemoveContainer with its mounts);
// kubelet makes the next attempt and removes the stale one. A pull
// killed midway leaves no image: blobs become visible only verified and
// complete, and the image record is written last. The blobs it stored
// (and a blob's temp file, a half-built snapshot: the store and the
// snapshotter remove those of dead processes when they open) no image
// references: Recover deletes them, unless a pull or load of another
// process holds the store; kubelet's retry downloads them again.

//
// RemoveContainer answers before the container is deleted, once its
// removal is recorded as intended (intents.go): a server killed before
// the claim leaves the container's ID in the intents file, and Recover
// removes every container the file names. One killed after the claim
// leaves the record in state removing, claimed by a dead process, which
// the engine's next read reconciles (processes, cgroups, root filesystem
// ended; recorded dead). Kubelet was told it is gone: Recover deletes
// the CRI's dead containers.

//
// A checkpoint killed midway (CheckpointContainer, CheckpointPod) leaves
// its marker in the container's run directory (engine
// RecoverCheckpoints, package checkpoint's Marker): Recover kills a CRIU
// still running for it (none should be: CRIU dies with its parent),
// thaws the cgroup the dump froze, resumes the containers a pod
// checkpoint paused, and removes the dump's temporary files beside the
// archive location and a pod checkpoint's partial output. Kubelet was
// given no answer and counts the checkpoint failed.

// Recover undoes the checkpoints a killed server left unfinished, and
// removes the sandboxes it left half made, the containers whose removal
// it left unfinished, and the blobs of its unfinished pulls.
func (s *Server) Recover(ctx context.Context) error {
	var errs []error
	if err := s.recoverIntents(ctx); err != nil {
		errs = append(errs, err)
	}
	cs, err := s.eng.List(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if fixed, err := s.eng.RecoverCheckpoints(ctx); err != nil {
		errs = append(errs, err)
	} else if len(fixed) > 0 {
		s.opts.Log.Info("undid the checkpoints a killed server left unfinished", "containers", fixed)
	}
	for _, c := range cs {
		if c.Config.Labels[labelName] == "" || c.State != engine.StateDead && c.State != engine.StateRemoving {
			continue
		}
		s.opts.Log.Info("removing a container a killed server left half removed", "id", c.ID, "name", c.Name)
		if err := s.eng.Remove(ctx, c.ID, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	pods, err := s.eng.ListPods(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range pods {
		if p.Config.Labels[labelSandbox] == "" || p.State != engine.PodCreated {
			continue
		}
		s.opts.Log.Info("removing a sandbox a killed server left half made", "id", p.ID, "name", p.Name)
		errs = append(errs, s.removeSandbox(ctx, p))
	}
	if gone, err := s.eng.CollectBlobs(ctx); err != nil {
		errs = append(errs, err)
	} else if len(gone) > 0 {
		s.opts.Log.Info("removed the blobs of pulls a killed server left unfinished", "blobs", len(gone))
	}
	return errors.Join(errs...)
}

// removeSandbox removes sandbox p: its containers, namespaces, network
// and the cgroup hull made for it (engine.RemovePod does all of it).
func (s *Server) removeSandbox(ctx context.Context, p *engine.Pod) error {
	if _, err := s.eng.RemovePod(ctx, p.ID, true); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}
