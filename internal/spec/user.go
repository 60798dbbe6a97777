package spec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// User is who the container process runs as, resolved in the image.
type User struct {
	Name           string // from passwd; empty for an id without an entry
	UID, GID       uint32
	AdditionalGids []uint32
	Home           string // "/" without a passwd entry
}

// maxID is the largest uid or gid a container may use (the kernel's
// uid_t is 32 bits, but -1 is special and docker and runc stop at 2^31-1).
const maxID = 1<<31 - 1

// ParseUser splits -u's user[:group]. Either part may be a name or a
// numeric id; neither may be empty.
func ParseUser(s string) (user, group string, err error) {
	user, group, hasGroup := strings.Cut(s, ":")
	if user == "" || (hasGroup && (group == "" || strings.Contains(group, ":"))) {
		return "", "", fmt.Errorf("invalid user %q: use user[:group] with names or numeric ids, e.g. app, 1000 or 1000:1000", s)
	}
	return user, group, nil
}

// ResolveUser finds spec (user[:group], "" for root) in rootfs's
// /etc/passwd and /etc/group the way docker (runc's libcontainer/user)
// does: a numeric id needs no entry (then the group is 0 and HOME is /),
// a name must have one; the supplementary groups are those listing the
// user as a member unless the group was given explicitly. The files are
// opened inside rootfs: symlinks resolve as if rootfs were /, so a hostile
// image cannot make hull read the host's files.
func ResolveUser(rootfs, spec string) (User, error) {
	userArg, groupArg := "0", ""
	if spec != "" {
		var err error
		if userArg, groupArg, err = ParseUser(spec); err != nil {
			return User{}, err
		}
	}
	passwd, err := readPasswd(rootfs)
	if err != nil {
		return User{}, err
	}
	u := User{Home: "/"}
	found := false
	if id, err := strconv.ParseUint(userArg, 10, 32); err == nil {
		if id > maxID {
			return User{}, fmt.Errorf("user %s: uids must be in range 0-%d", userArg, maxID)
		}
		u.UID = uint32(id)
		for _, p := range passwd {
			if p.uid == u.UID {
				u, found = User{Name: p.name, UID: p.uid, GID: p.gid, Home: p.home}, true
				break
			}
		}
	} else {
		for _, p := range passwd {
			if p.name == userArg {
				u, found = User{Name: p.name, UID: p.uid, GID: p.gid, Home: p.home}, true
				break
			}
		}
		if !found {
			return User{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userArg)
		}
	}
	if u.Home == "" {
		u.Home = "/"
	}
	if groupArg == "" && !found {
		return u, nil
	}
	groups, err := readGroups(rootfs)
	if err != nil {
		return User{}, err
	}
	if groupArg == "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == u.Name {
					u.AdditionalGids = append(u.AdditionalGids, g.gid)
					break
				}
			}
		}
		return u, nil
	}
	if id, err := strconv.ParseUint(groupArg, 10, 32); err == nil {
		if id > maxID {
			return User{}, fmt.Errorf("group %s: gids must be in range 0-%d", groupArg, maxID)
		}
		u.GID = uint32(id)
		return u, nil
	}
	for _, g := range groups {
		if g.name == groupArg {
			u.GID = g.gid
			return u, nil
		}
	}
	return User{}, fmt.Errorf("unable to find group %s: no matching entries in group file", groupArg)
}

// supplementaryGroups is the process's group list as docker makes it: the
// primary group first (so dropping it with setgid cannot shed a group's
// restrictions, CVE-2022-36109), then the groups listing the user in the
// image's /etc/group, then --group-add's, each once.
func supplementaryGroups(rootfs string, u User, add []string) ([]uint32, error) {
	gids := append([]uint32{u.GID}, u.AdditionalGids...)
	if len(add) > 0 {
		extra, err := lookupGroups(rootfs, add)
		if err != nil {
			return nil, err
		}
		gids = append(gids, extra...)
	}
	out := gids[:0]
	for _, g := range gids {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out, nil
}

// lookupGroups resolves --group-add's names in the image's /etc/group; a
// gid needs no entry.
func lookupGroups(rootfs string, names []string) ([]uint32, error) {
	var groups []groupEntry
	var out []uint32
	read := false
	for _, name := range names {
		if id, err := strconv.ParseUint(name, 10, 32); err == nil {
			if id > maxID {
				return nil, fmt.Errorf("group %s: gids must be in range 0-%d", name, maxID)
			}
			out = append(out, uint32(id))
			continue
		}
		if !read {
			var err error
			if groups, err = readGroups(rootfs); err != nil {
				return nil, err
			}
			read = true
		}
		i := slices.IndexFunc(groups, func(g groupEntry) bool { return g.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unable to find group %s: no matching entries in group file", name)
		}
		out = append(out, groups[i].gid)
	}
	return out, nil
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// readPasswd parses name:password:uid:gid:gecos:home:shell lines,
// skipping the malformed ones as libc does.
func readPasswd(rootfs string) ([]passwdEntry, error) {
	b, err := readInRoot(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []passwdEntry
	for _, f := range entries(b) {
		if len(f) < 4 {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		e := passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	}
	return out, nil
}

// readGroups parses name:password:gid:member,member lines.
func readGroups(rootfs string) ([]groupEntry, error) {
	b, err := readInRoot(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	var out []groupEntry
	for _, f := range entries(b) {
		if len(f) < 3 {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		e := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out, nil
}

// entries splits a colon-separated database into fields, skipping blank
// lines and comments.
func entries(b []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// maxDBSize bounds what is read of an image's passwd or group file.
const maxDBSize = 16 << 20

// readInRoot reads a regular file of the image, resolving every symlink
// inside rootfs (openat2 RESOLVE_IN_ROOT or its emulation). A missing file
// reads as empty; anything but a regular file (a FIFO would block, a
// device could be anything) is refused.
func readInRoot(rootfs, path string) ([]byte, error) {
	h, err := pathrs.OpenInRoot(rootfs, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in the container: %w", path, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat %s in the container: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s in the container is not a regular file", path)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open %s in the container: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDBSize))
	if err != nil {
		return nil, fmt.Errorf("read %s in the container: %w", path, err)
	}
	return b, nil
}

// workingDir is -w, else the image's WorkingDir, else /. Like docker it
// is created (root-owned, 0755) when missing, inside rootfs so symlinks
// cannot point it outside.
func workingDir(rootfs string, ic v1.Config, o Options) (string, error) {
	wd := o.WorkingDir
	if wd == "" {
		wd = ic.WorkingDir
	}
	if wd == "" {
		return "/", nil
	}
	if !filepath.IsAbs(wd) {
		return "", fmt.Errorf("working directory %q is not an absolute path (use -w /path)", wd)
	}
	wd = filepath.Clean(wd)
	if err := pathrs.MkdirAll(rootfs, wd, 0o755); err != nil {
		return "", fmt.Errorf("working directory %s: %w", wd, err)
	}
	return wd, nil
}
