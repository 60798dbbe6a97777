package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseMount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a,b") // a comma: the field must be quoted
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]Mount{
		`type=bind,"source=` + dir + `",target=/x,ro=true,bind-propagation=rshared`: {Type: "bind", Source: dir, Destination: "/x", ReadOnly: true, Options: []string{"rshared"}},
		"dst=/v":                                {Type: "volume", Destination: "/v"},
		"src=vol,destination=/v/,volume-nocopy": {Type: "volume", Source: "vol", Destination: "/v", Options: []string{"nocopy"}},
		"Type=TMPFS,target=/t,tmpfs-size=64k,tmpfs-mode=0700,readonly": {Type: "tmpfs", Destination: "/t", ReadOnly: true, Options: []string{"size=65536", "mode=700"}},
	} {
		got, err := ParseMount(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseMount(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		`type=bind,"src=x`:                           `extraneous or missing " in quoted-field`,
		"type=nfs,dst=/x":                            `unknown type "nfs"`,
		"type=bind,dst=/x,volume-nocopy":             "cannot mix 'volume-*' options with mount type 'bind'",
		"type=tmpfs,dst=/x,tmpfs-mode=999":           "invalid value for tmpfs-mode: 999",
		"dst=relative":                               `target "relative" is not an absolute path`,
		"src=/abs,dst=/x":                            "not a valid volume name",
		"type=volume,dst=/x,bind-propagation=shared": "cannot mix 'bind-*' options",
	} {
		if _, err := ParseMount(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMount(%q): %v, want %q", in, err, want)
		}
	}
}
