package image

import (
	"fmt"
	goruntime "runtime"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Platform is os/arch[/variant].
type Platform struct {
	OS, Architecture, Variant string
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// HostPlatform is the platform hull runs on.
func HostPlatform() Platform {
	p := Platform{OS: goruntime.GOOS, Architecture: goruntime.GOARCH}
	if p.Architecture == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ParsePlatform parses the --platform flag: os/arch[/variant].
func ParsePlatform(s string) (Platform, error) {
	if s == "" {
		return HostPlatform(), nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid platform %q: use os/arch[/variant], e.g. linux/arm64 or linux/arm/v7", s))
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	}
	return p, nil
}

// Runs reports whether the image whose config is cf is for want; an
// image whose config names no platform runs anywhere.
func (want Platform) Runs(cf *v1.ConfigFile) bool {
	if cf == nil || cf.OS == "" && cf.Architecture == "" {
		return true
	}
	return want.matches(&v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant})
}

// PlatformOf is the platform cf says its image is for.
func PlatformOf(cf *v1.ConfigFile) Platform { return Platform{cf.OS, cf.Architecture, cf.Variant} }

// matches reports whether an image for have runs as want. An empty wanted
// variant takes any; arm64's v8 is the same as none.
func (want Platform) matches(have *v1.Platform) bool {
	if have == nil {
		return false
	}
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	hv := have.Variant
	if want.Architecture == "arm64" && hv == "" {
		hv = "v8"
	}
	return hv == want.Variant
}

// choose picks the manifest for want from an index, or explains which
// platforms there are.
func (want Platform) choose(idx *v1.IndexManifest) (v1.Descriptor, error) {
	var found []string
	var best *v1.Descriptor
	for i := range idx.Manifests {
		m := &idx.Manifests[i]
		if m.Platform == nil || m.Platform.OS == "unknown" { // attestation manifests
			continue
		}
		found = append(found, Platform{m.Platform.OS, m.Platform.Architecture, m.Platform.Variant}.String())
		if best == nil && want.matches(m.Platform) {
			best = m
		}
	}
	if best != nil {
		return *best, nil
	}
	sort.Strings(found)
	if len(found) == 0 {
		return v1.Descriptor{}, fmt.Errorf("the index lists no platforms")
	}
	return v1.Descriptor{}, fmt.Errorf("no image for %s; available: %s (choose one with --platform)", want, strings.Join(found, ", "))
}
