package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"hull/internal/testenv"
)

// kubeEnv is a registry with busybox and a private hull root for `hull
// kube` (hull-cri beside HULL_BIN), with docker.io mirrored to
// REGISTRY/mirror (where kubeImage pushes stand-ins). Every pod is
// deleted when the test ends, and its supervisor gone.
func kubeEnv(t *testing.T) (root string, fx *testenv.Fixtures) {
	t.Helper()
	bin := os.Getenv("HULL_BIN")
	if bin == "" || os.Geteuid() != 0 {
		t.Skip("needs root and HULL_BIN (make build builds hull-cri beside it)")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bin), "hull-cri")); err != nil {
		t.Skipf("no hull-cri beside HULL_BIN: %v", err)
	}
	_, fx = testenv.Setup(t, testenv.FixBusybox)
	root = kubeRoot(t, fx)
	t.Cleanup(func() {
		out, _, _ := kube(t, root, "get", "pods", "-A", "-o", "name")
		for _, p := range strings.Fields(out) {
			if _, errOut, err := kube(t, root, "delete", p, "--grace-period", "0"); err != nil {
				t.Errorf("cleanup: delete %s: %v\n%s", p, err, errOut)
			}
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if len(hullProcs(root, func(int, []string) bool { return true })) == 0 {
				break
			}
		}
		if out := mustHull(t, root, "ps", "-A", "-aq"); out != "" {
			t.Errorf("containers left after every pod was deleted: %s", out)
		}
		if out := mustHull(t, root, "pod", "ls", "-A", "-q"); out != "" {
			t.Errorf("pods left after every kube pod was deleted: %s", out)
		}
		if left := kubeCgroupsLeft(root); len(left) > 0 {
			t.Errorf("pod cgroups left after every kube pod was deleted: %v", left)
		}
	})
	return root, fx
}

// kube runs `hull kube ARGS` as a separate process (it execs hull-cri),
// with back-offs scaled down so crash loops and pull back-offs come in
// seconds.
func kube(t *testing.T, root string, args ...string) (string, string, error) {
	return kubeStdin(t, root, "", args...)
}

func kubeStdin(t *testing.T, root, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return kubeScaled(t, root, "0.1", stdin, args...)
}

// kubeScaled is kubeStdin with the back-off scale given (a supervisor
// apply starts keeps it).
func kubeScaled(t *testing.T, root, scale, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := hullProc(root, append([]string{"kube"}, args...)...)
	cmd.WaitDelay = time.Second
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() }) // a hang fails the test, not the run
	defer timer.Stop()
	cmd.Env = append(cmd.Env, "HULL_CRI="+filepath.Join(filepath.Dir(os.Getenv("HULL_BIN")), "hull-cri"), "HULL_KUBE_BACKOFF_SCALE="+scale)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func mustKube(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, errOut, err := kube(t, root, args...)
	if err != nil {
		t.Fatalf("hull kube %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// applyYAML writes a manifest and applies it.
func applyYAML(t *testing.T, root, manifest string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(p, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return mustKube(t, root, "apply", "-f", p)
}

// podJSON is the pod as `get -o json` prints it.
type podJSON struct {
	Status struct {
		Phase             string `json:"phase"`
		PodIP             string `json:"podIP"`
		QOSClass          string `json:"qosClass"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			RestartCount int    `json:"restartCount"`
			ContainerID  string `json:"containerID"`
			ImageID      string `json:"imageID"`
			State        struct {
				Waiting *struct {
					Reason  string `json:"reason"`
					Message string `json:"message"`
				} `json:"waiting"`
				Running    *struct{} `json:"running"`
				Terminated *struct {
					Reason   string `json:"reason"`
					ExitCode int    `json:"exitCode"`
				} `json:"terminated"`
			} `json:"state"`
			LastState struct {
				Terminated *struct {
					Reason   string `json:"reason"`
					ExitCode int    `json:"exitCode"`
				} `json:"terminated"`
			} `json:"lastState"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func getPod(t *testing.T, root, name string) podJSON {
	t.Helper()
	var p podJSON
	if err := json.Unmarshal([]byte(mustKube(t, root, "get", "pod", name, "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitPod waits until ok holds for the pod, failing with its description
// after a minute.
func waitPod(t *testing.T, root, name, what string, ok func(p podJSON) bool) podJSON {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		p := getPod(t, root, name)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			out, _, _ := kube(t, root, "describe", "pod", name)
			t.Fatalf("pod %s: not %s after a minute:\n%s", name, what, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitingReason is the first container's waiting reason ("" if none).
func (p podJSON) waiting() string {
	if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
		return ""
	}
	return p.Status.ContainerStatuses[0].State.Waiting.Reason
}

// kubeImage pushes busybox as REGISTRY/mirror/library/NAME:TAG (so
// docker.io/library/NAME:TAG resolves to it through the mirror) with a
// USER and a command.
func kubeImage(t *testing.T, fx *testenv.Fixtures, ref, user string, cmd ...string) {
	t.Helper()
	src, err := name.ParseReference(fx.Busybox.Ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	c.User, c.Cmd = user, cmd
	img, err = mutate.Config(img, c)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.ParseReference(fx.Registry + "/mirror/library/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	_ = v1.Hash{}
}

// The seed's manifest, verbatim.
const seedManifest = `apiVersion: v1
kind: Pod
metadata:
  name: container-fundamentals-demo
spec:
  containers:
    - name: web
      image: docker.io/library/nginx:1.25
      securityContext:
        runAsNonRoot: true
        allowPrivilegeEscalation: false
      resources:
        requests:
          cpu: 100m
          memory: 128Mi
        limits:
          cpu: 500m
          memory: 256Mi
`

// Bad input is refused before anything is made: each error says what is
// wrong and where, and no pod, sandbox or container is left.
func TestKubeApplyBadInput(t *testing.T) {
	root, fx := kubeEnv(t)
	good := func(name string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n  - name: c\n    image: %s\n", name, fx.Busybox.Ref)
	}
	for _, tc := range []struct {
		name, manifest, want string
	}{
		{"invalid YAML", good("ok") + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   bad: indent\n", "yaml: line 14, column 7:"},
		{"invalid YAML, its column", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x: y\n", "yaml: line 4, column 9: mapping values are not allowed in this context\n  4 |   name: x: y\n    |         ^"},
		{"unknown field", good("ok") + "    imagePullPolicyy: Always\n", `strict decoding error: unknown field "spec.containers[0].imagePullPolicyy"`},
		{"duplicate field", good("ok") + "    image: other\n", `already set in map`},
		{"missing containers", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec: {}\n", `Pod "x" is invalid: spec.containers: Required value`},
		{"missing image", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: c\n", `spec.containers[0].image: Required value`},
		{"missing name", "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec:\n  containers:\n  - name: c\n    image: busybox\n", `metadata.name: Required value: name or generateName is required`},
		{"missing kind", "apiVersion: v1\nmetadata:\n  name: x\n", `[kind not set]`},
		{"unsupported kind", "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n", `kind Service (v1) is not supported: hull kube applies Pod, Deployment, ConfigMap, Secret and PersistentVolumeClaim objects`},
		{"deployment selector", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  selector:\n    matchLabels:\n      app: a\n  template:\n    metadata:\n      labels:\n        app: b\n    spec:\n      containers:\n      - name: c\n        image: busybox\n", "spec.template.metadata.labels: Invalid value: {\"app\":\"b\"}: `selector` does not match template `labels`"},
		{"mount of no volume", good("x") + "    volumeMounts:\n    - name: data\n      mountPath: /data\n", `spec.containers[0].volumeMounts[0].name: Not found: "data"`},
		{"bad configmap key", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a/b: c\n", `ConfigMap "x" is invalid: data[a/b]: Invalid value: "a/b"`},
		{"unsupported volume", strings.Replace(good("x"), "spec:\n", "spec:\n  volumes:\n  - name: v\n    nfs:\n      server: s\n      path: /\n", 1), `spec.volumes[0]: Forbidden: this volume type is not supported by hull kube`},
		{"hostPath type", strings.Replace(good("x"), "spec:\n", "spec:\n  volumes:\n  - name: v\n    hostPath:\n      path: /tmp\n      type: Dir\n", 1), `spec.volumes[0].hostPath.type: Unsupported value: "Dir"`},
		{"bad pod name", good("Bad_Name"), `metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain`},
		{"bad container name", strings.Replace(good("x"), "name: c", "name: Web_1", 1), `spec.containers[0].name: Invalid value: "Web_1": a lowercase RFC 1123 label`},
		{"duplicate container name", good("x") + "  - name: c\n    image: busybox\n", `spec.containers[1].name: Duplicate value: "c"`},
		{"bad quantity", good("x") + "    resources:\n      limits:\n        memory: 12 parsecs\n", `quantities must match the regular expression`},
		{"request over limit", good("x") + "    resources:\n      requests:\n        cpu: \"2\"\n      limits:\n        cpu: \"1\"\n", `must be less than or equal to cpu limit of 1`},
		{"bad restart policy", strings.Replace(good("x"), "spec:\n", "spec:\n  restartPolicy: Sometimes\n", 1), `spec.restartPolicy: Unsupported value: "Sometimes"`},
		{"init restartPolicy", strings.Replace(good("x"), "spec:\n", "spec:\n  initContainers:\n  - name: side\n    image: busybox\n    restartPolicy: OnFailure\n", 1), `spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"`},
		{"container restartPolicy", good("x") + "    restartPolicy: Always\n", `spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers`},
		// A key its object, applied with it or stored, does not have.
		{"missing ConfigMap key", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"1\"\n---\n" + good("x") + "    env:\n    - name: V\n      valueFrom:\n        configMapKeyRef: {name: cfg, key: nope}\n",
			`Pod "x" is invalid: spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Invalid value: "nope": ConfigMap default/cfg has no such key (its keys: a): add the key, correct the reference, or mark it optional: true`},
		{"missing Secret key in a volume", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sec\nstringData:\n  b: \"2\"\n---\n" + strings.Replace(good("x"), "spec:\n", "spec:\n  volumes:\n  - name: v\n    secret:\n      secretName: sec\n      items: [{key: nope, path: p}]\n", 1),
			`spec.volumes[0].secret.items[0].key: Invalid value: "nope": Secret default/sec has no such key (its keys: b)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "pod.yaml")
			os.WriteFile(p, []byte(tc.manifest), 0o644)
			out, errOut, err := kube(t, root, "apply", "-f", p)
			if err == nil || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, p) {
				t.Errorf("apply: %v\nstdout: %s\nstderr: %s\nwant an error naming the file with %q", err, out, errOut, tc.want)
			}
		})
	}
	_, errOut, _ := kube(t, root, "get", "pods")
	if !strings.Contains(errOut, "No resources found in default namespace.") {
		t.Errorf("get pods after bad input: %s; want none (a bad document leaves its good neighbours unmade too)", errOut)
	}
	if out := mustHull(t, root, "pod", "ls", "-A", "-q"); out != "" {
		t.Errorf("sandboxes after bad input: %s", out)
	}
	// A missing file, and stdin.
	if _, errOut, err := kube(t, root, "apply", "-f", "/nonexistent.yaml"); err == nil || !strings.Contains(errOut, `the path "/nonexistent.yaml" does not exist`) {
		t.Errorf("apply -f missing: %v %s", err, errOut)
	}
	if _, errOut, err := kubeStdin(t, root, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  bogus: 1\n", "apply", "-f", "-"); err == nil || !strings.Contains(errOut, `unknown field "metadata.bogus"`) {
		t.Errorf("apply -f - with an unknown field: %v %s", err, errOut)
	}
}

// A pod of two containers, through every command: apply, get (each
// output), describe, logs, exec, delete. The containers talk over
// localhost (one network namespace per pod).
func TestKubePodCommands(t *testing.T) {
	root, fx := kubeEnv(t)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: duo
  labels:
    app: duo
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: server
    image: %[1]s
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do echo hello-over-localhost | nc -l -p 8080; done"]
    env:
    - name: GREETING
      value: hi
    resources:
      requests:
        cpu: 250m
        memory: 64Mi
  - name: client
    image: %[1]s
    command: ["sh", "-c", "trap 'exit 0' TERM; echo started; while true; do nc 127.0.0.1 8080; sleep 0.2; done"]
`, fx.Busybox.Ref)
	if out := applyYAML(t, root, manifest); out != "pod/duo created\n" {
		t.Errorf("apply printed %q", out)
	}
	p := waitPod(t, root, "duo", "running", func(p podJSON) bool {
		return p.Status.Phase == "Running" && len(p.Status.ContainerStatuses) == 2 &&
			p.Status.ContainerStatuses[0].State.Running != nil && p.Status.ContainerStatuses[1].State.Running != nil
	})
	if p.Status.PodIP == "" || p.Status.QOSClass != "Burstable" {
		t.Errorf("pod IP %q, QoS %q; want an IP and Burstable", p.Status.PodIP, p.Status.QOSClass)
	}
	cs := p.Status.ContainerStatuses[0]
	if !strings.HasPrefix(cs.ContainerID, "hull://") || cs.ImageID != fx.Busybox.Repo+"@"+fx.Busybox.Digest {
		t.Errorf("containerID %q imageID %q; want hull://ID and %s@%s", cs.ContainerID, cs.ImageID, fx.Busybox.Repo, fx.Busybox.Digest)
	}
	// Applying it again changes nothing.
	if out := applyYAML(t, root, manifest); out != "pod/duo unchanged\n" {
		t.Errorf("second apply printed %q", out)
	}
	changed := filepath.Join(t.TempDir(), "changed.yaml")
	os.WriteFile(changed, []byte(strings.Replace(manifest, "echo started", "echo begun", 1)), 0o644)
	if _, errOut, err := kube(t, root, "apply", "-f", changed); err == nil || !strings.Contains(errOut, `The Pod "duo" is invalid: spec: Forbidden: pod updates may not change fields`) {
		t.Errorf("apply of a changed spec: %v %s", err, errOut)
	}

	out := mustKube(t, root, "get", "pods")
	if !regexp.MustCompile(`^NAME   READY   STATUS    RESTARTS   AGE\nduo    2/2     Running   0          \d+s\n$`).MatchString(out) {
		t.Errorf("get pods:\n%s", out)
	}
	out = mustKube(t, root, "get", "pods", "-o", "wide")
	if !strings.Contains(out, "IP") || !strings.Contains(out, p.Status.PodIP) || !strings.Contains(out, "NOMINATED NODE") {
		t.Errorf("get pods -o wide:\n%s", out)
	}
	if out := mustKube(t, root, "get", "pod", "duo", "-o", "jsonpath={.status.containerStatuses[0].imageID}"); out != fx.Busybox.Repo+"@"+fx.Busybox.Digest {
		t.Errorf("jsonpath imageID: %q", out)
	}
	if out := mustKube(t, root, "get", "pods", "-o", "name"); out != "pod/duo\n" {
		t.Errorf("get -o name: %q", out)
	}
	if out := mustKube(t, root, "get", "pods", "-l", "app=duo", "-o", "name"); out != "pod/duo\n" {
		t.Errorf("get -l app=duo: %q", out)
	}
	if out, errOut, _ := kube(t, root, "get", "pods", "-l", "app in (other)"); out != "" || !strings.Contains(errOut, "No resources found") {
		t.Errorf("get -l 'app in (other)': %q %q", out, errOut)
	}
	if out := mustKube(t, root, "get", "events"); !regexp.MustCompile(`(?m)^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\n(.*\n)*\d+s\s+Normal\s+Started\s+pod/duo\s+Started container client$`).MatchString(out) {
		t.Errorf("get events:\n%s", out)
	}
	if out := mustKube(t, root, "get", "pod/duo", "-o", "yaml"); !strings.HasPrefix(out, "apiVersion: v1\nkind: Pod\nmetadata:\n") || !strings.Contains(out, "qosClass: Burstable") {
		t.Errorf("get -o yaml:\n%s", out)
	}
	if _, errOut, err := kube(t, root, "get", "pod", "nosuch"); err == nil || !strings.Contains(errOut, `pods "nosuch" not found`) {
		t.Errorf("get pod nosuch: %v %s", err, errOut)
	}

	out = mustKube(t, root, "describe", "pod", "duo")
	for _, want := range []string{`Name:\s+duo\n`, `Labels:\s+app=duo\n`, `Status:\s+Running\n`,
		`QoS Class:\s+Burstable\n`, `\n      GREETING:\s+hi\n`, `\n    Requests:\n      cpu:\s+250m\n      memory:\s+64Mi\n`,
		`Normal\s+Started\s+\d+s\s+kubelet\s+Started container server\n`, `\n  Type\s+Reason\s+Age\s+From\s+Message\n`, `ContainersReady\s+True`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe lacks %s:\n%s", want, out)
		}
	}

	// The client reached the server on localhost.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := mustKube(t, root, "logs", "duo", "-c", "client")
		if strings.Contains(out, "hello-over-localhost") {
			if !strings.HasPrefix(out, "started\n") {
				t.Errorf("logs -c client: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client never read the server over localhost:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := mustKube(t, root, "logs", "duo", "-c", "client", "--tail", "1"); strings.Count(out, "\n") != 1 {
		t.Errorf("logs --tail 1: %q", out)
	}
	if _, errOut, err := kube(t, root, "logs", "duo"); err != nil {
		t.Errorf("logs without -c (the first container): %v %s", err, errOut)
	}
	if _, errOut, err := kube(t, root, "logs", "duo", "-c", "nosuch"); err == nil || !strings.Contains(errOut, "container nosuch is not valid for pod duo") {
		t.Errorf("logs -c nosuch: %v %s", err, errOut)
	}
	if out := mustKube(t, root, "exec", "duo", "-c", "server", "--", "sh", "-c", "echo $GREETING; hostname; cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight"); !strings.HasPrefix(out, "hi\nduo\n") || !strings.Contains(out, "256") {
		t.Errorf("exec: %q; want the env, the pod's host name and cpu.shares 256 (250m)", out)
	}

	start := time.Now()
	if out := mustKube(t, root, "delete", "pod", "duo"); out != "pod \"duo\" deleted from default namespace\n" {
		t.Errorf("delete printed %q", out)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("delete took %v; the containers stop on SIGTERM", d)
	}
	if _, errOut, _ := kube(t, root, "get", "pods"); !strings.Contains(errOut, "No resources found") {
		t.Errorf("get pods after delete: %s", errOut)
	}
	if out := mustHull(t, root, "ps", "-A", "-aq"); out != "" {
		t.Errorf("containers after delete: %s", out)
	}
}

// The seed's manifest runs as on a real node: nginx:1.25 runs as root,
// so runAsNonRoot refuses it with CreateContainerConfigError and
// kubelet's message; the same manifest with an image whose USER is not
// root runs.
func TestKubeSeedManifest(t *testing.T) {
	root, fx := kubeEnv(t)
	kubeImage(t, fx, "nginx:1.25", "", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")
	if out := applyYAML(t, root, seedManifest); out != "pod/container-fundamentals-demo created\n" {
		t.Errorf("apply: %q", out)
	}
	p := waitPod(t, root, "container-fundamentals-demo", "refused", func(p podJSON) bool { return p.waiting() == "CreateContainerConfigError" })
	msg := p.Status.ContainerStatuses[0].State.Waiting.Message
	if !regexp.MustCompile(`^container has runAsNonRoot and image will run as root \(pod: "container-fundamentals-demo_default\([0-9a-f-]{36}\)", container: web\)$`).MatchString(msg) {
		t.Errorf("message %q", msg)
	}
	if p.Status.Phase != "Pending" || p.Status.QOSClass != "Burstable" {
		t.Errorf("phase %s, QoS %s; want Pending, Burstable", p.Status.Phase, p.Status.QOSClass)
	}
	out := mustKube(t, root, "get", "pods", "container-fundamentals-demo")
	if !regexp.MustCompile(`container-fundamentals-demo   0/1     CreateContainerConfigError   0          \d+s`).MatchString(out) {
		t.Errorf("get pods:\n%s", out)
	}
	out = mustKube(t, root, "describe", "pod", "container-fundamentals-demo")
	if !strings.Contains(out, "Warning  Failed") || !strings.Contains(out, "Error: container has runAsNonRoot and image will run as root") {
		t.Errorf("describe lacks the Failed event:\n%s", out)
	}
	mustKube(t, root, "delete", "pod", "container-fundamentals-demo")

	// An image whose USER is not root: the same manifest runs. (A new
	// root: the first one has the root image under that name.)
	root2 := kubeRoot(t, fx)
	defer kube(t, root2, "delete", "pod", "container-fundamentals-demo", "--grace-period", "0")
	kubeImage(t, fx, "nginx:1.25", "101", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")
	applyYAML(t, root2, seedManifest)
	p = waitPod(t, root2, "container-fundamentals-demo", "running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	if p.Status.PodIP == "" {
		t.Errorf("no pod IP")
	}
	if out := mustKube(t, root2, "exec", "container-fundamentals-demo", "--", "sh", "-c", "id -u; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; grep NoNewPrivs /proc/self/status"); !strings.HasPrefix(out, "101\n268435456\n") || !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("exec in the pod: %q; want uid 101, the 256Mi limit and no_new_privs", out)
	}
	// The pod's own cgroup, as kubelet makes it: the pod's limits.
	uid := mustKube(t, root2, "get", "pod", "container-fundamentals-demo", "-o", "jsonpath={.metadata.uid}")
	v2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		v2 = true
	}
	pod := kubeCgroupRoot(root2)[1:] + "/burstable/pod" + uid
	checks := [][3]string{{"memory/" + pod + "/memory.limit_in_bytes", "268435456"}, {"cpu/" + pod + "/cpu.cfs_quota_us", "50000"}, {"cpu/" + pod + "/cpu.shares", "102"}}
	if v2 {
		checks = [][3]string{{pod + "/memory.max", "268435456"}, {pod + "/cpu.max", "50000 100000"}}
	}
	for _, c := range checks {
		b, err := os.ReadFile("/sys/fs/cgroup/" + c[0])
		if err != nil || strings.TrimSpace(string(b)) != c[1] {
			t.Errorf("pod cgroup %s: %q, %v; want %s", c[0], b, err, c[1])
		}
	}
	mustKube(t, root2, "delete", "pod", "container-fundamentals-demo")
	for _, c := range checks {
		if _, err := os.Stat(filepath.Dir("/sys/fs/cgroup/" + c[0])); err == nil {
			t.Errorf("pod cgroup %s left after delete", filepath.Dir(c[0]))
		}
	}
}

// kubeRoot is a private hull root whose docker.io is mirrored to
// REGISTRY/mirror, only (mirrors_only): a name the mirror lacks fails
// there and is never looked up at docker.io.
func kubeRoot(t *testing.T, fx *testenv.Fixtures) string {
	t.Helper()
	return kubeRootIn(t, fx, "")
}

// kubeRootIn is kubeRoot with its pods' cgroups under cgroupRoot
// (kubeCgroupRoot's if "").
func kubeRootIn(t *testing.T, fx *testenv.Fixtures, cgroupRoot string) string {
	t.Helper()
	root := t.TempDir()
	if cgroupRoot == "" {
		cgroupRoot = kubeCgroupRoot(root)
	}
	cfg := testenv.NetworkConfig(t, root)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[registries]\nmirrors_only = true\n[registries.mirrors]\n\"docker.io\" = [%q]\n[kube]\ncgroup_root = %q\n", fx.Registry+"/mirror", cgroupRoot)
	f.Close()
	return root
}

// kubeCgroupRoot is the cgroup root of a test's hull root ([kube]
// cgroup_root): its own, so that no other root's pod teardown removes a
// level its pods are about to use, and what it leaves can be checked.
func kubeCgroupRoot(root string) string {
	h := fnv.New32a()
	h.Write([]byte(root))
	return fmt.Sprintf("/kubepods-%08x", h.Sum32())
}

// kubeCgroupsLeft lists the directories of root's cgroup root still
// present in any hierarchy.
func kubeCgroupsLeft(root string) []string {
	var left []string
	for _, p := range []string{"/sys/fs/cgroup" + kubeCgroupRoot(root), "/sys/fs/cgroup/*" + kubeCgroupRoot(root)} {
		m, _ := filepath.Glob(p)
		left = append(left, m...)
	}
	return left
}

// Each failure status reached for real, with kubelet's back-offs (scaled
// down): a missing tag (ErrImagePull, then ImagePullBackOff), a crashing
// command (CrashLoopBackOff, restarts growing), a memory limit exceeded
// (OOMKilled, 137).
func TestKubeFailureStatuses(t *testing.T) {
	root, fx := kubeEnv(t)
	pod := func(name, image, policy, limit string, cmd string) string {
		m := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  restartPolicy: %s\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: %s\n", name, policy, image)
		if cmd != "" {
			m += "    command: [\"sh\", \"-c\", " + strconvQuote(cmd) + "]\n"
		}
		if limit != "" {
			m += "    resources:\n      limits:\n        memory: " + limit + "\n"
		}
		return m
	}
	// get -w prints each change of the pods' rows.
	watched := startKube(t, root, "get", "pods", "-w")
	missing := fx.Busybox.Repo + ":no-such-tag"
	applyYAML(t, root, pod("pull", missing, "Always", "", "")+"---\n"+
		pod("crash", fx.Busybox.Ref, "Always", "", "echo dying; exit 3"))

	waitPod(t, root, "pull", "ErrImagePull", func(p podJSON) bool { return p.waiting() == "ErrImagePull" })
	p := waitPod(t, root, "pull", "ImagePullBackOff", func(p podJSON) bool { return p.waiting() == "ImagePullBackOff" })
	if m := p.Status.ContainerStatuses[0].State.Waiting.Message; m != fmt.Sprintf("Back-off pulling image %q", missing) {
		t.Errorf("ImagePullBackOff message %q", m)
	}
	if out := mustKube(t, root, "describe", "pod", "pull"); !strings.Contains(out, "Failed to pull image \""+missing+"\"") || !strings.Contains(out, "Error: ErrImagePull") {
		t.Errorf("describe pull:\n%s", out)
	}

	// The back-off doubles (1 s, then 2 s, 4 s, ... at the tests' scale of
	// 0.1; by the time the pull pod's checks are done it may be past 2 s).
	grown := regexp.MustCompile(`^back-off ([2-9]|[1-9][0-9]+)s `)
	p = waitPod(t, root, "crash", "CrashLoopBackOff with a grown back-off", func(p podJSON) bool {
		return p.waiting() == "CrashLoopBackOff" && p.Status.ContainerStatuses[0].RestartCount >= 2 &&
			grown.MatchString(p.Status.ContainerStatuses[0].State.Waiting.Message)
	})
	cs := p.Status.ContainerStatuses[0]
	if cs.LastState.Terminated == nil || cs.LastState.Terminated.ExitCode != 3 || cs.LastState.Terminated.Reason != "Error" || p.Status.Phase != "Running" {
		t.Errorf("crash: phase %s, last state %+v; want Running with the last exit 3 (Error)", p.Status.Phase, cs.LastState.Terminated)
	}
	if !strings.HasPrefix(cs.State.Waiting.Message, "back-off ") || !strings.Contains(cs.State.Waiting.Message, "restarting failed container=c pod=crash_default(") {
		t.Errorf("CrashLoopBackOff message %q", cs.State.Waiting.Message)
	}
	if out := mustKube(t, root, "get", "pod", "crash"); !regexp.MustCompile(`crash   0/1     CrashLoopBackOff   \d+ \(\d+s ago\)`).MatchString(out) {
		t.Errorf("get pod crash:\n%s", out)
	}
	if out := mustKube(t, root, "logs", "crash", "-p"); out != "dying\n" {
		t.Errorf("logs -p: %q", out)
	}

	for _, want := range []string{`(?m)^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$`, `(?m)^pull\s+0/1\s+ErrImagePull\s`, `(?m)^pull\s+0/1\s+ImagePullBackOff\s`,
		`(?m)^crash\s+0/1\s+CrashLoopBackOff\s+2 \(`} {
		// The watch prints a change when it next reads the status, which
		// can come after waitPod above saw it: give it a few seconds.
		re := regexp.MustCompile(want)
		for deadline := time.Now().Add(5 * time.Second); !re.MatchString(watched.String()); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("get -w lacks %s:\n%s", want, watched.String())
				break
			}
		}
	}
	// Over its memory limit: killed (137, OOMKilled) and restarted once
	// at once; the next restart waits for the back-off, so the first
	// status that shows the kill counts one restart.
	applyYAML(t, root, pod("oom", fx.Busybox.Ref, "Always", "20Mi", "a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done"))
	p = waitPod(t, root, "oom", "OOMKilled", func(p podJSON) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		t := p.Status.ContainerStatuses[0].LastState.Terminated
		return t != nil && t.Reason == "OOMKilled"
	})
	cs = p.Status.ContainerStatuses[0]
	if cs.LastState.Terminated.ExitCode != 137 || cs.RestartCount != 1 {
		t.Errorf("oom: last exit %d, restarts %d; want 137 and 1", cs.LastState.Terminated.ExitCode, cs.RestartCount)
	}

	// restartPolicy Never: the pod fails for good and its supervisor ends.
	applyYAML(t, root, pod("once", fx.Busybox.Ref, "Never", "", "exit 2"))
	p = waitPod(t, root, "once", "Failed", func(p podJSON) bool { return p.Status.Phase == "Failed" })
	if tm := p.Status.ContainerStatuses[0].State.Terminated; tm == nil || tm.ExitCode != 2 || tm.Reason != "Error" || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("once: %+v", p.Status.ContainerStatuses[0])
	}
	if out := mustKube(t, root, "get", "pod", "once"); !regexp.MustCompile(`once\s+0/1\s+Error\s+0\s`).MatchString(out) {
		t.Errorf("get pod once:\n%s", out)
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// An init container runs to completion before the app container starts
// (STATUS Init:0/1 meanwhile); a hostPort publishes the container's port
// on the host; a supervisor that died is started again by the next
// command, and the pod goes on being supervised.
func TestKubeInitHostPortReconcile(t *testing.T) {
	root, fx := kubeEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: gated
spec:
  initContainers:
  - name: setup
    image: %[1]s
    command: ["sh", "-c", "sleep 2; echo init-done"]
  containers:
  - name: web
    image: %[1]s
    command: ["sh", "-c", %[2]s]
    ports:
    - containerPort: 80
      hostPort: %[3]d
`, fx.Busybox.Ref, strconvQuote(httpdScript("gated")), hostPort))
	out := mustKube(t, root, "get", "pods")
	if !regexp.MustCompile(`gated\s+0/1\s+(Init:0/1|Pending)\s`).MatchString(out) {
		t.Errorf("get pods while the init container runs:\n%s", out)
	}
	// While the init container runs (it sleeps 2 s), as kubelet: the app
	// container waits with PodInitializing, the pod is scheduled and its
	// sandbox ready, not initialized, not ready.
	gatedStatus := func() (conds map[string]string, appWaiting string, startTime time.Time, running bool) {
		var st struct {
			Status struct {
				StartTime  time.Time `json:"startTime"`
				Conditions []struct {
					Type   string `json:"type"`
					Status string `json:"status"`
				} `json:"conditions"`
				InitContainerStatuses []struct {
					State struct {
						Running *struct{} `json:"running"`
					} `json:"state"`
				} `json:"initContainerStatuses"`
				ContainerStatuses []struct {
					State struct {
						Waiting *struct {
							Reason string `json:"reason"`
						} `json:"waiting"`
					} `json:"state"`
				} `json:"containerStatuses"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(mustKube(t, root, "get", "pod", "gated", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		conds = map[string]string{}
		for _, c := range st.Status.Conditions {
			conds[c.Type] = c.Status
		}
		if cs := st.Status.ContainerStatuses; len(cs) > 0 && cs[0].State.Waiting != nil {
			appWaiting = cs[0].State.Waiting.Reason
		}
		is := st.Status.InitContainerStatuses
		return conds, appWaiting, st.Status.StartTime, len(is) > 0 && is[0].State.Running != nil
	}
	applied := time.Now().Add(-time.Second).Truncate(time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		conds, waiting, _, running := gatedStatus()
		if running {
			want := map[string]string{"PodScheduled": "True", "PodReadyToStartContainers": "True", "Initialized": "False", "ContainersReady": "False", "Ready": "False"}
			if waiting != "PodInitializing" || !maps.Equal(conds, want) {
				t.Errorf("while the init container runs: app waiting %q, conditions %v; want PodInitializing, %v", waiting, conds, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the init container never ran")
		}
	}
	waitPod(t, root, "gated", "running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		conds, _, start, _ := gatedStatus()
		want := map[string]string{"PodScheduled": "True", "PodReadyToStartContainers": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
		if maps.Equal(conds, want) {
			if start.Before(applied) || start.After(time.Now()) {
				t.Errorf("startTime %v; want the time the pod was taken up, after %v", start, applied)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("conditions of the running pod: %v; want %v", conds, want)
		}
	}
	var full struct {
		Status struct {
			InitContainerStatuses []struct {
				State struct {
					Terminated *struct {
						Reason     string    `json:"reason"`
						FinishedAt time.Time `json:"finishedAt"`
					} `json:"terminated"`
				} `json:"state"`
			} `json:"initContainerStatuses"`
			ContainerStatuses []struct {
				State struct {
					Running *struct {
						StartedAt time.Time `json:"startedAt"`
					} `json:"running"`
				} `json:"state"`
			} `json:"containerStatuses"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(mustKube(t, root, "get", "pod", "gated", "-o", "json")), &full); err != nil {
		t.Fatal(err)
	}
	it := full.Status.InitContainerStatuses[0].State.Terminated
	run := full.Status.ContainerStatuses[0].State.Running
	if it == nil || it.Reason != "Completed" || run == nil || run.StartedAt.Before(it.FinishedAt) {
		t.Errorf("init %+v, app %+v: want the init container Completed before the app started", it, run)
	}
	if out := mustKube(t, root, "logs", "gated", "-c", "setup"); out != "init-done\n" {
		t.Errorf("logs -c setup: %q", out)
	}
	if out := mustKube(t, root, "describe", "pod", "gated"); !strings.Contains(out, "Init Containers:\n  setup:\n") || !regexp.MustCompile(`Host Port:\s+`+strconv.Itoa(hostPort)+`/TCP`).MatchString(out) {
		t.Errorf("describe:\n%s", out)
	}
	if body := httpGet(t, fmt.Sprintf("127.0.0.1:%d", hostPort)); body != "hello from gated\n" {
		t.Errorf("GET through the hostPort: %q", body)
	}

	// The supervisor killed: the next command starts another, which
	// carries on (the pod is not made again).
	dir := filepath.Join(root, "kube", "pods", "default", "gated")
	pid := killSupervisor(t, dir)
	before := getPod(t, root, "gated").Status.ContainerStatuses[0].ContainerID
	waitNewSupervisor(t, root, dir, pid)
	p := getPod(t, root, "gated")
	if p.Status.ContainerStatuses[0].ContainerID != before || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("after the supervisor's restart: %+v; want the same container, not restarted", p.Status.ContainerStatuses[0])
	}

	// A reboot: the supervisor gone and the sandbox stopped. The next
	// command's supervisor finds the sandbox not ready: a new sandbox,
	// the init container run again, the app restarted. (With the
	// supervisor alive during the stop, it could restart the killed app
	// in the sandbox before the stop ends, and the engine's start of a
	// container in a stopped pod starts the pod again.)
	killSupervisor(t, dir)
	sandbox := strings.TrimSpace(mustHull(t, root, "pod", "ls", "-A", "-q"))
	mustHull(t, root, "pod", "stop", "-t", "1", sandbox)
	waitPod(t, root, "gated", "in a new sandbox", func(p podJSON) bool {
		cs := p.Status.ContainerStatuses[0]
		return p.Status.Phase == "Running" && cs.State.Running != nil && cs.RestartCount >= 1 && cs.ContainerID != before &&
			!strings.Contains(mustHull(t, root, "pod", "ls", "-A", "-q"), sandbox[:12])
	})
	if out := mustKube(t, root, "describe", "pod", "gated"); !strings.Contains(out, "SandboxChanged") || !regexp.MustCompile(`Started\s+\S+ \(x2 over`).MatchString(out) {
		t.Errorf("describe after the sandbox changed:\n%s", out)
	}
	if out := mustHull(t, root, "pod", "ls", "-A", "-q"); strings.TrimSpace(out) == sandbox || strings.Count(out, "\n") != 1 {
		t.Errorf("sandboxes after the change: %q (the old one was %s)", out, sandbox)
	}
	if body := httpGet(t, fmt.Sprintf("127.0.0.1:%d", hostPort)); body != "hello from gated\n" {
		t.Errorf("GET through the hostPort in the new sandbox: %q", body)
	}
}

// apply and delete -f take a directory; logs -f follows; delete gives a
// container that ignores SIGTERM its grace period
// (terminationGracePeriodSeconds), then kills it.
func TestKubeDirFollowGrace(t *testing.T) {
	root, fx := kubeEnv(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: stubborn
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]
`, fx.Busybox.Ref)), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yml"), []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: ticker
spec:
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
`, fx.Busybox.Ref)), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a manifest"), 0o644)
	if out := mustKube(t, root, "apply", "-f", dir); out != "pod/stubborn created\npod/ticker created\n" {
		t.Errorf("apply -f DIR: %q", out)
	}
	// The container running, not only the phase: a pod whose container
	// exited and waits to restart is Running too (kubelet's getPhase).
	for _, n := range []string{"stubborn", "ticker"} {
		waitPod(t, root, n, "running", func(p podJSON) bool {
			return p.Status.Phase == "Running" && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil
		})
	}

	out, errOut := startKubeErr(t, root, "logs", "-f", "ticker")
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "tick 8\n"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			// (Once in CI it printed nothing; what the pods were then.)
			desc, _, _ := kube(t, root, "describe", "pods")
			t.Errorf("logs -f: %q after 20s (stderr %q); want it to follow past tick 8\n%s", out.String(), errOut.String(), desc)
			break
		}
	}
	before, _, _ := kube(t, root, "describe", "pod", "stubborn")

	start := time.Now()
	if out := mustKube(t, root, "delete", "-f", dir); out != "pod \"stubborn\" deleted from default namespace\npod \"ticker\" deleted from default namespace\n" {
		t.Errorf("delete -f DIR: %q", out)
	}
	if d := time.Since(start); d < 2*time.Second || d > 10*time.Second {
		t.Errorf("delete took %v; want the 2 s grace period of the container ignoring SIGTERM, then its kill; before it:\n%s", d, before)
	}
	if _, errOut, _ := kube(t, root, "get", "pods"); !strings.Contains(errOut, "No resources found") {
		t.Errorf("pods after delete -f: %s", errOut)
	}
}

// startKube starts a `hull kube` command that runs until killed (-f,
// -w); its output gathers in the buffer; the test's end kills it.
func startKube(t *testing.T, root string, args ...string) *safeBuffer {
	t.Helper()
	out, _ := startKubeErr(t, root, args...)
	return out
}

// startKubeErr is startKube with the command's stderr gathered too.
func startKubeErr(t *testing.T, root string, args ...string) (stdout, stderr *safeBuffer) {
	t.Helper()
	out, errOut, _ := startKubeWait(t, root, args...)
	return out, errOut
}

// startKubeWait is startKubeErr for a command that ends by itself: wait
// blocks until it has and returns its exit (killed at the test's end if
// it has not).
func startKubeWait(t *testing.T, root string, args ...string) (stdout, stderr *safeBuffer, wait func() error) {
	t.Helper()
	cmd := hullProc(root, append([]string{"kube"}, args...)...)
	// The scale kubeStdin gives the supervisors: get -w reads as often
	// per round of theirs as it would unscaled.
	cmd.Env = append(cmd.Env, "HULL_CRI="+filepath.Join(filepath.Dir(os.Getenv("HULL_BIN")), "hull-cri"), "HULL_KUBE_BACKOFF_SCALE=0.1")
	out, errOut := &safeBuffer{}, &safeBuffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var err error
	go func() { err = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return out, errOut, func() error { <-exited; return err }
}

// supervisorPID is the pid in the supervisor file of the pod whose
// directory is dir, or 0 when there is none or that process has ended
// (a zombie too: one a hull kube command started and still running
// killed stays one until that command exits).
func supervisorPID(dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "supervisor"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || !testenv.ProcessRunning(pid) {
		return 0
	}
	return pid
}

// waitNewSupervisor waits until the pod whose directory is dir has a
// live supervisor other than old.
func waitNewSupervisor(t *testing.T, root, dir string, old int) {
	t.Helper()
	waitKube(t, root, filepath.Base(dir), "given a new supervisor", func() bool {
		p := supervisorPID(dir)
		return p > 0 && p != old
	})
}

// killSupervisor kills the supervisor of the pod whose directory is dir
// (SIGKILL, as a crash or the OOM killer would) and waits until it is
// gone; it returns its pid. The pod's containers live on.
func killSupervisor(t *testing.T, dir string) int {
	t.Helper()
	pid := supervisorPID(dir)
	if pid == 0 {
		t.Fatalf("pod %s has no supervisor", filepath.Base(dir))
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill supervisor %d: %v", pid, err)
	}
	waitFor(t, func() bool { return !testenv.ProcessRunning(pid) })
	return pid
}

// hull kube forwards to hull-cri: without it, the error says how to get
// it; an unknown subcommand is refused.
func TestKubeForwardsToHullCRI(t *testing.T) {
	root := t.TempDir()
	t.Setenv("HULL_CRI", filepath.Join(root, "no-hull-cri"))
	if _, _, err := hull(t, root, "kube", "get", "pods"); err == nil || !strings.Contains(err.Error(), "no-hull-cri") || !strings.Contains(err.Error(), "make build, or set HULL_CRI") {
		t.Errorf("hull kube without hull-cri: %v", err)
	}
	if os.Getenv("HULL_BIN") == "" {
		t.Skip("needs HULL_BIN (hull-cri beside it)")
	}
	if _, errOut, err := kube(t, root, "nosuch"); err == nil || !strings.Contains(errOut, `unknown command "nosuch" for "hull kube"`) {
		t.Errorf("hull kube nosuch: %v %s", err, errOut)
	}
	if out, _, err := kube(t, root, "--help"); err != nil || !strings.Contains(out, "hull kube [command]") || !strings.Contains(out, "apply") {
		t.Errorf("hull kube --help: %v\n%s", err, out)
	}
}
