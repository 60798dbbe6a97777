package engine

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// PruneFilter is docker's prune --filter, one matcher for every kind of
// object: until= spares what was created at or after the time, label=
// keeps to what has every label given (k or k=v), label!= spares what
// has every label given. The zero value matches everything.
type PruneFilter struct {
	Until     time.Time
	Labels    []string
	NotLabels []string
	// All is volume prune's all=true (its -a); Dangling image prune's
	// dangling=false (every unused image, its -a).
	All bool
}

// pruneFilterKeys are the filters each kind of object takes (docker's).
var pruneFilterKeys = map[string][]string{
	"container": {"until", "label", "label!"},
	"image":     {"until", "label", "label!", "dangling"},
	"volume":    {"label", "label!", "all"},
	"network":   {"until", "label", "label!"},
	"system":    {"until", "label", "label!"},
}

// ParsePruneFilter reads --filter key=value arguments for the prune of
// kind ("container", "image", "volume", "network" or "system").
func ParsePruneFilter(kind string, args []string) (PruneFilter, error) {
	var f PruneFilter
	known := pruneFilterKeys[kind]
	invalid := func(format string, a ...any) error {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, a...))
	}
	seenUntil := false
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return f, invalid("bad filter %q: use key=value (%s)", a, strings.Join(known, ", "))
		}
		if !slices.Contains(known, k) {
			return f, invalid("invalid filter '%s' for %s prune (use %s)", k, kind, strings.Join(known, ", "))
		}
		switch k {
		case "until":
			if seenUntil {
				return f, invalid("more than one until filter specified")
			}
			seenUntil = true
			t, err := ParseTimestamp(v, time.Now())
			if err != nil {
				return f, invalid("--filter until=%s: %v", v, err)
			}
			f.Until = t
		case "label":
			f.Labels = append(f.Labels, v)
		case "label!":
			f.NotLabels = append(f.NotLabels, v)
		case "all", "dangling":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return f, invalid("invalid filter '%s=%s': use true or false", k, v)
			}
			f.All = b == (k == "all")
		}
	}
	return f, nil
}

// Match reports whether an object created at created with labels may be
// pruned.
func (f PruneFilter) Match(created time.Time, labels map[string]string) bool {
	if !f.Until.IsZero() && !created.Before(f.Until) {
		return false
	}
	for _, l := range f.Labels {
		if !hasLabel(labels, l) {
			return false
		}
	}
	if len(f.NotLabels) > 0 && !slices.ContainsFunc(f.NotLabels, func(l string) bool { return !hasLabel(labels, l) }) {
		return false
	}
	return true
}

// hasLabel is docker's label filter: "k" needs the label, "k=v" its value.
func hasLabel(labels map[string]string, want string) bool {
	k, v, has := strings.Cut(want, "=")
	got, ok := labels[k]
	return ok && (!has || got == v)
}

// ParseTimestamp reads a time as docker's --since, --until and until=
// filters do: a Go duration before now ("24h", "10m"), an RFC 3339 time
// or date ("2026-01-02T15:04:05Z", "2026-01-02"; local time without a
// zone), or unix seconds with an optional fraction ("1700000000.5").
func ParseTimestamp(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eE+") && !math.IsInf(secs, 0) {
		whole, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(whole, 10, 64)
		if err == nil {
			var nsec int64
			if frac != "" {
				frac = (frac + "000000000")[:9]
				nsec, _ = strconv.ParseInt(frac, 10, 64)
			}
			return time.Unix(sec, nsec), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use a duration (10m, 24h), RFC 3339 (2026-01-02T15:04:05Z) or unix seconds", s)
}
