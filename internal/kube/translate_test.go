package kube

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func resources(reqCPU, reqMem, limCPU, limMem string) v1.ResourceRequirements {
	r := v1.ResourceRequirements{}
	set := func(l *v1.ResourceList, name v1.ResourceName, v string) {
		if v == "" {
			return
		}
		if *l == nil {
			*l = v1.ResourceList{}
		}
		(*l)[name] = resource.MustParse(v)
	}
	set(&r.Requests, v1.ResourceCPU, reqCPU)
	set(&r.Requests, v1.ResourceMemory, reqMem)
	set(&r.Limits, v1.ResourceCPU, limCPU)
	set(&r.Limits, v1.ResourceMemory, limMem)
	return r
}

// Resources reach the CRI as kubelet computes them
// (generateLinuxContainerResources), and the QoS class as GetPodQOS.
func TestContainerResourcesAsKubelet(t *testing.T) {
	const gi = 1 << 30
	for _, tc := range []struct {
		name                    string
		res                     v1.ResourceRequirements
		qos                     v1.PodQOSClass
		shares, quota, mem, oom int64
	}{
		// The seed's manifest: 100m → 102 shares; 500m → 50 ms per 100 ms.
		{"seed", resources("100m", "128Mi", "500m", "256Mi"), v1.PodQOSBurstable, 102, 50000, 256 << 20, 1000 - 1000*(128<<20)/(8*gi)},
		{"best effort", resources("", "", "", ""), v1.PodQOSBestEffort, 2, 0, 0, 1000},
		// Limits only: requests default to them; Guaranteed.
		{"guaranteed", resources("", "", "1", "1Gi"), v1.PodQOSGuaranteed, 1024, 100000, gi, -997},
		// A tiny CPU request still gets 2 shares; a tiny limit the 1 ms minimum quota.
		{"tiny", resources("1m", "", "5m", ""), v1.PodQOSBurstable, 2, 1000, 0, 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "x", Resources: tc.res}}}}
			Default(pod)
			if q := QOSClass(pod); q != tc.qos {
				t.Errorf("QoS %s, want %s", q, tc.qos)
			}
			r := containerResources(pod, &pod.Spec.Containers[0], 8*gi, false, true)
			want := &runtimeapi.LinuxContainerResources{CpuShares: tc.shares, CpuQuota: tc.quota, CpuPeriod: 100000, MemoryLimitInBytes: tc.mem, MemorySwapLimitInBytes: tc.mem, OomScoreAdj: tc.oom}
			if r.String() != want.String() {
				t.Errorf("cgroup v1: resources %v\nwant %v", r, want)
			}
			// On cgroup v2, kubelet's no swap and whole-container OOM
			// kill are unified keys; no v1 swap limit.
			r = containerResources(pod, &pod.Spec.Containers[0], 8*gi, true, true)
			want.MemorySwapLimitInBytes = 0
			want.Unified = map[string]string{"memory.oom.group": "1", "memory.swap.max": "0"}
			if r.String() != want.String() {
				t.Errorf("cgroup v2: resources %v\nwant %v", r, want)
			}
			// Without the swap controller kubelet says nothing of swap.
			r = containerResources(pod, &pod.Spec.Containers[0], 8*gi, true, false)
			want.Unified = map[string]string{"memory.oom.group": "1"}
			if r.String() != want.String() {
				t.Errorf("cgroup v2, no swap controller: resources %v\nwant %v", r, want)
			}
			r = containerResources(pod, &pod.Spec.Containers[0], 8*gi, false, false)
			want.Unified = nil
			if r.String() != want.String() {
				t.Errorf("cgroup v1, no swap controller: resources %v\nwant %v", r, want)
			}
		})
	}
}

// The security context: container over pod, no_new_privs only from
// allowPrivilegeEscalation false, kubelet's masked paths unless
// privileged; runAsNonRoot checked against the image's user.
func TestSecurityContextAsKubelet(t *testing.T) {
	uid, f, tr := int64(1000), false, true
	pod := &v1.Pod{Spec: v1.PodSpec{
		SecurityContext: &v1.PodSecurityContext{RunAsUser: &uid, SupplementalGroups: []int64{5}},
		Containers: []v1.Container{{Name: "web", SecurityContext: &v1.SecurityContext{AllowPrivilegeEscalation: &f, ReadOnlyRootFilesystem: &tr,
			Capabilities: &v1.Capabilities{Drop: []v1.Capability{"ALL"}}}}},
	}}
	sc := securityContext(pod, &pod.Spec.Containers[0])
	if sc.GetRunAsUser().GetValue() != 1000 || !sc.NoNewPrivs || !sc.ReadonlyRootfs || sc.GetCapabilities().GetDropCapabilities()[0] != "ALL" ||
		len(sc.MaskedPaths) == 0 || sc.SupplementalGroups[0] != 5 || sc.GetSeccomp().GetProfileType() != runtimeapi.SecurityProfile_Unconfined {
		t.Errorf("security context %v", sc)
	}
	c := &v1.Container{Name: "web", SecurityContext: &v1.SecurityContext{RunAsNonRoot: &tr}}
	pod = &v1.Pod{}
	pod.Name, pod.Namespace, pod.UID = "p", "default", "u"
	root := int64(0)
	if m := verifyRunAsNonRoot(pod, c, &root, ""); m != `container has runAsNonRoot and image will run as root (pod: "p_default(u)", container: web)` {
		t.Errorf("root image: %q", m)
	}
	if m := verifyRunAsNonRoot(pod, c, nil, "app"); !strings.Contains(m, "image has non-numeric user (app), cannot verify user is non-root") {
		t.Errorf("named user: %q", m)
	}
	if m := verifyRunAsNonRoot(pod, c, &uid, ""); m != "" {
		t.Errorf("uid 1000: %q", m)
	}
}

// kubelet's back-off: the first restart at once, then 10 s doubling to
// 5 min; a container that ran past 10 min starts over.
func TestBackoffAsKubelet(t *testing.T) {
	t0 := time.Now()
	var b backoff
	if b.inBackoffSince(t0, t0) {
		t.Fatal("in back-off before any restart")
	}
	b.next(t0, t0)
	if b.Delay != 10*time.Second || !b.inBackoffSince(t0, t0.Add(9*time.Second)) || b.inBackoffSince(t0, t0.Add(11*time.Second)) {
		t.Errorf("first back-off %v", b.Delay)
	}
	for i := 0; i < 10; i++ {
		b.next(t0, t0)
	}
	if b.Delay != 5*time.Minute {
		t.Errorf("back-off grew to %v, want the 5 min cap", b.Delay)
	}
	b.next(t0.Add(11*time.Minute), t0.Add(11*time.Minute))
	if b.Delay != 10*time.Second {
		t.Errorf("after 11 min running: %v, want 10s again", b.Delay)
	}
}

// kubectl's STATUS column.
func TestPodRowStatus(t *testing.T) {
	wait := func(r string) v1.ContainerState {
		return v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: r}}
	}
	for _, tc := range []struct {
		name  string
		inits []v1.ContainerStatus
		apps  []v1.ContainerStatus
		want  string
	}{
		{"creating", nil, []v1.ContainerStatus{{State: wait("ContainerCreating")}}, "ContainerCreating"},
		{"crash loop", nil, []v1.ContainerStatus{{State: wait("CrashLoopBackOff"), RestartCount: 3}}, "CrashLoopBackOff"},
		{"oom", nil, []v1.ContainerStatus{{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}}}, "OOMKilled"},
		{"init running", []v1.ContainerStatus{{State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}, []v1.ContainerStatus{{State: wait("PodInitializing")}}, "Init:0/1"},
		{"init pull", []v1.ContainerStatus{{State: wait("ImagePullBackOff")}}, []v1.ContainerStatus{{State: wait("PodInitializing")}}, "Init:ImagePullBackOff"},
		{"init failed", []v1.ContainerStatus{{State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}}}}, []v1.ContainerStatus{{State: wait("PodInitializing")}}, "Init:Error"},
	} {
		pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}
		if tc.inits != nil {
			pod.Spec.InitContainers = []v1.Container{{Name: "i"}}
		}
		pod.Status = v1.PodStatus{Phase: v1.PodPending, InitContainerStatuses: tc.inits, ContainerStatuses: tc.apps}
		if got := podRow(pod, false)[2]; got != tc.want {
			t.Errorf("%s: STATUS %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A YAML error names the file's line, past earlier documents.
func TestDecodeErrorNamesFileLine(t *testing.T) {
	_, err := decodeFile("pod.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: x\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n   bad: indent\n"), "")
	if err == nil || !strings.Contains(err.Error(), "line 14") || !strings.Contains(err.Error(), "pod.yaml") {
		t.Errorf("error %v; want pod.yaml and line 14", err)
	}
	if got := expand("$(A)-$(B)-$$(A)", []v1.EnvVar{{Name: "A", Value: "1"}}); got != "1-$(B)-$(A)" {
		t.Errorf("expand: %q", got)
	}
}

// The pod's own cgroup as kubelet's ResourceConfigForPod: shares from
// the summed requests; quota and memory only when every container
// declares limits (always for Guaranteed); BestEffort gets 2 shares.
func TestPodResourcesAsKubelet(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{
		{Name: "a", Resources: resources("100m", "128Mi", "500m", "256Mi")},
		{Name: "b", Resources: resources("250m", "", "", "64Mi")},
	}}}
	Default(pod)
	r := podResources(pod)
	if *r.CPU.Shares != 358 || r.CPU.Quota != nil || *r.Memory.Limit != 320<<20 {
		t.Errorf("burstable pod: shares %d, quota %v, memory %v; want 358, none (b has no CPU limit), 320Mi", *r.CPU.Shares, r.CPU.Quota, r.Memory)
	}
	pod.Spec.Containers = []v1.Container{{Name: "a", Resources: resources("", "", "2", "1Gi")}}
	pod.Spec.InitContainers = []v1.Container{{Name: "i", Resources: resources("", "", "3", "1Gi")}}
	Default(pod)
	r = podResources(pod)
	if *r.CPU.Shares != 3072 || *r.CPU.Quota != 300000 || *r.Memory.Limit != 1<<30 {
		t.Errorf("guaranteed pod with a bigger init container: %d %d %d", *r.CPU.Shares, *r.CPU.Quota, *r.Memory.Limit)
	}
	// A sidecar adds to the app containers and to the init containers
	// after it (KEP-753): max(2+1, 1+3) CPUs, max(1+1, 1+1) Gi.
	always := v1.ContainerRestartPolicyAlways
	pod.Spec.InitContainers = []v1.Container{
		{Name: "side", RestartPolicy: &always, Resources: resources("", "", "1", "1Gi")},
		{Name: "i", Resources: resources("", "", "3", "1Gi")},
	}
	Default(pod)
	r = podResources(pod)
	if *r.CPU.Quota != 400000 || *r.Memory.Limit != 2<<30 {
		t.Errorf("guaranteed pod with a sidecar: quota %d, memory %d; want 400000, 2Gi", *r.CPU.Quota, *r.Memory.Limit)
	}
	r = podResources(&v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Name: "a"}}}})
	if *r.CPU.Shares != 2 || r.Memory != nil {
		t.Errorf("best effort pod: %v", r)
	}
}
