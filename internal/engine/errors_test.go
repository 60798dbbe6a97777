package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"hull/internal/image"
	"hull/internal/metadata"
	"hull/internal/reference"
	"hull/internal/runtime"
	"hull/internal/snapshot"
	"hull/internal/store"
)

// classIs is the errdefs test of each class.
var classIs = map[error]func(error) bool{
	errdefs.ErrInvalidArgument:    errdefs.IsInvalidArgument,
	errdefs.ErrNotFound:           errdefs.IsNotFound,
	errdefs.ErrAlreadyExists:      errdefs.IsAlreadyExists,
	errdefs.ErrFailedPrecondition: errdefs.IsFailedPrecondition,
	errdefs.ErrConflict:           errdefs.IsConflict,
	errdefs.ErrResourceExhausted:  errdefs.IsResourceExhausted,
	errdefs.ErrUnavailable:        errdefs.IsUnavailable,
	errdefs.ErrDataLoss:           errdefs.IsDataLoss,
	errdefs.ErrUnauthenticated:    errdefs.IsUnauthorized,
	errdefs.ErrNotImplemented:     errdefs.IsNotImplemented,
}

// checkClass fails unless err, wrapped as callers wrap it, is of class:
// by its errdefs.IsXxx test and by errdefs.Resolve, which the CRI server's
// gRPC mapping (errgrpc) uses and which takes the first class it meets.
// The class must not show in the message.
func checkClass(t *testing.T, name string, err, class error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", name)
		return
	}
	wrapped := fmt.Errorf("context: %w", err)
	if is := classIs[class]; is == nil {
		t.Fatalf("%s: no test for class %v", name, class)
	} else if !is(wrapped) {
		t.Errorf("%s (%v): not of class %q", name, err, class)
	}
	if got := errdefs.Resolve(wrapped); got != class {
		t.Errorf("%s (%v): resolves to class %q, want %q", name, err, got, class)
	}
	if strings.HasSuffix(err.Error(), ": "+class.Error()) {
		t.Errorf("%s: the class shows in the message %q", name, err)
	}
}

// The errors of the packages below the engine, as front ends get them.
func TestErrorClassesOfThePackages(t *testing.T) {
	_, refErr := reference.Parse("")
	for _, c := range []struct {
		name  string
		err   error
		class error
	}{
		{"reference.Error", refErr, errdefs.ErrInvalidArgument},
		{"image.NotFoundError", &image.NotFoundError{Name: "nosuch"}, errdefs.ErrNotFound},
		{"image.Error invalid reference", &image.Error{Op: "pull", Kind: image.ErrInvalidReference, Err: refErr}, errdefs.ErrInvalidArgument},
		{"image.Error unreachable", &image.Error{Op: "pull", Kind: image.ErrUnreachable, Err: syscall.ECONNREFUSED}, errdefs.ErrUnavailable},
		{"image.Error unauthorized", &image.Error{Op: "login", Kind: image.ErrUnauthorized, Err: errors.New("incorrect username or password")}, errdefs.ErrUnauthenticated},
		{"image.Error manifest unknown", &image.Error{Op: "pull", Kind: image.ErrNotFound, Err: errors.New(`tag "x" does not exist`)}, errdefs.ErrNotFound},
		{"image.Error no platform", &image.Error{Op: "pull", Kind: image.ErrNoPlatform}, errdefs.ErrNotFound},
		{"image.Error digest mismatch", &image.Error{Op: "pull", Kind: image.ErrDigestMismatch, Err: &store.DigestError{}}, errdefs.ErrDataLoss},
		{"image.Error unsupported", &image.Error{Op: "pull", Kind: image.ErrUnsupported, Err: errors.New("schema 1")}, errdefs.ErrNotImplemented},
		{"image.Error disk full", &image.Error{Op: "pull", Kind: image.ErrDiskFull, Err: store.ErrDiskFull}, errdefs.ErrResourceExhausted},
		{"image.Error insecure", &image.Error{Op: "pull", Kind: image.ErrInsecure, Err: errors.New("http response to https client")}, errdefs.ErrFailedPrecondition},
		{"image.Error download", &image.Error{Op: "pull", Kind: image.ErrDownload, Err: syscall.ECONNRESET}, errdefs.ErrUnavailable},
		{"store.DigestError", &store.DigestError{}, errdefs.ErrDataLoss},
		{"store.SizeError", &store.SizeError{}, errdefs.ErrDataLoss},
		{"store.ErrDiskFull", fmt.Errorf("%w: %w", store.ErrDiskFull, syscall.ENOSPC), errdefs.ErrResourceExhausted},
		{"metadata.DamagedError", &metadata.DamagedError{Path: "hull.db", Err: metadata.ErrEmpty}, errdefs.ErrDataLoss},
		{"metadata.DiskFullError", &metadata.DiskFullError{Dir: "/", Err: syscall.ENOSPC}, errdefs.ErrResourceExhausted},
		{"snapshot.ErrNotFound", snapshot.ErrNotFound, errdefs.ErrNotFound},
		{"snapshot.ErrExists", snapshot.ErrExists, errdefs.ErrAlreadyExists},
		{"snapshot.LimitError", &snapshot.LimitError{What: "entry count", Limit: 1}, errdefs.ErrResourceExhausted},
		{"snapshot.ImageLimitError", &snapshot.ImageLimitError{Limit: 1}, errdefs.ErrResourceExhausted},
		{"snapshot.DiffIDError", &snapshot.DiffIDError{}, errdefs.ErrDataLoss},
		{"runtime.ErrNotExist", runtime.ErrNotExist, errdefs.ErrNotFound},
	} {
		checkClass(t, c.name, c.err, c.class)
	}
	// The sentinels stay themselves for errors.Is.
	if errors.Is(snapshot.ErrNotFound, runtime.ErrNotExist) || !errors.Is(fmt.Errorf("x: %w", snapshot.ErrNotFound), snapshot.ErrNotFound) {
		t.Error("snapshot.ErrNotFound is not distinct from runtime.ErrNotExist")
	}
	if got := snapshot.ErrNotFound.Error(); got != "snapshot not found" {
		t.Errorf("snapshot.ErrNotFound says %q", got)
	}
}

// The engine's own errors, as its calls return them.
func TestErrorClassesOfTheEngine(t *testing.T) {
	e, c := createdTestContainer(t, "classy")
	ctx := context.Background()
	errOf := func(_ any, err error) error { return err }
	_, execMissing := e.Exec(ctx, "nosuch", ExecSpec{Args: []string{"true"}}, ExecIO{})
	_, execCreated := e.Exec(ctx, c.Name, ExecSpec{Args: []string{"true"}}, ExecIO{})
	other := &Container{ID: "0123456789ac", Name: "other", Image: "busybox", State: StateCreated, Stage: StageCreate}
	if err := e.insert(ctx, other); err != nil {
		t.Fatal(err)
	}
	sameName := &Container{ID: "0123456789ad", Name: c.Name, Image: "busybox", State: StateCreated, Stage: StageCreate}
	failed := &Container{ID: c.ID, Name: c.Name, State: StateCreated, Stage: StageCreate, Error: "entrypoint x not found", ExitCode: 127}
	for _, tc := range []struct {
		name  string
		err   error
		class error
	}{
		{"Get of a missing container", errOf(e.Get(ctx, "nosuch")), errdefs.ErrNotFound},
		{"Get of an ambiguous prefix", errOf(e.Get(ctx, "0123456789a")), errdefs.ErrInvalidArgument},
		{"Volume of a missing volume", errOf(e.Volume(ctx, "nosuch")), errdefs.ErrNotFound},
		{"CreateVolume with a bad name", errOf(e.CreateVolume(ctx, "-", nil, nil)), errdefs.ErrInvalidArgument},
		{"Create with a bad name", errOf(e.Create(ctx, CreateOptions{Name: "-bad"})), errdefs.ErrInvalidArgument},
		{"Create with a bad id", errOf(e.Create(ctx, CreateOptions{ID: "xyz"})), errdefs.ErrInvalidArgument},
		{"a name in use", e.insert(ctx, sameName), errdefs.ErrAlreadyExists},
		{"Rename to a bad name", e.Rename(ctx, c.Name, "-bad"), errdefs.ErrInvalidArgument},
		{"Rename to a name in use", e.Rename(ctx, c.Name, "other"), errdefs.ErrAlreadyExists},
		{"Pause of a created container", e.Pause(ctx, c.Name), errdefs.ErrFailedPrecondition},
		{"Unpause of a created container", e.Unpause(ctx, c.Name), errdefs.ErrFailedPrecondition},
		{"Kill of a created container", e.Kill(ctx, c.Name, unix.SIGTERM), errdefs.ErrFailedPrecondition},
		{"Exec in a missing container", execMissing, errdefs.ErrNotFound},
		{"Exec in a created container", execCreated, errdefs.ErrFailedPrecondition},
		{"Start of a container whose create failed", errOf(e.Start(ctx, c.Name, StartOptions{Created: failed})), errdefs.ErrFailedPrecondition},
		{"ParseSignal", errOf(ParseSignal("NOSUCH")), errdefs.ErrInvalidArgument},
	} {
		checkClass(t, tc.name, tc.err, tc.class)
	}
	var se *StartError
	if _, err := e.Start(ctx, c.Name, StartOptions{Created: failed}); !errors.As(err, &se) || se.Reason != CommandNotFound {
		t.Errorf("start of a container whose command was not found: %#v, want a StartError CommandNotFound", err)
	}

	// A container being removed, or running.
	self, start := self()
	if err := e.update(ctx, c.ID, map[string]any{"state": StateRemoving, "claim_pid": self, "claim_start": start}); err != nil {
		t.Fatal(err)
	}
	checkClass(t, "Remove of a container being removed", e.Remove(ctx, c.Name, false), errdefs.ErrConflict)
	checkClass(t, "Start of a container being removed", errOf(e.Start(ctx, c.Name, StartOptions{})), errdefs.ErrConflict)
	if err := e.update(ctx, c.ID, map[string]any{"state": StateRunning, "pid": self, "pid_start": start,
		"monitor_pid": self, "monitor_start": start, "claim_pid": 0}); err != nil {
		t.Fatal(err)
	}
	checkClass(t, "Remove of a running container", e.Remove(ctx, c.Name, false), errdefs.ErrFailedPrecondition)
}

// checkEntrypoint says what keeps the command from running, and the
// record keeps docker's exit code for it.
func TestEntrypointErrors(t *testing.T) {
	rootfs := t.TempDir()
	for _, d := range []string{"bin", "etc", "dir"} {
		if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/bin"}
	for _, tc := range []struct {
		args   []string
		reason StartReason // when a StartError
		code   int
	}{
		{nil, -1, 125},
		{[]string{"nosuch"}, CommandNotFound, 127},
		{[]string{"/bin/nosuch"}, CommandNotFound, 127},
		{[]string{"/etc/passwd"}, CommandNotExecutable, 126},
		{[]string{"/dir"}, CommandNotExecutable, 126},
	} {
		err := checkEntrypoint(rootfs, "/", tc.args, env)
		var se *StartError
		switch {
		case tc.reason < 0 && errors.As(err, &se):
			t.Errorf("%q: %v is a StartError", tc.args, err)
		case tc.reason >= 0 && (!errors.As(err, &se) || se.Reason != tc.reason):
			t.Errorf("%q: %#v, want a StartError with reason %d", tc.args, err, tc.reason)
		}
		checkClass(t, fmt.Sprintf("checkEntrypoint(%q)", tc.args), err, errdefs.ErrInvalidArgument)
		if got := exitCode(err); got != tc.code {
			t.Errorf("%q: exit code %d, want %d", tc.args, got, tc.code)
		}
		if got := exitCode(startFailure(tc.code, err)); got != tc.code {
			t.Errorf("%q: startFailure(%d) gives back %d", tc.args, tc.code, got)
		}
	}
}
