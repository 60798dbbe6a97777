package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// pod create --label/--hostname show in pod inspect, and a container of
// the pod has the pod's host name; pod ls --filter (name, id, label,
// status: one key's values OR'ed, keys AND'ed) lists only the matching
// pods, and refuses a filter it does not know; pod ls --format json is
// podman's: one array of objects with its keys.
func TestPodLabelsHostnameFilters(t *testing.T) {
	root, fx := containerEnv(t)
	ids := map[string]string{}
	for _, args := range [][]string{
		{"--name", "web1", "--label", "app=web", "--label", "tier=front", "--hostname", "webhost"},
		{"--name", "db1", "-l", "app=db"},
		{"--name", "web2", "--label", "app=web"},
	} {
		name := args[1]
		ids[name] = strings.TrimSpace(mustHull(t, root, append([]string{"pod", "create"}, args...)...))
		t.Cleanup(func() { hull(t, root, "pod", "rm", "-f", name) })
	}
	ctr := strings.TrimSpace(mustHull(t, root, "run", "-d", "--pod", "web1", "--name", "w1c", fx.Busybox.Ref, "sleep", "1000"))
	if out := mustHull(t, root, "run", "--rm", "--pod", "web1", fx.Busybox.Ref, "hostname"); out != "webhost\n" {
		t.Errorf("hostname in pod web1: %q, want webhost", out)
	}

	var docs []struct {
		Id, Name, Hostname string
		Labels             map[string]string
	}
	if out := mustHull(t, root, "pod", "inspect", "web1"); json.Unmarshal([]byte(out), &docs) != nil || len(docs) != 1 ||
		docs[0].Id != ids["web1"] || docs[0].Hostname != "webhost" || len(docs[0].Labels) != 2 || docs[0].Labels["app"] != "web" || docs[0].Labels["tier"] != "front" {
		t.Errorf("pod inspect web1:\n%s", out)
	}

	// ls -q with the filters given prints the pods of these names.
	for _, c := range []struct {
		filters []string
		want    []string
	}{
		{nil, []string{"db1", "web1", "web2"}},
		{[]string{"label=app=web"}, []string{"web1", "web2"}},
		{[]string{"label=app"}, []string{"db1", "web1", "web2"}},
		{[]string{"label=tier=front"}, []string{"web1"}},
		{[]string{"label=app=nothing"}, nil},
		{[]string{"name=web"}, []string{"web1", "web2"}},
		{[]string{"name=db1"}, []string{"db1"}},
		{[]string{"name=db1", "name=web2"}, []string{"db1", "web2"}},
		{[]string{"id=" + ids["db1"][:6]}, []string{"db1"}},
		{[]string{"status=running"}, []string{"web1"}},
		{[]string{"status=created"}, []string{"db1", "web2"}},
		{[]string{"label=app=web", "status=running"}, []string{"web1"}},
		{[]string{"label=app=web", "name=db"}, nil},
	} {
		args := []string{"pod", "ls", "-q"}
		for _, f := range c.filters {
			args = append(args, "--filter", f)
		}
		var got []string
		for _, id := range strings.Fields(mustHull(t, root, args...)) {
			for name, full := range ids {
				if strings.HasPrefix(full, id) {
					got = append(got, name)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("pod ls -q --filter %v: %v, want %v", c.filters, got, c.want)
		}
	}
	if out := mustHull(t, root, "pod", "ls", "--filter", "label=tier=front", "--format", "{{.Name}} {{.Status}} {{.Labels}}"); out != "web1 Running map[app:web tier:front]\n" {
		t.Errorf("pod ls --format template: %q", out)
	}
	// pod ps is pod ls (podman's alias).
	if out := mustHull(t, root, "pod", "ps", "--filter", "label=tier=front", "--format", "{{.Name}}"); out != "web1\n" {
		t.Errorf("pod ps --filter --format: %q", out)
	}
	for _, bad := range []struct{ filter, want string }{{"color=red", `unknown key "color"`}, {"name", "key=value"}} {
		out, _, err := hull(t, root, "pod", "ls", "--filter", bad.filter)
		if err == nil || !strings.Contains(err.Error(), bad.want) || out != "" {
			t.Errorf("pod ls --filter %s: %v, printed %q; want an error saying %q", bad.filter, err, out, bad.want)
		}
	}

	// --format json: podman 4.3's pod ps shape, exactly its keys.
	out := mustHull(t, root, "pod", "ls", "--format", "json", "--filter", "label=app=web")
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw) != 2 {
		t.Fatalf("pod ls --format json: %v\n%s", err, out)
	}
	wantKeys := []string{"Cgroup", "Containers", "Created", "Id", "InfraId", "Labels", "Name", "Namespace", "Networks", "Status"}
	for _, o := range raw {
		var keys []string
		for k := range o {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("pod ls --format json keys %v, want podman's %v", keys, wantKeys)
		}
	}
	type podPs struct {
		Id, Name, Status string
		Created          time.Time
		Labels           map[string]string
		Containers       []struct{ Id, Names, Status string }
	}
	var pods []podPs
	if err := json.Unmarshal([]byte(out), &pods); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(pods, func(a, b podPs) int { return strings.Compare(a.Name, b.Name) })
	web1, web2 := pods[0], pods[1]
	if web1.Name != "web1" || web1.Id != ids["web1"] || web1.Status != "Running" || web1.Labels["app"] != "web" || web1.Labels["tier"] != "front" ||
		time.Since(web1.Created) > time.Hour || len(web1.Containers) != 1 || web1.Containers[0].Id != ctr || web1.Containers[0].Names != "w1c" || web1.Containers[0].Status != "running" {
		t.Errorf("pod ls --format json, web1: %+v", web1)
	}
	if web2.Name != "web2" || web2.Id != ids["web2"] || web2.Status != "Created" || len(web2.Labels) != 1 || web2.Containers == nil || len(web2.Containers) != 0 {
		t.Errorf("pod ls --format json, web2: %+v", web2)
	}
	if out := mustHull(t, root, "pod", "ls", "--format", "json", "--filter", "name=nothing"); strings.TrimSpace(out) != "[]" {
		t.Errorf("pod ls --format json of no pod: %q, want []", out)
	}
}
