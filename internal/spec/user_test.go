package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestResolveUser(t *testing.T) {
	root := fakeRootfs(t, testPasswd, testGroup)
	for _, tc := range []struct {
		spec    string
		want    User
		wantErr string
	}{
		{spec: "", want: User{Name: "root", UID: 0, GID: 0, AdditionalGids: []uint32{10}, Home: "/root"}},
		{spec: "root", want: User{Name: "root", UID: 0, GID: 0, AdditionalGids: []uint32{10}, Home: "/root"}},
		{spec: "app", want: User{Name: "app", UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}, Home: "/home/app"}},
		{spec: "1000", want: User{Name: "app", UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}, Home: "/home/app"}},
		{spec: "app:wheel", want: User{Name: "app", UID: 1000, GID: 10, Home: "/home/app"}},
		{spec: "app:3000", want: User{Name: "app", UID: 1000, GID: 3000, Home: "/home/app"}},
		{spec: "1000:1000", want: User{Name: "app", UID: 1000, GID: 1000, Home: "/home/app"}},
		{spec: "4242", want: User{UID: 4242, GID: 0, Home: "/"}},
		{spec: "4242:4243", want: User{UID: 4242, GID: 4243, Home: "/"}},
		{spec: "4242:audio", want: User{UID: 4242, GID: 29, Home: "/"}},
		{spec: "ghost", wantErr: "unable to find user ghost: no matching entries in passwd file"},
		{spec: "app:ghosts", wantErr: "unable to find group ghosts: no matching entries in group file"},
		{spec: "app:", wantErr: "invalid user"},
		{spec: ":app", wantErr: "invalid user"},
		{spec: "a:b:c", wantErr: "invalid user"},
		{spec: "2147483648", wantErr: "uids must be in range"},
		{spec: "app:2147483648", wantErr: "gids must be in range"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := ResolveUser(root, tc.spec)
			if checkErr(t, err, tc.wantErr) {
				return
			}
			if !reflect.DeepEqual(u, tc.want) {
				t.Errorf("got %+v, want %+v", u, tc.want)
			}
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	root := fakeRootfs(t, "", "")
	if u, err := ResolveUser(root, "123:456"); err != nil || u.UID != 123 || u.GID != 456 || u.Home != "/" {
		t.Errorf("numeric ids without passwd: %+v, %v", u, err)
	}
	if _, err := ResolveUser(root, "root"); err == nil {
		t.Error("a name resolved without a passwd file")
	}
}

// TestResolveUserHostile: an image's /etc/passwd (or /etc itself) that is
// a symlink resolves inside the rootfs, so the host's /etc/passwd and
// /etc/shadow (both with a root entry) are never read; files that are
// not regular are refused instead of blocking.
func TestResolveUserHostile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(root string) error
	}{
		{"passwd -> /etc/shadow", func(root string) error {
			return os.Symlink("/etc/shadow", filepath.Join(root, "etc/passwd"))
		}},
		{"passwd -> ../../../etc/passwd", func(root string) error {
			return os.Symlink(strings.Repeat("../", 20)+"etc/shadow", filepath.Join(root, "etc/passwd"))
		}},
		{"passwd -> host path of the host passwd", func(root string) error {
			return os.Symlink("/proc/1/root/etc/passwd", filepath.Join(root, "etc/passwd"))
		}},
		{"etc -> ../../..", func(root string) error {
			if err := os.Remove(filepath.Join(root, "etc")); err != nil {
				return err
			}
			return os.Symlink(strings.Repeat("../", 20), filepath.Join(root, "etc"))
		}},
		{"passwd is a fifo", func(root string) error {
			return unix.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644)
		}},
		{"passwd is a directory", func(root string) error {
			return os.Mkdir(filepath.Join(root, "etc/passwd"), 0o755)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeRootfs(t, "", "")
			if err := tc.setup(root); err != nil {
				t.Fatal(err)
			}
			if u, err := ResolveUser(root, "root"); err == nil {
				t.Fatalf("resolved root to %+v from outside the rootfs", u)
			}
			if u, err := ResolveUser(root, "0"); err == nil && (u.Home != "/" || u.Name != "") {
				t.Fatalf("uid 0 resolved to %+v from outside the rootfs", u)
			}
		})
	}
}

func TestParseUser(t *testing.T) {
	for _, tc := range []struct{ in, user, group string }{
		{"app", "app", ""}, {"1000:1000", "1000", "1000"}, {"app:staff", "app", "staff"},
	} {
		u, g, err := ParseUser(tc.in)
		if err != nil || u != tc.user || g != tc.group {
			t.Errorf("ParseUser(%q) = %q, %q, %v", tc.in, u, g, err)
		}
	}
	for _, in := range []string{"", ":", "app:", ":staff", "a:b:c"} {
		if _, _, err := ParseUser(in); err == nil || !strings.Contains(err.Error(), "use user[:group]") {
			t.Errorf("ParseUser(%q): %v", in, err)
		}
	}
}
