package kube

import (
	"fmt"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"hull/internal/snapshot"
)

// emptyDir sizes, as kubelet enforces them. A disk-backed emptyDir with
// a sizeLimit is watched by kubelet's eviction manager: every
// evictionInterval it measures each volume's usage (du's: the blocks of
// its files) and evicts a pod whose emptyDir grew past its limit (the
// pod Failed with reason Evicted and kubelet's message, its containers
// killed at once, a Warning Evicted event; podfail.go does the kill). A
// Memory emptyDir is a tmpfs sized as kubelet's emptydir plugin sizes
// it (SizeMemoryBackedVolumes).

// evictionInterval is kubelet's eviction manager's monitoring interval
// (--eviction-monitoring-interval, 10 s), times the back-off scale (a
// test's is shorter).
const evictionInterval = 10 * time.Second

// emptyDirOverLimit is kubelet's eviction message for the first
// disk-backed emptyDir of the pod over its sizeLimit, "" when none is;
// it measures at most once per evictionInterval.
func (k *kubelet) emptyDirOverLimit() string {
	now := time.Now()
	if now.Sub(k.evictionChecked) < scaled(evictionInterval) {
		return ""
	}
	k.evictionChecked = now
	for _, v := range k.pod.Spec.Volumes {
		ed := v.EmptyDir
		if ed == nil || ed.Medium == v1.StorageMediumMemory || ed.SizeLimit == nil || ed.SizeLimit.Sign() <= 0 {
			continue
		}
		used, err := snapshot.DiskUsage(filepath.Join(volumesDir(k.dir, "empty-dir"), v.Name))
		if err != nil {
			continue // not set up yet
		}
		if resource.NewQuantity(used.Size, resource.BinarySI).Cmp(*ed.SizeLimit) > 0 {
			return fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %q. ", v.Name, ed.SizeLimit.String())
		}
	}
	return ""
}

// memoryVolumeSize is the size of a Memory emptyDir's tmpfs, kubelet's
// rule: the node's allocatable memory, or the pod's memory limit when it
// has one (every container declares a limit) and it is less, or the
// volume's sizeLimit when it is set and less still.
func (k *kubelet) memoryVolumeSize(ed *v1.EmptyDirVolumeSource) int64 {
	alloc := nodeAllocatable(k.hullRoot(), k.capacity)[v1.ResourceMemory]
	size := alloc.Value()
	if m := podResources(k.pod).Memory; m != nil && m.Limit != nil && *m.Limit > 0 && (size <= 0 || *m.Limit <= size) {
		size = *m.Limit
	}
	if l := ed.SizeLimit; l != nil && l.Value() > 0 && (size <= 0 || l.Value() <= size) {
		size = l.Value()
	}
	return size
}
