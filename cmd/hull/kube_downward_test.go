package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The downward API in env: fieldRef paths of the pod and the node,
// resourceFieldRef with divisors rounded up, a limit not set being the
// node's allocatable (kubelet's), the resources of another container;
// bad field paths refused before anything starts with the API server's
// messages.
func TestKubeDownwardEnv(t *testing.T) {
	root, fx := kubeEnv(t)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: dw
  namespace: team-a
  labels:
    app: dw
    tier: back
  annotations:
    example.com/owner: Ana
    example.com/raw: "$(DW_NAME)"
spec:
  terminationGracePeriodSeconds: 1
  serviceAccountName: robot
  containers:
  - name: app
    image: %[1]s
    command: ["sh", "-c", "env | grep ^DW_ | sort; echo END; echo \"$(DW_NAME) via args\"; sleep 3600"]
    env:
    - {name: DW_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: DW_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: DW_UID, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.uid}}}
    - {name: DW_TIER, valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}}
    - {name: DW_NOLABEL, valueFrom: {fieldRef: {fieldPath: "metadata.labels['none']"}}}
    - {name: DW_OWNER, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['example.com/owner']"}}}
    - {name: DW_NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: DW_SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    - {name: DW_PODIP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: DW_PODIPS, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}
    - {name: DW_HOSTIP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: DW_HOSTIPS, valueFrom: {fieldRef: {fieldPath: status.hostIPs}}}
    - {name: DW_CPU_REQ, valueFrom: {resourceFieldRef: {resource: requests.cpu}}}
    - {name: DW_CPU_REQ_M, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
    - {name: DW_CPU_LIM, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
    - {name: DW_MEM_REQ_MI, valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1Mi}}}
    - {name: DW_MEM_REQ_K, valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1k}}}
    - {name: DW_MEM_LIM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: DW_EPH_REQ, valueFrom: {resourceFieldRef: {resource: requests.ephemeral-storage}}}
    - {name: DW_SIDE_MEM, valueFrom: {resourceFieldRef: {containerName: side, resource: limits.memory}}}
    - {name: DW_URL, value: "http://$(DW_PODIP):80/$(DW_LATER)"}
    - {name: DW_CHAIN, value: "$(DW_URL)x"}
    - {name: DW_RAW, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['example.com/raw']"}}}
    - {name: DW_LATER, value: late}
    resources:
      requests:
        cpu: 250m
        memory: 100M
    volumeMounts:
    - name: info
      mountPath: /etc/podinfo
  - name: side
    image: %[1]s
    command: ["sleep", "3600"]
    resources:
      limits:
        memory: 64Mi
  volumes:
  - name: info
    downwardAPI:
      items:
      - path: labels
        fieldRef: {fieldPath: metadata.labels}
      - path: annotations
        fieldRef: {fieldPath: metadata.annotations}
      - path: sub/name
        fieldRef: {fieldPath: metadata.name}
        mode: 0600
      - path: tier
        fieldRef: {fieldPath: "metadata.labels['tier']"}
      - path: side_mem_mi
        resourceFieldRef: {containerName: side, resource: limits.memory, divisor: 1Mi}
      - path: app_cpu_limit_m
        resourceFieldRef: {containerName: app, resource: limits.cpu, divisor: 1m}
`, fx.Busybox.Ref)
	t.Cleanup(func() { kube(t, root, "delete", "pod", "dw", "-n", "team-a", "--grace-period", "0") }) // before kubeEnv's, which looks in default only
	if out := applyYAML(t, root, manifest); out != "pod/dw created\n" {
		t.Errorf("apply printed %q", out)
	}
	logs := waitKubeOut(t, root, "printing its env", func(out string) bool { return strings.Contains(out, "via args") },
		"logs", "dw", "-n", "team-a", "-c", "app")
	var pod struct {
		Metadata struct{ UID string }
		Spec     struct{ NodeName string }
		Status   struct{ PodIP, HostIP string }
	}
	if err := json.Unmarshal([]byte(mustKube(t, root, "get", "pod", "dw", "-n", "team-a", "-o", "json")), &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Status.PodIP == "" || pod.Status.HostIP == "" || pod.Spec.NodeName == "" {
		t.Fatalf("pod IP %q, host IP %q, node %q: want all three", pod.Status.PodIP, pod.Status.HostIP, pod.Spec.NodeName)
	}
	memTotal := int64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				memTotal = kb * 1024
			}
		}
	}
	allocMi := (memTotal - 100<<20 + 1<<20 - 1) >> 20 // MemTotal less kubelet's 100Mi eviction threshold, in Mi rounded up
	want := []string{
		"DW_CHAIN=http://" + pod.Status.PodIP + ":80/$(DW_LATER)x", // kubelet's expansion: earlier variables, expanded
		"DW_CPU_LIM=" + strconv.Itoa(runtime.NumCPU()),             // no limit: the node's allocatable CPUs
		"DW_CPU_REQ=1",     // 250m in cores, rounded up
		"DW_CPU_REQ_M=250", // in millicores
		"DW_EPH_REQ=0",     // no request
		"DW_HOSTIP=" + pod.Status.HostIP,
		"DW_HOSTIPS=" + pod.Status.HostIP,
		"DW_LATER=late",
		"DW_MEM_LIM_MI=" + strconv.FormatInt(allocMi, 10),
		"DW_MEM_REQ_K=100000",
		"DW_MEM_REQ_MI=96", // 100M = 95.37Mi, rounded up
		"DW_NAME=dw",
		"DW_NODE=" + pod.Spec.NodeName,
		"DW_NOLABEL=",
		"DW_NS=team-a",
		"DW_OWNER=Ana",
		"DW_PODIP=" + pod.Status.PodIP,
		"DW_PODIPS=" + pod.Status.PodIP,
		"DW_RAW=$(DW_NAME)", // a value from a source is not expanded
		"DW_SA=robot",
		"DW_SIDE_MEM=67108864", // the side container's limit, in bytes
		"DW_TIER=back",
		"DW_UID=" + pod.Metadata.UID,
		"DW_URL=http://" + pod.Status.PodIP + ":80/$(DW_LATER)", // a later variable is not expanded
		"END",
		"dw via args",
	}
	if got := strings.TrimSpace(logs); got != strings.Join(want, "\n") {
		t.Errorf("env in the container:\n%s\nwant:\n%s", logs, strings.Join(want, "\n"))
	}
	// The downwardAPI volume: one file per item, read-only.
	for _, tc := range []struct{ cmd, want string }{
		{"cat /etc/podinfo/labels", "app=\"dw\"\ntier=\"back\""},
		{"cat /etc/podinfo/annotations", "example.com/owner=\"Ana\"\nexample.com/raw=\"$(DW_NAME)\""},
		{"cat /etc/podinfo/sub/name; stat -c ' %a' /etc/podinfo/sub/name /etc/podinfo/tier", "dw 600\n 644"},
		{"cat /etc/podinfo/tier", "back"},
		{"cat /etc/podinfo/side_mem_mi", "64"},
		{"cat /etc/podinfo/app_cpu_limit_m", strconv.Itoa(runtime.NumCPU() * 1000)},
		{"touch /etc/podinfo/x 2>&1 || echo refused", "refused"},
	} {
		out, errOut, err := kube(t, root, "exec", "dw", "-n", "team-a", "-c", "app", "--", "sh", "-c", tc.cmd)
		if err != nil && !strings.Contains(tc.cmd, "touch") || !strings.Contains(out, tc.want) {
			t.Errorf("%s in the container: %q %s %v; want %q", tc.cmd, out, errOut, err, tc.want)
		}
	}

	// describe: kubectl's lines (the value it can tell from the object).
	desc := mustKube(t, root, "describe", "pod", "dw", "-n", "team-a")
	for _, re := range []string{
		`DW_NAME:\s+dw \(v1:metadata.name\)\n`, `DW_TIER:\s+back \(v1:metadata.labels\['tier'\]\)\n`,
		`DW_PODIP:\s+\(v1:status.podIP\)\n`, `DW_CPU_REQ_M:\s+250 \(requests.cpu\)\n`,
		`DW_CPU_LIM:\s+node allocatable \(limits.cpu\)\n`, `DW_SIDE_MEM:\s+node allocatable \(limits.memory\)\n`,
		`Type:\s+DownwardAPI \(a volume populated by information about the pod\)\n\s+Items:\n\s+metadata.labels -> labels\n`,
		`\s+limits.memory -> side_mem_mi\n`, `/etc/podinfo from info \(rw\)`,
	} {
		if !regexp.MustCompile(re).MatchString(desc) {
			t.Errorf("describe: no line like %s:\n%s", re, desc)
		}
	}

	// Bad field paths and divisors: the API server's messages, nothing made.
	bad := func(env string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: c\n    image: %s\n    env:\n    - name: X\n      valueFrom:\n%s", fx.Busybox.Ref, env)
	}
	for _, tc := range []struct{ name, env, want string }{
		{"unknown path", "        fieldRef: {fieldPath: metadata.foo}\n",
			`Pod "bad" is invalid: spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "metadata.foo": error converting fieldPath: field label not supported: metadata.foo`},
		{"path not for env", "        fieldRef: {fieldPath: status.phase}\n",
			`spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "status.phase": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"`},
		{"subscript of a name", "        fieldRef: {fieldPath: \"metadata.name['x']\"}\n",
			`fieldRef.fieldPath: Invalid value: "metadata.name['x']": error converting fieldPath: field label does not support subscript: metadata.name['x']`},
		{"bad label key", "        fieldRef: {fieldPath: \"metadata.labels['a b']\"}\n",
			`spec.containers[0].env[0].valueFrom.fieldRef: Invalid value: "a b": name part must consist of alphanumeric characters`},
		{"api version", "        fieldRef: {apiVersion: v2, fieldPath: metadata.name}\n",
			`error converting fieldPath: unsupported pod version: v2`},
		{"unknown resource", "        resourceFieldRef: {resource: limits.gpu}\n",
			`spec.containers[0].env[0].valueFrom.resourceFieldRef.resource: Unsupported value: "limits.gpu": supported values: "limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory"`},
		{"cpu divisor", "        resourceFieldRef: {resource: limits.cpu, divisor: 1Mi}\n",
			`spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: Invalid value: "limits.cpu": only divisor's values 1m and 1 are supported with the cpu resource`},
		{"memory divisor", "        resourceFieldRef: {resource: requests.memory, divisor: 3Mi}\n",
			`only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource`},
		{"volume path", "        fieldRef: {fieldPath: metadata.name}\n  volumes:\n  - name: v\n    downwardAPI:\n      items:\n      - path: ip\n        fieldRef: {fieldPath: status.podIP}\n",
			`spec.volumes[0].downwardAPI.fieldRef.fieldPath: Unsupported value: "status.podIP": supported values: "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"`},
		{"volume container", "        fieldRef: {fieldPath: metadata.name}\n  volumes:\n  - name: v\n    downwardAPI:\n      items:\n      - path: cpu\n        resourceFieldRef: {resource: limits.cpu}\n",
			`spec.volumes[0].downwardAPI.resourceFieldRef.containerName: Required value`},
		{"two sources", "        fieldRef: {fieldPath: metadata.name}\n        resourceFieldRef: {resource: limits.cpu}\n",
			`spec.containers[0].env[0].valueFrom: Invalid value: "": may not have more than one field specified at a time`},
	} {
		t.Run(tc.name, func(t *testing.T) { applyRefused(t, root, bad(tc.env), tc.want) })
	}
	if _, errOut, _ := kube(t, root, "get", "pod", "bad"); !strings.Contains(errOut, `"bad" not found`) {
		t.Errorf("get pod bad after bad input: %s; want not found", errOut)
	}
}

// applyRefused applies a manifest that must be refused with an error
// that says want.
func applyRefused(t *testing.T, root, manifest, want string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(p, []byte(manifest), 0o644)
	out, errOut, err := kube(t, root, "apply", "-f", p)
	if err == nil || !strings.Contains(errOut, want) {
		t.Errorf("apply: %v\nstdout: %s\nstderr: %s\nwant %q", err, out, errOut, want)
	}
}
