package kube

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// goldenPods are pods in the states the supervisor records, with fixed
// times except the events' (3 h and 2 h ago: ages kubectl prints as 3h
// and 2h whenever the test runs).
func goldenPods(now time.Time) map[string]*PodRecord {
	at := func(s string) metav1.Time { t, _ := time.Parse(time.RFC3339, s); return metav1.NewTime(t) }
	grace, prio := int64(30), int32(0)
	base := func(name string) *v1.Pod {
		p := &v1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}}
		p.Name, p.Namespace, p.UID = name, "default", "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
		p.CreationTimestamp = metav1.NewTime(now.Add(-3 * time.Hour))
		p.Spec = v1.PodSpec{NodeName: "node1", ServiceAccountName: "default", Priority: &prio, TerminationGracePeriodSeconds: &grace,
			RestartPolicy: v1.RestartPolicyAlways}
		start := at("2026-12-06T09:00:00Z")
		p.Status = v1.PodStatus{HostIP: "192.0.2.2", StartTime: &start}
		return p
	}
	events := func(list ...Event) []Event {
		for i := range list {
			list[i].From = "kubelet"
			if list[i].First.IsZero() {
				list[i].First, list[i].Last = now.Add(-3*time.Hour), now.Add(-3*time.Hour)
			}
			if list[i].Count == 0 {
				list[i].Count = 1
			}
		}
		return list
	}
	cond := func(ready bool) []v1.PodCondition {
		st := func(b bool) v1.ConditionStatus {
			if b {
				return v1.ConditionTrue
			}
			return v1.ConditionFalse
		}
		t := at("2026-12-06T09:00:01Z")
		return []v1.PodCondition{
			{Type: v1.PodReadyToStartContainers, Status: v1.ConditionTrue, LastTransitionTime: t},
			{Type: v1.PodInitialized, Status: v1.ConditionTrue, LastTransitionTime: t},
			{Type: v1.PodReady, Status: st(ready), LastTransitionTime: t},
			{Type: v1.ContainersReady, Status: st(ready), LastTransitionTime: t},
			{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: t},
		}
	}
	out := map[string]*PodRecord{}

	// The seed's pod refused: runAsNonRoot against a root image.
	seed := base("container-fundamentals-demo")
	tr, f := true, false
	seed.Spec.Containers = []v1.Container{{Name: "web", Image: "docker.io/library/nginx:1.25",
		SecurityContext: &v1.SecurityContext{RunAsNonRoot: &tr, AllowPrivilegeEscalation: &f},
		Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("256Mi")}}}}
	seed.Status.Phase, seed.Status.QOSClass, seed.Status.Conditions = v1.PodPending, v1.PodQOSBurstable, cond(false)
	seed.Status.PodIP, seed.Status.PodIPs = "10.88.0.5", []v1.PodIP{{IP: "10.88.0.5"}}
	msg := `container has runAsNonRoot and image will run as root (pod: "container-fundamentals-demo_default(0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9)", container: web)`
	seed.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "web", Image: "docker.io/library/nginx:1.25", Started: &f,
		State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}}}}
	out["seed"] = &PodRecord{Pod: seed, Events: events(
		Event{Type: "Normal", Reason: "Pulled", Message: `Container image "docker.io/library/nginx:1.25" already present on machine`},
		Event{Type: "Warning", Reason: "Failed", Message: "Error: " + msg, Count: 7, First: now.Add(-3 * time.Hour), Last: now.Add(-2 * time.Hour)},
	)}

	// A crash loop, with an init container that completed and a port.
	crash := base("crash")
	crash.Labels = map[string]string{"app": "crash", "tier": "web"}
	crash.Spec.InitContainers = []v1.Container{{Name: "setup", Image: "busybox:1.36", Command: []string{"sh", "-c", "echo ok"}}}
	crash.Spec.Containers = []v1.Container{{Name: "app", Image: "busybox:1.36", Command: []string{"sh", "-c"}, Args: []string{"exit 3"},
		Ports: []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: v1.ProtocolTCP}},
		Env:   []v1.EnvVar{{Name: "MODE", Value: "test"}}}}
	crash.Status.Phase, crash.Status.QOSClass, crash.Status.Conditions = v1.PodRunning, v1.PodQOSBestEffort, cond(false)
	crash.Status.PodIP, crash.Status.PodIPs = "10.88.0.6", []v1.PodIP{{IP: "10.88.0.6"}}
	tt := true
	crash.Status.InitContainerStatuses = []v1.ContainerStatus{{Name: "setup", Image: "busybox:1.36", ImageID: "docker.io/library/busybox@sha256:aaaa", ContainerID: "hull://1111", Ready: true, Started: &f,
		State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "Completed", ExitCode: 0, StartedAt: at("2026-12-06T09:00:02Z"), FinishedAt: at("2026-12-06T09:00:03Z"), ContainerID: "hull://1111"}}}}
	crash.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", Image: "busybox:1.36", ImageID: "docker.io/library/busybox@sha256:aaaa", ContainerID: "hull://2222", RestartCount: 4, Started: &f,
		State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 1m20s restarting failed container=app pod=crash_default(0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9)"}},
		LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "Error", ExitCode: 3, StartedAt: at("2026-12-06T09:02:00Z"), FinishedAt: at("2026-12-06T09:02:01Z"), ContainerID: "hull://2222"}}}}
	_ = tt
	out["crash"] = &PodRecord{Pod: crash, Events: events(
		Event{Type: "Normal", Reason: "Started", Message: "Started container app", Count: 5, First: now.Add(-3 * time.Hour), Last: now.Add(-2 * time.Hour)},
		Event{Type: "Warning", Reason: "BackOff", Message: "Back-off restarting failed container app in pod crash_default(0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9)", Count: 9, First: now.Add(-3 * time.Hour), Last: now.Add(-2 * time.Hour)},
	)}

	// Running, OOM-killed once, no events.
	oom := base("oom")
	oom.Spec.Containers = []v1.Container{{Name: "c", Image: "busybox:1.36", Resources: v1.ResourceRequirements{
		Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("20Mi")}, Requests: v1.ResourceList{v1.ResourceMemory: resource.MustParse("20Mi")}}}}
	oom.Status.Phase, oom.Status.QOSClass, oom.Status.Conditions = v1.PodRunning, v1.PodQOSBurstable, cond(true)
	oom.Status.PodIP, oom.Status.PodIPs = "10.88.0.7", []v1.PodIP{{IP: "10.88.0.7"}}
	oom.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "c", Image: "busybox:1.36", ImageID: "docker.io/library/busybox@sha256:aaaa", ContainerID: "hull://3333", RestartCount: 1, Ready: true, Started: &tt,
		State:                v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: at("2026-12-06T09:05:00Z")}},
		LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, StartedAt: at("2026-12-06T09:04:00Z"), FinishedAt: at("2026-12-06T09:04:59Z"), ContainerID: "hull://3333"}}}}
	out["oom"] = &PodRecord{Pod: oom}
	return out
}

// describe pod prints what kubectl's own describer prints for the same
// object and events (testdata/describe-*.golden, made by
// k8s.io/kubectl/pkg/describe v0.37.2 over a fake clientset: set
// HULL_KGOLD to that program, see testdata/kgold.go.txt, to remake them).
func TestDescribeMatchesKubectl(t *testing.T) {
	now := time.Now()
	for name, r := range goldenPods(now) {
		golden := filepath.Join("testdata", "describe-"+name+".golden")
		if kg := os.Getenv("HULL_KGOLD"); kg != "" {
			dir := t.TempDir()
			pb, _ := json.Marshal(r.Pod)
			var evs []v1.Event
			for _, e := range r.Events {
				evs = append(evs, v1.Event{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: int32(e.Count),
					Source: v1.EventSource{Component: e.From}, FirstTimestamp: metav1.NewTime(e.First), LastTimestamp: metav1.NewTime(e.Last)})
			}
			eb, _ := json.Marshal(evs)
			os.WriteFile(filepath.Join(dir, "pod.json"), pb, 0o644)
			os.WriteFile(filepath.Join(dir, "events.json"), eb, 0o644)
			out, err := exec.Command(kg, filepath.Join(dir, "pod.json"), filepath.Join(dir, "events.json")).Output()
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(golden, out, 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		describePod(&got, r)
		if got.String() != string(want) {
			t.Errorf("describe pod %s:\n%s\nkubectl:\n%s", name, got.String(), want)
		}
	}
}

// get pods prints what kubectl prints for the same pods: the table, -o
// wide, -o name and -o yaml golden files are kubectl's (the API server's
// table conversion, printPod, printed by kubectl's own printers: set
// HULL_KGOLD_GET to the program in testdata/kgoldget.go.txt to remake
// them); get events and -o jsonpath keep hull's shapes
// (HULL_UPDATE_GOLDEN=1 rewrites those and, without HULL_KGOLD_GET, the
// rest).
func TestGetShapesGolden(t *testing.T) {
	now := time.Now()
	recs := goldenPods(now)
	var pods []*v1.Pod
	for _, name := range []string{"seed", "crash", "oom"} {
		// The last restart 2 h ago, whenever the test runs (RESTARTS
		// prints its age).
		p := recs[name].Pod.DeepCopy()
		for i := range p.Status.ContainerStatuses {
			if t := p.Status.ContainerStatuses[i].LastTerminationState.Terminated; t != nil {
				t.FinishedAt = metav1.NewTime(now.Add(-2 * time.Hour))
			}
		}
		pods = append(pods, p)
	}
	var events bytes.Buffer
	printEvents(&events, []*PodRecord{recs["seed"], recs["crash"]}, false)
	if os.Getenv("HULL_UPDATE_GOLDEN") != "" {
		os.WriteFile(filepath.Join("testdata", "get-events.golden"), events.Bytes(), 0o644)
	}
	if want, _ := os.ReadFile(filepath.Join("testdata", "get-events.golden")); events.String() != string(want) {
		t.Errorf("get events:\n%s\nwant:\n%s", events.String(), want)
	}
	for _, tc := range []struct {
		file, output string
		pods         []*v1.Pod
		single       bool
		kubectl      string // kgoldget's mode: kubectl makes this golden file
	}{
		{"get-table.golden", "", pods, false, "table"},
		{"get-wide.golden", "wide", pods, false, "wide"},
		{"get-seed-yaml.golden", "yaml", []*v1.Pod{fixedCreation(pods[0])}, true, "yaml"},
		{"get-name.golden", "name", pods, false, "name"},
		{"get-jsonpath.golden", "jsonpath={range .items[*]}{.metadata.name}{\"\\t\"}{.status.containerStatuses[0].restartCount}{\"\\n\"}{end}", pods, false, ""},
	} {
		var got bytes.Buffer
		if err := printPods(&got, tc.pods, tc.output, false, tc.single); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", tc.file)
		if kg := os.Getenv("HULL_KGOLD_GET"); kg != "" && tc.kubectl != "" {
			in := filepath.Join(t.TempDir(), "pods.json")
			b, _ := json.Marshal(tc.pods)
			os.WriteFile(in, b, 0o644)
			out, err := exec.Command(kg, in, tc.kubectl).Output()
			if err != nil {
				t.Fatalf("%s %s: %v", kg, tc.kubectl, err)
			}
			os.WriteFile(golden, out, 0o644)
		} else if os.Getenv("HULL_UPDATE_GOLDEN") != "" {
			os.WriteFile(golden, got.Bytes(), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != string(want) {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.file, got.String(), want)
		}
	}
}

// fixedCreation is pod created at a fixed time (for outputs that print
// the time, not the age).
func fixedCreation(pod *v1.Pod) *v1.Pod {
	p := pod.DeepCopy()
	t, _ := time.Parse(time.RFC3339, "2026-12-06T08:59:58Z")
	p.CreationTimestamp = metav1.NewTime(t)
	return p
}
