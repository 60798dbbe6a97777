package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"hull/internal/trace"
)

// The objects beside pods: ConfigMap, Secret, PersistentVolumeClaim and
// Deployment. apply decodes and validates them as the API server does
// and records each, whole, under <root>/kube/objects/<resource>/<namespace>/<name>.json
// (one writer: the apply or delete command; replaced whole). Pods refer
// to ConfigMaps and Secrets by name: their supervisor reads them when it
// makes a container (env, envFrom) and writes their keys as files for
// volumes, as kubelet does; a reference to a missing one leaves the
// container waiting, not the apply failing (kubelet's behaviour).

// Ref is the document's kind, namespace and name.
func (d Document) Ref() (kind, namespace, name string) {
	var m metav1.Object
	switch {
	case d.Pod != nil:
		kind, m = "Pod", d.Pod
	case d.ConfigMap != nil:
		kind, m = "ConfigMap", d.ConfigMap
	case d.Secret != nil:
		kind, m = "Secret", d.Secret
	case d.PVC != nil:
		kind, m = "PersistentVolumeClaim", d.PVC
	case d.Deployment != nil:
		kind, m = "Deployment", d.Deployment
	default:
		return "", "", ""
	}
	return kind, m.GetNamespace(), m.GetName()
}

// kinds are the kinds besides Pod that apply takes: their apiVersion and
// the resource (kubectl's plural, the store's directory).
var kinds = map[string]struct{ version, resource string }{
	"ConfigMap":             {"v1", "configmaps"},
	"Secret":                {"v1", "secrets"},
	"PersistentVolumeClaim": {"v1", "persistentvolumeclaims"},
	"Deployment":            {"apps/v1", "deployments"},
}

// resourceOf is the resource a kubectl kind argument names
// ("cm", "configmap", "secrets", "deploy", ...), or "".
func resourceOf(arg string) string {
	switch strings.ToLower(arg) {
	case "configmap", "configmaps", "cm":
		return "configmaps"
	case "secret", "secrets":
		return "secrets"
	case "persistentvolumeclaim", "persistentvolumeclaims", "pvc":
		return "persistentvolumeclaims"
	case "deployment", "deployments", "deploy", "deployment.apps", "deployments.apps":
		return "deployments"
	}
	return ""
}

// kindOf is the kind of a resource.
func kindOf(resource string) string {
	for k, v := range kinds {
		if v.resource == resource {
			return k
		}
	}
	return ""
}

// decodeObject decodes a document of a kind other than Pod strictly,
// defaults and validates it.
func decodeObject(d Document, tm metav1.TypeMeta, js []byte, namespace string) (Document, error) {
	k, ok := kinds[tm.Kind]
	if !ok {
		return d, fmt.Errorf("%s: kind %s (%s) is not supported: hull kube applies Pod, Deployment, ConfigMap, Secret and PersistentVolumeClaim objects", d.where(), tm.Kind, tm.APIVersion)
	}
	if tm.APIVersion != k.version {
		return d, fmt.Errorf("%s: resource mapping not found for kind %q in version %q: a %s is apiVersion: %s", d.where(), tm.Kind, tm.APIVersion, tm.Kind, k.version)
	}
	var obj metav1.Object
	switch tm.Kind {
	case "ConfigMap":
		d.ConfigMap = &v1.ConfigMap{}
		obj = d.ConfigMap
	case "Secret":
		d.Secret = &v1.Secret{}
		obj = d.Secret
	case "PersistentVolumeClaim":
		d.PVC = &v1.PersistentVolumeClaim{}
		obj = d.PVC
	case "Deployment":
		d.Deployment = &appsv1.Deployment{}
		obj = d.Deployment
	}
	cannot := fmt.Sprintf("error when creating %q (the document at line %d): %s in version %q cannot be handled as a %s: ", d.Source, d.Line, tm.Kind, strings.TrimPrefix(tm.APIVersion, "apps/"), tm.Kind)
	strict, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return d, errors.New(cannot + decodeMessage(err))
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return d, errors.New(cannot + "strict decoding error: " + strings.Join(msgs, ", "))
	}
	if namespace != "" {
		if obj.GetNamespace() != "" && obj.GetNamespace() != namespace {
			return d, fmt.Errorf("%s: the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation", d.where(), obj.GetNamespace(), namespace, obj.GetNamespace())
		}
		obj.SetNamespace(namespace)
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace("default")
	}
	errs := validateMeta(obj)
	switch {
	case d.ConfigMap != nil:
		errs = append(errs, validateData(field.NewPath("data"), d.ConfigMap.Data, d.ConfigMap.BinaryData)...)
	case d.Secret != nil:
		defaultSecret(d.Secret)
		errs = append(errs, validateData(field.NewPath("data"), nil, d.Secret.Data)...)
	case d.PVC != nil:
		errs = append(errs, validatePVC(d.PVC)...)
	case d.Deployment != nil:
		errs = append(errs, defaultValidateDeployment(d.Deployment)...)
	}
	if len(errs) > 0 {
		return d, fmt.Errorf("error when creating %q (the document at line %d): %s", d.Source, d.Line, invalidObject(tm.Kind, obj.GetName(), errs))
	}
	return d, nil
}

// invalidObject is the API server's Invalid message for any kind.
func invalidObject(kind, name string, errs field.ErrorList) string {
	head := fmt.Sprintf("%s %q is invalid: ", kind, name)
	if len(errs) == 1 {
		return head + errs[0].Error()
	}
	var b strings.Builder
	b.WriteString(head)
	for _, e := range errs {
		b.WriteString("\n* " + e.Error())
	}
	return b.String()
}

func validateMeta(obj metav1.Object) field.ErrorList {
	var errs field.ErrorList
	md := field.NewPath("metadata")
	if obj.GetName() == "" {
		errs = append(errs, field.Required(md.Child("name"), "name or generateName is required"))
	}
	for _, m := range validation.IsDNS1123Subdomain(obj.GetName()) {
		if obj.GetName() != "" {
			errs = append(errs, field.Invalid(md.Child("name"), obj.GetName(), m))
		}
	}
	for _, m := range validation.IsDNS1123Label(obj.GetNamespace()) {
		errs = append(errs, field.Invalid(md.Child("namespace"), obj.GetNamespace(), m))
	}
	return errs
}

// validateData checks a ConfigMap's or Secret's keys (the API server's
// IsConfigMapKey, no key twice across data and binaryData).
func validateData(p *field.Path, data map[string]string, binary map[string][]byte) field.ErrorList {
	var errs field.ErrorList
	for k := range data {
		for _, m := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(p.Key(k), k, m))
		}
		if _, ok := binary[k]; ok {
			errs = append(errs, field.Invalid(p.Key(k), k, "duplicate of key present in binaryData"))
		}
	}
	for k := range binary {
		for _, m := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(p.Key(k), k, m))
		}
	}
	return errs
}

// defaultSecret is the API server's handling of a Secret: stringData
// merged into data (stringData wins), type Opaque when unset.
func defaultSecret(s *v1.Secret) {
	if s.Type == "" {
		s.Type = v1.SecretTypeOpaque
	}
	for k, v := range s.StringData {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

func validatePVC(c *v1.PersistentVolumeClaim) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if len(c.Spec.AccessModes) == 0 {
		errs = append(errs, field.Required(spec.Child("accessModes"), "at least 1 access mode is required"))
	}
	if q, ok := c.Spec.Resources.Requests[v1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(spec.Child("resources").Key(string(v1.ResourceStorage)), ""))
	} else if q.Sign() <= 0 {
		errs = append(errs, field.Invalid(spec.Child("resources").Key(string(v1.ResourceStorage)), q.String(), "must be greater than zero"))
	}
	return errs
}

// objectsDir is where the store keeps the objects besides pods.
func (s *Store) objectsDir() string { return filepath.Join(filepath.Dir(s.dir), "objects") }

// objectPath is an object's file.
func (s *Store) objectPath(resource, namespace, name string) string {
	return filepath.Join(s.objectsDir(), resource, namespace, name+".json")
}

// PutObject records an object (replacing one of that name).
func (s *Store) PutObject(resource, namespace, name string, obj any) error {
	p := s.objectPath(resource, namespace, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeJSON(p, obj)
}

// GetObject reads an object into out; os.ErrNotExist when there is none.
func (s *Store) GetObject(resource, namespace, name string, out any) error {
	return readJSON(s.objectPath(resource, namespace, name), out)
}

// DeleteObject removes an object; os.ErrNotExist when there is none.
func (s *Store) DeleteObject(resource, namespace, name string) error {
	return os.Remove(s.objectPath(resource, namespace, name))
}

// ObjectNames lists the objects of a resource in a namespace ("" for
// all) as namespace/name pairs, in order.
func (s *Store) ObjectNames(resource, namespace string) ([][2]string, error) {
	dir := filepath.Join(s.objectsDir(), resource)
	nss := []string{namespace}
	if namespace == "" {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		nss = nss[:0]
		for _, e := range entries {
			nss = append(nss, e.Name())
		}
	}
	var out [][2]string
	for _, ns := range nss {
		entries, err := os.ReadDir(filepath.Join(dir, ns))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
				out = append(out, [2]string{ns, name})
			}
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
	return out, nil
}

// sameJSON compares two objects as stored.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// envNotFound and keyNotFound are kubelet's messages for a missing
// ConfigMap or Secret and a missing key (makeEnvironmentVariables).
func envNotFound(kind, name string) string {
	return fmt.Sprintf("%s %q not found", strings.ToLower(kind), name)
}

func keyNotFound(kind, namespace, name, key string) string {
	return fmt.Sprintf("couldn't find key %s in %s %s/%s", key, kind, namespace, name)
}

// source is the data of one ConfigMap or Secret, as strings.
type source struct {
	found bool
	data  map[string][]byte
}

// readSource reads a ConfigMap's (data and binaryData) or a Secret's
// data from the store under podsDir's root.
func readSource(s *Store, kind, namespace, name string) source {
	switch kind {
	case "ConfigMap":
		var cm v1.ConfigMap
		if s.GetObject("configmaps", namespace, name, &cm) != nil {
			return source{}
		}
		out := map[string][]byte{}
		for k, v := range cm.Data {
			out[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			out[k] = v
		}
		return source{found: true, data: out}
	default:
		var sec v1.Secret
		if s.GetObject("secrets", namespace, name, &sec) != nil {
			return source{}
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		return source{found: true, data: sec.Data}
	}
}

// createPod records a new pod (its UID, creation time and node set as
// the API server and scheduler would) and starts its supervisor.
func (e *env) createPod(p *v1.Pod) error {
	host, _ := os.Hostname()
	p.APIVersion, p.Kind = "v1", "Pod"
	p.UID = newUID()
	p.CreationTimestamp = metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	p.Spec.NodeName = host
	if err := e.store.Create(p); err != nil {
		if errors.Is(err, os.ErrExist) {
			return err
		}
		return fmt.Errorf("record pod %s: %w", p.Name, err)
	}
	dir := e.store.PodDir(p.Namespace, p.Name)
	if hostUsersFalse(p) { // userns.go
		if _, err := e.store.allocateUserns(dir); err != nil {
			removeTree(dir)
			return err
		}
	}
	trace.Mark("kube: pod recorded")
	return e.startSupervisor(dir)
}

// applyObject records a ConfigMap, Secret or PersistentVolumeClaim
// (created, configured or unchanged, as kubectl prints it), or applies
// a Deployment.
func (e *env) applyObject(d Document) error {
	if d.Deployment != nil {
		return e.applyDeployment(d.Deployment)
	}
	kind, ns, name := d.Ref()
	resource := kinds[kind].resource
	var obj interface {
		metav1.Object
	}
	var old map[string]any
	switch {
	case d.ConfigMap != nil:
		d.ConfigMap.APIVersion, d.ConfigMap.Kind = "v1", kind
		obj = d.ConfigMap
	case d.Secret != nil:
		d.Secret.APIVersion, d.Secret.Kind = "v1", kind
		obj = d.Secret
	case d.PVC != nil:
		d.PVC.APIVersion, d.PVC.Kind = "v1", kind
		obj = d.PVC
	}
	verb := "created"
	if err := e.store.GetObject(resource, ns, name, &old); err == nil {
		meta, _ := old["metadata"].(map[string]any)
		uid, _ := meta["uid"].(string)
		created, _ := meta["creationTimestamp"].(string)
		obj.SetUID(types.UID(uid))
		if t, err := time.Parse(time.RFC3339, created); err == nil {
			obj.SetCreationTimestamp(metav1.NewTime(t))
		}
		if d.PVC != nil {
			var oldPVC v1.PersistentVolumeClaim
			e.store.GetObject(resource, ns, name, &oldPVC)
			d.PVC.Spec.VolumeName, d.PVC.Status = oldPVC.Spec.VolumeName, oldPVC.Status
		}
		verb = "configured"
		var prev map[string]any
		b, _ := json.Marshal(obj)
		json.Unmarshal(b, &prev)
		if sameJSON(prev, old) {
			verb = "unchanged"
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	} else {
		obj.SetUID(newUID())
		obj.SetCreationTimestamp(metav1.NewTime(time.Now().UTC().Truncate(time.Second)))
	}
	if d.PVC != nil && d.PVC.Spec.VolumeName == "" {
		if err := e.bindClaim(d.PVC); err != nil {
			return err
		}
	}
	if verb != "unchanged" {
		if err := e.store.PutObject(resource, ns, name, obj); err != nil {
			return fmt.Errorf("record %s %s: %w", strings.ToLower(kind), name, err)
		}
	}
	fmt.Fprintf(e.stdout, "%s/%s %s\n", strings.ToLower(kind), name, verb)
	return nil
}

// claimVolume is the hull volume a claim binds: the claim's name in
// the default namespace, NAMESPACE_NAME in others.
func claimVolume(c *v1.PersistentVolumeClaim) string {
	if c.Namespace == "default" {
		return c.Name
	}
	return c.Namespace + "_" + c.Name
}

// bindClaim makes the claim's hull volume (`hull volume ls` shows it)
// and binds the claim to it, as a dynamic provisioner would.
func (e *env) bindClaim(c *v1.PersistentVolumeClaim) error {
	eng, err := e.engine()
	if err != nil {
		return err
	}
	name := claimVolume(c)
	lbls := map[string]string{"io.kubernetes.pvc.name": c.Name, "io.kubernetes.pvc.namespace": c.Namespace}
	if _, err := eng.CreateVolume(context.Background(), name, lbls, nil); err != nil {
		return fmt.Errorf("persistentvolumeclaim %s: make its volume %s: %w", c.Name, name, err)
	}
	c.Spec.VolumeName = name
	if c.Spec.StorageClassName == nil {
		sc := "hull-local"
		c.Spec.StorageClassName = &sc
	}
	mode := v1.PersistentVolumeFilesystem
	c.Spec.VolumeMode = &mode
	c.Status = v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, AccessModes: c.Spec.AccessModes, Capacity: v1.ResourceList{v1.ResourceStorage: c.Spec.Resources.Requests[v1.ResourceStorage]}}
	return nil
}

// deleteObject deletes the object of a manifest document.
func (e *env) deleteObject(d Document, grace int64, wait bool) error {
	kind, ns, name := d.Ref()
	return e.deleteByName(kinds[kind].resource, ns, name, grace, wait)
}

// deleteNamed is `delete RESOURCE NAME...` and `delete RESOURCE/NAME...`
// for the resources besides pods.
func (e *env) deleteNamed(args []string, grace int64, wait bool) error {
	resource, names := resourceOf(args[0]), args[1:]
	if r, n, ok := strings.Cut(args[0], "/"); ok {
		resource, names = resourceOf(r), []string{n}
		for _, a := range args[1:] {
			r, n, ok := strings.Cut(a, "/")
			if !ok || resourceOf(r) == "" {
				return fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form")
			}
			if resourceOf(r) != resource {
				return fmt.Errorf("delete one kind of resource at a time: %s and %s", args[0], a)
			}
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("resource(s) were provided, but no name was specified: hull kube delete %s NAME", resource)
	}
	var errs []error
	for _, n := range names {
		if err := e.deleteByName(resource, e.ns(), n, grace, wait); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteByName deletes one object: a deployment with its pods, a claim
// with its volume.
func (e *env) deleteByName(resource, ns, name string, grace int64, wait bool) error {
	kind := kindOf(resource)
	group := resource
	if kind == "Deployment" {
		group = "deployments.apps"
	}
	notFound := errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s %q not found", group, name))
	switch kind {
	case "Deployment":
		if err := e.deleteDeployment(ns, name, grace, wait); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return notFound
			}
			return err
		}
	case "PersistentVolumeClaim":
		var c v1.PersistentVolumeClaim
		if err := e.store.GetObject(resource, ns, name, &c); err != nil {
			return notFound
		}
		if err := e.store.DeleteObject(resource, ns, name); err != nil {
			return err
		}
		// The reclaim policy of a dynamically provisioned volume: Delete.
		if eng, err := e.engine(); err == nil && c.Spec.VolumeName != "" {
			if err := eng.RemoveVolume(context.Background(), c.Spec.VolumeName, false); err != nil && !errdefs.IsNotFound(err) {
				fmt.Fprintf(e.stderr, "warning: persistentvolumeclaim %s: its volume %s stays: %v\n", name, c.Spec.VolumeName, err)
			}
		}
	default:
		if err := e.store.DeleteObject(resource, ns, name); err != nil {
			return notFound
		}
	}
	what := strings.ToLower(kind)
	if kind == "Deployment" {
		what = "deployment.apps"
	}
	fmt.Fprintf(e.stdout, "%s %q deleted from %s namespace\n", what, name, ns)
	return nil
}

// getObjects is `get configmaps|secrets|pvc|deployments [NAME...]`.
func (e *env) getObjects(args []string, ns, output string, all bool) error {
	resource, names := resourceOf(args[0]), args[1:]
	if r, n, ok := strings.Cut(args[0], "/"); ok {
		resource, names = resourceOf(r), append([]string{n}, args[1:]...)
	}
	kind := kindOf(resource)
	var refs [][2]string
	if len(names) > 0 {
		for _, n := range names {
			refs = append(refs, [2]string{e.ns(), n})
		}
	} else {
		var err error
		if refs, err = e.store.ObjectNames(resource, ns); err != nil {
			return err
		}
	}
	var objs []map[string]any
	var rows [][]string
	pods := map[string][]*PodRecord{}
	for _, ref := range refs {
		var raw map[string]any
		if err := e.store.GetObject(resource, ref[0], ref[1], &raw); err != nil {
			group := resource
			if kind == "Deployment" {
				group = "deployments.apps"
			}
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s %q not found", group, ref[1]))
		}
		objs = append(objs, raw)
		var row []string
		switch kind {
		case "ConfigMap":
			var cm v1.ConfigMap
			e.store.GetObject(resource, ref[0], ref[1], &cm)
			row = []string{cm.Name, fmt.Sprint(len(cm.Data) + len(cm.BinaryData)), age(cm.CreationTimestamp)}
		case "Secret":
			var s v1.Secret
			e.store.GetObject(resource, ref[0], ref[1], &s)
			row = []string{s.Name, string(s.Type), fmt.Sprint(len(s.Data)), age(s.CreationTimestamp)}
		case "PersistentVolumeClaim":
			var c v1.PersistentVolumeClaim
			e.store.GetObject(resource, ref[0], ref[1], &c)
			q := c.Status.Capacity[v1.ResourceStorage]
			var modes []string
			for _, m := range c.Status.AccessModes {
				modes = append(modes, map[v1.PersistentVolumeAccessMode]string{v1.ReadWriteOnce: "RWO", v1.ReadOnlyMany: "ROX", v1.ReadWriteMany: "RWX", v1.ReadWriteOncePod: "RWOP"}[m])
			}
			sc := ""
			if c.Spec.StorageClassName != nil {
				sc = *c.Spec.StorageClassName
			}
			row = []string{c.Name, string(c.Status.Phase), c.Spec.VolumeName, q.String(), strings.Join(modes, ","), sc, "<unset>", age(c.CreationTimestamp)}
		case "Deployment":
			var d appsv1.Deployment
			e.store.GetObject(resource, ref[0], ref[1], &d)
			if _, ok := pods[ref[0]]; !ok {
				pods[ref[0]], _ = e.store.List(ref[0])
			}
			row = deploymentRow(&d, pods[ref[0]])
		}
		if all {
			row = append([]string{ref[0]}, row...)
		}
		rows = append(rows, row)
	}
	switch output {
	case "", "wide":
	case "name":
		prefix := strings.ToLower(kind)
		if kind == "Deployment" {
			prefix = "deployment.apps"
		}
		for _, ref := range refs {
			fmt.Fprintf(e.stdout, "%s/%s\n", prefix, ref[1])
		}
		return nil
	case "json", "yaml":
		var v any = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs, "metadata": map[string]any{"resourceVersion": ""}}
		if len(names) == 1 && len(objs) == 1 {
			v = objs[0]
		}
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		if output == "yaml" {
			if b, err = yaml.JSONToYAML(b); err != nil {
				return err
			}
		}
		fmt.Fprintln(e.stdout, strings.TrimRight(string(b), "\n"))
		return nil
	default:
		return fmt.Errorf("-o %s: hull kube prints %s as a table, name, json or yaml", output, resource)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stderr, noResources(ns))
		return nil
	}
	head := map[string][]string{
		"ConfigMap":             {"NAME", "DATA", "AGE"},
		"Secret":                {"NAME", "TYPE", "DATA", "AGE"},
		"PersistentVolumeClaim": {"NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"},
		"Deployment":            {"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"},
	}[kind]
	if all {
		head = append([]string{"NAMESPACE"}, head...)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
