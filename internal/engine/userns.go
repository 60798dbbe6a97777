package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/runtime"
	"hull/internal/snapshot"
	"hull/internal/spec"
)

// Containers in a user namespace (--uidmap/--gidmap, a CRI pod's user
// namespace). The runtime makes the namespace (or joins a pod's) and
// writes its mappings; what the engine adds is that the container's root,
// an unprivileged host uid, can use its files:
//
//   - its root filesystem is an overlay of idmapped layers
//     (snapshot.MountIDMapped): the shared layers stay as they are;
//   - the bind mounts spec.IDMapped picks (named volumes, the engine's
//     /etc files, "idmap" mounts, every bind of a CRI container) are
//     made here, in the host's mount namespace, as idmapped mounts, and
//     the spec binds those instead. The runtime cannot make them itself:
//     an idmapped mount must be made by the host's root (the filesystem
//     belongs to the host's user namespace), and a detached mount made by
//     it may not be attached in the container's mount namespace, which
//     the container's user namespace owns (move_mount: EPERM, measured on
//     6.18); a mount in the host's table is copied into that namespace and
//     bound from there like any other. Their sources are kept in
//     <persistDir>/idmap.json, so a start after a reboot makes them
//     again; cleanup unmounts them.
//   - the init looks its rootfs and binds up by path as the mapped root,
//     to whom hull's private directories (0700, see package perm) are
//     closed. So what the spec names lives in a directory of the
//     mapping's own, as docker's userns-remap does:
//     <runRoot>/userns-UID.GID (owned by the mapped root, 0700: no other
//     user passes) / ID / rootfs (a bind of the container's rootfs) and
//     idmap/N (the idmapped binds).
//
// Containers without a user namespace pay nothing of this: every step is
// behind len(UIDMap) > 0.

// usernsFiles caches one user namespace per mapping for this process (a
// CRI server makes many containers with a pod's mapping): only the
// mapping of the namespace an idmapped mount names counts, so any one of
// that mapping serves. Each costs a helper process start once.
var usernsFiles struct {
	sync.Mutex
	m map[string]*os.File
}

// usernsFile returns a descriptor of a user namespace with o's mappings:
// the one UsernsMode pins (a pod's), or a cached one of the same mapping.
// The caller does not close it.
func (e *Engine) usernsFile(o *spec.Options) (*os.File, error) {
	if p, ok := strings.CutPrefix(o.UsernsMode, "ns:"); ok {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("the pod's user namespace: %w", err)
		}
		return f, nil // the caller's: see closeUserns
	}
	key := fmt.Sprint(o.UIDMap, o.GIDMap)
	usernsFiles.Lock()
	defer usernsFiles.Unlock()
	if f := usernsFiles.m[key]; f != nil {
		return f, nil
	}
	f, err := runtime.NewUserNamespace(e.InitPath, o.UIDMap, o.GIDMap)
	if err != nil {
		return nil, fmt.Errorf("a user namespace for idmapped mounts (it needs hull-init next to hull): %w", err)
	}
	if usernsFiles.m == nil {
		usernsFiles.m = map[string]*os.File{}
	}
	usernsFiles.m[key] = f
	return f, nil
}

// closeUserns closes what usernsFile returned unless it is cached.
func closeUserns(o *spec.Options, f *os.File) {
	if strings.HasPrefix(o.UsernsMode, "ns:") {
		f.Close()
	}
}

// rootIDs are the host uid and gid of the container's root (0 mapped).
func rootIDs(o *spec.Options) (int, int) {
	u, _ := spec.HostID(o.UIDMap, 0)
	g, _ := spec.HostID(o.GIDMap, 0)
	return int(u), int(g)
}

// mountIDMappedRootfs mounts the container's snapshot with idmapped layers.
func (e *Engine) mountIDMappedRootfs(id string, mounts []snapshot.Mount, o *spec.Options) error {
	uns, err := e.usernsFile(o)
	if err != nil {
		return err
	}
	defer closeUserns(o, uns)
	uid, gid := rootIDs(o)
	return snapshot.MountIDMapped(mounts, e.rootfs(id), uns, uid, gid)
}

// mappedDir is container id's directory the mapped root may reach.
func (e *Engine) mappedDir(id string, o *spec.Options) string {
	uid, gid := rootIDs(o)
	return filepath.Join(e.cfg.RunRoot, fmt.Sprintf("userns-%d.%d", uid, gid), id)
}

// idmapBind is one idmapped bind mount of a container: Source bound on
// <mappedDir>/idmap/<target()>.
type idmapBind struct {
	Source    string
	Recursive bool
}

// target names the bind's mount point after its source, not its place in
// the spec: a spec made again (ensureConfig) may order the /etc files
// differently, and must find each source where it was mounted.
func (b idmapBind) target() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%t", b.Source, b.Recursive))
	return hex.EncodeToString(sum[:8])
}

// mapSpec points spec s of a container in a user namespace at what its
// root can reach: the rootfs and the idmapped binds (see spec.IDMapped)
// in its mapped directory, made now and recorded for mountMapped.
func (e *Engine) mapSpec(id string, s *specs.Spec, o *spec.Options) error {
	binds := []idmapBind{}
	picked := spec.IDMapped(s, *o)
	for _, i := range picked {
		m := s.Mounts[i]
		binds = append(binds, idmapBind{Source: m.Source, Recursive: slices.Contains(m.Options, "rbind") && slices.Contains(m.Options, "ridmap")})
	}
	data, _ := json.Marshal(binds)
	if err := writeFile(filepath.Join(e.persistDir(id), "idmap.json"), data); err != nil {
		return err
	}
	if err := e.mountMapped(id, o, binds); err != nil {
		return err
	}
	dir := e.mappedDir(id, o)
	s.Root.Path = filepath.Join(dir, "rootfs")
	for n, i := range picked {
		s.Mounts[i].Source = filepath.Join(dir, "idmap", binds[n].target())
	}
	return nil
}

// mountMapped makes what of the container's mapped directory is not
// there (all of it after a reboot emptied the run root): the rootfs bind
// and the idmapped binds; binds nil: read them from idmap.json.
func (e *Engine) mountMapped(id string, o *spec.Options, binds []idmapBind) error {
	if binds == nil {
		data, err := os.ReadFile(filepath.Join(e.persistDir(id), "idmap.json"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if len(data) > 0 {
			if err := json.Unmarshal(data, &binds); err != nil {
				return fmt.Errorf("container %s: idmap.json: %w", id, err)
			}
		}
	}
	dir := e.mappedDir(id, o)
	uid, gid := rootIDs(o)
	top := filepath.Dir(dir)
	// The run root is meant to be 0711 (perm.RootDir); one made
	// narrower (a parent created for a socket) is opened to that.
	if st, err := os.Stat(e.cfg.RunRoot); err == nil && st.Mode().Perm()&0o011 != 0o011 {
		if err := os.Chmod(e.cfg.RunRoot, st.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("make the run root traversable (0711): %w", err)
		}
	}
	for d := e.cfg.RunRoot; ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("a container in a user namespace needs the directories down to the run root %s traversable by its root (host uid %d), and %s is mode %04o: make it 0711 (chmod o+x %s)", e.cfg.RunRoot, uid, d, st.Mode().Perm(), d))
		}
		if d == "/" || d == "." {
			break
		}
	}
	if err := os.MkdirAll(top, 0o700); err != nil {
		return err
	}
	if err := os.Chown(top, uid, gid); err != nil {
		return fmt.Errorf("give %s to the container's root: %w", top, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "idmap"), 0o711); err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	if !isMounted(rootfs) {
		if err := os.MkdirAll(rootfs, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(e.rootfs(id), rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind the container's rootfs on %s: %w", rootfs, err)
		}
	}
	var uns *os.File
	for _, b := range binds {
		target := filepath.Join(dir, "idmap", b.target())
		if isMounted(target) {
			continue
		}
		st, err := os.Stat(b.Source)
		if err != nil {
			return fmt.Errorf("bind mount source %s: %w", b.Source, err)
		}
		if st.IsDir() {
			err = os.MkdirAll(target, 0o711)
		} else {
			err = writeFile(target, nil)
		}
		if err != nil {
			return err
		}
		if uns == nil {
			if uns, err = e.usernsFile(o); err != nil {
				return err
			}
			defer closeUserns(o, uns)
		}
		if err := snapshot.BindIDMapped(b.Source, target, uns, b.Recursive, false); err != nil {
			return fmt.Errorf("idmapped mount of %s for the container's user namespace: %w", b.Source, err)
		}
	}
	return nil
}

// unmountMapped undoes mountMapped (cleanup) and removes the directory.
func (e *Engine) unmountMapped(id string, o *spec.Options) {
	if len(o.UIDMap) == 0 {
		return
	}
	dir := e.mappedDir(id, o)
	// Each removal is of an empty directory or a file: never RemoveAll,
	// which would go through a mount that failed to go (a volume).
	ents, _ := os.ReadDir(filepath.Join(dir, "idmap"))
	for _, ent := range ents {
		p := filepath.Join(dir, "idmap", ent.Name())
		if unmountAll(p) == nil {
			os.Remove(p)
		}
	}
	if unmountAll(filepath.Join(dir, "rootfs")) == nil {
		os.Remove(filepath.Join(dir, "rootfs"))
	}
	os.Remove(filepath.Join(dir, "idmap"))
	os.Remove(dir)
	os.Remove(filepath.Dir(dir)) // once no container of the mapping is left
}

// ParseIDMaps reads run's --uidmap and --gidmap values (podman's
// CONTAINER:HOST:SIZE, repeatable). As podman, a missing one of the two
// takes the other's mappings.
func ParseIDMaps(uidmaps, gidmaps []string) (uids, gids []specs.LinuxIDMapping, err error) {
	for _, s := range uidmaps {
		m, err := spec.ParseIDMap("--uidmap", s)
		if err != nil {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		uids = append(uids, m)
	}
	for _, s := range gidmaps {
		m, err := spec.ParseIDMap("--gidmap", s)
		if err != nil {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		gids = append(gids, m)
	}
	if len(uids) == 0 {
		uids = gids
	}
	if len(gids) == 0 {
		gids = uids
	}
	for flag, ms := range map[string][]specs.LinuxIDMapping{"--uidmap": uids, "--gidmap": gids} {
		if err := spec.CheckIDMaps(flag, ms); err != nil {
			return nil, nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	return uids, gids, nil
}

// CheckUsernsMode checks run's --userns: "" or private (a user namespace
// of the container's own, with --uidmap/--gidmap) or host.
func CheckUsernsMode(mode string, mapped bool) error {
	switch mode {
	case "", "private":
		if mode == "private" && !mapped {
			return errdefs.ErrInvalidArgument.WithMessage("--userns private needs --uidmap (and --gidmap), e.g. --uidmap 0:100000:65536")
		}
	case "host":
		if mapped {
			return errdefs.ErrInvalidArgument.WithMessage("conflicting options: --userns host and --uidmap/--gidmap (mappings make a user namespace of the container's own)")
		}
	default:
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--userns %q: not supported (use --uidmap CONTAINER:HOST:SIZE for a user namespace of the container's own, or host)", mode))
	}
	return nil
}

// IDMappings is inspect's HostConfig.IDMappings (podman's): the user
// namespace's mappings as CONTAINER:HOST:SIZE.
type IDMappings struct {
	UidMap []string `json:"UidMap"`
	GidMap []string `json:"GidMap"`
}

// usernsInspect is inspect's HostConfig.UsernsMode ("" for the host's,
// private, or ns:PATH for a pod's) and IDMappings.
func usernsInspect(o spec.Options) (string, *IDMappings) {
	if len(o.UIDMap) == 0 {
		return o.UsernsMode, nil
	}
	mode := o.UsernsMode
	if mode == "" {
		mode = "private"
	}
	str := func(ms []specs.LinuxIDMapping) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size)
		}
		return out
	}
	return mode, &IDMappings{UidMap: str(o.UIDMap), GidMap: str(o.GIDMap)}
}

// pinPod pins pod p's namespaces on dir, and starts the holder of its
// PID namespace if it shares one. A pod with a user namespace has it
// pinned too, owning the others (runtime.PinUserNamespaces), and its PID
// holder made in it: a container that has joined the pod's user namespace
// may only join namespaces that one owns.
func (e *Engine) pinPod(dir string, p *Pod) error {
	o := runtime.PinOptions{Hostname: p.Config.Hostname, Sysctls: p.Config.Sysctls}
	if len(p.Config.UIDMap) == 0 {
		if err := runtime.PinNamespaces(dir, p.pinKinds(), o); err != nil {
			return fmt.Errorf("pod %s: %w", p.Name, err)
		}
		if p.shares("pid") {
			if err := e.startPodHolder(p); err != nil {
				runtime.UnpinNamespaces(dir)
				return err
			}
		}
		return nil
	}
	if _, err := os.Stat(e.InitPath); err != nil {
		return fmt.Errorf("pod %s: a user namespace needs hull-init next to hull (make build puts it in bin/): %w", p.Name, err)
	}
	holder, err := runtime.PinUserNamespaces(dir, p.pinKinds(), o, runtime.UserNamespaceOptions{
		Helper: e.InitPath, UIDs: p.Config.UIDMap, GIDs: p.Config.GIDMap, PID: p.shares("pid"),
	})
	if err != nil {
		return fmt.Errorf("pod %s: %w", p.Name, err)
	}
	if holder != nil {
		if err := e.recordPodHolder(p, holder); err != nil {
			runtime.UnpinNamespaces(dir)
			return err
		}
	}
	return nil
}

// joinPodUserns puts container options o in pod p's user namespace, if
// it has one (the container's own mappings, if given, must be the pod's).
func (e *Engine) joinPodUserns(p *Pod, o *spec.Options) error {
	if len(p.Config.UIDMap) == 0 {
		if len(o.UIDMap) > 0 {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--pod %s: the pod has no user namespace, so its containers cannot have one (give the mappings to the pod)", p.Name))
		}
		return nil
	}
	if len(o.UIDMap) > 0 && (!slices.Equal(o.UIDMap, p.Config.UIDMap) || !slices.Equal(o.GIDMap, p.Config.GIDMap)) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--pod %s: a container of the pod shares its user namespace and mappings; drop --uidmap/--gidmap", p.Name))
	}
	o.UIDMap, o.GIDMap = p.Config.UIDMap, p.Config.GIDMap
	o.UsernsMode = "ns:" + e.podNS(p.ID, "user")
	return nil
}

// usernsSupport caches UserNamespacesSupported's answer.
var usernsSupport struct {
	once sync.Once
	ok   bool
}

// UserNamespacesSupported says whether containers can run in user
// namespaces here: a user namespace can be made (hull-init as its helper)
// and the run root's filesystem takes idmapped mounts. Found out once per
// process (a helper start and one mount attribute change, no mount).
func (e *Engine) UserNamespacesSupported() bool {
	usernsSupport.once.Do(func() {
		one := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65534, Size: 1}}
		uns, err := runtime.NewUserNamespace(e.InitPath, one, one)
		if err != nil {
			return
		}
		defer uns.Close()
		fd, err := unix.OpenTree(unix.AT_FDCWD, e.cfg.RunRoot, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(uns.Fd())}
		usernsSupport.ok = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr) == nil
	})
	return usernsSupport.ok
}

// TreeIDMaps are the mappings cp extracts into tree (from TreeFor) with:
// the container's, when it has a user namespace and the tree is its own
// filesystem, whose writable layer holds host ids; none for a volume or
// bind (idmapped: their files keep the ids they have inside).
func (e *Engine) TreeIDMaps(c *Container, tree string) (uids, gids []specs.LinuxIDMapping) {
	if tree != e.rootfs(c.ID) {
		return nil, nil
	}
	return c.Config.Spec.UIDMap, c.Config.Spec.GIDMap
}

// mapOwner is the host id of container id, or the overflow id 65534
// (nobody) if it is not mapped.
func mapOwner(ms []specs.LinuxIDMapping, id int) int {
	if h, ok := spec.HostID(ms, uint32(id)); ok {
		return int(h)
	}
	return 65534
}
