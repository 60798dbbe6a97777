// Package reference parses image references the way docker does:
// "busybox" means "docker.io/library/busybox:latest", "name@sha256:..." pins a
// digest, and "name:tag@sha256:..." keeps the tag for display but pulls by
// the digest. Tags are mutable names; digests are content and never move.
package reference

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
)

// DefaultDomain is the registry used when a reference names none.
const DefaultDomain = "docker.io"

// legacyDomain is docker.io's historical name, normalized away.
const legacyDomain = "index.docker.io"

const maxNameLength = 255

// The grammar is docker's (distribution/reference), matched by hand: every
// hull command that names an image parses a reference, and compiling the
// equivalent regular expressions cost it a quarter of a millisecond.

// isPathComponent matches [a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*.
func isPathComponent(s string) bool {
	i := 0
	for {
		j := i
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i {
			return false
		}
		if j == len(s) {
			return true
		}
		switch s[j] {
		case '.':
			j++
		case '_':
			j++
			if j < len(s) && s[j] == '_' {
				j++
			}
		case '-':
			for j < len(s) && s[j] == '-' {
				j++
			}
		default:
			return false
		}
		i = j
	}
}

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// isTag matches [\w][\w.-]{0,127}.
func isTag(s string) bool {
	if len(s) == 0 || len(s) > 128 || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

// isDomain matches a host name (dot-separated labels of letters, digits
// and inner hyphens) or a bracketed IPv6 address, with an optional :port.
func isDomain(s string) bool {
	host := s
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		port := s[i+1:]
		if port == "" {
			return false
		}
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return false
			}
		}
		host = s[:i]
	}
	if strings.HasPrefix(host, "[") {
		if len(host) < 3 || !strings.HasSuffix(host, "]") {
			return false
		}
		for j := 1; j < len(host)-1; j++ {
			c := host[j]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return false
			}
		}
		return true
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// isDigest matches sha256:<64 hex> or sha512:<128 hex>, lowercase.
func isDigest(s string) bool {
	algo, hex, ok := strings.Cut(s, ":")
	if !ok || !(algo == "sha256" && len(hex) == 64 || algo == "sha512" && len(hex) == 128) {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if !(hex[i] >= '0' && hex[i] <= '9' || hex[i] >= 'a' && hex[i] <= 'f') {
			return false
		}
	}
	return true
}

// Reference is a normalized image reference.
type Reference struct {
	Domain string // registry host[:port], e.g. docker.io or 127.0.0.1:5000
	Path   string // repository path, e.g. library/busybox
	Tag    string // tag, "latest" when none was given and no digest either
	Digest string // "sha256:<hex>" when pinned, else ""

	// ImplicitTag reports that Tag was filled in as "latest".
	ImplicitTag bool
}

// Error is a reference that cannot be parsed; it names the input. Its
// class is errdefs.ErrInvalidArgument.
type Error struct {
	Input  string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid reference format %q: %s", e.Input, e.Reason)
}

func (e *Error) Is(target error) bool { return target == errdefs.ErrInvalidArgument }

func bad(in, format string, args ...any) error {
	return &Error{Input: in, Reason: fmt.Sprintf(format, args...)}
}

// Parse normalizes s into a full reference.
func Parse(s string) (Reference, error) {
	in := s
	if s == "" {
		return Reference{}, bad(in, "empty reference (expected NAME[:TAG][@DIGEST], e.g. busybox:1.36)")
	}
	if strings.TrimSpace(s) != s {
		return Reference{}, bad(in, "surrounding whitespace")
	}
	var ref Reference
	if i := strings.IndexByte(s, '@'); i >= 0 {
		ref.Digest = s[i+1:]
		s = s[:i]
		if !isDigest(ref.Digest) {
			return Reference{}, bad(in, "digest %q is not algorithm:hex (e.g. sha256: followed by 64 lowercase hex digits)", ref.Digest)
		}
	}
	// A tag follows the last ':' after the last '/' (a ':' before it is a port).
	if i := strings.LastIndexByte(s, ':'); i >= 0 && i > strings.LastIndexByte(s, '/') {
		ref.Tag = s[i+1:]
		s = s[:i]
		if !isTag(ref.Tag) {
			return Reference{}, bad(in, "tag %q must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'", ref.Tag)
		}
	}
	if s == "" {
		return Reference{}, bad(in, "missing repository name")
	}
	domain, path := splitDomain(s)
	if path == "" {
		return Reference{}, bad(in, "missing repository name")
	}
	if domain == legacyDomain {
		domain = DefaultDomain
	}
	if domain == DefaultDomain && !strings.ContainsRune(path, '/') {
		path = "library/" + path
	}
	if !strings.ContainsAny(domain, ".:") && domain != "localhost" && strings.ToLower(domain) != domain {
		return Reference{}, bad(in, "repository name must be lowercase")
	}
	if !isDomain(domain) {
		return Reference{}, bad(in, "registry %q is not a valid host[:port]", domain)
	}
	for _, c := range strings.Split(path, "/") {
		if c == "" {
			return Reference{}, bad(in, "empty path component in %q", path)
		}
		if !isPathComponent(c) {
			if strings.ToLower(c) != c {
				return Reference{}, bad(in, "repository name must be lowercase")
			}
			return Reference{}, bad(in, "path component %q may only contain a-z, 0-9 and single separators . _ __ -", c)
		}
	}
	if len(domain)+1+len(path) > maxNameLength {
		return Reference{}, bad(in, "repository name longer than %d characters", maxNameLength)
	}
	ref.Domain, ref.Path = domain, path
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag, ref.ImplicitTag = "latest", true
	}
	return ref, nil
}

// splitDomain separates a registry from the path, as docker does: the first
// component is a registry if it has a '.' or ':' or is "localhost", or if it
// has uppercase letters (which a repository path never has).
func splitDomain(name string) (domain, path string) {
	i := strings.IndexByte(name, '/')
	if i < 0 {
		return DefaultDomain, name
	}
	first := name[:i]
	if first == "localhost" || strings.ContainsAny(first, ".:") || strings.ToLower(first) != first {
		return first, name[i+1:]
	}
	return DefaultDomain, name
}

// Name is the repository: domain/path.
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the full normalized form, e.g. docker.io/library/busybox:latest
// or docker.io/library/busybox@sha256:....
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" && !(r.ImplicitTag && r.Digest != "") {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Tagged is domain/path:tag, or "" for a digest-only reference.
func (r Reference) Tagged() string {
	if r.Tag == "" {
		return ""
	}
	return r.Name() + ":" + r.Tag
}

// Familiar is the short form docker prints: docker.io/library/ is dropped.
func (r Reference) Familiar() string {
	s := FamiliarName(r.Name())
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// FamiliarName shortens a repository name the way docker displays it.
func FamiliarName(name string) string {
	if rest, ok := strings.CutPrefix(name, DefaultDomain+"/"); ok {
		if short, ok := strings.CutPrefix(rest, "library/"); ok && !strings.ContainsRune(short, '/') {
			return short
		}
		return rest
	}
	return name
}

// IsLatest reports whether the reference floats on the "latest" tag, given or
// implied, without a pinning digest: the seed's warning case.
func (r Reference) IsLatest() bool {
	return r.Digest == "" && r.Tag == "latest"
}

// LooksLikeID reports whether s could be an image ID or ID prefix rather
// than a name: hex only, 1-64 chars, optionally with "sha256:".
func LooksLikeID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
