package kube

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The downward API for env: valueFrom.fieldRef and
// valueFrom.resourceFieldRef, checked as the API server does
// (pkg/apis/core/validation: validateObjectFieldSelector,
// validateContainerResourceFieldSelector) and resolved by the supervisor
// when it makes a container, as kubelet's makeEnvironmentVariables does
// (podFieldSelectorRuntimeValue, containerResourceRuntimeValue).

// envFieldPaths are the fieldRef paths an env variable may name
// (besides metadata.labels['k'] and metadata.annotations['k']).
var envFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
	"spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

// podFieldLabels are the field labels of a v1 Pod the API server
// converts (ConvertDownwardAPIFieldLabel); a path outside them is
// "field label not supported", one inside but not in envFieldPaths is
// "Unsupported value".
var podFieldLabels = append([]string{
	"metadata.annotations", "metadata.labels", "spec.restartPolicy", "spec.schedulerName", "status.phase",
}, envFieldPaths...)

// resourceFieldPaths are the container resources resourceFieldRef may
// name (hugepages are not offered by hull's node).
var resourceFieldPaths = []string{
	"limits.cpu", "limits.ephemeral-storage", "limits.memory",
	"requests.cpu", "requests.ephemeral-storage", "requests.memory",
}

// Divisors the API server accepts: CPU in cores or millicores, the
// others in bytes or a power of 1000 or 1024.
var (
	cpuDivisors  = []string{"1m", "1"}
	byteDivisors = []string{"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}
)

// defaultDownward is the API server's default for a fieldRef's
// apiVersion (v1).
func defaultDownward(c *v1.Container) {
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil && vf.FieldRef.APIVersion == "" {
			vf.FieldRef.APIVersion = "v1"
		}
	}
}

// splitSubscript splits "metadata.labels['k']" into the path and the
// key; ok is false for a path with no subscript.
func splitSubscript(fieldPath string) (path, key string, ok bool) {
	rest, found := strings.CutSuffix(fieldPath, "']")
	if !found {
		return fieldPath, "", false
	}
	path, key, found = strings.Cut(rest, "['")
	if !found || path == "" {
		return fieldPath, "", false
	}
	return path, key, true
}

// convertFieldLabel is the API server's conversion of a v1 Pod field
// label: the path it names, or its error.
func convertFieldLabel(apiVersion, fieldPath string) (string, error) {
	if apiVersion != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", apiVersion)
	}
	if path, _, ok := splitSubscript(fieldPath); ok {
		if path == "metadata.annotations" || path == "metadata.labels" {
			return fieldPath, nil
		}
		return "", fmt.Errorf("field label does not support subscript: %s", fieldPath)
	}
	if fieldPath == "spec.host" { // old clients' name for spec.nodeName
		return "spec.nodeName", nil
	}
	for _, l := range podFieldLabels {
		if l == fieldPath {
			return fieldPath, nil
		}
	}
	return "", fmt.Errorf("field label not supported: %s", fieldPath)
}

// validateFieldRef is the API server's check of an env fieldRef.
func validateFieldRef(p *field.Path, fs *v1.ObjectFieldSelector) field.ErrorList {
	return validateFieldSelector(p, fs, envFieldPaths)
}

// validateFieldSelector is the API server's validateObjectFieldSelector:
// a path it converts, one of allowed (or a label or annotation by key).
func validateFieldSelector(p *field.Path, fs *v1.ObjectFieldSelector, allowed []string) field.ErrorList {
	switch {
	case fs.APIVersion == "":
		return field.ErrorList{field.Required(p.Child("apiVersion"), "")}
	case fs.FieldPath == "":
		return field.ErrorList{field.Required(p.Child("fieldPath"), "")}
	}
	path, err := convertFieldLabel(fs.APIVersion, fs.FieldPath)
	if err != nil {
		return field.ErrorList{field.Invalid(p.Child("fieldPath"), fs.FieldPath, "error converting fieldPath: "+err.Error())}
	}
	var errs field.ErrorList
	if base, key, ok := splitSubscript(path); ok {
		if base == "metadata.annotations" {
			key = strings.ToLower(key)
		}
		for _, m := range validation.IsQualifiedName(key) {
			errs = append(errs, field.Invalid(p, key, m))
		}
		return errs
	}
	if contains(allowed, path) {
		return nil
	}
	return field.ErrorList{field.NotSupported(p.Child("fieldPath"), path, allowed)}
}

// validateResourceFieldRef is the API server's check of an env
// resourceFieldRef: a supported resource and a divisor of its kind.
func validateResourceFieldRef(p *field.Path, fs *v1.ResourceFieldSelector) field.ErrorList {
	return validateResourceSelector(p, fs, false)
}

// validateResourceSelector is the API server's
// validateContainerResourceFieldSelector (a volume's must name its
// container).
func validateResourceSelector(p *field.Path, fs *v1.ResourceFieldSelector, volume bool) field.ErrorList {
	var errs field.ErrorList
	switch {
	case volume && fs.ContainerName == "":
		errs = append(errs, field.Required(p.Child("containerName"), ""))
	case fs.Resource == "":
		errs = append(errs, field.Required(p.Child("resource"), ""))
	case strings.HasPrefix(fs.Resource, "requests.hugepages-") || strings.HasPrefix(fs.Resource, "limits.hugepages-"):
		errs = append(errs, field.Forbidden(p.Child("resource"), "hugepages are not offered by hull kube's node"))
	case !contains(resourceFieldPaths, fs.Resource):
		errs = append(errs, field.NotSupported(p.Child("resource"), fs.Resource, resourceFieldPaths))
	}
	if fs.Divisor.Cmp(resource.Quantity{}) == 0 { // unset
		return errs
	}
	d := fs.Divisor.String()
	switch fs.Resource {
	case "limits.cpu", "requests.cpu":
		if !contains(cpuDivisors, d) {
			errs = append(errs, field.Invalid(p.Child("divisor"), fs.Resource, "only divisor's values 1m and 1 are supported with the cpu resource"))
		}
	case "limits.memory", "requests.memory":
		if !contains(byteDivisors, d) {
			errs = append(errs, field.Invalid(p.Child("divisor"), fs.Resource, "only divisor's values "+strings.Join(byteDivisors, ", ")+" are supported with the memory resource"))
		}
	case "limits.ephemeral-storage", "requests.ephemeral-storage":
		if !contains(byteDivisors, d) {
			errs = append(errs, field.Invalid(p.Child("divisor"), fs.Resource, "only divisor's values "+strings.Join(byteDivisors, ", ")+" are supported with the local ephemeral storage resource"))
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// downward is what the supervisor knows of the pod and the node when it
// makes a container: the pod's and the node's addresses, the node's
// allocatable resources.
type downward struct {
	podIPs, hostIPs []string
	allocatable     v1.ResourceList
}

// fieldValue is kubelet's podFieldSelectorRuntimeValue.
func (d *downward) fieldValue(pod *v1.Pod, fs *v1.ObjectFieldSelector) (string, error) {
	path, err := convertFieldLabel(fs.APIVersion, fs.FieldPath)
	if err != nil {
		return "", err
	}
	first := func(l []string) string {
		if len(l) == 0 {
			return ""
		}
		return l[0]
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return first(d.hostIPs), nil
	case "status.hostIPs":
		return strings.Join(d.hostIPs, ","), nil
	case "status.podIP":
		return first(d.podIPs), nil
	case "status.podIPs":
		return strings.Join(d.podIPs, ","), nil
	}
	if base, key, ok := splitSubscript(path); ok {
		if base == "metadata.annotations" {
			return pod.Annotations[key], nil
		}
		return pod.Labels[key], nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", path)
}

// formatMap is the downward API's text of a map: key="value" lines in
// key order.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// resourceValue is kubelet's containerResourceRuntimeValue: the
// resource of c (or of the container named by containerName), a limit
// not set being the node's allocatable (defaultPodLimitsForDownwardAPI:
// app containers and c only), divided by the divisor (default 1) and
// rounded up.
func (d *downward) resourceValue(pod *v1.Pod, c *v1.Container, fs *v1.ResourceFieldSelector) (string, error) {
	target := c.DeepCopy()
	if name := fs.ContainerName; name != "" {
		target = nil
		for _, list := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range list {
				if target == nil && list[i].Name == name {
					target = list[i].DeepCopy()
				}
			}
		}
		if target == nil {
			return "", fmt.Errorf("container %s not found", name)
		}
		isApp := false
		for _, a := range pod.Spec.Containers {
			isApp = isApp || a.Name == name
		}
		if !isApp && name != c.Name {
			d = &downward{} // kubelet defaults the limits of app containers and c only
		}
	}
	if target.Resources.Limits == nil {
		target.Resources.Limits = v1.ResourceList{}
	}
	for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage} {
		if q, ok := target.Resources.Limits[r]; !ok || q.IsZero() {
			if a, ok := d.allocatable[r]; ok {
				target.Resources.Limits[r] = a.DeepCopy()
			}
		}
	}
	divisor := resource.MustParse("1")
	if fs.Divisor.Cmp(resource.Quantity{}) != 0 {
		divisor = fs.Divisor
	}
	kind, name, _ := strings.Cut(fs.Resource, ".")
	list := target.Resources.Requests
	if kind == "limits" {
		list = target.Resources.Limits
	}
	q := list[v1.ResourceName(name)]
	switch fs.Resource {
	case "limits.cpu", "requests.cpu":
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case "limits.memory", "requests.memory", "limits.ephemeral-storage", "requests.ephemeral-storage":
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
}

// nodeAllocatable is the node's allocatable CPU, memory and ephemeral
// storage as a kubelet with its default flags reports it: the capacity
// (online CPUs, MemTotal, the size of the filesystem holding dir, the
// hull root as kubelet's root directory) less the default hard eviction
// thresholds (memory.available<100Mi, nodefs.available<10%); no
// kube-reserved or system-reserved.
func nodeAllocatable(dir string, memTotal int64) v1.ResourceList {
	l := v1.ResourceList{
		v1.ResourceCPU: *resource.NewQuantity(int64(onlineCPUs()), resource.DecimalSI),
	}
	if mem := memTotal - 100<<20; memTotal > 0 {
		l[v1.ResourceMemory] = *resource.NewQuantity(max(mem, 0), resource.BinarySI)
	}
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil {
		size := int64(st.Blocks) * int64(st.Bsize)
		l[v1.ResourceEphemeralStorage] = *resource.NewQuantity(size-int64(float64(size)*0.1), resource.BinarySI)
	}
	return l
}

// onlineCPUs is the number of online CPUs (cadvisor's NumCores).
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if found {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil {
			return runtime.NumCPU()
		}
		n += z - a + 1
	}
	return n
}

// downward is what the pod's containers' downward API reads now: the
// sandbox's address (the node's for hostNetwork, as the pod's status
// shows it), the node's, and the node's allocatable resources.
func (k *kubelet) downward() *downward {
	d := &downward{allocatable: nodeAllocatable(k.hullRoot(), k.capacity)}
	if ip := hostIP(); ip != "" {
		d.hostIPs = []string{ip}
	}
	switch {
	case k.pod.Spec.HostNetwork:
		d.podIPs = d.hostIPs
	case k.podIP != "":
		d.podIPs = []string{k.podIP}
	}
	return d
}

// describeDownwardEnv is kubectl's line for a fieldRef or
// resourceFieldRef variable: the value kubectl can tell from the pod
// object (metadata only; the node's and the status's fields print
// empty), then the source; a limit not set is "node allocatable".
func describeDownwardEnv(w prefixWriter, pod *v1.Pod, c v1.Container, e v1.EnvVar) {
	if fs := e.ValueFrom.FieldRef; fs != nil {
		v := ""
		if path, err := convertFieldLabel(fs.APIVersion, fs.FieldPath); err == nil && strings.HasPrefix(path, "metadata.") {
			v, _ = (&downward{}).fieldValue(pod, fs)
		}
		w.write(3, "%s:\t%s (%s:%s)\n", e.Name, v, fs.APIVersion, fs.FieldPath)
		return
	}
	fs := e.ValueFrom.ResourceFieldRef
	v, err := (&downward{}).resourceValue(&v1.Pod{}, &c, &v1.ResourceFieldSelector{Resource: fs.Resource, Divisor: fs.Divisor})
	if err != nil {
		v = ""
	}
	if v == "0" && (fs.Resource == "limits.cpu" || fs.Resource == "limits.memory") {
		v = "node allocatable"
	}
	w.write(3, "%s:\t%s (%s)\n", e.Name, v, fs.Resource)
}
