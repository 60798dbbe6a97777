package engine

import (
	"context"
	"crypto/rand"
	"database/sql"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/cgroups"
	"hull/internal/image"
	"hull/internal/reference"
	"hull/internal/snapshot"
	"hull/internal/spec"
	"hull/internal/trace"
)

// CreateOptions are `hull create`/`run` inputs beyond the container's Config.
type CreateOptions struct {
	Config Config
	Name   string
	// ID is the container's id when the caller chose it ahead (NewID), for
	// a spare monitor that starts the container's process early.
	ID string
	// Progress shows a pull that create needs.
	Progress image.Progress
	// OnPull is called before a pull starts (the CLI prints docker's
	// "Unable to find image ... locally").
	OnPull func(ref string)
	// Spare is a spare monitor of the caller's (NewSpare) to send the
	// container's spec and record ahead, for the caller to hand to Start
	// (StartOptions.Spare) later, maybe much later: config.json is then
	// written before Create returns, as without a spare. The caller keeps
	// it. nil: the engine's own spare, if any (UseSpare).
	Spare *Spare
	// Pod is the record of the pod Config.Pod names (by ID) when the
	// caller has just read it, as the CRI has: Create does not read it
	// again. nil: Create reads it.
	Pod *Pod
	// Image is the record of the image Config.Image names when the
	// caller has just resolved it, as the CRI has (from its view): with
	// Config.Pull "never", Create does not resolve it again. nil: Create
	// resolves it. Read only: the record may be shared.
	Image *image.Record
	// Deferred makes Create return once the container is recorded with
	// its image (create_deferred.go): the writable layer, the spec,
	// config.json and the spare's offer follow in the background, and
	// this engine's Start, Update and removals of the container wait for
	// them. For a long-lived server (the CRI's CreateContainer) whose
	// client starts the container in a later call; a failure of that
	// part is recorded (stage create) and returned by the Start.
	Deferred bool
	// Checkpoint, if set, makes the container one restored from that
	// checkpoint at its first start (restore.go): its image is the
	// checkpoint's, never pulled; the creation is never deferred and
	// uses no spare. The caller keeps (and closes) it.
	Checkpoint *Checkpoint
}

// StartError is a process that could not be started: a container's
// command (found missing at create, or failing at start) or an exec'd
// one. Reason says what failed, which front ends report differently
// (docker's CLI exits 127, 126 and 125); the class is the cause's.
type StartError struct {
	Reason StartReason
	Err    error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// StartReason is what kept a process from starting.
type StartReason int

const (
	// SetupFailed: hull or the runtime could not set the process up.
	SetupFailed StartReason = iota
	// CommandNotFound: the command does not exist in the container.
	CommandNotFound
	// CommandNotExecutable: the command exists but cannot be executed
	// (its mode, a directory, a binary for another architecture).
	CommandNotExecutable
)

// commandError is a command that cannot run for reason. The container's
// configuration names it, so its class is errdefs.ErrInvalidArgument (as
// moby classes it).
func commandError(reason StartReason, format string, args ...any) error {
	return &StartError{Reason: reason, Err: errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))}
}

// exitCode is the exit code a container's record keeps when err kept its
// process from starting, as docker's daemon records it: 127 for a missing
// command, 126 for one that cannot be executed, 125 for anything else.
// `hull why` reads it back. (The exit status of a command is its front
// end's to decide.)
func exitCode(err error) int {
	var se *StartError
	if errors.As(err, &se) {
		switch se.Reason {
		case CommandNotFound:
			return 127
		case CommandNotExecutable:
			return 126
		}
	}
	return 125
}

// startFailure is err, a start that failed with the exit code code (from
// a record or the monitor's report), as a StartError (exitCode reversed).
func startFailure(code int, err error) error {
	reason := SetupFailed
	switch code {
	case 127:
		reason = CommandNotFound
	case 126:
		reason = CommandNotExecutable
	}
	return &StartError{Reason: reason, Err: err}
}

// Create records a new container, pulls its image if the pull policy says
// so, prepares its writable layer and writes its OCI spec. A failure after
// the record exists leaves the container "created" with the error and the
// stage it reached, for `hull why`; the error is also returned.
func (e *Engine) Create(ctx context.Context, o CreateOptions) (c *Container, err error) {
	id := o.ID
	if id == "" {
		id = NewID()
	} else if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid container id %q: 64 hex digits", id))
	}
	name := o.Name
	if name == "" {
		name = randomName()
	} else if !validName(name) {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid container name %q: use [a-zA-Z0-9][a-zA-Z0-9_.-]*", name))
	}
	cfg := o.Config
	if o.Checkpoint != nil {
		if err := e.prepareRestore(ctx, id, o.Checkpoint, &cfg); err != nil {
			return nil, err
		}
		o.Deferred, o.Spare = false, nil
	}
	for _, vf := range cfg.VolumesFrom {
		if _, err := e.Get(ctx, vf.Container); err != nil {
			return nil, fmt.Errorf("--volumes-from %s: %w", vf.Container, err)
		}
	}
	if cfg.Pod != "" {
		if _, err := e.joinPod(ctx, &cfg, o.Pod); err != nil {
			return nil, err
		}
		trace.Mark("create: pod joined")
	}
	if err := e.resolveNetwork(ctx, &cfg); err != nil {
		return nil, err
	}
	trace.Mark("create: network resolved")
	cfg.Spec.ID = id
	cfg.Spec.Name = name
	if cfg.Spec.CgroupsPath == "" {
		cfg.Spec.CgroupsPath = containerCgroupsPath(id, cfg.Spec.CgroupParent)
	}
	if cfg.Pod != "" {
		// The spare starts the container's process meanwhile.
		sendEarly(o.Spare, id, &cfg.Spec)
	}
	// The record names this process as its creator (the claim): a
	// created container without a bundle whose creator is gone was being
	// created by a process that died (creationAbandoned; reconcile says
	// so). Its directories are made after the record, in the part of the
	// creation a deferred one does after the answer.
	c = &Container{ID: id, Name: name, Image: cfg.Image, Created: time.Now().UTC(), State: StateCreated, Stage: StagePull, Config: cfg}
	c.ClaimPid, c.ClaimStart = self()
	fail := func(stage string, err error) (*Container, error) {
		c.Stage, c.Error, c.ExitCode = stage, err.Error(), exitCode(err)
		e.update(ctx, c.ID, map[string]any{"stage": stage, "error": c.Error, "exit_code": c.ExitCode})
		return c, err
	}
	// An image that must be present (no pull) is resolved first and
	// recorded with the container, in one commit; otherwise the record
	// comes first, so that a pull that fails is recorded (forget).
	var rec *image.Record
	var cf *v1.ConfigFile
	if cfg.Pull == "never" {
		if rec, err = e.resolveImage(ctx, o); err == nil {
			if err := checkNotCheckpointImage(&o, rec); err != nil {
				return nil, err
			}
			cf, err = e.images.Config(rec)
		}
		if err != nil {
			rec = nil // the usual way below, for the same error
		}
	}
	var chains []string
	if rec != nil {
		chains = c.useImage(rec, cf)
		c.Stage = StageCreate
		err := e.insert(ctx, c, chains...)
		if errdefs.IsAlreadyExists(err) && e.awaitRemovalNamed(ctx, c.Name) {
			err = e.insert(ctx, c, chains...) // the name was being freed
		}
		if err != nil {
			return nil, err
		}
		trace.Mark("create: recorded")
	} else {
		err := e.insert(ctx, c)
		if errdefs.IsAlreadyExists(err) && e.awaitRemovalNamed(ctx, c.Name) {
			err = e.insert(ctx, c) // the name was being freed
		}
		if err != nil {
			return nil, err
		}
		trace.Mark("create: recorded")
		if rec, err = e.resolveImage(ctx, o); err != nil {
			return nil, e.forget(ctx, c, err)
		}
		if err := checkNotCheckpointImage(&o, rec); err != nil {
			return nil, e.forget(ctx, c, err)
		}
		if cf, err = e.images.Config(rec); err != nil {
			return nil, e.forget(ctx, c, err)
		}
		// The image and the layers it needs, retained for the container (a
		// layer retained is safe from a concurrent prune), in one commit.
		chains = c.useImage(rec, cf)
		err = e.db.Tx(ctx, func(tx *sql.Tx) error {
			if err := e.updateIn(ctx, tx, id, map[string]any{"image_id": c.ImageID, "image_digest": c.ImageDigest, "stage": StageCreate}); err != nil {
				return err
			}
			if len(chains) == 0 {
				return nil
			}
			return snapshot.RetainIn(tx, ownerKey(id), chains...)
		})
		if err != nil {
			return fail(StageCreate, fmt.Errorf("record the container's image: %w", err))
		}
		c.Stage = StageCreate
	}
	trace.Mark("create: image resolved")

	finish := func() (*Container, error) {

		parent := ""
		if len(chains) > 0 {
			parent = chains[len(chains)-1]
		}
		cfg := cfg // the deferred part's own
		// The state and run directories (config.json and the log; the
		// rootfs, attach socket and exit file) are made here, not with
		// the record: a mkdir is tens of microseconds on the answer's
		// path of a deferred creation.
		for _, dir := range []string{e.persistDir(id), e.runDir(id)} {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fail(StageCreate, err)
			}
		}
		if err := e.prepareRootfs(ctx, id, parent, cfg.AutoRemove, &cfg.Spec); err != nil {
			return fail(StageCreate, err)
		}
		trace.Mark("create: rootfs mounted")
		if cfg.Spec.Init && cfg.Spec.InitPath == "" {
			cfg.Spec.InitPath = e.InitPath
			if _, err := os.Stat(e.InitPath); err != nil {
				return fail(StageCreate, fmt.Errorf("--init needs the static init binary hull-init next to hull (make build puts it in bin/): %w", err))
			}
		}
		if err := e.resolveNamespaces(ctx, id, &cfg.Spec); err != nil {
			return fail(StageCreate, err)
		}
		c.Config.Spec = cfg.Spec
		if err := e.mountShm(c); err != nil {
			return fail(StageCreate, err)
		}
		if err := e.resolveVolumes(ctx, c, &cfg.Spec); err != nil {
			return fail(StageCreate, err)
		}
		if err := e.addVolumesFrom(ctx, &cfg); err != nil {
			return fail(StageCreate, err)
		}
		eff := spec.EffectiveConfig(cf, cfg.Spec, cfg.Labels, cfg.StopSignal)
		publishExposed(&cfg.Net, &eff)
		so, err := e.etcFiles(ctx, id, cfg.Net, cfg.Pod, e.volumeSpecMounts(ctx, cfg.Spec))
		if err != nil {
			return fail(StageCreate, err)
		}
		trace.Mark("create: etc files")
		s, err := spec.Generate(cf, e.rootfs(id), so)
		if err == nil && len(so.UIDMap) > 0 {
			err = e.mapSpec(id, s, &so)
		}
		trace.Mark("create: spec generated")
		if err != nil {
			return fail(StageCreate, err)
		}
		// config.json (the spec, a large document with a seccomp profile in
		// it) is encoded and written while the record is updated and the
		// entrypoint checked. A spare monitor that gets the spec now, in its
		// own encoding, needs no file: then the file is written once Start has
		// handed the container over, not while the creation ends (a first
		// JSON encoding of a spec is half a millisecond of processor time).
		c.Config = cfg
		c.Config.Effective = &eff
		c.Config.Healthcheck = e.containerHealthcheck(rec, cf, cfg.Healthcheck)
		if len(s.Process.Args) > 0 {
			c.Config.Path, c.Config.Args = s.Process.Args[0], s.Process.Args[1:]
		}
		c.config = &configWrite{done: make(chan error, 1), write: func() error { return e.writeConfig(id, s) }}
		offered := o.Checkpoint == nil && e.offerSpare(o.Spare, c, s)
		if o.Spare != nil {
			offered = false // the file is written now all the same
		}
		if !offered {
			c.startConfig()
		}
		args := commandOf(cfg.Spec, s.Process.Args)
		checked := make(chan error, 1)
		go func() {
			checked <- checkEntrypoint(e.rootfs(id), s.Process.Cwd, args, s.Process.Env)
		}()
		data, _ := json.Marshal(c.Config)
		e.update(ctx, id, map[string]any{"config": string(data)})
		trace.Mark("create: config recorded")
		if err := <-checked; err != nil {
			c.cannotRun = err
		}
		if !offered {
			if err := c.waitConfig(); err != nil {
				return fail(StageCreate, err)
			}
			trace.Mark("create: config.json written")
			if o.Checkpoint != nil {
				if err := e.installCheckpoint(ctx, c, o.Checkpoint); err != nil {
					return fail(StageCreate, err)
				}
			}
			return c, nil
		}
		// config.json is written by this process (its claim stands
		// until then: creationAbandoned).
		e.mu.Lock()
		e.unwritten = append(e.unwritten, c)
		e.mu.Unlock()
		return c, nil
	}
	if !o.Deferred {
		return finish()
	}
	ctx = context.WithoutCancel(ctx)
	e.deferCreation(c, func() { finish() })
	cp := *c // the deferred part goes on with c
	return &cp, nil
}

// useImage sets c's image fields from rec and its config cf, and
// returns the chain IDs of the layers the container needs (retained for
// it with its record).
func (c *Container) useImage(rec *image.Record, cf *v1.ConfigFile) []string {
	c.ImageID, c.ImageDigest = rec.ConfigID.String(), rec.Digest.String()
	c.ImageUser = cf.Config.User
	return layerChains(cf)
}

// containerCgroupsPath is the cgroups path of container id, under parent
// (its --cgroup-parent or pod's; "": the engine's own place).
func containerCgroupsPath(id, parent string) string {
	if parent == "" {
		return cgroups.EnginePath(id)
	}
	return path.Join("/", parent, cgroups.EnginePath(id))
}

// ensureConfig makes a container's config.json again from its record and
// its image if the file is missing. Create leaves the file to the command
// once a spare monitor has the spec (see Create); a command killed in
// that moment leaves a container that ran but has no bundle to start
// from again. The record holds the options the spec was generated from,
// volumes already resolved, so generating it again gives the same spec.
func (e *Engine) ensureConfig(ctx context.Context, c *Container) error {
	path := filepath.Join(e.persistDir(c.ID), "config.json")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if e.images == nil {
		return fmt.Errorf("container %s: its config.json is missing", c.Name)
	}
	rec, err := e.images.Resolve(ctx, c.ImageID)
	if err != nil {
		return fmt.Errorf("container %s: its config.json is missing, and its image %s, which it is made from, is gone: remove the container and run it again: %w", c.Name, c.Image, err)
	}
	cf, err := e.images.Config(rec)
	if err != nil {
		return fmt.Errorf("container %s: config.json: %w", c.Name, err)
	}
	so, err := e.etcFiles(ctx, c.ID, c.Config.Net, c.Config.Pod, e.volumeSpecMounts(ctx, c.Config.Spec))
	if err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	s, err := spec.Generate(cf, e.rootfs(c.ID), so)
	if err == nil && len(so.UIDMap) > 0 {
		err = e.mapSpec(c.ID, s, &so)
	}
	if err == nil {
		err = e.writeConfig(c.ID, s)
	}
	if err != nil {
		return fmt.Errorf("container %s: config.json: %w", c.Name, err)
	}
	return nil
}

// defaultHosts is docker's /etc/hosts for a container without a network
// of its own to name (libnetwork's etchosts defaults).
const defaultHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

// etcFiles writes container id's /etc/hostname and /etc/hosts (and, with
// the host's network, /etc/resolv.conf) in its state directory and returns
// o with them as bind mounts, as docker does: programs expect the files
// (localhost must resolve), and binding them leaves the image's untouched.
// With the host's network the hosts and resolv.conf are copies of the
// host's; with none, hosts has the loopback names and there is no
// resolv.conf of ours (nothing to resolve with).
func (e *Engine) etcFiles(ctx context.Context, id string, n NetConfig, podID string, o spec.Options) (spec.Options, error) {
	if podID != "" {
		// A pod's container binds the pod's files: one /etc/hosts for
		// all of them, as their network is one.
		extra := make([]specs.Mount, 0, 3+len(o.ExtraMounts))
		for name, path := range e.podEtcFiles(podID) {
			extra = append(extra, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: path, Options: etcMountOptions(o)})
		}
		o.ExtraMounts = append(extra, o.ExtraMounts...)
		return o, nil
	}
	hostname, err := spec.Hostname(o)
	if err != nil {
		return o, err
	}
	// Without a network the container's own name resolves to loopback,
	// so programs that look themselves up (hostname -i, sudo) work.
	files := []struct{ name, data string }{{"hostname", hostname + "\n"}, {"hosts", defaultHosts + "127.0.0.1\t" + hostname + "\n"}}
	if joinsNetworks(netMode(o)) && len(n.Networks) > 0 {
		hosts, resolv, err := e.networkFiles(ctx, hostname, o.Domainname, n, nil)
		if err != nil {
			return o, err
		}
		files[1].data = string(hosts)
		files = append(files, struct{ name, data string }{"resolv.conf", string(resolv)})
	}
	if o.Network == "host" {
		hosts, err := os.ReadFile("/etc/hosts")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return o, fmt.Errorf("read the host's /etc/hosts: %w", err)
		}
		if err == nil {
			files[1].data = string(hosts)
		}
		if resolv, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			files = append(files, struct{ name, data string }{"resolv.conf", string(resolv)})
		}
	}
	extra := make([]specs.Mount, 0, len(files)+len(o.ExtraMounts))
	opts := etcMountOptions(o)
	for _, f := range files {
		path := filepath.Join(e.persistDir(id), f.name)
		if err := os.WriteFile(path, []byte(f.data), 0o644); err != nil {
			return o, fmt.Errorf("write /etc/%s: %w", f.name, err)
		}
		extra = append(extra, specs.Mount{Destination: "/etc/" + f.name, Type: "bind", Source: path, Options: opts})
	}
	o.ExtraMounts = append(extra, o.ExtraMounts...)
	return o, nil
}

// etcMountOptions are the bind mount options of a container's /etc
// files: read-only with a read-only root filesystem.
func etcMountOptions(o spec.Options) []string {
	opts := []string{"rbind", "rprivate", "nosuid", "nodev", "noexec"}
	if o.ReadOnlyRootfs {
		opts = append(opts, "ro")
	}
	return opts
}

// writeConfig writes s as container id's config.json, its bundle.
func (e *Engine) writeConfig(id string, s *specs.Spec) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(e.persistDir(id), "config.json"), data)
}

// configWrite is the writing of a container's config.json, which Create
// may leave to later (see Create): started once, waited for by anyone.
type configWrite struct {
	once  sync.Once
	done  chan error
	write func() error
}

// startConfig starts writing the config.json Create left to later, if
// any and not started yet.
func (c *Container) startConfig() {
	if w := c.config; w != nil {
		w.once.Do(func() { go func() { w.done <- w.write() }() })
	}
}

// waitConfig writes the config.json Create left to later, if it has not
// started yet, and waits for it; nil if there is none.
func (c *Container) waitConfig() error {
	if c.config == nil {
		return nil
	}
	c.startConfig()
	err := <-c.config.done
	c.config.done <- err // for another wait
	if err != nil {
		return fmt.Errorf("container %s: config.json: %w", c.Name, err)
	}
	return nil
}

// forget removes the record of a container whose image could not be had:
// docker keeps nothing then, so its name is free for the next try. Its
// destroy event keeps the error for `hull why` (see whyForgotten).
func (e *Engine) forget(ctx context.Context, c *Container, cause error) error {
	err := e.db.Tx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM containers WHERE id = ?`, c.ID); err != nil {
			return err
		}
		e.emitIn(ctx, tx, c, "destroy", map[string]string{"error": cause.Error(), "stage": StagePull})
		return nil
	})
	os.RemoveAll(e.persistDir(c.ID))
	os.RemoveAll(e.runDir(c.ID))
	if err != nil {
		cause = fmt.Errorf("%w (and its record could not be removed: %v)", cause, err)
	}
	return &StartError{Reason: SetupFailed, Err: cause}
}

// insert records a new container with its create event, and retains the
// layers chains for it (its image's, when known already), in one
// transaction, and makes its persistent directory (Create makes its run
// directory in the part it may defer).
func (e *Engine) insert(ctx context.Context, c *Container, chains ...string) error {
	data, _ := json.Marshal(c.Config)
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO containers(id, name, image, created, state, stage, config, image_id, image_digest, claim_pid, claim_start) VALUES(?,?,?,?,?,?,?,?,?,?,?)`,
			c.ID, c.Name, c.Image, nanos(c.Created), c.State, c.Stage, string(data), c.ImageID, c.ImageDigest, c.ClaimPid, c.ClaimStart)
		if err != nil {
			return err
		}
		e.emitIn(ctx, tx, c, "create", nil)
		if len(chains) == 0 {
			return nil
		}
		return snapshot.RetainIn(tx, ownerKey(c.ID), chains...)
	})
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return errdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("the container name %q is already in use; remove that container (hull rm %s) or choose another name", c.Name, c.Name))
		}
		return fmt.Errorf("record container %s: %w", c.Name, err)
	}
	return nil
}

// update sets columns of one container.
func (e *Engine) update(ctx context.Context, id string, cols map[string]any) error {
	return e.updateIn(ctx, e.db, id, cols)
}

// sqlExpr is a column's new value computed by SQL (updateIn), for a change
// that depends on the row's current value.
type sqlExpr struct {
	expr string
	args []any
}

// updateIn is update as part of x.
func (e *Engine) updateIn(ctx context.Context, x execer, id string, cols map[string]any) error {
	_, err := e.updateWhereIn(ctx, x, id, "", nil, cols)
	return err
}

// updateWhereIn is updateIn only where cond (SQL, with its args) also
// holds; it returns how many rows it changed (0 or 1).
func (e *Engine) updateWhereIn(ctx context.Context, x execer, id, cond string, condArgs []any, cols map[string]any) (int64, error) {
	var sets []string
	var args []any
	for k, v := range cols {
		if x, ok := v.(sqlExpr); ok {
			sets = append(sets, k+" = "+x.expr)
			args = append(args, x.args...)
			continue
		}
		sets = append(sets, k+" = ?")
		args = append(args, v)
	}
	args = append(args, id)
	where := ""
	if cond != "" {
		where, args = " AND "+cond, append(args, condArgs...)
	}
	res, err := x.ExecContext(context.WithoutCancel(ctx), `UPDATE containers SET `+strings.Join(sets, ", ")+` WHERE id = ?`+where, args...)
	if err != nil {
		return 0, fmt.Errorf("update container %s: %w", id, err)
	}
	return res.RowsAffected()
}

// resolveImage finds the image locally or pulls it, per the pull policy
// (missing: pull if absent, always, never).
func (e *Engine) resolveImage(ctx context.Context, o CreateOptions) (*image.Record, error) {
	if o.Checkpoint != nil {
		return e.images.Resolve(ctx, o.Checkpoint.Record.ImageID)
	}
	ref := o.Config.Image
	policy := o.Config.Pull
	if policy == "" {
		policy = "missing"
	}
	if o.Image != nil && policy == "never" {
		return o.Image, nil
	}
	if policy != "always" {
		rec, err := e.images.Resolve(ctx, ref)
		if err == nil && o.Config.Platform != "" {
			// As docker: an image present for another platform than
			// --platform asks for is pulled for that one.
			err = e.checkPlatform(rec, o.Config.Platform)
		}
		if err == nil || policy == "never" {
			if err != nil {
				return nil, fmt.Errorf("image %s is not present and --pull=never forbids pulling it: %w", ref, err)
			}
			return rec, nil
		}
	}
	if reference.LooksLikeID(ref) && !strings.Contains(ref, "/") && len(strings.TrimPrefix(ref, "sha256:")) >= 12 {
		if rec, err := e.images.Resolve(ctx, ref); err == nil {
			return rec, nil
		}
	}
	if o.OnPull != nil {
		o.OnPull(ref)
	}
	p, err := image.ParsePlatform(o.Config.Platform)
	if err != nil {
		return nil, err
	}
	res, err := e.images.Pull(ctx, ref, image.PullOptions{Platform: p, PlatformExplicit: o.Config.Platform != "", Progress: o.Progress})
	if err != nil {
		return nil, err
	}
	return e.images.Resolve(ctx, res.Ref.String())
}

// checkPlatform fails if rec's image is not for the platform named.
func (e *Engine) checkPlatform(rec *image.Record, platform string) error {
	want, err := image.ParsePlatform(platform)
	if err != nil {
		return err
	}
	cf, err := e.images.Config(rec)
	if err != nil {
		return err
	}
	if !want.Runs(cf) {
		return fmt.Errorf("the image present is for %s, not %s", image.PlatformOf(cf), want)
	}
	return nil
}

// prepareRootfs makes the container's writable snapshot over the image's
// layers (parent: the top one's chain ID, retained already; "" for none)
// and mounts it.
func (e *Engine) prepareRootfs(ctx context.Context, id, parent string, volatile bool, o *spec.Options) error {
	mounts, err := e.snap.Prepare(ctx, snapshotKey(id), parent)
	if err != nil {
		return fmt.Errorf("prepare the container's writable layer: %w", err)
	}
	return e.mountLayer(id, volatile, o, mounts) // a layer just made is mounted nowhere
}

// mountRootfs mounts the container's snapshot unless it is mounted (after a
// reboot it is not), and in a user namespace what its spec binds from
// its mapped directory (userns.go).
func (e *Engine) mountRootfs(ctx context.Context, id string, volatile bool, o *spec.Options) error {
	if !isMounted(e.rootfs(id)) {
		if err := e.mount(ctx, id, volatile, o); err != nil {
			return err
		}
	}
	if len(o.UIDMap) > 0 {
		return e.mountMapped(id, o, nil)
	}
	return nil
}

// mount mounts the container's snapshot on its rootfs. A volatile mount
// (a --rm container's, as podman does) skips every sync of the writable
// layer, at its unmount too: the layer is thrown away when the container
// exits, and never remounted after a crash.
// Kernels before 5.10 lack the option; the mount is then an ordinary one.
func (e *Engine) mount(ctx context.Context, id string, volatile bool, o *spec.Options) error {
	mounts, err := e.snap.Mounts(ctx, snapshotKey(id))
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	return e.mountLayer(id, volatile, o, mounts)
}

// mountLayer is mount of the snapshot's mounts, as read already (Prepare
// returns them: Create reads them once).
func (e *Engine) mountLayer(id string, volatile bool, o *spec.Options, mounts []snapshot.Mount) error {
	target := e.rootfs(id)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	mountAll := snapshot.MountAll
	if len(o.UIDMap) > 0 {
		mountAll = func(ms []snapshot.Mount, _ string) error { return e.mountIDMappedRootfs(id, ms, o) }
	}
	if volatile {
		if err := snapshot.ClearVolatile(mounts); err != nil {
			return err
		}
		err := mountAll(snapshot.Volatile(mounts), target)
		if err == nil || !errors.Is(err, unix.EINVAL) {
			return err
		}
	}
	if err := mountAll(mounts, target); err != nil {
		return fmt.Errorf("mount the container's root filesystem: %w", err)
	}
	return nil
}

func isMounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// writeFile writes data as path, whole or not at all (a rename).
func writeFile(path string, data []byte) error {
	// A temporary file of its own: two writers of the same file (the
	// command and a monitor making a missing config.json again) each
	// rename a whole file into place.
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// commandOf is the container's own command in args, the process's
// arguments: after hull-init's with --init.
func commandOf(o spec.Options, args []string) []string {
	if o.Init && len(args) >= 2 {
		return args[2:] // hull-init -- COMMAND...
	}
	return args
}

// cannotRun finds why c's command cannot run (Create found it for the
// container it returned): the check Create makes, again over its mounted
// root filesystem. Nil if it can, or if the record predates what the
// check needs.
func (e *Engine) cannotRun(c *Container, created bool) error {
	if created || c.Config.Effective == nil {
		return c.cannotRun
	}
	eff := c.Config.Effective
	cwd := eff.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	args := commandOf(c.Config.Spec, append([]string{c.Config.Path}, c.Config.Args...))
	return checkEntrypoint(e.rootfs(c.ID), cwd, args, eff.Env)
}

// checkEntrypoint finds the command in the container's root filesystem as
// the runtime will, so that "not found", "not executable" and "built for
// another architecture" are reported as a StartError with a clear
// reason (docker's exit codes 127, 126), instead of as a bare exit
// status. A relative name with a slash (./app) is found from cwd, the working
// directory the process starts in, as execve finds it there.
func checkEntrypoint(rootfs, cwd string, args, env []string) error {
	if len(args) == 0 {
		return errdefs.ErrInvalidArgument.WithMessage("no command specified: the image has no ENTRYPOINT or CMD; give one after the image name")
	}
	name := args[0]
	var candidates []string
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			if cwd == "" {
				cwd = "/"
			}
			name = filepath.Join(cwd, name)
		}
		candidates = []string{name}
	} else {
		path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		for _, dir := range filepath.SplitList(path) {
			candidates = append(candidates, filepath.Join(dir, name))
		}
	}
	var notExec string
	for _, cand := range candidates {
		p, err := securejoin.SecureJoin(rootfs, cand)
		if err != nil {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			// A PATH entry may hold a directory of the name; execve of a
			// named directory fails with EACCES, which docker reports 126.
			if strings.Contains(args[0], "/") {
				return commandError(CommandNotExecutable, "%s is a directory (permission denied): give a program to run", cand)
			}
			continue
		}
		if fi.Mode()&0o111 == 0 {
			notExec = cand
			continue
		}
		if f, err := elf.Open(p); err == nil {
			m := f.Machine
			f.Close()
			if want, ok := elfMachine[goruntime.GOARCH]; ok && m != want {
				return commandError(CommandNotExecutable, "exec format error: %s is built for %s, but this host is %s (pull the image for this platform)", cand, m, goruntime.GOARCH)
			}
		}
		return nil
	}
	if notExec != "" {
		return commandError(CommandNotExecutable, "%s is not executable (permission denied): check its mode in the image", notExec)
	}
	if strings.Contains(name, "/") {
		return commandError(CommandNotFound, "entrypoint %s not found in the image", name)
	}
	return commandError(CommandNotFound, "entrypoint %q not found: no executable of that name in the image's PATH", name)
}

var elfMachine = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// NewID returns a new random container id.
func NewID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && strings.ContainsRune("_.-", r)
		if !ok {
			return false
		}
	}
	return true
}

var (
	adjectives = []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nimble", "proud", "quiet", "sharp", "steady", "swift", "tender", "vivid", "witty", "zealous"}
	nouns      = []string{"babbage", "curie", "darwin", "euler", "faraday", "galileo", "hopper", "kepler", "lovelace", "maxwell", "newton", "noether", "pascal", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak", "yalow"}
)

func randomName() string {
	pick := func(list []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
		return list[n.Int64()]
	}
	suffix := make([]byte, 2)
	rand.Read(suffix)
	return pick(adjectives) + "_" + pick(nouns) + "_" + hex.EncodeToString(suffix)
}

// creationLock is the lock file hull versions before the creation claim
// (Create) held in a container's state directory while creating it:
// sweepUnrecorded still spares a directory whose lock is held.
func (e *Engine) creationLock(id string) string {
	return filepath.Join(e.persistDir(id), "create.lock")
}

// lockFile takes an exclusive flock on path, made if missing; the
// returned func releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// creationAbandoned reports a container whose creation never finished and
// whose creating process is gone.
func (e *Engine) creationAbandoned(c *Container) bool {
	if c.State != StateCreated || c.Error != "" {
		return false
	}
	config := filepath.Join(e.persistDir(c.ID), "config.json")
	if _, err := os.Stat(config); err == nil {
		return false
	}
	if !c.claimAbandoned() {
		return false // its creator is alive: still at work
	}
	// The creator may have written config.json and ended between the
	// look above and the claim's: only a file still missing now means
	// it died first.
	_, err := os.Stat(config)
	return errors.Is(err, os.ErrNotExist)
}
