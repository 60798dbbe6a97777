package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
broken line
nohome:x:1001:1001::
`

const testGroup = `root:x:0:
app:x:1000:
wheel:x:10:root,app
audio:x:29:app
staff:x:50:daemon
`

// fakeRootfs makes a root filesystem with the given /etc/passwd and
// /etc/group (none when empty).
func fakeRootfs(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"passwd": passwd, "group": group} {
		if content == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func image(entrypoint, cmd []string, env ...string) *v1.ConfigFile {
	return &v1.ConfigFile{Config: v1.Config{Entrypoint: entrypoint, Cmd: cmd, Env: env}}
}

// generate runs Generate on a rootfs with the test passwd and group
// files, failing the test on error.
func generate(t *testing.T, img *v1.ConfigFile, o Options) *specs.Spec {
	t.Helper()
	if o.ID == "" {
		o.ID = testID
	}
	s, err := Generate(img, fakeRootfs(t, testPasswd, testGroup), o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ep, cmd []string
		o       Options
		want    []string
		wantErr string
	}{
		{name: "image entrypoint and cmd", ep: []string{"/ep"}, cmd: []string{"a"}, want: []string{"/ep", "a"}},
		{name: "image cmd only", cmd: []string{"sh"}, want: []string{"sh"}},
		{name: "user cmd replaces image cmd", ep: []string{"/ep"}, cmd: []string{"a"}, o: Options{Cmd: []string{"b", "c"}}, want: []string{"/ep", "b", "c"}},
		{name: "entrypoint drops image cmd", ep: []string{"/ep"}, cmd: []string{"a"}, o: Options{Entrypoint: []string{"/x"}, EntrypointSet: true}, want: []string{"/x"}},
		{name: "entrypoint with user cmd", ep: []string{"/ep"}, cmd: []string{"a"}, o: Options{Entrypoint: []string{"/x"}, EntrypointSet: true, Cmd: []string{"b"}}, want: []string{"/x", "b"}},
		{name: "empty entrypoint clears", ep: []string{"/ep"}, cmd: []string{"a"}, o: Options{EntrypointSet: true, Cmd: []string{"sh"}}, want: []string{"sh"}},
		{name: "docker's empty entrypoint", ep: []string{"/ep"}, cmd: []string{"a"}, o: Options{Entrypoint: []string{""}, EntrypointSet: true, Cmd: []string{"sh"}}, want: []string{"sh"}},
		{name: "empty entrypoint and no cmd", ep: []string{"/ep"}, cmd: []string{"a"}, o: Options{EntrypointSet: true}, wantErr: "no command specified"},
		{name: "nothing at all", wantErr: "no command specified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.ID = testID
			s, err := Generate(image(tc.ep, tc.cmd), fakeRootfs(t, testPasswd, testGroup), o)
			if checkErr(t, err, tc.wantErr) {
				return
			}
			if !reflect.DeepEqual(s.Process.Args, tc.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tc.want)
			}
		})
	}
	if _, err := Generate(nil, fakeRootfs(t, "", ""), Options{ID: testID, Cmd: []string{"true"}}); err != nil {
		t.Errorf("an image without config: %v", err)
	}
}

func TestEnv(t *testing.T) {
	sh := []string{"sh"}
	for _, tc := range []struct {
		name     string
		imageEnv []string
		o        Options
		want     []string
	}{
		{name: "defaults", want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/root"}},
		{name: "tty", o: Options{TTY: true}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "TERM=xterm", "HOME=/root"}},
		{name: "image PATH and user override in place", imageEnv: []string{"PATH=/img", "A=1", "B=2"}, o: Options{Env: []string{"A=3", "C=4"}},
			want: []string{"PATH=/img", "HOSTNAME=0123456789ab", "A=3", "B=2", "C=4", "HOME=/root"}},
		{name: "later wins within the user's", o: Options{Env: []string{"A=1", "A=2"}}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "A=2", "HOME=/root"}},
		{name: "bare key removes", imageEnv: []string{"A=1"}, o: Options{Env: []string{"A", "NOPE"}}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/root"}},
		{name: "user HOME and HOSTNAME win", o: Options{Env: []string{"HOME=/h", "HOSTNAME=x"}}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=x", "HOME=/h"}},
		{name: "HOME of the user", o: Options{User: "app"}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/home/app"}},
		{name: "HOME without a passwd entry", o: Options{User: "4242"}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/"}},
		{name: "HOME empty in passwd", o: Options{User: "nohome"}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/"}},
		{name: "hostname option", o: Options{Hostname: "web"}, want: []string{"PATH=" + DefaultPath, "HOSTNAME=web", "HOME=/root"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := generate(t, image(nil, sh, tc.imageEnv...), tc.o)
			if !reflect.DeepEqual(s.Process.Env, tc.want) {
				t.Errorf("env = %q\nwant %q", s.Process.Env, tc.want)
			}
		})
	}
}

func TestHostname(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		o       Options
		want    string
		wantErr string
	}{
		{name: "short id", o: Options{ID: testID}, want: "0123456789ab"},
		{name: "option", o: Options{ID: testID, Hostname: "db.local"}, want: "db.local"},
		{name: "host network", o: Options{ID: testID, Network: "host"}, want: host},
		{name: "host network with option", o: Options{ID: testID, Network: "host", Hostname: "x"}, want: "x"},
		{name: "invalid", o: Options{ID: testID, Hostname: "a b"}, wantErr: "invalid hostname"},
		{name: "too long", o: Options{ID: testID, Hostname: strings.Repeat("a", 65)}, wantErr: "invalid hostname"},
		{name: "nothing", o: Options{}, wantErr: "no hostname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), tc.o)
			if checkErr(t, err, tc.wantErr) {
				return
			}
			if s.Hostname != tc.want {
				t.Errorf("hostname = %q, want %q", s.Hostname, tc.want)
			}
		})
	}
}

func TestProcessUser(t *testing.T) {
	img := image(nil, []string{"sh"})
	img.Config.User = "daemon"
	s := generate(t, img, Options{})
	if u := s.Process.User; u.UID != 1 || u.GID != 1 || u.Username != "daemon" || !reflect.DeepEqual(u.AdditionalGids, []uint32{1, 50}) { // primary first, as docker
		t.Errorf("image user: %+v", u)
	}
	s = generate(t, img, Options{GroupsStrict: true, GroupAdd: []string{"4242"}})
	if u := s.Process.User; u.UID != 1 || !reflect.DeepEqual(u.AdditionalGids, []uint32{1, 4242}) { // not /etc/group's 50
		t.Errorf("image user with GroupsStrict: %+v", u)
	}
	s = generate(t, img, Options{User: "app:audio"})
	if u := s.Process.User; u.UID != 1000 || u.GID != 29 || !reflect.DeepEqual(u.AdditionalGids, []uint32{29}) {
		t.Errorf("-u app:audio over the image's user: %+v", u)
	}
	if _, err := Generate(img, fakeRootfs(t, testPasswd, testGroup), Options{ID: testID, User: "ghost"}); err == nil ||
		err.Error() != "unable to find user ghost: no matching entries in passwd file" {
		t.Errorf("unknown user: %v", err)
	}
}

func TestWorkingDir(t *testing.T) {
	for _, tc := range []struct {
		name, image, opt, want, wantErr string
	}{
		{name: "default", want: "/"},
		{name: "image", image: "/srv/app", want: "/srv/app"},
		{name: "option wins", image: "/srv/app", opt: "/data/../work/", want: "/work"},
		{name: "relative", opt: "work", wantErr: "not an absolute path"},
		{name: "a file", opt: "/etc/passwd", wantErr: "working directory /etc/passwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := image(nil, []string{"sh"})
			img.Config.WorkingDir = tc.image
			root := fakeRootfs(t, testPasswd, testGroup)
			s, err := Generate(img, root, Options{ID: testID, WorkingDir: tc.opt})
			if checkErr(t, err, tc.wantErr) {
				return
			}
			if s.Process.Cwd != tc.want {
				t.Errorf("cwd = %q, want %q", s.Process.Cwd, tc.want)
			}
			if st, err := os.Stat(filepath.Join(root, tc.want)); err != nil || !st.IsDir() {
				t.Errorf("working directory not created in the rootfs: %v", err)
			}
		})
	}
	// A symlink in the image pointing at a host path resolves inside
	// the rootfs: the directory is made there (or refused while the
	// target is missing there), never on the host.
	root := fakeRootfs(t, "", "")
	host := t.TempDir()
	if err := os.Symlink(host, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	_, errDangling := Generate(image(nil, []string{"sh"}), root, Options{ID: testID, WorkingDir: "/link/sub"})
	if _, err := os.Stat(filepath.Join(host, "sub")); err == nil {
		t.Fatalf("working directory created on the host through a symlink (Generate: %v)", errDangling)
	}
	if err := os.MkdirAll(filepath.Join(root, host), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(image(nil, []string{"sh"}), root, Options{ID: testID, WorkingDir: "/link/sub"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "sub")); err == nil {
		t.Errorf("working directory created on the host through a symlink")
	}
	if _, err := os.Stat(filepath.Join(root, host, "sub")); err != nil {
		t.Errorf("working directory not created inside the rootfs: %v", err)
	}
}

func TestRootAndMisc(t *testing.T) {
	if _, err := Generate(image(nil, []string{"sh"}), "rootfs", Options{ID: testID}); err == nil {
		t.Error("a relative rootfs was accepted")
	}
	s := generate(t, image(nil, []string{"sh"}), Options{
		TTY: true, ReadOnlyRootfs: true, CgroupsPath: "/hull/x", Annotations: map[string]string{"a": "b"},
	})
	if !s.Root.Readonly || !filepath.IsAbs(s.Root.Path) || s.Version != specs.Version {
		t.Errorf("root = %+v, version %s", s.Root, s.Version)
	}
	if !s.Process.Terminal || s.Linux.CgroupsPath != "/hull/x" || s.Annotations["a"] != "b" {
		t.Errorf("terminal %v, cgroupsPath %q, annotations %v", s.Process.Terminal, s.Linux.CgroupsPath, s.Annotations)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("no-new-privileges is not on by default")
	}
	off := false
	if s := generate(t, image(nil, []string{"sh"}), Options{NoNewPrivileges: &off}); s.Process.NoNewPrivileges {
		t.Error("no-new-privileges=false ignored")
	}
	if s := generate(t, image(nil, []string{"sh"}), Options{}); s.Root.Readonly || s.Process.Terminal {
		t.Errorf("read-only root or terminal without asking")
	}
}

func TestInit(t *testing.T) {
	s := generate(t, image([]string{"/ep"}, []string{"a"}), Options{Init: true, InitPath: "/usr/bin/hull"})
	if want := []string{InitTarget, "--", "/ep", "a"}; !reflect.DeepEqual(s.Process.Args, want) {
		t.Errorf("args = %q, want %q", s.Process.Args, want)
	}
	m := findMount(s, InitTarget)
	if m == nil || m.Source != "/usr/bin/hull" || m.Type != "bind" || !slices.Contains(m.Options, "ro") {
		t.Errorf("init mount = %+v", m)
	}
	if _, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), Options{ID: testID, Init: true}); err == nil {
		t.Error("--init without InitPath accepted")
	}
}

func TestNamespaces(t *testing.T) {
	types := func(s *specs.Spec) map[specs.LinuxNamespaceType]string {
		m := map[specs.LinuxNamespaceType]string{}
		for _, n := range s.Linux.Namespaces {
			m[n.Type] = n.Path
		}
		return m
	}
	for _, net := range []string{"", "none"} {
		ns := types(generate(t, image(nil, []string{"sh"}), Options{Network: net}))
		for _, want := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace, specs.NetworkNamespace} {
			if p, ok := ns[want]; !ok || p != "" {
				t.Errorf("network %q: namespace %s missing (%v)", net, want, ns)
			}
		}
	}
	if ns := types(generate(t, image(nil, []string{"sh"}), Options{Network: "host"})); len(ns) != 5 {
		t.Errorf("host network: %v", ns)
	} else if _, ok := ns[specs.NetworkNamespace]; ok {
		t.Errorf("host network has a network namespace")
	}
	if ns := types(generate(t, image(nil, []string{"sh"}), Options{Network: "ns:/run/netns/x"})); ns[specs.NetworkNamespace] != "/run/netns/x" {
		t.Errorf("ns: network: %v", ns)
	}
	// bridge and a network's name: a namespace of the container's own,
	// which the engine connects; container:C: the path the engine
	// resolved.
	for _, mode := range []string{"bridge", "mynet"} {
		if ns := types(generate(t, image(nil, []string{"sh"}), Options{Network: mode})); ns[specs.NetworkNamespace] != "" {
			t.Errorf("--network %s: %v", mode, ns)
		} else if _, ok := ns[specs.NetworkNamespace]; !ok {
			t.Errorf("--network %s has no network namespace of its own", mode)
		}
	}
	if ns := types(generate(t, image(nil, []string{"sh"}), Options{Network: "container:web", JoinNamespaces: map[string]string{"net": "/proc/9/ns/net"}})); ns[specs.NetworkNamespace] != "/proc/9/ns/net" {
		t.Errorf("container: network: %v", ns)
	}
	if _, err := Generate(image(nil, []string{"sh"}), fakeRootfs(t, "", ""), Options{ID: testID, Network: "container:web"}); err == nil || !strings.Contains(err.Error(), "not resolved") {
		t.Errorf("container:web unresolved: %v", err)
	}
}

// checkErr fails the test unless err matches the case: an error
// containing want, or none when want is "". It reports whether the case
// ends here (an error was expected).
func checkErr(t *testing.T, err error, want string) bool {
	t.Helper()
	if want != "" {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}
