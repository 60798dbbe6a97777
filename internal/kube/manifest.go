package kube

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Manifests. `hull kube apply -f` reads files (a directory's .yaml, .yml
// and .json files in name order, or stdin for "-"), splits each into
// YAML documents, decodes each strictly into its k8s.io/api type (an
// unknown or duplicate field is an error, with the field's path, as the
// API server's strict field validation says it), defaults it as the API
// server would, and validates it. Every document is checked before
// anything is created, so bad input leaves nothing half-made.

// Document is one decoded object of a manifest.
type Document struct {
	Source string // the file ("-" for stdin)
	Line   int    // the line its document starts on (1-based)
	// Exactly one of these is set, by the document's kind.
	Pod        *v1.Pod
	ConfigMap  *v1.ConfigMap
	Secret     *v1.Secret
	PVC        *v1.PersistentVolumeClaim
	Deployment *appsv1.Deployment
}

// where names a document in errors: "pod.yaml:12".
func (d Document) where() string { return fmt.Sprintf("%s:%d", d.Source, d.Line) }

// ReadManifests reads and checks every document of the given -f
// arguments. stdin is read for "-".
func ReadManifests(paths []string, stdin io.Reader, namespace string) ([]Document, error) {
	if len(paths) == 0 {
		return nil, errors.New("must specify one of -f: give a manifest file, a directory of them, or - for stdin")
	}
	var docs []Document
	for _, p := range paths {
		files, err := manifestFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			var data []byte
			if f == "-" {
				data, err = io.ReadAll(stdin)
			} else {
				data, err = os.ReadFile(f)
			}
			if err != nil {
				return nil, fmt.Errorf("read manifest: %w", err)
			}
			ds, err := decodeFile(f, data, namespace)
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no objects passed to apply (the manifests %s hold no documents)", strings.Join(paths, ", "))
	}
	seen := map[string]string{}
	for _, d := range docs {
		kind, ns, name := d.Ref()
		key := kind + "/" + ns + "/" + name
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("%s: %s %q is also defined at %s: give each object once", d.where(), strings.ToLower(kind), name, prev)
		}
		seen[key] = d.where()
	}
	return docs, nil
}

// manifestFiles lists the files an -f argument names.
func manifestFiles(p string) ([]string, error) {
	if p == "-" {
		return []string{"-"}, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("the path %q does not exist", p)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				out = append(out, filepath.Join(p, e.Name()))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("error reading %s: no .yaml, .yml or .json files in the directory", p)
	}
	return out, nil
}

// docSeparator is a YAML document separator line.
var docSeparator = regexp.MustCompile(`^---(\s.*)?$`)

// decodeFile splits data into documents and decodes each.
func decodeFile(name string, data []byte, namespace string) ([]Document, error) {
	type chunk struct {
		line int
		text []byte
	}
	var chunks []chunk
	cur := chunk{line: 1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		if docSeparator.Match(sc.Bytes()) {
			chunks = append(chunks, cur)
			cur = chunk{line: n + 1}
			continue
		}
		cur.text = append(append(cur.text, sc.Bytes()...), '\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	chunks = append(chunks, cur)
	var docs []Document
	for _, c := range chunks {
		if len(bytes.TrimSpace(stripComments(c.text))) == 0 {
			continue
		}
		d, err := decodeDocument(name, c.line, c.text, namespace)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// stripComments drops whole-line comments (a document of only comments
// is empty).
func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(append(out, l...), '\n')
		}
	}
	return out
}

// decodeDocument decodes one document: YAML to JSON (a syntax error
// names the file's line), the kind, then the object strictly.
func decodeDocument(name string, line int, text []byte, namespace string) (Document, error) {
	d := Document{Source: name, Line: line}
	js, err := yaml.YAMLToJSONStrict(text)
	if err != nil {
		// The parser counts lines from the document's start: the
		// message names the file's line, and the column (yamlerr.go).
		return d, fmt.Errorf("error parsing %s (the document at line %d): %s", name, line, yamlSyntaxError(text, line, err.Error()))
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil || bytes.HasPrefix(bytes.TrimSpace(js), []byte("[")) {
		return d, fmt.Errorf("error parsing %s (the document at line %d): a manifest document must be an object with apiVersion and kind", name, line)
	}
	var missing []string
	if tm.APIVersion == "" {
		missing = append(missing, "apiVersion not set")
	}
	if tm.Kind == "" {
		missing = append(missing, "kind not set")
	}
	if len(missing) > 0 {
		return d, fmt.Errorf("error validating %q (the document at line %d): error validating data: [%s]", name, line, strings.Join(missing, ", "))
	}
	if tm.Kind != "Pod" {
		return decodeObject(d, tm, js, namespace)
	}
	if tm.APIVersion != "v1" {
		return d, fmt.Errorf("%s: resource mapping not found for kind %q in version %q: a Pod is apiVersion: v1", d.where(), tm.Kind, tm.APIVersion)
	}
	pod := &v1.Pod{}
	if !decodePodFast(js, pod) { // podjson_v2.go; this is the API server's way, and its messages
		pod = &v1.Pod{}
		strict, err := sigsjson.UnmarshalStrict(js, pod, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
		if err != nil {
			return d, fmt.Errorf("error when creating %q (the document at line %d): Pod in version \"v1\" cannot be handled as a Pod: %s", name, line, decodeMessage(err))
		}
		if len(strict) > 0 {
			msgs := make([]string, len(strict))
			for i, e := range strict {
				msgs[i] = e.Error()
			}
			return d, fmt.Errorf("error when creating %q (the document at line %d): Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: %s", name, line, strings.Join(msgs, ", "))
		}
	}
	if namespace != "" {
		if pod.Namespace != "" && pod.Namespace != namespace {
			return d, fmt.Errorf("%s: the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation", d.where(), pod.Namespace, namespace, pod.Namespace)
		}
		pod.Namespace = namespace
	}
	Default(pod)
	if errs := Validate(pod); len(errs) > 0 {
		return d, fmt.Errorf("error when creating %q (the document at line %d): %s", name, line, invalidMessage(pod, errs))
	}
	d.Pod = pod
	return d, nil
}

// decodeMessage is a decoding error as the API server words it (a
// quantity's own message, not encoding/json's wrapping).
func decodeMessage(err error) string {
	msg := err.Error()
	if errors.Is(err, resource.ErrFormatWrong) || strings.Contains(msg, resource.ErrFormatWrong.Error()) {
		return resource.ErrFormatWrong.Error() + " (a quantity is a number with an optional suffix: 100m, 0.5, 128Mi, 1G)"
	}
	return msg
}

// invalidMessage is the API server's Invalid status message: one error
// inline, several as a list.
func invalidMessage(pod *v1.Pod, errs field.ErrorList) string {
	return invalidObject("Pod", pod.Name, errs)
}

// Default fills what the API server defaults in a Pod (the fields the
// output of `get -o yaml` shows and the supervisor relies on).
func Default(pod *v1.Pod) {
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	s := &pod.Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = v1.RestartPolicyAlways
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = v1.DNSClusterFirst
	}
	if s.TerminationGracePeriodSeconds == nil {
		g := int64(v1.DefaultTerminationGracePeriodSeconds)
		s.TerminationGracePeriodSeconds = &g
	}
	if s.SchedulerName == "" {
		s.SchedulerName = v1.DefaultSchedulerName
	}
	if s.SecurityContext == nil {
		s.SecurityContext = &v1.PodSecurityContext{}
	}
	if s.ServiceAccountName == "" {
		s.ServiceAccountName = "default"
	}
	if s.EnableServiceLinks == nil {
		t := true
		s.EnableServiceLinks = &t
	}
	if s.Priority == nil {
		p := int32(0)
		s.Priority = &p
	}
	if s.PreemptionPolicy == nil {
		p := v1.PreemptLowerPriority
		s.PreemptionPolicy = &p
	}
	for _, list := range [][]v1.Container{s.InitContainers, s.Containers} {
		for i := range list {
			defaultContainer(&list[i])
		}
	}
	defaultDownwardVolumes(pod) // downwardvol.go
}

func defaultContainer(c *v1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = v1.PullIfNotPresent
		if tag := imageTag(c.Image); tag == "" || tag == "latest" {
			c.ImagePullPolicy = v1.PullAlways
		}
	}
	defaultDownward(c) // downward.go
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
	if l := c.Lifecycle; l != nil {
		for _, h := range []*v1.LifecycleHandler{l.PostStart, l.PreStop} {
			if h != nil {
				defaultHandler(&v1.ProbeHandler{HTTPGet: h.HTTPGet})
			}
		}
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = v1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = v1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = v1.ProtocolTCP
		}
	}
	// A limit without a request requests the limit.
	for name, q := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[name]; !ok {
			if c.Resources.Requests == nil {
				c.Resources.Requests = v1.ResourceList{}
			}
			c.Resources.Requests[name] = q.DeepCopy()
		}
	}
}

// imageTag is the tag of an image reference ("" for none or a digest).
func imageTag(image string) string {
	if strings.Contains(image, "@") {
		return "digest"
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		return image[i+1:]
	}
	return ""
}

// Validate is the part of the API server's pod validation that applies
// on one node: names, containers, images, restart policy, ports,
// resources, security context.
func Validate(pod *v1.Pod) field.ErrorList {
	var errs field.ErrorList
	md := field.NewPath("metadata")
	if pod.Name == "" {
		errs = append(errs, field.Required(md.Child("name"), "name or generateName is required"))
	} else {
		for _, m := range validation.IsDNS1123Subdomain(pod.Name) {
			errs = append(errs, field.Invalid(md.Child("name"), pod.Name, m))
		}
	}
	for _, m := range validation.IsDNS1123Label(pod.Namespace) {
		errs = append(errs, field.Invalid(md.Child("namespace"), pod.Namespace, m))
	}
	for k, v := range pod.Labels {
		for _, m := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(md.Child("labels"), k, m))
		}
		for _, m := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(md.Child("labels"), v, m))
		}
	}
	spec := field.NewPath("spec")
	s := pod.Spec
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(spec.Child("containers"), ""))
	}
	names := map[string]bool{}
	hostPorts := map[string]bool{}
	for _, set := range []struct {
		path *field.Path
		list []v1.Container
	}{{spec.Child("initContainers"), s.InitContainers}, {spec.Child("containers"), s.Containers}} {
		for i, c := range set.list {
			p := set.path.Index(i)
			errs = append(errs, validateContainer(p, c, names, hostPorts)...)
		}
	}
	switch s.RestartPolicy {
	case v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever:
	default:
		errs = append(errs, field.NotSupported(spec.Child("restartPolicy"), s.RestartPolicy, []string{string(v1.RestartPolicyAlways), string(v1.RestartPolicyOnFailure), string(v1.RestartPolicyNever)}))
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		errs = append(errs, field.Invalid(spec.Child("terminationGracePeriodSeconds"), *g, "must be greater than or equal to 0"))
	}
	if sc := s.SecurityContext; sc != nil {
		p := spec.Child("securityContext")
		if sc.RunAsUser != nil && *sc.RunAsUser < 0 {
			errs = append(errs, field.Invalid(p.Child("runAsUser"), *sc.RunAsUser, "must be between 0 and 2147483647, inclusive"))
		}
		if sc.RunAsGroup != nil && *sc.RunAsGroup < 0 {
			errs = append(errs, field.Invalid(p.Child("runAsGroup"), *sc.RunAsGroup, "must be between 0 and 2147483647, inclusive"))
		}
	}
	errs = append(errs, validateRestartPolicies(&s, spec)...) // sidecar.go
	errs = append(errs, validateHostUsers(&s, spec)...)       // userns.go
	volumes, verrs := validateVolumes(spec.Child("volumes"), s.Volumes)
	errs = append(errs, verrs...)
	for _, set := range []struct {
		path *field.Path
		list []v1.Container
	}{{spec.Child("initContainers"), s.InitContainers}, {spec.Child("containers"), s.Containers}} {
		for i, c := range set.list {
			errs = append(errs, validateMounts(set.path.Index(i), c, volumes)...)
		}
	}
	errs = append(errs, validateDNS(spec, &s)...) // dns.go
	return errs
}

func validateContainer(p *field.Path, c v1.Container, names, hostPorts map[string]bool) field.ErrorList {
	var errs field.ErrorList
	switch {
	case c.Name == "":
		errs = append(errs, field.Required(p.Child("name"), ""))
	case names[c.Name]:
		errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
	default:
		for _, m := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), c.Name, m))
		}
	}
	names[c.Name] = true
	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	}
	switch c.ImagePullPolicy {
	case v1.PullAlways, v1.PullIfNotPresent, v1.PullNever:
	default:
		errs = append(errs, field.NotSupported(p.Child("imagePullPolicy"), c.ImagePullPolicy, []string{string(v1.PullAlways), string(v1.PullIfNotPresent), string(v1.PullNever)}))
	}
	for i, port := range c.Ports {
		pp := p.Child("ports").Index(i)
		if port.ContainerPort < 1 || port.ContainerPort > 65535 {
			errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, "must be between 1 and 65535, inclusive"))
		}
		if port.HostPort < 0 || port.HostPort > 65535 {
			errs = append(errs, field.Invalid(pp.Child("hostPort"), port.HostPort, "must be between 1 and 65535, inclusive"))
		}
		switch port.Protocol {
		case v1.ProtocolTCP, v1.ProtocolUDP:
		case v1.ProtocolSCTP:
			errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, []string{"TCP", "UDP"}))
		default:
			errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, []string{"SCTP", "TCP", "UDP"}))
		}
		if port.HostPort > 0 {
			key := fmt.Sprintf("%s/%s/%d", port.HostIP, port.Protocol, port.HostPort)
			if hostPorts[key] {
				errs = append(errs, field.Duplicate(pp.Child("hostPort"), fmt.Sprintf("%s/%d", port.Protocol, port.HostPort)))
			}
			hostPorts[key] = true
		}
	}
	rp := p.Child("resources")
	for _, set := range []struct {
		name string
		list v1.ResourceList
	}{{"limits", c.Resources.Limits}, {"requests", c.Resources.Requests}} {
		for name, q := range set.list {
			switch name {
			case v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage:
			default:
				if !strings.HasPrefix(string(name), v1.ResourceHugePagesPrefix) {
					errs = append(errs, field.NotSupported(rp.Child(set.name).Key(string(name)), name, []string{"cpu", "memory", "ephemeral-storage"}))
				}
			}
			if q.Sign() < 0 {
				errs = append(errs, field.Invalid(rp.Child(set.name).Key(string(name)), q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	for name, req := range c.Resources.Requests {
		if lim, ok := c.Resources.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(rp.Child("requests"), req.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	if sc := c.SecurityContext; sc != nil {
		sp := p.Child("securityContext")
		if sc.RunAsUser != nil && *sc.RunAsUser < 0 {
			errs = append(errs, field.Invalid(sp.Child("runAsUser"), *sc.RunAsUser, "must be between 0 and 2147483647, inclusive"))
		}
		if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			errs = append(errs, field.Invalid(sp, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
	}
	errs = append(errs, validateProbe(p.Child("livenessProbe"), c.LivenessProbe, &c, true)...)
	errs = append(errs, validateProbe(p.Child("readinessProbe"), c.ReadinessProbe, &c, false)...)
	errs = append(errs, validateProbe(p.Child("startupProbe"), c.StartupProbe, &c, true)...)
	errs = append(errs, validateLifecycle(p.Child("lifecycle"), c.Lifecycle, &c)...)
	errs = append(errs, validateEnvSources(p, c)...)
	for i, e := range c.Env {
		if e.Name == "" {
			errs = append(errs, field.Required(p.Child("env").Index(i).Child("name"), ""))
		}
	}
	return errs
}

// sortedNames is the keys of m in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
