package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestInfoAndVersionFormat checks docker's field names in `info
// --format`, `info -f json` and `version --format`.
func TestInfoAndVersionFormat(t *testing.T) {
	root, fx := containerEnv(t)
	mustHull(t, root, "run", "-d", "--name", "up", fx.Busybox.Ref, "sleep", "60")
	mustHull(t, root, "create", "--name", "idle", fx.Busybox.Ref, "true")

	out := mustHull(t, root, "info", "--format", "{{.Driver}}|{{.Containers}}|{{.ContainersRunning}}|{{.ContainersStopped}}|{{.Images}}|{{.OSType}}|{{.DockerRootDir}}|{{.LoggingDriver}}|{{.CgroupDriver}}")
	want := "overlay|2|1|1|1|linux|" + root + "|k8s-file|cgroupfs\n"
	if out != want {
		t.Errorf("info --format: got %q, want %q", out, want)
	}
	out = mustHull(t, root, "info", "-f", "json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("info -f json: %v\n%s", err, out)
	}
	for _, k := range []string{"ID", "Name", "Driver", "DriverStatus", "CgroupVersion", "CgroupDriver", "SecurityOptions", "ContainersPaused",
		"ServerVersion", "KernelVersion", "OperatingSystem", "Architecture", "NCPU", "MemTotal"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("info -f json lacks %s:\n%s", k, out)
		}
	}
	if v := doc["CgroupVersion"]; v != "1" && v != "2" {
		t.Errorf("CgroupVersion = %v", v)
	}
	// The engine's ID stays.
	if id := mustHull(t, root, "info", "--format", "{{.ID}}"); strings.TrimSpace(id) != doc["ID"] || len(strings.TrimSpace(id)) != 36 {
		t.Errorf("ID changed or malformed: %q then %q", doc["ID"], id)
	}
	if _, _, err := hull(t, root, "info", "--format", "{{.NoSuchField}}"); err == nil {
		t.Error("info --format with an unknown field succeeded")
	}

	if out := mustHull(t, root, "version", "--format", "{{.Client.Version}} {{.Server.Version}}"); out != version+" "+version+"\n" {
		t.Errorf("version --format: %q", out)
	}
	out = mustHull(t, root, "version", "--format", "{{json .}}")
	var v struct{ Client, Server map[string]any }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Client["Version"] != version || v.Server["KernelVersion"] == "" {
		t.Errorf("version --format '{{json .}}': %v\n%s", err, out)
	}
}
