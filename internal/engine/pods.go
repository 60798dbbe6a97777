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
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/metadata"
	"hull/internal/network"
	"hull/internal/runtime"
	"hull/internal/trace"
)

// A pod is a group of containers that share namespaces (network, IPC,
// UTS): what `hull pod` manages and what a CRI pod sandbox is. Its
// namespaces are pinned (runtime.PinNamespaces: bind mounts of their nsfs
// files under <runRoot>/pods/ID/ns), not held by a pause process: a pod
// costs no process and no memory of its own. The pod's networks are
// attached to its pinned network namespace with the pod's ID, as a
// container's are; its containers join the namespaces by path (modes
// "ns:PATH") and see the pod's /etc/hosts, /etc/resolv.conf and host name.
//
// Lifecycle: CreatePod records it (created); StartPod pins the namespaces
// and attaches the networks (running), and starts the pod's containers;
// StopPod stops them, detaches and unpins (exited); RemovePod removes the
// record (and, forced, the containers). A container created in a pod
// starts the pod first; so does starting one of a stopped pod.

// Pod states.
const (
	PodCreated = "created"
	PodRunning = "running"
	PodExited  = "exited"
)

// Pod is one pod's record.
type Pod struct {
	ID      string
	Name    string
	Created time.Time
	State   string
	Config  PodConfig
}

// PodConfig is how a pod was asked for (hull pod create, a CRI
// PodSandboxConfig).
type PodConfig struct {
	Hostname    string            `json:"Hostname,omitempty"`
	Labels      map[string]string `json:"Labels,omitempty"`
	Annotations map[string]string `json:"Annotations,omitempty"`
	// Share are the namespaces the pod's containers share: net, ipc,
	// uts (all three if empty).
	Share []string `json:"Share,omitempty"`
	// Network is the pod's network mode: bridge (default), none, host or
	// a network's name; Net its networks, ports and name resolution.
	Network string    `json:"Network,omitempty"`
	Net     NetConfig `json:"Net"`
	// Sysctls are set in the pod's namespaces (net.*, IPC's kernel.*).
	Sysctls      map[string]string `json:"Sysctls,omitempty"`
	CgroupParent string            `json:"CgroupParent,omitempty"`
	// LogDirectory is where the pod's containers log (a CRI sandbox's
	// log_directory; each container names its file under it).
	LogDirectory string `json:"LogDirectory,omitempty"`
	// UIDMap and GIDMap give the pod a user namespace of these mappings,
	// which owns its other namespaces and which its containers join
	// (userns.go).
	UIDMap []specs.LinuxIDMapping `json:"UIDMap,omitempty"`
	GIDMap []specs.LinuxIDMapping `json:"GIDMap,omitempty"`
}

func init() {
	metadata.Register(metadata.Migration{Package: "pod", Version: 1, Statements: []string{
		`CREATE TABLE pods (
			id      TEXT PRIMARY KEY,
			name    TEXT NOT NULL UNIQUE,
			created INTEGER NOT NULL,
			state   TEXT NOT NULL,
			config  TEXT NOT NULL
		)`,
	}})
}

// shares says whether the pod shares namespace kind.
func (p *Pod) shares(kind string) bool {
	if kind == "pid" { // only when asked (podpid.go)
		return slices.Contains(p.Config.Share, kind)
	}
	return len(p.Config.Share) == 0 || slices.Contains(p.Config.Share, kind)
}

func (e *Engine) podRunDir(id string) string     { return filepath.Join(e.cfg.RunRoot, "pods", id) }
func (e *Engine) podPersistDir(id string) string { return filepath.Join(e.cfg.Root, "pods", id) }

// podNS is where the pod's namespace of kind is pinned.
func (e *Engine) podNS(id, kind string) string { return filepath.Join(e.podRunDir(id), "ns", kind) }

// CreatePod records a new pod (it starts with StartPod, or with its first
// container).
func (e *Engine) CreatePod(ctx context.Context, name string, cfg PodConfig) (*Pod, error) {
	id := NewID()
	if name == "" {
		name = randomName()
	} else if !validName(name) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid pod name %q: use [a-zA-Z0-9][a-zA-Z0-9_.-]*", name))
	}
	for _, k := range cfg.Share {
		if _, ok := runtime.PinKinds[k]; !ok && k != "pid" {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--share %s: a pod shares net, ipc, uts and pid namespaces", k))
		}
	}
	if cfg.Hostname == "" {
		cfg.Hostname = name
	}
	// The network's checks are a container's (netconfig.go).
	probe := Config{Net: cfg.Net}
	probe.Spec.Network = cfg.Network
	if err := e.resolveNetwork(ctx, &probe); err != nil {
		return nil, err
	}
	cfg.Network, cfg.Net = probe.Spec.Network, probe.Net
	p := &Pod{ID: id, Name: name, Created: time.Now().UTC(), State: PodCreated, Config: cfg}
	if !p.shares("net") && joinsNetworks(netMode(probe.Spec)) && cfg.Network != NetworkNone {
		return nil, errdefs.ErrInvalidArgument.WithMessage("a pod that does not share its network namespace has no network to configure: share net, or use --network none")
	}
	data, _ := json.Marshal(p.Config)
	_, err := e.db.ExecContext(ctx, `INSERT INTO pods(id, name, created, state, config) VALUES(?,?,?,?,?)`, p.ID, p.Name, nanos(p.Created), p.State, string(data))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return nil, errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("the pod name %q is already in use; remove that pod (hull pod rm %s) or choose another name", name, name))
		}
		return nil, fmt.Errorf("record pod %s: %w", name, err)
	}
	if err := os.MkdirAll(e.podPersistDir(id), 0o700); err != nil {
		return nil, err
	}
	return p, nil
}

// GetPod returns a pod by name, ID or ID prefix.
func (e *Engine) GetPod(ctx context.Context, ref string) (*Pod, error) {
	// A whole ID or a name (what the CRI passes on every call) is one
	// row: no need to decode every pod's configuration, which made each
	// look-up cost a millisecond per twenty pods. An exact match wins
	// over prefixes, as in the list below.
	if ref != "" {
		p, err := e.scanPod(e.db.QueryRowContext(ctx, `SELECT `+podColumns+` FROM pods WHERE id = ? OR name = ? ORDER BY created DESC LIMIT 1`, ref, ref))
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("pod %s: %w", ref, err)
		}
	}
	pods, err := e.ListPods(ctx)
	if err != nil {
		return nil, err
	}
	var found *Pod
	for _, p := range pods {
		if p.ID == ref || p.Name == ref {
			return p, nil
		}
		if len(ref) > 0 && strings.HasPrefix(p.ID, ref) {
			if found != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("pod ID prefix %q is ambiguous: give more characters", ref))
			}
			found = p
		}
	}
	if found == nil {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no such pod: %s", ref))
	}
	return found, nil
}

// ListPods returns every pod, newest first, with its state checked
// against the host (a reboot unpins every namespace).
func (e *Engine) ListPods(ctx context.Context) ([]*Pod, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT `+podColumns+` FROM pods ORDER BY created DESC`)
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	defer rows.Close()
	var out []*Pod
	for rows.Next() {
		p, err := e.scanPod(rows)
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

const podColumns = `id, name, created, state, config`

// scanPod reads a pod's row (podColumns), with its state checked against
// the host.
func (e *Engine) scanPod(row scanner) (*Pod, error) {
	p, cfg, err := scanPodRow(row)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(cfg), &p.Config); err != nil {
		return nil, fmt.Errorf("pod %s: config: %w", p.Name, err)
	}
	e.checkPinned(p)
	return p, nil
}

// scanPodRow reads a pod's row (podColumns) but for its configuration,
// which it returns as stored.
func scanPodRow(row scanner) (*Pod, string, error) {
	var p Pod
	var created int64
	var cfg string
	if err := row.Scan(&p.ID, &p.Name, &created, &p.State, &cfg); err != nil {
		return nil, "", err
	}
	p.Created = time.Unix(0, created).UTC()
	return &p, cfg, nil
}

// checkPinned records a running pod whose namespaces are no longer
// pinned as exited.
func (e *Engine) checkPinned(p *Pod) {
	if p.State == PodRunning && !e.podPinned(p) {
		p.State = PodExited // the host rebooted, or its pins went
	}
}

// podPinned says whether a running pod's namespaces are still pinned.
func (e *Engine) podPinned(p *Pod) bool {
	for _, k := range p.pinKinds() {
		if !runtime.Pinned(filepath.Dir(e.podNS(p.ID, k)), k) {
			return false
		}
	}
	return !p.shares("pid") || e.podHolder(p.ID) > 0
}

// pinKinds are the namespaces a pod pins: those it shares, less the
// network one with the host's network.
func (p *Pod) pinKinds() []string {
	var kinds []string
	for _, k := range []string{"net", "ipc", "uts"} {
		if p.shares(k) && !(k == "net" && p.Config.Network == NetworkHost) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// PodContainers returns the containers of a pod, newest first.
//
// SQLite picks them out by the configuration's Pod (json_extract, no
// index: a scan of the table's text, which is far cheaper than decoding
// every container's configuration in Go, as a List would); only the
// pod's are decoded and reconciled. The CRI calls it per pod
// (StopPodSandbox, RemovePodSandbox, stats, NRI).
func (e *Engine) PodContainers(ctx context.Context, p *Pod) ([]*Container, error) {
	return e.listWhere(ctx, `json_extract(config, '$.Pod') = ?`, p.ID)
}

// podWithContainers returns a pod and its containers.
func (e *Engine) podWithContainers(ctx context.Context, ref string) (*Pod, []*Container, error) {
	p, err := e.GetPod(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	cs, err := e.PodContainers(ctx, p)
	return p, cs, err
}

// setPodState records a pod's state.
func (e *Engine) setPodState(ctx context.Context, p *Pod, state string) error {
	if _, err := e.db.ExecContext(ctx, `UPDATE pods SET state = ? WHERE id = ?`, state, p.ID); err != nil {
		return fmt.Errorf("pod %s: %w", p.Name, err)
	}
	p.State = state
	return nil
}

// StartPod makes the pod's namespaces and networks (if they are not
// there) and starts its containers that are not running.
func (e *Engine) StartPod(ctx context.Context, ref string) (*Pod, error) {
	return e.StartPodPinned(ctx, ref, nil)
}

// StartPodPinned is StartPod calling pinned, if the pod was not running,
// once its namespaces are pinned and before its networks are attached,
// with the pod as it will be once running: the CRI's RunPodSandbox binds
// its next container's spare then (PrepareSpare), whose process starts in
// the pod's namespaces while the network is set up.
func (e *Engine) StartPodPinned(ctx context.Context, ref string, pinned func(*Pod)) (*Pod, error) {
	p, err := e.GetPod(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := e.upPodPinned(ctx, p, pinned); err != nil {
		return nil, err
	}
	cs, err := e.PodContainers(ctx, p)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- { // oldest first
		c := cs[i]
		if c.IsRunning() || c.State == StateRestarting {
			continue
		}
		s, err := e.Start(ctx, c.ID, StartOptions{})
		if err == nil && s != nil {
			err = s.Ready()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pod %s: container %s: %w", p.Name, c.Name, err))
		}
	}
	return p, errors.Join(errs...)
}

// upPod pins a pod's namespaces and attaches its networks, unless it is
// running already; its /etc files are written then (its address known).
func (e *Engine) upPod(ctx context.Context, p *Pod) error { return e.upPodPinned(ctx, p, nil) }

// upPodPinned is upPod calling pinned as StartPodPinned says.
func (e *Engine) upPodPinned(ctx context.Context, p *Pod, pinned func(*Pod)) error {
	if p.State == PodRunning {
		return nil
	}
	unlock, err := e.lockPod(p.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if cur, err := e.GetPod(ctx, p.ID); err == nil && cur.State == PodRunning {
		*p = *cur
		return nil
	}
	dir := filepath.Join(e.podRunDir(p.ID), "ns")
	e.downPod(ctx, p) // what a killed start left
	if err := e.pinPod(dir, p); err != nil {
		return err
	}
	trace.Mark("pod: pinned")
	if pinned != nil {
		up := *p
		up.State = PodRunning
		pinned(&up)
	}
	var addrs []netip.Addr
	if p.shares("net") && len(p.Config.Net.Networks) > 0 {
		as, err := e.attachTo(ctx, p.ID, e.podNS(p.ID, "net"), p.Config.Net, func(ep Endpoint) []string { return dnsNames(p.Name, p.ID, ep) })
		if err != nil {
			runtime.UnpinNamespaces(dir)
			return fmt.Errorf("pod %s: %w", p.Name, err)
		}
		addrs = as
		trace.Mark("pod: attached")
		if name, addr := e.resolverOf(ctx, p.Config.Net); addr.IsValid() {
			if err := e.ensureDNS(name, addr); err != nil {
				e.downPod(ctx, p)
				return fmt.Errorf("pod %s: %w", p.Name, err)
			}
		}
	}
	if err := e.writePodFiles(ctx, p, addrs); err != nil {
		e.downPod(ctx, p)
		return err
	}
	trace.Mark("pod: files written")
	return e.setPodState(ctx, p, PodRunning)
}

// lockPod serializes a pod's start and stop among hull processes.
func (e *Engine) lockPod(id string) (func(), error) {
	dir := e.podRunDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return lockFile(filepath.Join(dir, "lock"))
}

// downPod unpins a pod's namespaces, then detaches its networks.
//
// In that order: with the network namespace unpinned, the detach finds it
// gone and deletes no veth itself. Deleting a veth is 15-30 ms of kernel
// time (its unregistering waits for RCU grace periods), which StopPod's
// caller would wait for; the namespace's own end deletes the pair in the
// kernel's cleanup work, off the call's path, once its last process (a
// container stopped just before, a spare's early process) is gone. The
// detach still releases the addresses, ports and records. A host veth
// still there is recorded released: a long-lived engine (hull-cri) drops
// the record once the kernel has deleted the veth, in the background
// (SettleReleased; Reclaim deletes it should the namespace outlive
// releaseGrace), and a command deletes it before it returns, as before
// (FinishReleased).
func (e *Engine) downPod(ctx context.Context, p *Pod) error {
	var errs []error
	e.stopPodHolder(p.ID)
	errs = append(errs, runtime.UnpinNamespaces(filepath.Join(e.podRunDir(p.ID), "ns")))
	if m, err := e.networks(); err == nil {
		as, _ := m.Attachments(p.ID)
		for _, a := range as {
			errs = append(errs, m.Detach(ctx, p.ID, a.Network, ""))
		}
		switch {
		case len(as) == 0:
		case e.longLived:
			go m.SettleReleased(p.ID)
		default:
			errs = append(errs, m.FinishReleased(p.ID))
		}
	}
	return errors.Join(errs...)
}

// StopPod stops a pod's containers (each within timeout, then killed),
// then takes down its networks and namespaces.
func (e *Engine) StopPod(ctx context.Context, ref string, timeout time.Duration) (*Pod, error) {
	p, cs, err := e.podWithContainers(ctx, ref)
	if err != nil {
		return nil, err
	}
	e.awaitPodCreations(p.ID) // their namespaces and /etc files are the pod's
	var errs []error
	for _, c := range cs {
		if c.IsRunning() || c.State == StateRestarting {
			if _, err := e.Stop(ctx, c.ID, timeout); err != nil {
				errs = append(errs, fmt.Errorf("pod %s: stop container %s: %w", p.Name, c.Name, err))
			}
		}
	}
	if len(errs) > 0 {
		return p, errors.Join(errs...)
	}
	unlock, err := e.lockPod(p.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := e.downPod(ctx, p); err != nil {
		return p, fmt.Errorf("pod %s: %w", p.Name, err)
	}
	if p.State == PodRunning {
		return p, e.setPodState(ctx, p, PodExited)
	}
	return p, nil
}

// RemovePod removes a pod: refused while it has containers, unless force,
// which removes them (running ones killed).
func (e *Engine) RemovePod(ctx context.Context, ref string, force bool) (*Pod, error) {
	p, cs, err := e.podWithContainers(ctx, ref)
	if err != nil {
		return nil, err
	}
	if len(cs) > 0 && !force {
		return nil, errdefs.ErrConflict.WithMessage(fmt.Sprintf("pod %s has %d containers: remove them first, or use hull pod rm -f %s", p.Name, len(cs), p.Name))
	}
	for _, c := range cs {
		if err := e.Remove(ctx, c.ID, true); err != nil && !IsNotFound(err) {
			return nil, fmt.Errorf("pod %s: remove container %s: %w", p.Name, c.Name, err)
		}
	}
	if err := e.downPod(ctx, p); err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.Name, err)
	}
	if err := removePodCgroups(p); err != nil { // kubeview.go
		return nil, err
	}
	if _, err := e.db.ExecContext(ctx, `DELETE FROM pods WHERE id = ?`, p.ID); err != nil {
		return nil, fmt.Errorf("remove pod %s: %w", p.Name, err)
	}
	os.RemoveAll(e.podRunDir(p.ID))
	os.RemoveAll(e.podPersistDir(p.ID))
	e.podRefused.Delete(p.ID) // its create refusals went with its directory
	return p, nil
}

// writePodFiles writes the pod's /etc/hostname, hosts and resolv.conf,
// which its containers bind.
func (e *Engine) writePodFiles(ctx context.Context, p *Pod, ips []netip.Addr) error {
	files := map[string][]byte{"hostname": []byte(p.Config.Hostname + "\n")}
	switch {
	case p.Config.Network == NetworkHost:
		files["hosts"], _ = os.ReadFile("/etc/hosts")
		files["resolv.conf"], _ = os.ReadFile("/etc/resolv.conf")
		if n := p.Config.Net; len(n.DNS) > 0 || len(n.DNSSearch) > 0 || len(n.DNSOptions) > 0 {
			// The pod's DNS options over the host's (a CRI sandbox's
			// DnsConfig on the host's network).
			resolv, _, _, err := network.ResolvConf(files["resolv.conf"], network.DNSOptions{Servers: n.DNS, Search: n.DNSSearch, Options: n.DNSOptions})
			if err != nil {
				return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("pod %s: %v", p.Name, err))
			}
			files["resolv.conf"] = resolv
		}
	case len(p.Config.Net.Networks) > 0:
		hosts, resolv, err := e.networkFiles(ctx, p.Config.Hostname, "", p.Config.Net, nil)
		if err != nil {
			return fmt.Errorf("pod %s: %w", p.Name, err)
		}
		if len(ips) > 0 {
			if hosts, _, err = e.networkFiles(ctx, p.Config.Hostname, "", p.Config.Net, ips); err != nil {
				return fmt.Errorf("pod %s: %w", p.Name, err)
			}
		}
		files["hosts"], files["resolv.conf"] = hosts, resolv
	default:
		files["hosts"] = []byte(defaultHosts + "127.0.0.1\t" + p.Config.Hostname + "\n")
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(e.podPersistDir(p.ID), name), data, 0o644); err != nil {
			return fmt.Errorf("pod %s: /etc/%s: %w", p.Name, name, err)
		}
	}
	return nil
}

// joinPod makes a new container's config join pod p (hull run --pod, a
// CRI container): its namespaces, its host name and its /etc files; the
// pod is started if it is not running. read is the pod's record if the
// caller has it (CreateOptions.Pod), else nil.
func (e *Engine) joinPod(ctx context.Context, cfg *Config, read *Pod) (*Pod, error) {
	p := read
	if p == nil || p.ID != cfg.Pod {
		var err error
		if p, err = e.GetPod(ctx, cfg.Pod); err != nil {
			return nil, err
		}
	} else {
		cp := *p // upPod may update it
		p = &cp
	}
	o, n := &cfg.Spec, &cfg.Net
	switch {
	case len(n.Networks) > 0 || (o.Network != "" && o.Network != NetworkBridge):
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--pod %s: a container in a pod uses the pod's network (give --network to hull pod create)", p.Name))
	case len(n.Ports) > 0 || n.PublishAll:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--pod %s: publish ports on the pod (hull pod create -p), not on its containers", p.Name))
	case o.Hostname != "" && p.shares("uts"):
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("--pod %s: the pod's containers share its host name %q (give --hostname to hull pod create)", p.Name, p.Config.Hostname))
	}
	if err := e.upPod(ctx, p); err != nil {
		return nil, err
	}
	cfg.Pod = p.ID
	*n = NetConfig{}
	o.Network = NetworkNone
	if p.Config.Network == NetworkHost && p.shares("net") {
		o.Network = NetworkHost
	} else if p.shares("net") {
		o.Network = "ns:" + e.podNS(p.ID, "net")
	}
	if p.shares("ipc") {
		o.IpcMode = "ns:" + e.podNS(p.ID, "ipc")
	}
	if p.shares("pid") {
		path := e.podPIDNS(p.ID)
		if path == "" {
			return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("pod %s: its PID namespace holder is gone: restart the pod (hull pod restart %s)", p.Name, p.Name))
		}
		o.PidMode = "ns:" + path
	}
	if p.shares("uts") {
		o.UTSMode = "ns:" + e.podNS(p.ID, "uts")
		o.Hostname = p.Config.Hostname
	}
	if o.CgroupParent == "" {
		o.CgroupParent = p.Config.CgroupParent
	}
	if err := e.joinPodUserns(p, o); err != nil {
		return nil, err
	}
	return p, nil
}

// podEtcFiles are the pod's files its container binds over /etc (name →
// path), for etcFiles.
func (e *Engine) podEtcFiles(podID string) map[string]string {
	out := map[string]string{}
	for _, name := range []string{"hostname", "hosts", "resolv.conf"} {
		path := filepath.Join(e.podPersistDir(podID), name)
		if _, err := os.Stat(path); err == nil {
			out[name] = path
		}
	}
	return out
}

// PodPorts are the ports a running pod publishes, with the host ports
// bound.
func (e *Engine) PodPorts(p *Pod) []PortMapping {
	var out []PortMapping
	for _, a := range e.podAttachments(p) {
		out = append(out, a.Ports...)
	}
	return out
}

// PodStatus is a pod's one-line status, podman's: Created, Running (with
// the count of running containers when not all are), Exited, Degraded.
func (e *Engine) PodStatus(p *Pod, cs []*Container) string {
	running := 0
	for _, c := range cs {
		if c.IsRunning() {
			running++
		}
	}
	switch {
	case p.State == PodCreated:
		return "Created"
	case p.State != PodRunning:
		return "Exited"
	case len(cs) > 0 && running == 0:
		return "Exited"
	case running < len(cs):
		return "Degraded"
	}
	return "Running"
}

// EachPodContainer runs fn on every running container of pod ref (pod
// kill, pause, unpause): the errors are joined, each naming its
// container.
func (e *Engine) EachPodContainer(ctx context.Context, ref string, running bool, fn func(c *Container) error) (*Pod, error) {
	p, cs, err := e.podWithContainers(ctx, ref)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, c := range cs {
		if running && !c.IsRunning() {
			continue
		}
		if err := fn(c); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: container %s: %w", p.Name, c.Name, err))
		}
	}
	return p, errors.Join(errs...)
}

// RestartPod stops a pod and starts it again, its containers with it.
func (e *Engine) RestartPod(ctx context.Context, ref string, timeout time.Duration) (*Pod, error) {
	p, err := e.StopPod(ctx, ref, timeout)
	if err != nil {
		return p, err
	}
	return e.StartPod(ctx, p.ID)
}

// PrunePods removes the pods that are not running and have no running
// container, and returns their IDs.
func (e *Engine) PrunePods(ctx context.Context) ([]string, error) {
	pods, err := e.ListPods(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, p := range pods {
		cs, err := e.PodContainers(ctx, p)
		if err != nil {
			return removed, err
		}
		if p.State == PodRunning || slices.ContainsFunc(cs, func(c *Container) bool { return c.IsRunning() }) {
			continue
		}
		if _, err := e.RemovePod(ctx, p.ID, true); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p.ID)
	}
	return removed, errors.Join(errs...)
}
