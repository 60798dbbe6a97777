package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cgroups"
)

// kubelet sends a hugepage limit for every page size the node has. Where
// the hugetlb controller exists they are set; where it does not (this
// host's v1 hierarchies have none) they are dropped, as runc's cgroupfs
// manager does, and the container runs: refusing would fail every pod
// kubelet makes here.
func TestHugepageLimitsAsKubeletSendsThem(t *testing.T) {
	c, f := serveRuntime(t)
	pod := sandboxConfig(t, "huge")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "huge", func(cc *runtimeapi.ContainerConfig) {
		cc.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}},
		}}
	}, "true")
	startContainer(t, c, id)
	if s := waitExited(t, c, id); s.ExitCode != 0 {
		t.Errorf("a container with kubelet's hugepage limits (hugetlb here: %v) exited %d: %s", cgroups.HugetlbSupported(), s.ExitCode, s.Message)
	}
}
