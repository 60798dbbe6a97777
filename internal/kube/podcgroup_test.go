package kube

import (
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The pod's cgroup parent is kubelet's layout below the configured
// cgroup root, the same on cgroup v1 (below each controller's
// hierarchy) and v2 (below the one).
func TestCgroupParentUnderRoot(t *testing.T) {
	pod := func(req, lim string) *v1.Pod {
		c := v1.Container{Name: "c", Image: "i"}
		if req != "" {
			c.Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(req), v1.ResourceMemory: resource.MustParse("64Mi")}
		}
		if lim != "" {
			c.Resources.Limits = v1.ResourceList{v1.ResourceCPU: resource.MustParse(lim), v1.ResourceMemory: resource.MustParse("64Mi")}
		}
		return &v1.Pod{ObjectMeta: metaUID("u1"), Spec: v1.PodSpec{Containers: []v1.Container{c}}}
	}
	for _, c := range []struct {
		root string
		pod  *v1.Pod
		want string
	}{
		{"/kubepods", pod("", ""), "/kubepods/besteffort/podu1"},
		{"/kubepods", pod("100m", ""), "/kubepods/burstable/podu1"},
		{"/kubepods", pod("", "200m"), "/kubepods/podu1"},
		{"/hull-kube/r1", pod("100m", ""), "/hull-kube/r1/burstable/podu1"},
		{"/hull-kube/r1", pod("", "200m"), "/hull-kube/r1/podu1"},
	} {
		if got := cgroupParent(c.root, c.pod); got != c.want {
			t.Errorf("cgroupParent(%s, %s pod) = %s, want %s", c.root, QOSClass(c.pod), got, c.want)
		}
		if got := sandboxConfig(c.pod, 0, "/logs", c.want).GetLinux().GetCgroupParent(); got != c.want {
			t.Errorf("sandbox cgroup parent %s, want %s", got, c.want)
		}
	}
}

// A pod's teardown removes the levels above its cgroup only while they
// are empty: a level another pod still uses stays, and the walk stops
// at the hierarchy's root. (Plain directories: rmdir behaves alike.)
func TestRemoveEmptyLevels(t *testing.T) {
	top := t.TempDir()
	a := filepath.Join(top, "kubepods", "burstable", "poda")
	b := filepath.Join(top, "kubepods", "besteffort", "podb")
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(a)
	removeEmptyLevels(filepath.Dir(a), top)
	if _, err := os.Stat(filepath.Dir(a)); err == nil {
		t.Errorf("burstable left after its last pod")
	}
	if _, err := os.Stat(b); err != nil {
		t.Errorf("another pod's cgroup went: %v", err)
	}
	os.Remove(b)
	removeEmptyLevels(filepath.Dir(b), top)
	if _, err := os.Stat(filepath.Join(top, "kubepods")); err == nil {
		t.Errorf("kubepods left after the last pod")
	}
	if _, err := os.Stat(top); err != nil {
		t.Errorf("the hierarchy's root went: %v", err)
	}
	removeEmptyLevels(filepath.Dir(b), top) // gone already: nothing to do
}

func metaUID(uid string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: "p", Namespace: "default", UID: types.UID(uid)}
}
