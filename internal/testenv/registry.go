// Package testenv is the harness every hull test builds on: a real registry
// process (the CNCF distribution server packaged by Debian as docker-registry)
// on 127.0.0.1, and deterministic fixture images built from Debian's
// busybox-static and pushed to it.
//
// Tests use NewRegistry / NewAuthRegistry and PushFixturesT, which register
// cleanups so the registry process and its data are gone even when the test
// fails or panics. Scripts use StartRegistry / PushFixtures through
// hack/testenv.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the distribution server the harness runs.
const RegistryBinary = "/usr/bin/docker-registry"

// startTimeout bounds how long a registry may take to answer GET /v2/. It is
// a failure deadline for a hung server, not a performance expectation.
const startTimeout = 30 * time.Second

// Registry is a running docker-registry process serving plain HTTP on
// 127.0.0.1.
type Registry struct {
	// Addr is "127.0.0.1:PORT", the registry part of every reference.
	Addr string
	// Dir holds config.yml, registry.log, htpasswd (with auth) and the
	// blob data under data/.
	Dir string
	// User and Password are the only accepted credentials when the registry
	// was started with auth; both are empty otherwise.
	User, Password string

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has been reaped
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// RegistryOptions configure StartRegistryWith.
type RegistryOptions struct {
	// User and Password, when set, turn on htpasswd basic auth: every
	// request without these credentials gets 401 Unauthorized.
	User, Password string
}

// StartRegistry starts an anonymous registry whose state lives in dir (created
// if missing). The caller must call Stop.
func StartRegistry(dir string) (*Registry, error) {
	return StartRegistryWith(dir, RegistryOptions{})
}

// StartRegistryWith starts a registry with the given options whose state
// lives in dir (created if missing). The caller must call Stop.
func StartRegistryWith(dir string, opts RegistryOptions) (*Registry, error) {
	if (opts.User == "") != (opts.Password == "") {
		return nil, fmt.Errorf("start registry in %s: auth needs both a user and a password", dir)
	}
	if _, err := os.Stat(RegistryBinary); err != nil {
		return nil, fmt.Errorf("start registry: %w (install the Debian package docker-registry, or run hack/deps.sh)", err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start registry in %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	if opts.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("start registry: hash password for %s: %w", opts.User, err)
		}
		line := opts.User + ":" + string(hash) + "\n"
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(line), 0o600); err != nil {
			return nil, fmt.Errorf("start registry: %w", err)
		}
	}

	// The port is picked by binding :0 and closing the socket, so another
	// process can take it before the registry binds; a lost race shows up
	// as the registry exiting at once, and we try again with a new port.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("start registry: %w", err)
		}
		r := &Registry{
			Addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Dir:      dir,
			User:     opts.User,
			Password: opts.Password,
		}
		err = r.start()
		if err == nil {
			return r, nil
		}
		lastErr = err
		// A registry that never answered on its port (the port taken
		// meanwhile by something that accepts and stays silent, or whose
		// connections a published port's DNAT rule redirects) is tried
		// again on another port, as one that lost the bind race.
		if !strings.Contains(err.Error(), "address already in use") && !errors.Is(err, errNoAnswer) {
			break
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (r *Registry) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: hull-testenv
`, filepath.Join(r.Dir, "data"), r.Addr)
	if r.User != "" {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: hull-test
    path: %s
`, filepath.Join(r.Dir, "htpasswd"))
	}
	return b.String()
}

func (r *Registry) start() error {
	cfgPath := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(r.config()), 0o644); err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	logPath := filepath.Join(r.Dir, "registry.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	defer logFile.Close()

	cmd := exec.Command(RegistryBinary, "serve", cfgPath)
	// REGISTRY_* variables override the config file; keep the caller's
	// environment out so the config above is the whole truth.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + r.Dir}
	cmd.Dir = r.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Pdeathsig kills the registry if this process dies without running
	// its cleanups (SIGKILL, a crashed test binary).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r.cmd = cmd
	r.done = make(chan struct{})

	// Pdeathsig fires when the *thread* that forked the child exits, and Go
	// destroys a thread whose goroutine exits while locked to it (tests of
	// namespaces do that on purpose). So fork from a goroutine that holds
	// its own thread for as long as the registry lives.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(r.done)
			return
		}
		started <- nil
		r.waitErr = cmd.Wait()
		close(r.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start registry %s: %w", RegistryBinary, err)
	}

	if err := r.waitReady(); err != nil {
		r.Stop()
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("start registry on %s: %w; log: %s", r.Addr, err, lastLines(log, 10))
	}
	return nil
}

// errNoAnswer is waitReady's failure when the registry process lives but
// its port does not answer.
var errNoAnswer = errors.New("no answer")

// waitReady polls GET /v2/ until the registry answers (200, or 401 with
// auth) or the process exits.
func (r *Registry) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + r.Addr + "/v2/"
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-r.done:
			return fmt.Errorf("registry exited before serving: %v", r.waitErr)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %v: %w", errNoAnswer, startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// PID is the registry process id.
func (r *Registry) PID() int { return r.cmd.Process.Pid }

// Done is closed once the registry process has exited and been reaped.
func (r *Registry) Done() <-chan struct{} { return r.done }

// Stop terminates the registry (SIGTERM, then SIGKILL after 5s) and waits for
// it. It leaves Dir in place. Calling it again is harmless.
func (r *Registry) Stop() error {
	r.stopOnce.Do(func() {
		select {
		case <-r.done:
			return // already gone (or never started)
		default:
		}
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			r.stopErr = fmt.Errorf("stop registry %s (pid %d): %w", r.Addr, r.PID(), err)
		}
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r.stopErr
}

// Ref joins the registry address and a repository path: Ref("x/y:1") is
// "127.0.0.1:PORT/x/y:1".
func (r *Registry) Ref(repo string) string { return r.Addr + "/" + repo }

// Auth is the authenticator that the registry accepts.
func (r *Registry) Auth() authn.Authenticator {
	if r.User == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.User, Password: r.Password}
}

// RemoteOptions are the go-containerregistry options for talking to this
// registry (its credentials, if any).
func (r *Registry) RemoteOptions() []remote.Option {
	return []remote.Option{remote.WithAuth(r.Auth())}
}

// NewRegistry starts an anonymous registry in a temp dir for the test and
// stops it when the test ends, however it ends.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	return newRegistry(t, RegistryOptions{})
}

// NewAuthRegistry starts a registry that accepts only user/password (basic
// auth over htpasswd), for tests of login and unauthorized errors.
func NewAuthRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	return newRegistry(t, RegistryOptions{User: user, Password: password})
}

func newRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	r, err := StartRegistryWith(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// ProcessRunning reports whether pid exists and is not a zombie: a
// process whose parent died is reaped by whatever adopted it, which may
// take its time (or never come, under some CI init processes).
func ProcessRunning(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// ClosedAddr returns "127.0.0.1:PORT" for a port nothing listens on (it
// was bound and closed), for a registry that is down: connections to it
// are refused. Another process may take the port meanwhile; a test that
// needs it refused should say so when it was not.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
