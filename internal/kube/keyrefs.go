package kube

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// checkKeyRefs refuses, before apply makes anything, a Pod (or a
// Deployment's pod template) that takes an environment variable or a
// volume item from a key its ConfigMap or Secret does not have, when that
// object is known: applied by the same command, or stored. kubelet would
// start such a pod and leave its container in CreateContainerConfigError
// ("couldn't find key k in ConfigMap ns/name") until the key appears;
// with the object in hand the mistake is plain now. A reference to an
// object that is not there yet, or an optional one, stays kubelet's: the
// pod waits for the object (volumes.go).
func (e *env) checkKeyRefs(docs []Document) error {
	batch := map[string]map[string]bool{} // "ConfigMap ns/name" -> its keys
	for _, d := range docs {
		switch {
		case d.ConfigMap != nil:
			batch["ConfigMap "+d.ConfigMap.Namespace+"/"+d.ConfigMap.Name] = keySet(maps.Keys(d.ConfigMap.Data), maps.Keys(d.ConfigMap.BinaryData))
		case d.Secret != nil:
			batch["Secret "+d.Secret.Namespace+"/"+d.Secret.Name] = keySet(maps.Keys(d.Secret.Data), maps.Keys(d.Secret.StringData))
		}
	}
	keysOf := func(kind, namespace, name string) (map[string]bool, bool) {
		if keys, ok := batch[kind+" "+namespace+"/"+name]; ok {
			return keys, true
		}
		src := readSource(e.store, kind, namespace, name)
		if !src.found {
			return nil, false
		}
		return keySet(maps.Keys(src.data)), true
	}
	for _, d := range docs {
		var kind, name, namespace string
		var spec *v1.PodSpec
		var at *field.Path
		switch {
		case d.Pod != nil:
			kind, name, namespace, spec, at = "Pod", d.Pod.Name, d.Pod.Namespace, &d.Pod.Spec, field.NewPath("spec")
		case d.Deployment != nil:
			kind, name, namespace, spec, at = "Deployment", d.Deployment.Name, d.Deployment.Namespace, &d.Deployment.Spec.Template.Spec, field.NewPath("spec", "template", "spec")
		default:
			continue
		}
		// (namespaces are defaulted when decoded: manifest.go Default,
		// configmap.go decodeObject)
		if errs := missingKeys(spec, at, namespace, keysOf); len(errs) > 0 {
			return fmt.Errorf("error when creating %q (the document at line %d): %s", d.Source, d.Line, invalidObject(kind, name, errs))
		}
	}
	return nil
}

// missingKeys lists spec's required references (at path at) to a key that
// a known ConfigMap or Secret of namespace lacks (keysOf: its keys, and
// whether it is known).
func missingKeys(spec *v1.PodSpec, at *field.Path, namespace string, keysOf func(kind, namespace, name string) (map[string]bool, bool)) field.ErrorList {
	var errs field.ErrorList
	check := func(p *field.Path, kind, name, key string, optional *bool) {
		if optional != nil && *optional {
			return
		}
		keys, known := keysOf(kind, namespace, name)
		if !known || keys[key] {
			return
		}
		have := make([]string, 0, len(keys))
		for k := range keys {
			have = append(have, k)
		}
		slices.Sort(have)
		errs = append(errs, field.Invalid(p, key, fmt.Sprintf("%s %s/%s has no such key (its keys: %s): add the key, correct the reference, or mark it optional: true",
			kind, namespace, name, strings.Join(have, ", "))))
	}
	for _, group := range []struct {
		name string
		cs   []v1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
		for i, c := range group.cs {
			for j, ev := range c.Env {
				if ev.ValueFrom == nil {
					continue
				}
				p := at.Child(group.name).Index(i).Child("env").Index(j).Child("valueFrom")
				if r := ev.ValueFrom.ConfigMapKeyRef; r != nil {
					check(p.Child("configMapKeyRef", "key"), "ConfigMap", r.Name, r.Key, r.Optional)
				}
				if r := ev.ValueFrom.SecretKeyRef; r != nil {
					check(p.Child("secretKeyRef", "key"), "Secret", r.Name, r.Key, r.Optional)
				}
			}
		}
	}
	for i, vol := range spec.Volumes {
		p := at.Child("volumes").Index(i)
		if s := vol.ConfigMap; s != nil {
			for j, it := range s.Items {
				check(p.Child("configMap", "items").Index(j).Child("key"), "ConfigMap", s.Name, it.Key, s.Optional)
			}
		}
		if s := vol.Secret; s != nil {
			for j, it := range s.Items {
				check(p.Child("secret", "items").Index(j).Child("key"), "Secret", s.SecretName, it.Key, s.Optional)
			}
		}
	}
	return errs
}

// keySet is the keys of a ConfigMap's or Secret's data maps, as a set.
func keySet(keys ...iter.Seq[string]) map[string]bool {
	set := map[string]bool{}
	for _, ks := range keys {
		for k := range ks {
			set[k] = true
		}
	}
	return set
}
