package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/image"
)

// View is an in-memory copy of the container and pod records for a front
// end that lives long and reads them often: hull-cri answers its status
// and list calls from one (containerd answers them from memory too),
// where Get, List, GetPod and ListPods read and decode the rows and check
// every container against the host on each call.
//
// Freshness. Every read first asks SQLite whether anything was committed
// since the view last read (PRAGMA data_version on a connection of the
// view's own, which never writes: every commit counts, this process's and
// other processes' alike: monitors recording exits, the CLI). Only then
// are the rows read again: a look-up by whole ID reads that one row (a
// status asked right after a start, as critest and kubelet ask, costs
// one row, not the table), a list every row; and only the rows that
// changed are decoded: a configuration whose text is the one held keeps
// its decoded copy, a pod row unchanged keeps its record whole. What changes without a write is
// checked as List's reconciliation checks it, but cheaply: each running
// container's monitor is held by a pidfd and all of them are polled in
// one poll(2) per read; a container whose monitor has exited, and one in
// reconcile's rarer states (a start's claim with no monitor yet, a stop
// whose command died, a creation whose config.json is not written yet, a
// removal under way), is reconciled as Get reconciles it (which records a
// lost exit). A pod's pins are checked when its row is read, as ListPods
// checks them; pins only go without a write at a reboot, which ends the
// view's process too.
//
// Lifecycle: NewView over an open engine; Close before the engine's.
// Its methods may run concurrently. The records it returns are shared
// with later readers: callers must not modify them. Health is not filled
// (List fills it).
type View struct {
	e    *Engine
	boot string // this boot's ID

	mu   sync.Mutex
	conn *sql.Conn // reads only
	// The view's statements, prepared once on conn: PRAGMA
	// data_version, a container's row, a pod's, every container's,
	// every pod's.
	pragma, containerStmt, podStmt, containersStmt, podsStmt *sql.Stmt
	version                                                  int64 // the data version of the last reading of every row
	loaded                                                   bool
	cs                                                       map[string]*viewContainer
	corder                                                   []*viewContainer // newest first
	pods                                                     map[string]*viewPod
	porder                                                   []*viewPod // newest first
	// latest is the data version the view's last call read; imgs the
	// image records (Images) as read at image generation imgsGen (read by
	// imageGen, prepared on conn), known to be current at data version
	// imgsAt.
	latest          int64
	imageGen        *sql.Stmt
	imgs            []*Image
	imgsGen, imgsAt int64
	imgsKnown       bool
	unpacked        map[string]int64 // image ID -> unpacked size, with imgs (Image)
}

// viewContainer is a container as the view holds it.
type viewContainer struct {
	c    *Container
	cfg  string // its configuration as stored
	seen int64  // the data version it was read at
	// pidfd refers to the monitor (pid, start) while the container is
	// active; -1 when not opened.
	pidfd         int
	monPid        int
	monStart      uint64
	configWritten bool // config.json seen: the creation is not abandoned
}

// viewPod is a pod as the view holds it.
type viewPod struct {
	seen     int64 // the data version it was read at
	p        *Pod
	cfg      string // its configuration as stored
	rowState string // its state as stored (p.State may say exited: unpinned)
	ips      []netip.Addr
	ipsKnown bool
}

// NewView opens a view of e's containers and pods; the first read loads
// them.
func (e *Engine) NewView(ctx context.Context) (*View, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine view: %w", err)
	}
	v := &View{e: e, boot: bootID(), conn: conn, cs: map[string]*viewContainer{}, pods: map[string]*viewPod{}}
	for _, st := range []struct {
		to    **sql.Stmt
		query string
	}{
		{&v.pragma, `PRAGMA data_version`},
		{&v.containerStmt, `SELECT ` + containerColumns + ` FROM containers WHERE id = ?`},
		{&v.podStmt, `SELECT ` + podColumns + ` FROM pods WHERE id = ?`},
		{&v.containersStmt, `SELECT ` + containerColumns + ` FROM containers ORDER BY created DESC`},
		{&v.podsStmt, `SELECT ` + podColumns + ` FROM pods ORDER BY created DESC`},
		{&v.imageGen, image.GenerationQuery},
	} {
		if *st.to, err = conn.PrepareContext(ctx, st.query); err != nil {
			v.Close()
			return nil, fmt.Errorf("engine view: %w", err)
		}
	}
	return v, nil
}

// Close releases the view's pidfds and connection.
func (v *View) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, vc := range v.cs {
		vc.closePidfd()
	}
	v.cs, v.corder, v.pods, v.porder = map[string]*viewContainer{}, nil, map[string]*viewPod{}, nil
	v.loaded, v.imgs, v.imgsKnown, v.unpacked = false, nil, false, nil
	for _, st := range []*sql.Stmt{v.pragma, v.containerStmt, v.podStmt, v.containersStmt, v.podsStmt, v.imageGen} {
		if st != nil {
			st.Close()
		}
	}
	return v.conn.Close()
}

// Containers returns every container, newest first, as List does.
func (v *View) Containers(ctx context.Context) ([]*Container, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	return v.checked(ctx, v.corder)
}

// PodContainers returns the containers of the pod id, newest first, as
// Engine.PodContainers does.
func (v *View) PodContainers(ctx context.Context, podID string) ([]*Container, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	var of []*viewContainer
	for _, vc := range v.corder {
		if vc.c.Config.Pod == podID {
			of = append(of, vc)
		}
	}
	return v.checked(ctx, of)
}

// Container returns a container by ID, name or unique ID prefix, as Get
// does (with Get's errors).
func (v *View) Container(ctx context.Context, ref string) (*Container, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ref = strings.TrimPrefix(ref, "/")
	if wholeID(ref) {
		vc, err := v.containerRow(ctx, ref)
		if err != nil {
			return nil, err
		}
		if vc != nil {
			cs, err := v.checked(ctx, []*viewContainer{vc})
			if err != nil {
				return nil, err
			}
			return cs[0], nil
		}
		// A container may be named like an ID: look at the names too.
	}
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	vc := v.cs[ref]
	if vc == nil {
		for _, x := range v.corder {
			if x.c.Name == ref {
				vc = x
				break
			}
		}
	}
	if vc == nil {
		if len(ref) == 0 || len(ref) > 64 || strings.Trim(ref, "0123456789abcdef") != "" {
			return nil, &NotFoundError{Ref: ref}
		}
		for _, x := range v.corder {
			if strings.HasPrefix(x.c.ID, ref) {
				if vc != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container ID prefix %q is ambiguous: give more characters", ref))
				}
				vc = x
			}
		}
		if vc == nil {
			return nil, &NotFoundError{Ref: ref}
		}
	}
	cs, err := v.checked(ctx, []*viewContainer{vc})
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// Pods returns every pod, newest first, as ListPods does.
func (v *View) Pods(ctx context.Context) ([]*Pod, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	out := make([]*Pod, len(v.porder))
	for i, vp := range v.porder {
		out[i] = vp.p
	}
	return out, nil
}

// Pod returns a pod by ID, name or unique ID prefix, as GetPod does.
func (v *View) Pod(ctx context.Context, ref string) (*Pod, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if wholeID(ref) {
		vp, err := v.podRow(ctx, ref)
		if err != nil {
			return nil, err
		}
		if vp != nil {
			return vp.p, nil
		}
		// A pod may be named like an ID: look at the names too.
	}
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	var found *Pod
	for _, vp := range v.porder {
		if vp.p.ID == ref || vp.p.Name == ref {
			return vp.p, nil
		}
	}
	for _, vp := range v.porder {
		if len(ref) > 0 && strings.HasPrefix(vp.p.ID, ref) {
			if found != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("pod ID prefix %q is ambiguous: give more characters", ref))
			}
			found = vp.p
		}
	}
	if found == nil {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no such pod: %s", ref))
	}
	return found, nil
}

// PodIPs is Engine.PodIPs of a pod the view returned, kept with it: a
// pod's attachments are made before it is recorded running and released
// after it is recorded otherwise, so they cannot change while its record
// does not.
func (v *View) PodIPs(p *Pod) []netip.Addr {
	v.mu.Lock()
	vp := v.pods[p.ID]
	if vp != nil && vp.p == p && vp.ipsKnown {
		v.mu.Unlock()
		return vp.ips
	}
	v.mu.Unlock()
	ips := v.e.PodIPs(p)
	v.mu.Lock()
	if vp != nil && vp.p == p {
		vp.ips, vp.ipsKnown = ips, true
	}
	v.mu.Unlock()
	return ips
}

// quiet is ctx without its cancellation, for the view's queries: each
// is a read of a few rows, and the driver starts a goroutine to watch a
// cancellable context for every query (the status calls' gRPC contexts
// are).
func quiet(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// wholeID says whether ref is a whole ID (64 hex digits), which names
// one row.
func wholeID(ref string) bool {
	return len(ref) == 64 && strings.Trim(ref, "0123456789abcdef") == ""
}

// dataVersion is the database's data version: it changes with every
// commit of another connection (every commit: the view's own connection
// never writes).
func (v *View) dataVersion(ctx context.Context) (int64, error) {
	var version int64
	if err := v.pragma.QueryRowContext(quiet(ctx)).Scan(&version); err != nil {
		return 0, fmt.Errorf("engine view: %w", err)
	}
	v.latest = version
	return version, nil
}

// Images are the stored image records, without their unpacked sizes
// (ImageList's cost without the snapshots'), as of the view's last call:
// a status naming a container's image by them (the CRI's) costs no query
// while nothing was committed, and one look at the image generation after
// a commit that changed no image (a start, an exit). Ask it right after
// the call that read the container.
func (v *View) Images(ctx context.Context) ([]*Image, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.images(ctx)
}

// Image is ImageResolve and ImageList narrowed to its result, as of now:
// the records of the image ref names (a name, name@digest, ID or unique
// ID prefix), every record of its ID, with their unpacked sizes (the CRI's
// ImageStatus, asked before every container's creation). The records are
// Images', read again only once the image generation moved; the sizes
// are kept too, per image, once all its layers are unpacked (a committed
// layer's size never changes, and an image keeps its layers), and
// forgotten with the records. The records returned are copies.
func (v *View) Image(ctx context.Context, ref string) ([]*Image, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.dataVersion(ctx); err != nil {
		return nil, err
	}
	imgs, err := v.images(ctx)
	if err != nil {
		return nil, err
	}
	r, err := image.ResolveIn(imgs, ref)
	if err != nil {
		return nil, err
	}
	id := r.ID()
	size, ok := v.unpacked[id]
	if !ok {
		var whole bool
		if size, whole, err = v.e.unpackedSize(ctx, r); err != nil {
			return nil, err
		}
		if whole {
			if v.unpacked == nil {
				v.unpacked = map[string]int64{}
			}
			v.unpacked[id] = size
		}
	}
	var out []*Image
	for _, x := range imgs {
		if x.ID() == id {
			cp := *x
			cp.Unpacked = size
			out = append(out, &cp)
		}
	}
	return out, nil
}

// ResolveImage is ImageResolve from the image records Images keeps, as of
// the view's last call (a CreateContainer resolves its image right after
// reading its pod: no query while nothing was committed since the image
// status kubelet or critest asked before it). The record is shared.
func (v *View) ResolveImage(ctx context.Context, ref string) (*Image, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	imgs, err := v.images(ctx)
	if err != nil {
		return nil, err
	}
	return image.ResolveIn(imgs, ref)
}

// images is Images under mu.
func (v *View) images(ctx context.Context) ([]*Image, error) {
	if v.imgsKnown && v.imgsAt == v.latest {
		return v.imgs, nil
	}
	// latest and the generation are read before the records: a change
	// after either is read at the next call that sees them move.
	at := v.latest
	var gen int64
	if err := v.imageGen.QueryRowContext(quiet(ctx)).Scan(&gen); err != nil {
		return nil, fmt.Errorf("engine view: %w", err)
	}
	if v.imgsKnown && gen == v.imgsGen {
		v.imgsAt = at
		return v.imgs, nil
	}
	imgs, err := v.e.images.List(ctx)
	if err != nil {
		return nil, err
	}
	v.imgs, v.imgsGen, v.imgsAt, v.imgsKnown = imgs, gen, at, true
	v.unpacked = nil
	return imgs, nil
}

// refresh reads the rows again if anything was committed since they were
// last read (under mu).
func (v *View) refresh(ctx context.Context) error {
	version, err := v.dataVersion(ctx)
	if err != nil {
		return err
	}
	if v.loaded && version == v.version {
		return nil
	}
	// A commit after the pragma is read now or at the next refresh
	// (the version will differ): never missed.
	if err := v.loadContainers(ctx, version); err != nil {
		return err
	}
	if err := v.loadPods(ctx, version); err != nil {
		return err
	}
	v.version, v.loaded = version, true
	return nil
}

// containerRow is the container id as of now: as held if nothing was
// committed since it was read, else its row read again (under mu). nil:
// there is no such container. The lists are read whole at their next
// call (the view's version is not advanced).
func (v *View) containerRow(ctx context.Context, id string) (*viewContainer, error) {
	version, err := v.dataVersion(ctx)
	if err != nil {
		return nil, err
	}
	vc := v.cs[id]
	if vc != nil && vc.seen == version {
		return vc, nil
	}
	c, cfg, err := scanContainerRow(v.containerStmt.QueryRowContext(quiet(ctx), id))
	if errors.Is(err, sql.ErrNoRows) {
		if vc != nil {
			vc.closePidfd()
			delete(v.cs, id)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up container %s: %w", id, err)
	}
	vc, err = v.keepContainer(c, cfg, version)
	if err != nil {
		return nil, err
	}
	v.cs[id] = vc
	return vc, nil
}

// podRow is containerRow for pods.
func (v *View) podRow(ctx context.Context, id string) (*viewPod, error) {
	version, err := v.dataVersion(ctx)
	if err != nil {
		return nil, err
	}
	if vp := v.pods[id]; vp != nil && vp.seen == version {
		return vp, nil
	}
	p, cfg, err := scanPodRow(v.podStmt.QueryRowContext(quiet(ctx), id))
	if errors.Is(err, sql.ErrNoRows) {
		delete(v.pods, id)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", id, err)
	}
	vp, err := v.keepPod(p, cfg, version)
	if err != nil {
		return nil, err
	}
	v.pods[id] = vp
	return vp, nil
}

// loadContainers reads every container row, decoding only the
// configurations that changed.
func (v *View) loadContainers(ctx context.Context, version int64) error {
	rows, err := v.containersStmt.QueryContext(quiet(ctx))
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	defer rows.Close()
	cs := make(map[string]*viewContainer, len(v.cs))
	order := make([]*viewContainer, 0, len(v.corder))
	for rows.Next() {
		c, cfg, err := scanContainerRow(rows)
		if err != nil {
			return err
		}
		vc, err := v.keepContainer(c, cfg, version)
		if err != nil {
			return err
		}
		cs[c.ID] = vc
		order = append(order, vc)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for id, vc := range v.cs {
		if cs[id] == nil {
			vc.closePidfd()
		}
	}
	v.cs, v.corder = cs, order
	return nil
}

// loadPods reads every pod row, keeping the records of those unchanged.
func (v *View) loadPods(ctx context.Context, version int64) error {
	rows, err := v.podsStmt.QueryContext(quiet(ctx))
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	defer rows.Close()
	pods := make(map[string]*viewPod, len(v.pods))
	order := make([]*viewPod, 0, len(v.porder))
	for rows.Next() {
		p, cfg, err := scanPodRow(rows)
		if err != nil {
			return fmt.Errorf("list pods: %w", err)
		}
		vp, err := v.keepPod(p, cfg, version)
		if err != nil {
			return err
		}
		pods[p.ID] = vp
		order = append(order, vp)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	v.pods, v.porder = pods, order
	return nil
}

// keepContainer is the view's entry for container row c (cfg its
// configuration as stored) read at version: the entry held, updated, or
// a new one; a configuration unchanged is not decoded again.
func (v *View) keepContainer(c *Container, cfg string, version int64) (*viewContainer, error) {
	vc := v.cs[c.ID]
	if vc != nil && vc.cfg == cfg {
		c.Config = vc.c.Config // read only: shared
	} else if err := json.Unmarshal([]byte(cfg), &c.Config); err != nil {
		return nil, fmt.Errorf("container %s: config: %w", c.ID, err)
	}
	if vc == nil {
		vc = &viewContainer{pidfd: -1}
	}
	vc.cfg, vc.seen = cfg, version
	vc.set(c)
	return vc, nil
}

// keepPod is keepContainer for pod row p: a row unchanged keeps its
// record (and the pins checked when it was read), a changed one is
// decoded and its pins checked as ListPods checks them.
func (v *View) keepPod(p *Pod, cfg string, version int64) (*viewPod, error) {
	vp := v.pods[p.ID]
	if vp != nil && vp.cfg == cfg && vp.rowState == p.State && vp.p.Name == p.Name && vp.p.Created.Equal(p.Created) {
		vp.seen = version
		return vp, nil
	}
	if err := json.Unmarshal([]byte(cfg), &p.Config); err != nil {
		return nil, fmt.Errorf("pod %s: config: %w", p.Name, err)
	}
	rowState := p.State
	v.e.checkPinned(p)
	return &viewPod{p: p, cfg: cfg, rowState: rowState, seen: version}, nil
}

// set makes c the container's record, letting the monitor's pidfd go if
// it no longer watches c's monitor.
func (vc *viewContainer) set(c *Container) {
	if vc.pidfd >= 0 && (!c.active() || c.MonitorPid != vc.monPid || c.MonitorStart != vc.monStart) {
		vc.closePidfd()
	}
	vc.c = c
}

func (vc *viewContainer) closePidfd() {
	if vc.pidfd >= 0 {
		unix.Close(vc.pidfd)
		vc.pidfd = -1
	}
}

// checked returns the records of vcs after List's reconciliation (under
// mu; see View): those whose state the host may contradict are
// reconciled, the rest returned as held.
func (v *View) checked(ctx context.Context, vcs []*viewContainer) ([]*Container, error) {
	var slow []*viewContainer
	var fds []unix.PollFd
	var polled []*viewContainer
	for _, vc := range vcs {
		c := vc.c
		switch {
		case c.active():
			if c.MonitorPid == 0 || c.StopRequested && !c.ClaimUntil.IsZero() || c.BootID != "" && c.BootID != v.boot || !vc.watch() {
				slow = append(slow, vc)
				continue
			}
			fds = append(fds, unix.PollFd{Fd: int32(vc.pidfd), Events: unix.POLLIN})
			polled = append(polled, vc)
		case c.State == StateRemoving:
			slow = append(slow, vc)
		case c.State == StateCreated && c.Error == "" && !vc.configWritten:
			if _, err := os.Stat(filepath.Join(v.e.persistDir(c.ID), "config.json")); err == nil {
				vc.configWritten = true
				continue
			}
			slow = append(slow, vc)
		}
	}
	if len(fds) > 0 {
		for {
			_, err := unix.Poll(fds, 0)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.EINTR) {
				return nil, fmt.Errorf("engine view: poll monitors: %w", err)
			}
		}
		for i, fd := range fds {
			if fd.Revents != 0 { // exited (or the pidfd is bad): see what is left
				slow = append(slow, polled[i])
			}
		}
	}
	for _, vc := range slow {
		cp := *vc.c // reconcile sets fields of what it is given
		c, err := v.e.reconcile(ctx, &cp)
		if err != nil {
			return nil, err
		}
		vc.set(c)
	}
	out := make([]*Container, len(vcs))
	for i, vc := range vcs {
		out[i] = vc.c
	}
	return out, nil
}

// watch opens the pidfd of the active container's monitor if it is not
// open; false: the monitor is not the one recorded (gone, or its pid
// reused), for reconcile to see to.
func (vc *viewContainer) watch() bool {
	c := vc.c
	if vc.pidfd >= 0 {
		return true
	}
	fd, err := unix.PidfdOpen(c.MonitorPid, 0)
	if err != nil {
		return false
	}
	// Opened before the start time is read: a pidfd of the process
	// whose start time matches is one of the recorded monitor.
	if s := procStart(c.MonitorPid); s == 0 || s != c.MonitorStart {
		unix.Close(fd)
		return false
	}
	vc.pidfd, vc.monPid, vc.monStart = fd, c.MonitorPid, c.MonitorStart
	return true
}
