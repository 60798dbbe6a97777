package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Volumes and env sources, as kubelet sets them up for a container.
//
// A pod's volumes live in its directory, as kubelet's do under
// /var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>:
// emptyDir a directory (mode 0777), with medium Memory a tmpfs there
// (sized as kubelet sizes it: eviction.go); configMap and secret a directory of one file per
// key (a secret's on a tmpfs, so it never reaches the disk), written
// again each time a container starts so a changed ConfigMap shows up
// in the next container; hostPath the host's path after kubelet's type
// check; persistentVolumeClaim the data directory of the hull volume
// apply made for the claim. The supervisor sets them up before the
// image pull (kubelet mounts volumes first: a failure leaves the pod
// ContainerCreating with a FailedMount event) and sends each
// volumeMount as a CRI bind mount (host path + subPath, readOnly;
// configMap and secret always read-only). The pod's teardown unmounts
// the tmpfs mounts before its directory goes.

// volumesDir is a pod's volume directory for a plugin.
func volumesDir(podDir, plugin string) string {
	return filepath.Join(podDir, "volumes", "kubernetes.io~"+plugin)
}

// validateVolumes is the API server's check of spec.volumes for the
// sources hull kube supports; it returns the volumes by name.
func validateVolumes(p *field.Path, vols []v1.Volume) (map[string]*v1.Volume, field.ErrorList) {
	var errs field.ErrorList
	out := map[string]*v1.Volume{}
	for i := range vols {
		v := &vols[i]
		vp := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(vp.Child("name"), ""))
		case out[v.Name] != nil:
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		default:
			for _, m := range validation.IsDNS1123Label(v.Name) {
				errs = append(errs, field.Invalid(vp.Child("name"), v.Name, m))
			}
		}
		out[v.Name] = v
		n := 0
		src := v.VolumeSource
		if src.EmptyDir != nil {
			n++
			if m := src.EmptyDir.Medium; m != v1.StorageMediumDefault && m != v1.StorageMediumMemory {
				errs = append(errs, field.NotSupported(vp.Child("emptyDir", "medium"), m, []string{"", "Memory"}))
			}
		}
		if src.HostPath != nil {
			n++
			if !filepath.IsAbs(src.HostPath.Path) {
				errs = append(errs, field.Invalid(vp.Child("hostPath", "path"), src.HostPath.Path, "must be an absolute path"))
			}
			if t := src.HostPath.Type; t != nil && hostPathCheck(*t) == nil {
				errs = append(errs, field.NotSupported(vp.Child("hostPath", "type"), *t, []string{"", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"}))
			}
		}
		if src.ConfigMap != nil {
			n++
			if src.ConfigMap.Name == "" {
				errs = append(errs, field.Required(vp.Child("configMap", "name"), ""))
			}
			errs = append(errs, validateItems(vp.Child("configMap"), src.ConfigMap.Items, src.ConfigMap.DefaultMode)...)
		}
		if src.Secret != nil {
			n++
			if src.Secret.SecretName == "" {
				errs = append(errs, field.Required(vp.Child("secret", "secretName"), ""))
			}
			errs = append(errs, validateItems(vp.Child("secret"), src.Secret.Items, src.Secret.DefaultMode)...)
		}
		if src.DownwardAPI != nil {
			n++
			errs = append(errs, validateDownwardVolume(vp.Child("downwardAPI"), src.DownwardAPI)...) // downwardvol.go
		}
		if src.PersistentVolumeClaim != nil {
			n++
			if src.PersistentVolumeClaim.ClaimName == "" {
				errs = append(errs, field.Required(vp.Child("persistentVolumeClaim", "claimName"), ""))
			}
		}
		switch {
		case n == 0 && !hasOtherSource(src):
			errs = append(errs, field.Required(vp, "must specify a volume type"))
		case n == 0:
			errs = append(errs, field.Forbidden(vp, "this volume type is not supported by hull kube: use emptyDir, hostPath, configMap, secret, downwardAPI or persistentVolumeClaim"))
		case n > 1:
			errs = append(errs, field.Forbidden(vp, "may not specify more than 1 volume type"))
		}
	}
	return out, errs
}

// hasOtherSource reports a volume source hull kube does not support.
func hasOtherSource(src v1.VolumeSource) bool {
	src.EmptyDir, src.HostPath, src.ConfigMap, src.Secret, src.PersistentVolumeClaim, src.DownwardAPI = nil, nil, nil, nil, nil, nil
	return !sameJSON(src, v1.VolumeSource{})
}

func validateItems(p *field.Path, items []v1.KeyToPath, mode *int32) field.ErrorList {
	var errs field.ErrorList
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		errs = append(errs, field.Invalid(p.Child("defaultMode"), *mode, "must be a number between 0 and 0777 (octal), both inclusive"))
	}
	for i, it := range items {
		ip := p.Child("items").Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		}
		errs = append(errs, validateSubPath(ip.Child("path"), it.Path, true)...)
		if it.Mode != nil && (*it.Mode < 0 || *it.Mode > 0o777) {
			errs = append(errs, field.Invalid(ip.Child("mode"), *it.Mode, "must be a number between 0 and 0777 (octal), both inclusive"))
		}
	}
	return errs
}

// validateSubPath is the API server's check of a relative path: not
// absolute, no "..".
func validateSubPath(p *field.Path, path string, required bool) field.ErrorList {
	var errs field.ErrorList
	if path == "" {
		if required {
			errs = append(errs, field.Required(p, ""))
		}
		return errs
	}
	if filepath.IsAbs(path) {
		errs = append(errs, field.Invalid(p, path, "must be a relative path"))
	}
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			errs = append(errs, field.Invalid(p, path, "must not contain '..'"))
			break
		}
	}
	return errs
}

// validateMounts checks a container's volumeMounts against the volumes.
func validateMounts(p *field.Path, c v1.Container, vols map[string]*v1.Volume) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		} else if vols[m.Name] == nil {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		case paths[m.MountPath]:
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		case !strings.HasPrefix(m.MountPath, "/"):
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path in the container (hull kube has no working-directory-relative mounts)"))
		}
		paths[m.MountPath] = true
		errs = append(errs, validateSubPath(mp.Child("subPath"), m.SubPath, false)...)
		if m.SubPathExpr != "" {
			errs = append(errs, field.Forbidden(mp.Child("subPathExpr"), "subPathExpr is not supported by hull kube: use subPath"))
		}
		if m.MountPropagation != nil && *m.MountPropagation != v1.MountPropagationNone {
			errs = append(errs, field.Forbidden(mp.Child("mountPropagation"), "mountPropagation is not supported by hull kube"))
		}
	}
	return errs
}

// validateEnvSources checks env valueFrom (the downward API's fieldRef
// and resourceFieldRef, ConfigMap and Secret keys) and envFrom.
func validateEnvSources(p *field.Path, c v1.Container) field.ErrorList {
	var errs field.ErrorList
	for i, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		vp := p.Child("env").Index(i).Child("valueFrom")
		vf := e.ValueFrom
		n := 0
		if vf.FieldRef != nil {
			n++
			errs = append(errs, validateFieldRef(vp.Child("fieldRef"), vf.FieldRef)...) // downward.go
		}
		if vf.ResourceFieldRef != nil {
			n++
			errs = append(errs, validateResourceFieldRef(vp.Child("resourceFieldRef"), vf.ResourceFieldRef)...)
		}
		if vf.ConfigMapKeyRef != nil {
			n++
			errs = append(errs, validateKeyRef(vp.Child("configMapKeyRef"), vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)...)
		}
		if vf.SecretKeyRef != nil {
			n++
			errs = append(errs, validateKeyRef(vp.Child("secretKeyRef"), vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)...)
		}
		if vf.FileKeyRef != nil {
			n++
			errs = append(errs, field.Forbidden(vp.Child("fileKeyRef"), "hull kube does not take env values from fileKeyRef"))
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case e.Value != "":
			errs = append(errs, field.Invalid(vp, "", "may not be specified when `value` is not empty"))
		case n > 1:
			errs = append(errs, field.Invalid(vp, "", "may not have more than one field specified at a time"))
		}
	}
	for i, ef := range c.EnvFrom {
		ep := p.Child("envFrom").Index(i)
		switch {
		case ef.ConfigMapRef != nil && ef.SecretRef != nil:
			errs = append(errs, field.Invalid(ep, "", "may not have more than one field specified at a time"))
		case ef.ConfigMapRef != nil:
			if ef.ConfigMapRef.Name == "" {
				errs = append(errs, field.Required(ep.Child("configMapRef", "name"), ""))
			}
		case ef.SecretRef != nil:
			if ef.SecretRef.Name == "" {
				errs = append(errs, field.Required(ep.Child("secretRef", "name"), ""))
			}
		default:
			errs = append(errs, field.Invalid(ep, "", "must specify one of: `configMapRef` or `secretRef`"))
		}
	}
	return errs
}

func validateKeyRef(p *field.Path, name, key string) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if key == "" {
		errs = append(errs, field.Required(p.Child("key"), ""))
	} else {
		for _, m := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(p.Child("key"), key, m))
		}
	}
	return errs
}

// objects is the store of the pod's root (the pod directory is
// <root>/kube/pods/<namespace>/<name>).
func (k *kubelet) objects() *Store {
	return &Store{dir: filepath.Dir(filepath.Dir(k.dir))}
}

// hullRoot is the hull root the pod's directory is under.
func (k *kubelet) hullRoot() string {
	return filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(k.dir))))
}

// containerEnv is kubelet's makeEnvironmentVariables for the sources
// hull kube supports: envFrom first (each key, with its prefix; keys
// that are not valid variable names skipped), then env with valueFrom
// resolved and $(VAR) in plain values expanded with the variables
// before them; a later variable of the same name wins. It returns c with
// that env (valueFrom and envFrom resolved) or, for a missing ConfigMap,
// Secret or key that is not optional, kubelet's message.
//
// downwardFn gives the pod's and node's addresses and resources for the
// downward API (downward.go), asked only when a variable needs them.
func containerEnv(store *Store, pod *v1.Pod, c *v1.Container, downwardFn func() *downward) (*v1.Container, string) {
	namespace := pod.Namespace
	var dw *downward
	dwOnce := func() *downward {
		if dw == nil {
			dw = downwardFn()
		}
		return dw
	}
	if len(c.EnvFrom) == 0 && !hasValueFrom(c.Env) && !hasReference(c.Env) {
		return c, ""
	}
	var env []v1.EnvVar
	index := map[string]int{}
	set := func(name, value string) {
		if i, ok := index[name]; ok {
			env[i].Value = value
			return
		}
		index[name] = len(env)
		env = append(env, v1.EnvVar{Name: name, Value: value})
	}
	for _, ef := range c.EnvFrom {
		kind, name, optional := "ConfigMap", "", false
		if r := ef.ConfigMapRef; r != nil {
			name, optional = r.Name, r.Optional != nil && *r.Optional
		} else if r := ef.SecretRef; r != nil {
			kind, name, optional = "Secret", r.Name, r.Optional != nil && *r.Optional
		}
		src := readSource(store, kind, namespace, name)
		if !src.found {
			if optional {
				continue
			}
			return nil, envNotFound(kind, name)
		}
		for _, key := range sortedNames(src.data) {
			k := ef.Prefix + key
			if len(validation.IsEnvVarName(k)) > 0 {
				continue // kubelet skips it (an InvalidEnvironmentVariableNames event)
			}
			set(k, string(src.data[key]))
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			// kubelet expands $(VAR) with the variables defined so far
			// (envFrom's, earlier env's, already expanded); values from
			// sources are taken as they are.
			set(e.Name, expand(e.Value, env))
			continue
		}
		if fs := e.ValueFrom.FieldRef; fs != nil {
			v, err := dwOnce().fieldValue(pod, fs)
			if err != nil {
				return nil, err.Error()
			}
			set(e.Name, v)
			continue
		}
		if fs := e.ValueFrom.ResourceFieldRef; fs != nil {
			v, err := dwOnce().resourceValue(pod, c, fs)
			if err != nil {
				return nil, err.Error()
			}
			set(e.Name, v)
			continue
		}
		kind, name, key, optional := "ConfigMap", "", "", false
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			name, key, optional = r.Name, r.Key, r.Optional != nil && *r.Optional
		} else if r := e.ValueFrom.SecretKeyRef; r != nil {
			kind, name, key, optional = "Secret", r.Name, r.Key, r.Optional != nil && *r.Optional
		}
		src := readSource(store, kind, namespace, name)
		if !src.found {
			if optional {
				continue
			}
			return nil, envNotFound(kind, name)
		}
		v, ok := src.data[key]
		if !ok {
			if optional {
				continue
			}
			return nil, keyNotFound(kind, namespace, name, key)
		}
		set(e.Name, string(v))
	}
	out := *c
	out.Env, out.EnvFrom = env, nil
	return &out, ""
}

// hasReference reports a plain value that may name a variable.
func hasReference(env []v1.EnvVar) bool {
	for _, e := range env {
		if e.ValueFrom == nil && strings.Contains(e.Value, "$") {
			return true
		}
	}
	return false
}

func hasValueFrom(env []v1.EnvVar) bool {
	for _, e := range env {
		if e.ValueFrom != nil {
			return true
		}
	}
	return false
}

// volumeError leaves the container waiting in ContainerCreating with
// kubelet's FailedMount event, tried again after configRetry.
func (k *kubelet) volumeError(s *containerState, volume, msg string) {
	msg = fmt.Sprintf("MountVolume.SetUp failed for volume %q : %s", volume, msg)
	k.event(v1.EventTypeWarning, "FailedMount", msg)
	s.Waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating", Message: msg}
	s.NextConfig = time.Now().Add(scaled(configRetry))
}

// mountVolumes sets up the volumes c mounts and returns its CRI mounts;
// false when one cannot be set up (reported on s).
func (k *kubelet) mountVolumes(c *v1.Container, s *containerState) ([]*runtimeapi.Mount, bool) {
	if len(c.VolumeMounts) == 0 {
		return nil, true
	}
	vols := map[string]*v1.Volume{}
	for i := range k.pod.Spec.Volumes {
		vols[k.pod.Spec.Volumes[i].Name] = &k.pod.Spec.Volumes[i]
	}
	var mounts []*runtimeapi.Mount
	for _, vm := range c.VolumeMounts {
		v := vols[vm.Name]
		if v == nil {
			continue // validation refuses it
		}
		host, readOnly, err := k.setUpVolume(v)
		if err == nil {
			err = k.setOwnership(v, host, readOnly)
		}
		if err != nil {
			k.volumeError(s, v.Name, err.Error())
			return nil, false
		}
		if vm.SubPath != "" {
			host = filepath.Join(host, vm.SubPath)
			if _, err := os.Lstat(host); errors.Is(err, os.ErrNotExist) && v.HostPath == nil {
				// kubelet makes a missing subPath as a directory.
				if err := os.MkdirAll(host, 0o755); err != nil {
					k.volumeError(s, v.Name, fmt.Sprintf("failed to create subPath directory for volumeMount %q of container %q: %v", vm.Name, c.Name, err))
					return nil, false
				}
			}
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: host, Readonly: vm.ReadOnly || readOnly})
	}
	return mounts, true
}

// setUpVolume makes a volume ready on the host and returns its path and
// whether kubelet mounts it read-only whatever the volumeMount says.
func (k *kubelet) setUpVolume(v *v1.Volume) (string, bool, error) {
	src := v.VolumeSource
	switch {
	case src.EmptyDir != nil:
		dir := filepath.Join(volumesDir(k.dir, "empty-dir"), v.Name)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", false, err
		}
		os.Chmod(dir, 0o777)
		if src.EmptyDir.Medium == v1.StorageMediumMemory {
			opts := "mode=0777"
			if size := k.memoryVolumeSize(src.EmptyDir); size > 0 { // eviction.go
				opts += ",size=" + strconv.FormatInt(size, 10)
			}
			if err := mountTmpfs(dir, opts); err != nil {
				return "", false, err
			}
		}
		return dir, false, nil
	case src.HostPath != nil:
		t := v1.HostPathUnset
		if src.HostPath.Type != nil {
			t = *src.HostPath.Type
		}
		if err := hostPathCheck(t)(src.HostPath.Path); err != nil {
			return "", false, err
		}
		return src.HostPath.Path, false, nil
	case src.ConfigMap != nil:
		r := src.ConfigMap
		dir := filepath.Join(volumesDir(k.dir, "configmap"), v.Name)
		return dir, true, k.writeKeys(dir, "ConfigMap", r.Name, r.Items, r.DefaultMode, r.Optional, false)
	case src.Secret != nil:
		r := src.Secret
		dir := filepath.Join(volumesDir(k.dir, "secret"), v.Name)
		return dir, true, k.writeKeys(dir, "Secret", r.SecretName, r.Items, r.DefaultMode, r.Optional, true)
	case src.DownwardAPI != nil:
		dir := filepath.Join(volumesDir(k.dir, "downward-api"), v.Name)
		return dir, true, k.writeDownward(dir, src.DownwardAPI) // downwardvol.go
	case src.PersistentVolumeClaim != nil:
		var pvc v1.PersistentVolumeClaim
		name := src.PersistentVolumeClaim.ClaimName
		if err := k.objects().GetObject("persistentvolumeclaims", k.pod.Namespace, name, &pvc); err != nil {
			return "", false, fmt.Errorf("persistentvolumeclaim %q not found", name)
		}
		// The hull volume's data directory (engine.VolumePath).
		return filepath.Join(k.hullRoot(), "volumes", pvc.Spec.VolumeName, "_data"), src.PersistentVolumeClaim.ReadOnly, nil
	}
	return "", false, errors.New("unsupported volume type")
}

// refreshVolumes writes the configMap and secret volumes the pod has
// set up again, each relist, so a changed ConfigMap or Secret reaches
// its running containers as kubelet's periodic volume sync does (files
// replaced by rename: a subPath mount of one keeps the old file, as on
// a node). A source that is gone or broken keeps the last contents.
func (k *kubelet) refreshVolumes() {
	for i := range k.pod.Spec.Volumes {
		v := &k.pod.Spec.Volumes[i]
		if v.ConfigMap == nil && v.Secret == nil {
			continue
		}
		plugin := "configmap"
		if v.Secret != nil {
			plugin = "secret"
		}
		if _, err := os.Stat(filepath.Join(volumesDir(k.dir, plugin), v.Name)); err != nil {
			continue // not set up yet: the container's start does it
		}
		if dir, ro, err := k.setUpVolume(v); err == nil {
			k.setOwnership(v, dir, ro)
		}
	}
}

// setOwnership is kubelet's SetVolumeOwnership for a pod with an
// fsGroup: every file of an emptyDir, configMap, secret or claim volume
// gets the fsGroup as its group, group read (and write, unless the
// volume is read-only) permission, and directories the setgid bit, so
// the pod's non-root users share it. hostPath volumes are left alone.
func (k *kubelet) setOwnership(v *v1.Volume, dir string, readOnly bool) error {
	sc := k.pod.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil || v.HostPath != nil {
		return nil
	}
	gid := int(*sc.FSGroup)
	fileMask, dirMask := os.FileMode(0o660), os.FileMode(0o770)|os.ModeSetgid
	if readOnly {
		fileMask, dirMask = 0o440, 0o550|os.ModeSetgid
	}
	return filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			return fmt.Errorf("set the fsGroup %d on %s: %w", gid, p, err)
		}
		mask := fileMask
		if info.IsDir() {
			mask = dirMask
		}
		return os.Chmod(p, info.Mode()|mask)
	})
}

// writeKeys writes a ConfigMap's or Secret's keys as files in dir (all
// of them, or the items), each replaced whole, with the item's mode,
// else defaultMode, else 0644. A secret's directory is a tmpfs.
func (k *kubelet) writeKeys(dir, kind, name string, items []v1.KeyToPath, defaultMode *int32, optional *bool, tmpfs bool) error {
	src := readSource(k.objects(), kind, k.pod.Namespace, name)
	if !src.found && (optional == nil || !*optional) {
		return errors.New(envNotFound(kind, name))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if tmpfs {
		if err := mountTmpfs(dir, "mode=0755"); err != nil {
			return err
		}
	}
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	files := map[string]os.FileMode{}
	content := map[string][]byte{}
	if len(items) == 0 {
		for key, v := range src.data {
			files[key], content[key] = mode, v
		}
	} else {
		for _, it := range items {
			v, ok := src.data[it.Key]
			if !ok {
				if !src.found || (optional != nil && *optional) {
					continue
				}
				return fmt.Errorf("%s references non-existent %s key: %s", strings.ToLower(kind), strings.ToLower(map[string]string{"ConfigMap": "config", "Secret": "secret"}[kind]), it.Key)
			}
			m := mode
			if it.Mode != nil {
				m = os.FileMode(*it.Mode)
			}
			files[it.Path], content[it.Path] = m, v
		}
	}
	if len(items) == 0 {
		// Keys removed since the last write go (kubelet's atomic writer
		// replaces the whole set).
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if _, ok := files[e.Name()]; !ok && !e.IsDir() && !strings.HasPrefix(e.Name(), "..") {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	for p, m := range files {
		path := filepath.Join(dir, p)
		if old, err := os.ReadFile(path); err == nil && string(old) == string(content[p]) {
			continue // unchanged: its mode and owner stay
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp := filepath.Join(filepath.Dir(path), ".."+filepath.Base(path)+".tmp")
		if err := os.WriteFile(tmp, content[p], m); err != nil {
			return err
		}
		os.Chmod(tmp, m) // past the umask
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return nil
}

// mountTmpfs mounts a tmpfs on dir unless one is there already.
func mountTmpfs(dir, opts string) error {
	if isMountPoint(dir) {
		return nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports a mount on dir (another device than its parent's).
func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// unmountVolumes unmounts the tmpfs mounts of a pod's volumes (memory
// emptyDirs, secrets), so its directory can be removed.
func unmountVolumes(podDir string) {
	for _, plugin := range []string{"empty-dir", "secret"} {
		entries, _ := os.ReadDir(volumesDir(podDir, plugin))
		for _, e := range entries {
			d := filepath.Join(volumesDir(podDir, plugin), e.Name())
			if isMountPoint(d) {
				unix.Unmount(d, unix.MNT_DETACH)
			}
		}
	}
}

// hostPathCheck is kubelet's check of a hostPath volume's type (nil for
// a type it does not know): an unset type checks nothing; the OrCreate
// types make what is missing (a directory 0755, an empty file 0644).
func hostPathCheck(t v1.HostPathType) func(path string) error {
	kind := func(path string, want uint32, what string) error {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return fmt.Errorf("hostPath type check failed: %s is not a %s", path, what)
		}
		if st.Mode&unix.S_IFMT != want {
			return fmt.Errorf("hostPath type check failed: %s is not a %s", path, what)
		}
		return nil
	}
	switch t {
	case v1.HostPathUnset:
		return func(string) error { return nil }
	case v1.HostPathDirectory:
		return func(p string) error { return kind(p, unix.S_IFDIR, "directory") }
	case v1.HostPathDirectoryOrCreate:
		return func(p string) error {
			if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(p, 0o755); err != nil {
					return err
				}
			}
			return kind(p, unix.S_IFDIR, "directory")
		}
	case v1.HostPathFile:
		return func(p string) error { return kind(p, unix.S_IFREG, "file") }
	case v1.HostPathFileOrCreate:
		return func(p string) error {
			if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					return err
				}
				f.Close()
			}
			return kind(p, unix.S_IFREG, "file")
		}
	case v1.HostPathSocket:
		return func(p string) error { return kind(p, unix.S_IFSOCK, "socket") }
	case v1.HostPathCharDev:
		return func(p string) error { return kind(p, unix.S_IFCHR, "character device") }
	case v1.HostPathBlockDev:
		return func(p string) error { return kind(p, unix.S_IFBLK, "block device") }
	}
	return nil
}

// describeEnv is kubectl's describeContainerEnvVars: envFrom sources,
// then each variable (a reference as "<set to the key ...>").
func describeEnv(w prefixWriter, pod *v1.Pod, c v1.Container) {
	if len(c.EnvFrom) > 0 {
		w.write(2, "Environment Variables from:\n")
	}
	for _, e := range c.EnvFrom {
		from, name, optional := "ConfigMap", "", false
		if r := e.ConfigMapRef; r != nil {
			name, optional = r.Name, r.Optional != nil && *r.Optional
		} else if r := e.SecretRef; r != nil {
			from, name, optional = "Secret", r.Name, r.Optional != nil && *r.Optional
		}
		if e.Prefix == "" {
			w.write(3, "%s\t%s\tOptional: %t\n", name, from, optional)
		} else {
			w.write(3, "%s\t%s with prefix '%s'\tOptional: %t\n", name, from, e.Prefix, optional)
		}
	}
	if len(c.Env) == 0 {
		w.write(2, "Environment:\t<none>\n")
		return
	}
	w.write(2, "Environment:\n")
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			w.write(3, "%s:\t%s\n", e.Name, e.Value)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			r := e.ValueFrom.ConfigMapKeyRef
			w.write(3, "%v:\t<set to the key '%v' of config map '%v'>\tOptional: %t\n", e.Name, r.Key, r.Name, r.Optional != nil && *r.Optional)
		case e.ValueFrom.SecretKeyRef != nil:
			r := e.ValueFrom.SecretKeyRef
			w.write(3, "%v:\t<set to the key '%v' in secret '%v'>\tOptional: %t\n", e.Name, r.Key, r.Name, r.Optional != nil && *r.Optional)
		case e.ValueFrom.FieldRef != nil, e.ValueFrom.ResourceFieldRef != nil:
			describeDownwardEnv(w, pod, c, e) // downward.go
		}
	}
}

// describeMounts is kubectl's describeContainerVolumes: by mount path,
// "PATH from VOLUME (rw|ro[,path=SUBPATH])".
func describeMounts(w prefixWriter, c v1.Container) {
	if len(c.VolumeMounts) == 0 {
		w.write(2, "Mounts:\t<none>\n")
		return
	}
	w.write(2, "Mounts:\n")
	mounts := append([]v1.VolumeMount{}, c.VolumeMounts...)
	slices.SortStableFunc(mounts, func(a, b v1.VolumeMount) int { return strings.Compare(a.MountPath, b.MountPath) })
	for _, m := range mounts {
		flags := []string{"rw"}
		if m.ReadOnly {
			flags[0] = "ro"
		}
		if m.SubPath != "" {
			flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
		}
		w.write(3, "%s from %s (%s)\n", m.MountPath, m.Name, strings.Join(flags, ","))
	}
}

// describeVolumes is kubectl's describeVolumes for the supported
// sources.
func describeVolumes(w prefixWriter, vols []v1.Volume) {
	if len(vols) == 0 {
		w.write(0, "Volumes:\t<none>\n")
		return
	}
	w.write(0, "Volumes:\n")
	for _, v := range vols {
		w.write(1, "%v:\n", v.Name)
		switch src := v.VolumeSource; {
		case src.HostPath != nil:
			t := "<none>"
			if src.HostPath.Type != nil {
				t = string(*src.HostPath.Type)
			}
			w.write(2, "Type:\tHostPath (bare host directory volume)\n    Path:\t%v\n    HostPathType:\t%v\n", src.HostPath.Path, t)
		case src.EmptyDir != nil:
			limit := "<unset>"
			if l := src.EmptyDir.SizeLimit; l != nil && l.Sign() > 0 {
				limit = l.String()
			}
			w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t%v\n    SizeLimit:\t%v\n", src.EmptyDir.Medium, limit)
		case src.Secret != nil:
			w.write(2, "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t%v\n    Optional:\t%v\n", src.Secret.SecretName, src.Secret.Optional != nil && *src.Secret.Optional)
		case src.ConfigMap != nil:
			w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t%v\n    Optional:\t%v\n", src.ConfigMap.Name, src.ConfigMap.Optional != nil && *src.ConfigMap.Optional)
		case src.DownwardAPI != nil:
			describeDownwardVolume(w, src.DownwardAPI) // downwardvol.go
		case src.PersistentVolumeClaim != nil:
			w.write(2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t%v\n    ReadOnly:\t%v\n", src.PersistentVolumeClaim.ClaimName, src.PersistentVolumeClaim.ReadOnly)
		}
	}
}
