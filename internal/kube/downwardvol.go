package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The downwardAPI volume, as kubelet's downwardapi plugin: one file per
// item, the pod's metadata (name, namespace, uid, labels and annotations
// as key="value" lines, or one of them by key) or a container's
// resource (its limit not set being the node's allocatable, as
// ExtractResourceValueByContainerNameAndNodeAllocatable), with the
// item's mode, else defaultMode (0644), mounted read-only. Written when
// a container that mounts it starts; a pod's labels and annotations do
// not change here, so there is nothing to refresh.

// volumeFieldPaths are the fieldRef paths a downwardAPI volume may name.
var volumeFieldPaths = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}

// defaultDownwardVolumes is the API server's defaults of downwardAPI
// volumes: defaultMode 0644, fieldRef apiVersion v1.
func defaultDownwardVolumes(pod *v1.Pod) {
	for i := range pod.Spec.Volumes {
		d := pod.Spec.Volumes[i].DownwardAPI
		if d == nil {
			continue
		}
		if d.DefaultMode == nil {
			m := int32(v1.DownwardAPIVolumeSourceDefaultMode)
			d.DefaultMode = &m
		}
		for j := range d.Items {
			if f := d.Items[j].FieldRef; f != nil && f.APIVersion == "" {
				f.APIVersion = "v1"
			}
		}
	}
}

// validateDownwardVolume is the API server's validateDownwardAPIVolumeSource
// (an item's errors name the volume's path, as the API server's do).
func validateDownwardVolume(p *field.Path, d *v1.DownwardAPIVolumeSource) field.ErrorList {
	var errs field.ErrorList
	const modeMsg = "must be a number between 0 and 0777 (octal), both inclusive"
	if m := d.DefaultMode; m != nil && (*m < 0 || *m > 0o777) {
		errs = append(errs, field.Invalid(p.Child("defaultMode"), *m, modeMsg))
	}
	for _, f := range d.Items {
		errs = append(errs, validateSubPath(p.Child("path"), f.Path, true)...)
		if strings.HasPrefix(f.Path, "..") && !strings.HasPrefix(f.Path, "../") {
			errs = append(errs, field.Invalid(p.Child("path"), f.Path, "must not start with '..'"))
		}
		switch {
		case f.FieldRef != nil:
			errs = append(errs, validateFieldSelector(p.Child("fieldRef"), f.FieldRef, volumeFieldPaths)...)
			if f.ResourceFieldRef != nil {
				errs = append(errs, field.Invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
			}
		case f.ResourceFieldRef != nil:
			errs = append(errs, validateResourceSelector(p.Child("resourceFieldRef"), f.ResourceFieldRef, true)...)
		default:
			errs = append(errs, field.Required(p, "one of fieldRef and resourceFieldRef is required"))
		}
		if m := f.Mode; m != nil && (*m < 0 || *m > 0o777) {
			errs = append(errs, field.Invalid(p.Child("mode"), *m, modeMsg))
		}
	}
	return errs
}

// writeDownward writes a downwardAPI volume's files in dir, each
// replaced whole.
func (k *kubelet) writeDownward(dir string, d *v1.DownwardAPIVolumeSource) error {
	var dw *downward
	for _, f := range d.Items {
		var value string
		var err error
		switch {
		case f.FieldRef != nil:
			value, err = (&downward{}).fieldValue(k.pod, f.FieldRef)
		case f.ResourceFieldRef != nil:
			if dw == nil {
				dw = k.downward()
			}
			c := findContainer(k.pod, f.ResourceFieldRef.ContainerName)
			if c == nil {
				return fmt.Errorf("container %s not found", f.ResourceFieldRef.ContainerName)
			}
			value, err = dw.resourceValue(k.pod, c, f.ResourceFieldRef)
		}
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.DefaultMode != nil {
			mode = os.FileMode(*d.DefaultMode)
		}
		if f.Mode != nil {
			mode = os.FileMode(*f.Mode)
		}
		path := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp := filepath.Join(filepath.Dir(path), ".."+filepath.Base(path)+".tmp")
		if err := os.WriteFile(tmp, []byte(value), mode); err != nil {
			return err
		}
		os.Chmod(tmp, mode) // past the umask
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return nil
}

// findContainer is the pod's container (app, else init) of a name.
func findContainer(pod *v1.Pod, name string) *v1.Container {
	for _, list := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// describeDownwardVolume is kubectl's description of a downwardAPI
// volume.
func describeDownwardVolume(w prefixWriter, d *v1.DownwardAPIVolumeSource) {
	w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n")
	for _, f := range d.Items {
		if f.FieldRef != nil {
			w.write(3, "%v -> %v\n", f.FieldRef.FieldPath, f.Path)
		}
		if f.ResourceFieldRef != nil {
			w.write(3, "%v -> %v\n", f.ResourceFieldRef.Resource, f.Path)
		}
	}
}
