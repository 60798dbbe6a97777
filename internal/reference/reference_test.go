package reference

import (
	"strings"
	"testing"
)

func TestParseNormalizes(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	cases := []struct{ in, full, familiar string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25"},
		{"myorg/app:v1", "docker.io/myorg/app:v1", "myorg/app:v1"},
		{"quay.io/a/b/c:x", "quay.io/a/b/c:x", "quay.io/a/b/c:x"},
		{"localhost/app", "localhost/app:latest", "localhost/app:latest"},
		{"127.0.0.1:5000/hull-test/busybox:1.0", "127.0.0.1:5000/hull-test/busybox:1.0", "127.0.0.1:5000/hull-test/busybox:1.0"},
		{"busybox@" + d, "docker.io/library/busybox@" + d, "busybox@" + d},
		{"busybox:1.36@" + d, "docker.io/library/busybox:1.36@" + d, "busybox:1.36@" + d},
		{"[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000/x:y"},
	}
	for _, c := range cases {
		r, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if r.String() != c.full {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, r.String(), c.full)
		}
		if r.Familiar() != c.familiar {
			t.Errorf("Parse(%q).Familiar() = %q, want %q", c.in, r.Familiar(), c.familiar)
		}
		again, err := Parse(r.String())
		if err != nil || again.String() != r.String() {
			t.Errorf("round trip of %q: %v %q", r.String(), err, again.String())
		}
	}
}

func TestImplicitTagAndLatest(t *testing.T) {
	r, _ := Parse("busybox")
	if !r.ImplicitTag || !r.IsLatest() {
		t.Fatalf("busybox: implicit=%v latest=%v", r.ImplicitTag, r.IsLatest())
	}
	r, _ = Parse("busybox:latest")
	if r.ImplicitTag || !r.IsLatest() {
		t.Fatalf("busybox:latest: implicit=%v latest=%v", r.ImplicitTag, r.IsLatest())
	}
	r, _ = Parse("busybox@sha256:" + strings.Repeat("0", 64))
	if r.IsLatest() || r.Tag != "" {
		t.Fatalf("digest ref: tag=%q latest=%v", r.Tag, r.IsLatest())
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]string{
		"":                                    "empty",
		"Busybox":                             "lowercase",
		"busybox:":                            "tag",
		"busybox:-x":                          "tag",
		"busybox@sha256:abc":                  "digest",
		"busybox@md5:" + "0":                  "digest",
		"a//b":                                "empty path",
		"docker.io/":                          "missing repository",
		"bad_-name":                           "path component",
		" busybox":                            "whitespace",
		"busybox:" + strings.Repeat("t", 129): "tag",
		"exa mple.com/x":                      "registry",
		":tag":                                "missing repository",
	}
	for in, want := range cases {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want error about %s", in, want)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "invalid reference format") {
			t.Errorf("Parse(%q) = %v, want mention of %q", in, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"busybox", "a/b:c", "127.0.0.1:5000/x/y:z@sha256:" + strings.Repeat("f", 64), "UPPER/x", "x@", "::", "[::1]:5/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		// A parsed reference must re-parse to itself.
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) ok as %q but re-parse failed: %v", s, r.String(), err)
		}
		if again.String() != r.String() {
			t.Fatalf("unstable: %q -> %q -> %q", s, r.String(), again.String())
		}
	})
}
