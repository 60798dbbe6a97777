package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{
		"32m": 32 << 20, "32M": 32 << 20, "32mb": 32 << 20, "32MiB": 32 << 20, "1g": 1 << 30, "1.5g": 3 << 29,
		"1024": 1024, "10b": 10, "4k": 4096, "4 k": 4096, "2t": 2 << 40, " 8m ": 8 << 20,
	} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1", "-5m", "32x", "1.2.3g", "32 mb b", "abc", "99999999999999999999t"} {
		if _, err := ParseMemory(in); err == nil || !strings.Contains(err.Error(), "invalid size") {
			t.Errorf("ParseMemory(%q): %v", in, err)
		}
	}
	if v, err := ParseMemorySwap("-1"); err != nil || v != -1 {
		t.Errorf("ParseMemorySwap(-1) = %d, %v", v, err)
	}
	if v, err := ParseMemorySwap("64m"); err != nil || v != 64<<20 {
		t.Errorf("ParseMemorySwap(64m) = %d, %v", v, err)
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]int64{"1.5": 1.5e9, "0.01": 1e7, "2": 2e9, "0.000000001": 1, "0": 0} {
		if got, err := ParseCPUs(in); err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{"": "positive decimal", "abc": "positive decimal", "-1": "positive decimal",
		"0.0000000001": "too precise", "1e30": "too large"} {
		if _, err := ParseCPUs(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseCPUs(%q): %v, want %q", in, err, msg)
		}
	}
}

func TestParseUlimit(t *testing.T) {
	for in, want := range map[string]Ulimit{
		"nofile=1024:2048": {Name: "nofile", Soft: 1024, Hard: 2048},
		"nproc=100":        {Name: "nproc", Soft: 100, Hard: 100},
		"CORE=-1":          {Name: "core", Soft: -1, Hard: -1},
		"memlock=64:-1":    {Name: "memlock", Soft: 64, Hard: -1},
	} {
		if got, err := ParseUlimit(in); err != nil || got != want {
			t.Errorf("ParseUlimit(%q) = %+v, %v", in, got, err)
		}
	}
	for in, msg := range map[string]string{
		"nofile":           "use name=soft[:hard]",
		"=1":               "use name=soft[:hard]",
		"nofile=":          "use name=soft[:hard]",
		"nofile=a":         `soft limit "a" is not a number`,
		"nofile=1:b":       `hard limit "b" is not a number`,
		"nofile=1:2:3":     `hard limit "2:3" is not a number`,
		"nofile=2048:1024": "soft limit 2048 is above the hard limit 1024",
		"files=1":          `invalid ulimit type "files"`,
	} {
		if _, err := ParseUlimit(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseUlimit(%q): %v, want %q", in, err, msg)
		}
	}
}

func TestParseVolume(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]Mount{
		"/srv/data:/data":         {Type: "bind", Source: "/srv/data", Destination: "/data"},
		"/srv/data/:/data/:ro":    {Type: "bind", Source: "/srv/data", Destination: "/data", ReadOnly: true},
		"/srv:/data:rw,rshared":   {Type: "bind", Source: "/srv", Destination: "/data", Options: []string{"rshared"}},
		"./dir:/data":             {Type: "bind", Source: filepath.Join(wd, "dir"), Destination: "/data"},
		"cache:/var/cache":        {Type: "volume", Source: "cache", Destination: "/var/cache"},
		"my_vol-1.x:/v:ro,nocopy": {Type: "volume", Source: "my_vol-1.x", Destination: "/v", ReadOnly: true, Options: []string{"nocopy"}},
		"/anon":                   {Type: "volume", Destination: "/anon"},
	} {
		got, err := ParseVolume(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseVolume(%q) = %+v, %v\nwant %+v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":                   "empty container path",
		"data":               "is not absolute",
		"/a:data":            "is not absolute",
		"/a:/":               "can't be '/'",
		"/":                  "can't be '/'",
		"/data:ro":           "without a source cannot have options",
		":/data":             "empty source",
		"a:/data":            "not a valid volume name",
		"bad name:/data":     "not a valid volume name",
		"/a:/b:ro,rw":        "conflicting options",
		"/a:/b:shared,slave": "conflicting options",
		"/a:/b:exec":         `unknown option "exec"`,
		"/a:/b:nocopy":       "nocopy applies to volumes",
		"/a:/b:ro:x":         "too many colons",
	} {
		_, err := ParseVolume(in)
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "use /host/path:/container/path") {
			t.Errorf("ParseVolume(%q): %v, want %q", in, err, msg)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	for in, want := range map[string][2]string{
		"/run":                                  {"/run", ""},
		"/run/:size=64m":                        {"/run/", "size=64m"},
		"/tmp:rw,exec,size=50%,mode=1777":       {"/tmp", "rw,exec,size=50%,mode=1777"},
		"/cache:uid=1000,gid=1000,nr_inodes=1k": {"/cache", "uid=1000,gid=1000,nr_inodes=1k"},
	} {
		dest, opts, err := ParseTmpfs(in)
		if err != nil || dest != filepath.Clean(want[0]) || opts != want[1] {
			t.Errorf("ParseTmpfs(%q) = %q, %q, %v", in, dest, opts, err)
		}
	}
	for in, msg := range map[string]string{
		"run":             "not an absolute path",
		"/":               "can't be '/'",
		"/run:size=lots":  `size "lots"`,
		"/run:mode=rwx":   `mode "rwx" is not octal`,
		"/run:uid=me":     `uid "me" is not a number`,
		"/run:bogus":      `unknown option "bogus"`,
		"/run:color=blue": `unknown option "color=blue"`,
	} {
		if _, _, err := ParseTmpfs(in); err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "use /path[:") {
			t.Errorf("ParseTmpfs(%q): %v, want %q", in, err, msg)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	t.Setenv("HULL_SPEC_FROM_HOST", "host value")
	os.Unsetenv("HULL_SPEC_UNSET")
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, "env")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := ParseEnvFile(write("\xef\xbb\xbf# comment\n\nA=1\n  B=two words \nC=\"quoted\"\nD=x=y\nE=\n   # indented comment\nHULL_SPEC_FROM_HOST\nHULL_SPEC_UNSET\nHULL_SPEC_FROM_HOST  \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=two words ", `C="quoted"`, "D=x=y", "E=", "HULL_SPEC_FROM_HOST=host value", "HULL_SPEC_FROM_HOST=host value"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseEnvFile = %q\nwant %q", got, want)
	}
	for content, msg := range map[string]string{
		"A=1\n=value\n":     "line 2: no variable name",
		"MY VAR=1\n":        `line 1: variable name "MY VAR" contains whitespace`,
		"A=1\nB=\xff\xfe\n": "line 2: not valid UTF-8",
	} {
		if _, err := ParseEnvFile(write(content)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseEnvFile(%q): %v, want %q", content, err, msg)
		}
	}
	if _, err := ParseEnvFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}
