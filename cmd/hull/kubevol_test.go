package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitKube retries `hull kube ARGS` until ok holds for its output.
func waitKubeOut(t *testing.T, root, what string, ok func(out string) bool, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, errOut, _ := kube(t, root, args...)
		if ok(out + errOut) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("hull kube %s: not %s after a minute:\n%s%s", strings.Join(args, " "), what, out, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func running(p podJSON) bool {
	if p.Status.Phase != "Running" || len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return true
}

// ConfigMaps and Secrets: stored, listed and deleted; as env
// (valueFrom, envFrom with a prefix), as volumes (items with a path and
// mode, defaultMode, read-only); a missing one or a missing key is
// kubelet's CreateContainerConfigError until it appears (optional ones
// are skipped).
func TestKubeConfigMapSecret(t *testing.T) {
	root, fx := kubeEnv(t)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  MODE: prod
  greeting.txt: hello from a configmap
---
apiVersion: v1
kind: Secret
metadata:
  name: db
data:
  user: %s
stringData:
  password: s3cret
---
apiVersion: v1
kind: Pod
metadata:
  name: cfg
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %s
    command: ["sleep", "3600"]
    env:
    - name: GREETING_MODE
      valueFrom:
        configMapKeyRef:
          name: app-config
          key: MODE
    - name: DB_PASSWORD
      valueFrom:
        secretKeyRef:
          name: db
          key: password
    - name: MAYBE
      valueFrom:
        configMapKeyRef:
          name: app-config
          key: nope
          optional: true
    envFrom:
    - prefix: CFG_
      configMapRef:
        name: app-config
    - secretRef:
        name: absent-but-optional
        optional: true
    volumeMounts:
    - name: cfg
      mountPath: /etc/cfg
    - name: sec
      mountPath: /etc/sec
  volumes:
  - name: cfg
    configMap:
      name: app-config
      items:
      - key: greeting.txt
        path: sub/hello.txt
        mode: 0600
  - name: sec
    secret:
      secretName: db
      defaultMode: 0400
`, base64.StdEncoding.EncodeToString([]byte("admin")), fx.Busybox.Ref)
	if out := applyYAML(t, root, manifest); out != "configmap/app-config created\nsecret/db created\npod/cfg created\n" {
		t.Errorf("apply printed %q", out)
	}
	if out := applyYAML(t, root, manifest); out != "configmap/app-config unchanged\nsecret/db unchanged\npod/cfg unchanged\n" {
		t.Errorf("second apply printed %q", out)
	}
	waitPod(t, root, "cfg", "running", running)
	out := mustKube(t, root, "exec", "cfg", "--", "sh", "-c",
		`echo "$GREETING_MODE $DB_PASSWORD $CFG_MODE ${MAYBE-unset}"; cat /etc/cfg/sub/hello.txt; echo; stat -c %a /etc/cfg/sub/hello.txt; ls /etc/cfg; stat -c %a /etc/sec/password; cat /etc/sec/user; echo; touch /etc/cfg/x 2>/dev/null || echo read-only`)
	want := "prod s3cret prod unset\nhello from a configmap\n600\nsub\n400\nadmin\nread-only\n"
	if out != want {
		t.Errorf("in the container:\n%s\nwant:\n%s", out, want)
	}
	desc := mustKube(t, root, "describe", "pod", "cfg")
	for _, re := range []string{
		`\n    Environment Variables from:\n      app-config\s+ConfigMap with prefix 'CFG_'\s+Optional: false\n      absent-but-optional\s+Secret\s+Optional: true\n`,
		`\n      GREETING_MODE:\s+<set to the key 'MODE' of config map 'app-config'>\s+Optional: false\n`,
		`\n      DB_PASSWORD:\s+<set to the key 'password' in secret 'db'>\s+Optional: false\n`,
		`\n      /etc/cfg from cfg \(rw\)\n`,
		`\n    Type:\s+Secret \(a volume populated by a Secret\)\n    SecretName:\s+db\n    Optional:\s+false\n`,
	} {
		if !regexp.MustCompile(re).MatchString(desc) {
			t.Errorf("describe pod cfg: no match for %s in:\n%s", re, desc)
		}
	}
	// A changed ConfigMap reaches the running container's volume.
	if out := applyYAML(t, root, strings.Replace(manifest, "hello from a configmap", "hello again", 1)); out != "configmap/app-config configured\nsecret/db unchanged\npod/cfg unchanged\n" {
		t.Errorf("apply of a changed configmap printed %q", out)
	}
	waitKubeOut(t, root, "updated in the volume", func(out string) bool { return out == "hello again" }, "exec", "cfg", "--", "cat", "/etc/cfg/sub/hello.txt")
	if out := mustKube(t, root, "get", "configmaps"); !regexp.MustCompile(`^NAME         DATA   AGE\napp-config   2      \d+s\n$`).MatchString(out) {
		t.Errorf("get configmaps:\n%s", out)
	}
	if out := mustKube(t, root, "get", "secrets"); !regexp.MustCompile(`^NAME   TYPE     DATA   AGE\ndb     Opaque   2      \d+s\n$`).MatchString(out) {
		t.Errorf("get secrets:\n%s", out)
	}
	var sec struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(mustKube(t, root, "get", "secret", "db", "-o", "json")), &sec); err != nil || sec.Kind != "Secret" || sec.Data["password"] != base64.StdEncoding.EncodeToString([]byte("s3cret")) {
		t.Errorf("get secret -o json: %v %+v", err, sec)
	}

	// Missing sources: accepted by apply, then kubelet's config error (a
	// key a known object lacks is refused by apply: TestKubeApplyBadInput;
	// one the object lacks when it comes is kubelet's error too).
	missing := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: nocm
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    command: ["sleep", "3600"]
    envFrom:
    - configMapRef:
        name: later
---
apiVersion: v1
kind: Pod
metadata:
  name: nokey
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    command: ["sleep", "3600"]
    env:
    - name: X
      valueFrom:
        configMapKeyRef:
          name: later2
          key: nope
`, fx.Busybox.Ref)
	if out := applyYAML(t, root, missing); out != "pod/nocm created\npod/nokey created\n" {
		t.Errorf("apply printed %q", out)
	}
	applyYAML(t, root, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: later2\ndata:\n  other: x\n")
	for name, msg := range map[string]string{"nocm": `configmap "later" not found`, "nokey": "couldn't find key nope in ConfigMap default/later2"} {
		p := waitPod(t, root, name, "CreateContainerConfigError: "+msg, func(p podJSON) bool {
			return p.waiting() == "CreateContainerConfigError" && p.Status.ContainerStatuses[0].State.Waiting.Message == msg
		})
		if got := p.Status.ContainerStatuses[0].State.Waiting.Message; got != msg {
			t.Errorf("pod %s: message %q, want %q", name, got, msg)
		}
	}
	mustKube(t, root, "delete", "configmap", "later2")
	if out := mustKube(t, root, "describe", "pod", "nocm"); !strings.Contains(out, `Error: configmap "later" not found`) {
		t.Errorf("describe pod nocm: no Failed event:\n%s", out)
	}
	// The ConfigMap appears: the pod starts (kubelet retries).
	applyYAML(t, root, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: later\ndata:\n  A: b\n")
	waitPod(t, root, "nocm", "running", running)
	if out := mustKube(t, root, "exec", "nocm", "--", "sh", "-c", "echo $A"); out != "b\n" {
		t.Errorf("env from the later configmap: %q", out)
	}

	if out := mustKube(t, root, "delete", "configmap", "later"); out != "configmap \"later\" deleted from default namespace\n" {
		t.Errorf("delete configmap printed %q", out)
	}
	if _, errOut, err := kube(t, root, "get", "cm", "later"); err == nil || !strings.Contains(errOut, `configmaps "later" not found`) {
		t.Errorf("get a deleted configmap: %v %s", err, errOut)
	}
	if out := mustKube(t, root, "get", "configmaps", "-o", "name"); out != "configmap/app-config\n" {
		t.Errorf("get configmaps -o name: %q", out)
	}
	// delete -f removes every object of the manifest.
	p := filepath.Join(t.TempDir(), "all.yaml")
	if err := os.WriteFile(p, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustKube(t, root, "delete", "-f", p)
	if !strings.Contains(out, "configmap \"app-config\" deleted") || !strings.Contains(out, "secret \"db\" deleted") || !strings.Contains(out, "pod \"cfg\" deleted") {
		t.Errorf("delete -f printed %q", out)
	}
	if _, errOut, _ := kube(t, root, "get", "secrets"); !strings.Contains(errOut, "No resources found in default namespace.") {
		t.Errorf("get secrets after delete: %s", errOut)
	}
}

// Volumes: an emptyDir shared by two containers (one mounting a subPath
// of it), a memory emptyDir as a tmpfs of its sizeLimit, hostPath with
// kubelet's type checks (Directory, DirectoryOrCreate, File) and
// readOnly, a PersistentVolumeClaim as a named hull volume whose data
// outlives the pod; a failed type check leaves the pod
// ContainerCreating with a FailedMount event.
func TestKubeVolumes(t *testing.T) {
	root, fx := kubeEnv(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "note.txt"), []byte("from the host\n"), 0o644)
	created := filepath.Join(t.TempDir(), "made", "here")
	manifest := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: vols
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: writer
    image: %[1]s
    command: ["sh", "-c", "mkdir -p /cache/sub; echo shared > /cache/sub/f; echo kept > /data/f; sleep 3600"]
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: data, mountPath: /data}
  - name: reader
    image: %[1]s
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: cache, mountPath: /sub, subPath: sub}
    - {name: mem, mountPath: /mem}
    - {name: host, mountPath: /host, readOnly: true}
    - {name: made, mountPath: /made}
  volumes:
  - name: cache
    emptyDir: {}
  - name: mem
    emptyDir:
      medium: Memory
      sizeLimit: 16Mi
  - name: host
    hostPath:
      path: %[2]s
      type: Directory
  - name: made
    hostPath:
      path: %[3]s
      type: DirectoryOrCreate
  - name: data
    persistentVolumeClaim:
      claimName: data
`, fx.Busybox.Ref, host, created)
	if out := applyYAML(t, root, manifest); out != "persistentvolumeclaim/data created\npod/vols created\n" {
		t.Errorf("apply printed %q", out)
	}
	if out := mustHull(t, root, "volume", "ls", "-q"); out != "data\n" {
		t.Errorf("hull volume ls after the claim: %q", out)
	}
	if out := mustKube(t, root, "get", "pvc"); !regexp.MustCompile(`^NAME   STATUS   VOLUME   CAPACITY   ACCESS MODES   STORAGECLASS   VOLUMEATTRIBUTESCLASS   AGE\ndata   Bound    data     1Gi        RWO            hull-local     <unset>                 \d+s\n$`).MatchString(out) {
		t.Errorf("get pvc:\n%s", out)
	}
	waitPod(t, root, "vols", "running", running)
	script := `for i in 1 2 3 4 5 6 7 8 9 10; do [ -f /sub/f ] && break; sleep 0.2; done; cat /sub/f; cat /host/note.txt; touch /host/x 2>/dev/null || echo read-only; ` +
		`grep ' /mem ' /proc/mounts | cut -d' ' -f3,4 | grep -o 'tmpfs.*size=16384k'; touch /made/y && echo made`
	out := mustKube(t, root, "exec", "vols", "-c", "reader", "--", "sh", "-c", script)
	if want := "shared\nfrom the host\nread-only\ntmpfs rw,nosuid,nodev,relatime,size=16384k\nmade\n"; out != want {
		t.Errorf("in the reader:\n%s\nwant:\n%s", out, want)
	}
	if _, err := os.Stat(filepath.Join(created, "y")); err != nil {
		t.Errorf("DirectoryOrCreate: %v", err)
	}
	desc := mustKube(t, root, "describe", "pod", "vols")
	for _, re := range []string{
		`\n      /sub from cache \(rw,path="sub"\)\n`, `\n      /host from host \(ro\)\n`,
		`\n  mem:\n    Type:\s+EmptyDir \(a temporary directory that shares a pod's lifetime\)\n    Medium:\s+Memory\n    SizeLimit:\s+16Mi\n`,
		`\n    Type:\s+HostPath \(bare host directory volume\)\n    Path:\s+` + regexp.QuoteMeta(host) + `\n    HostPathType:\s+Directory\n`,
		`\n    Type:\s+PersistentVolumeClaim \(a reference to a PersistentVolumeClaim in the same namespace\)\n    ClaimName:\s+data\n    ReadOnly:\s+false\n`,
	} {
		if !regexp.MustCompile(re).MatchString(desc) {
			t.Errorf("describe pod vols: no match for %s in:\n%s", re, desc)
		}
	}
	mustKube(t, root, "delete", "pod", "vols", "--grace-period", "0")
	if b, err := os.ReadFile(filepath.Join(root, "volumes", "data", "_data", "f")); err != nil || string(b) != "kept\n" {
		t.Errorf("the claim's volume after the pod: %q %v", b, err)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), root) {
		t.Errorf("mounts left under the root after delete:\n%s", b)
	}

	// A hostPath of the wrong type: ContainerCreating, FailedMount.
	bad := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: badhost
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %s
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: h, mountPath: /h}
  volumes:
  - name: h
    hostPath:
      path: %s
      type: File
`, fx.Busybox.Ref, host)
	applyYAML(t, root, bad)
	p := waitPod(t, root, "badhost", "ContainerCreating", func(p podJSON) bool {
		return p.waiting() == "ContainerCreating" && p.Status.ContainerStatuses[0].State.Waiting.Message != ""
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; msg != fmt.Sprintf(`MountVolume.SetUp failed for volume "h" : hostPath type check failed: %s is not a file`, host) {
		t.Errorf("waiting message %q", msg)
	}
	if out := mustKube(t, root, "describe", "pod", "badhost"); !strings.Contains(out, "FailedMount") {
		t.Errorf("describe: no FailedMount event:\n%s", out)
	}
	mustKube(t, root, "delete", "pod", "badhost", "--grace-period", "0")

	// fsGroup: the pod's non-root user shares the claim's volume.
	shared := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: shared
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsUser: 1000
    fsGroup: 2000
  containers:
  - name: app
    image: %s
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: data, mountPath: /data}
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: data
`, fx.Busybox.Ref)
	applyYAML(t, root, shared)
	waitPod(t, root, "shared", "running", running)
	if out := mustKube(t, root, "exec", "shared", "--", "sh", "-c", "stat -c '%g %A' /data /data/f; echo again >> /data/f && echo wrote"); out != "2000 drwxrwsr-x\n2000 -rw-rw-r--\nwrote\n" {
		t.Errorf("fsGroup on the claim's volume:\n%s", out)
	}
	mustKube(t, root, "delete", "pod", "shared", "--grace-period", "0")

	if out := mustKube(t, root, "delete", "pvc", "data"); out != "persistentvolumeclaim \"data\" deleted from default namespace\n" {
		t.Errorf("delete pvc printed %q", out)
	}
	if out := mustHull(t, root, "volume", "ls", "-q"); out != "" {
		t.Errorf("hull volume ls after the claim's delete: %q", out)
	}
}

// A Deployment of 3 replicas: pods named NAME-<hash>-<5 chars> with the
// template's labels and pod-template-hash, `get deployments` as kubectl
// prints it; re-applied unchanged, scaled down to 1 and up to 2 by
// re-applying; a pod deleted by hand is made again; deleting the
// Deployment deletes its pods.
func TestKubeDeployment(t *testing.T) {
	root, fx := kubeEnv(t)
	manifest := func(replicas int) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: %d
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
        tier: front
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: %s
        command: ["sleep", "3600"]
`, replicas, fx.Busybox.Ref)
	}
	t.Cleanup(func() { kube(t, root, "delete", "deployment", "web", "--grace-period", "0") })
	if out := applyYAML(t, root, manifest(3)); out != "deployment.apps/web created\n" {
		t.Errorf("apply printed %q", out)
	}
	podName := regexp.MustCompile(`^pod/web-([a-z0-9]+)-[a-z0-9]{5}$`)
	names := func() []string {
		return strings.Fields(mustKube(t, root, "get", "pods", "-l", "app=web,tier=front", "-o", "name"))
	}
	pods := names()
	hashes := map[string]bool{}
	for _, p := range pods {
		m := podName.FindStringSubmatch(p)
		if m == nil {
			t.Fatalf("pod name %q: want web-<hash>-<5 chars>", p)
		}
		hashes[m[1]] = true
	}
	if len(pods) != 3 || len(hashes) != 1 {
		t.Fatalf("pods of the deployment: %v; want 3 of one template hash", pods)
	}
	var hash string
	for h := range hashes {
		hash = h
	}
	if out := mustKube(t, root, "get", pods[0], "-o", "jsonpath={.metadata.labels.pod-template-hash} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"); out != hash+" ReplicaSet/web-"+hash {
		t.Errorf("pod's hash label and owner: %q", out)
	}
	waitKubeOut(t, root, "3/3 ready", func(out string) bool {
		return regexp.MustCompile(`^NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    3/3     3            3           \d+s\n$`).MatchString(out)
	}, "get", "deployments")
	if out := applyYAML(t, root, manifest(3)); out != "deployment.apps/web unchanged\n" {
		t.Errorf("second apply printed %q", out)
	}

	// Scale down, then up.
	if out := applyYAML(t, root, manifest(1)); out != "deployment.apps/web configured\n" {
		t.Errorf("apply of 1 replica printed %q", out)
	}
	waitKubeOut(t, root, "one pod", func(out string) bool { return len(strings.Fields(out)) == 1 }, "get", "pods", "-l", "app=web", "-o", "name")
	applyYAML(t, root, manifest(2))
	waitKubeOut(t, root, "2/2 ready", func(out string) bool { return strings.Contains(out, "web    2/2     2            2") }, "get", "deployments")

	// A pod deleted by hand comes back under another name.
	gone := strings.TrimPrefix(names()[0], "pod/")
	mustKube(t, root, "delete", "pod", gone, "--grace-period", "0")
	now := waitKubeOut(t, root, "two pods again", func(out string) bool { return len(strings.Fields(out)) == 2 }, "get", "pods", "-l", "app=web", "-o", "name")
	if strings.Contains(now, gone) {
		t.Errorf("pods after deleting %s: %s", gone, now)
	}

	// A changed template replaces the pods (a new pod-template-hash).
	changed := strings.Replace(manifest(2), `["sleep", "3600"]`, `["sleep", "3601"]`, 1)
	if out := applyYAML(t, root, changed); out != "deployment.apps/web configured\n" {
		t.Errorf("apply of a changed template printed %q", out)
	}
	waitKubeOut(t, root, "two pods of the new template", func(out string) bool {
		f := strings.Fields(out)
		return len(f) == 2 && !strings.Contains(out, "web-"+hash+"-")
	}, "get", "pods", "-l", "app=web", "-o", "name")

	if out := mustKube(t, root, "delete", "deployment", "web"); out != "deployment.apps \"web\" deleted from default namespace\n" {
		t.Errorf("delete deployment printed %q", out)
	}
	if _, errOut, _ := kube(t, root, "get", "pods"); !strings.Contains(errOut, "No resources found in default namespace.") {
		t.Errorf("get pods after the deployment's delete: %s", errOut)
	}
	if _, errOut, err := kube(t, root, "get", "deploy", "web"); err == nil || !strings.Contains(errOut, `deployments.apps "web" not found`) {
		t.Errorf("get a deleted deployment: %v %s", err, errOut)
	}
}

// emptyDir sizes as kubelet enforces them. A disk emptyDir written past
// its sizeLimit gets the pod evicted by the eviction manager's check
// (every 10 s, 1 s at the tests' back-off scale): Failed, reason
// Evicted, kubelet's message, its container killed, as get, describe
// and hull why show. A Memory emptyDir is a tmpfs of the pod's memory
// limit when it has one (also when its sizeLimit is more), else of the
// node's allocatable memory (MemTotal less kubelet's 100Mi eviction
// threshold).
func TestKubeEmptyDirLimits(t *testing.T) {
	root, fx := kubeEnv(t)
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: evict
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: c
    image: %[1]s
    command: ["sh", "-c", "dd if=/dev/zero of=/scratch/f bs=1024 count=2048; sleep 600"]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
  volumes:
  - name: scratch
    emptyDir:
      sizeLimit: 1Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: limited
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
    resources:
      limits:
        memory: 64Mi
    volumeMounts:
    - {name: m1, mountPath: /m1}
    - {name: m2, mountPath: /m2}
  volumes:
  - name: m1
    emptyDir:
      medium: Memory
  - name: m2
    emptyDir:
      medium: Memory
      sizeLimit: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: unlimited
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[1]s
    command: ["sleep", "600"]
    volumeMounts:
    - {name: m1, mountPath: /m1}
  volumes:
  - name: m1
    emptyDir:
      medium: Memory
`, fx.Busybox.Ref))

	msg := `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". `
	p := waitPod(t, root, "evict", "evicted", func(p podJSON) bool { return p.Status.Phase == "Failed" })
	if got := mustKube(t, root, "get", "pod", "evict", "-o", "jsonpath={.status.reason}|{.status.message}"); got != "Evicted|"+msg {
		t.Errorf("evict: reason|message %q, want Evicted|%q", got, msg)
	}
	if tm := p.Status.ContainerStatuses[0].State.Terminated; tm == nil || tm.ExitCode != 137 && tm.ExitCode != 143 {
		t.Errorf("evict: container state %+v, want killed", p.Status.ContainerStatuses[0].State)
	}
	if out := mustKube(t, root, "get", "pod", "evict"); !regexp.MustCompile(`evict\s+0/1\s+Error\s+0\s`).MatchString(out) {
		t.Errorf("get pod evict:\n%s", out)
	}
	desc := mustKube(t, root, "describe", "pod", "evict")
	for _, re := range []string{`\nReason:\s+Evicted\n`, `\nMessage:\s+` + regexp.QuoteMeta(msg) + `\n`, `Warning\s+Evicted\s+.*\s` + regexp.QuoteMeta(strings.TrimSpace(msg))} {
		if !regexp.MustCompile(re).MatchString(desc) {
			t.Errorf("describe pod evict: no match for %s in:\n%s", re, desc)
		}
	}
	if out := mustHull(t, root, "why", "pod/evict"); !strings.Contains(out, "kubelet evicted the pod: an emptyDir volume grew past its sizeLimit") || !strings.Contains(out, strings.TrimSpace(msg)) || !strings.Contains(out, "emptyDir.sizeLimit") {
		t.Errorf("why pod/evict:\n%s", out)
	}

	// tmpfs sizes (the kernel shows them in KiB, rounded up to pages).
	tmpfsSize := func(pod, dir string) string {
		waitPod(t, root, pod, "running", running)
		out := mustKube(t, root, "exec", pod, "--", "sh", "-c", "grep ' "+dir+" ' /proc/mounts")
		return regexp.MustCompile(`size=\d+k`).FindString(out)
	}
	for _, dir := range []string{"/m1", "/m2"} {
		if got := tmpfsSize("limited", dir); got != "size=65536k" {
			t.Errorf("limited %s: tmpfs %q, want size=65536k (the pod's memory limit)", dir, got)
		}
	}
	meminfo, _ := os.ReadFile("/proc/meminfo")
	var memTotalKiB int64
	fmt.Sscanf(regexp.MustCompile(`MemTotal:\s+\d+`).FindString(string(meminfo)), "MemTotal: %d", &memTotalKiB)
	alloc := memTotalKiB*1024 - 100<<20
	if want := fmt.Sprintf("size=%dk", (alloc+4095)/4096*4); tmpfsSize("unlimited", "/m1") != want {
		t.Errorf("unlimited /m1: tmpfs %q, want %s (the node's allocatable memory)", tmpfsSize("unlimited", "/m1"), want)
	}
}
