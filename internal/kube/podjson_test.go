package kube

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// richPod uses most of a Pod's fields, quantities and int-or-strings in
// each spelling, so that the fast decoder is held to the API server's.
const richPod = `apiVersion: v1
kind: Pod
metadata:
  name: rich
  namespace: ns
  generateName: ri-
  labels: {app: rich, tier: "1"}
  annotations: {a.b/c: "d", e: ""}
  finalizers: [x/y]
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: rs, uid: "123", controller: true}
spec:
  hostname: h
  subdomain: s
  hostAliases: [{ip: 10.0.0.1, hostnames: [a, b]}]
  hostNetwork: false
  hostPID: false
  hostIPC: false
  hostUsers: true
  shareProcessNamespace: true
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 7
  activeDeadlineSeconds: 600
  dnsPolicy: None
  dnsConfig:
    nameservers: [127.0.0.53]
    searches: [a.local]
    options: [{name: ndots, value: "2"}, {name: edns0}]
  nodeSelector: {kubernetes.io/os: linux}
  nodeName: node
  serviceAccountName: sa
  automountServiceAccountToken: false
  enableServiceLinks: false
  priorityClassName: high
  priority: 10
  runtimeClassName: hull
  schedulerName: default-scheduler
  preemptionPolicy: Never
  os: {name: linux}
  overhead: {cpu: 10m, memory: 1Mi}
  imagePullSecrets: [{name: reg}]
  readinessGates: [{conditionType: x/ready}]
  schedulingGates: [{name: g}]
  tolerations:
  - {key: k, operator: Equal, value: v, effect: NoExecute, tolerationSeconds: 30}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: a, operator: In, values: [b]}]
  topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: rich}}}
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    runAsNonRoot: true
    fsGroup: 2000
    fsGroupChangePolicy: OnRootMismatch
    supplementalGroups: [4000, 5000]
    supplementalGroupsPolicy: Strict
    seccompProfile: {type: RuntimeDefault}
    sysctls: [{name: net.ipv4.ip_local_port_range, value: "32768 60999"}]
  volumes:
  - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 64Mi}}
  - {name: host, hostPath: {path: /tmp, type: DirectoryOrCreate}}
  - {name: cfg, configMap: {name: cm, defaultMode: 0644, optional: true, items: [{key: k, path: p, mode: 0600}]}}
  - {name: sec, secret: {secretName: s, defaultMode: 256}}
  - {name: claim, persistentVolumeClaim: {claimName: c, readOnly: true}}
  - name: down
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: mem, resourceFieldRef: {containerName: app, resource: limits.memory, divisor: 1Mi}}
  initContainers:
  - name: init
    image: busybox:1
    command: [sh, -c, "true"]
    restartPolicy: Always
    resources: {requests: {cpu: "0.5", memory: 1e6}}
  containers:
  - name: app
    image: registry.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000
    imagePullPolicy: IfNotPresent
    command: [/bin/app]
    args: ["--port", "8080", "--x=$(X)"]
    workingDir: /srv
    stdin: true
    stdinOnce: true
    tty: true
    ports:
    - {name: http, containerPort: 8080, hostPort: 18080, protocol: TCP, hostIP: 127.0.0.1}
    - {containerPort: 53, protocol: UDP}
    env:
    - {name: X, value: "1"}
    - {name: CM, valueFrom: {configMapKeyRef: {name: cm, key: k, optional: true}}}
    - {name: SEC, valueFrom: {secretKeyRef: {name: s, key: k}}}
    - {name: POD, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.name}}}
    - {name: LIM, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
    envFrom:
    - {prefix: P_, configMapRef: {name: cm}}
    - {secretRef: {name: s, optional: false}}
    resources:
      requests: {cpu: 100m, memory: 128Mi, hugepages-2Mi: 2Mi, ephemeral-storage: 1G}
      limits: {cpu: 1.5, memory: 256Mi, hugepages-2Mi: 2Mi}
    resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: host, mountPath: /host, readOnly: true, mountPropagation: HostToContainer, recursiveReadOnly: Disabled}
    - {name: cfg, mountPath: /etc/app/p, subPath: p}
    - {name: down, mountPath: /etc/down, subPathExpr: $(POD)}
    volumeDevices: [{name: claim, devicePath: /dev/xvda}]
    livenessProbe:
      httpGet: {path: /healthz, port: http, scheme: HTTP, httpHeaders: [{name: X-A, value: b}]}
      initialDelaySeconds: 1
      periodSeconds: 2
      timeoutSeconds: 3
      successThreshold: 1
      failureThreshold: 4
      terminationGracePeriodSeconds: 5
    readinessProbe:
      tcpSocket: {port: 8080}
    startupProbe:
      exec: {command: [cat, /ready]}
    lifecycle:
      postStart: {exec: {command: [sh, -c, "echo started"]}}
      preStop: {sleep: {seconds: 1}}
      stopSignal: SIGUSR1
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: FallbackToLogsOnError
    securityContext:
      privileged: false
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      runAsUser: 1001
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
      seccompProfile: {type: Localhost, localhostProfile: profiles/a.json}
      procMount: Default
  - name: grpc
    image: busybox
    readinessProbe:
      grpc: {port: 9090, service: health}
status:
  phase: Running
  podIP: 10.0.0.2
  conditions: [{type: Ready, status: "True", lastTransitionTime: "2026-12-06T20:30:04Z"}]
`

// The fast decoder (encoding/json/v2) gives what the API server's strict
// decoder (sigs.k8s.io/json) gives, for every field of a rich Pod; and it
// refuses what the strict decoder refuses, which then words the error.
func TestDecodePodFastMatchesStrict(t *testing.T) {
	js, err := yaml.YAMLToJSONStrict([]byte(richPod))
	if err != nil {
		t.Fatal(err)
	}
	want := &v1.Pod{}
	if strict, err := sigsjson.UnmarshalStrict(js, want, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields); err != nil || len(strict) > 0 {
		t.Fatalf("strict decoding of the rich pod: %v %v", err, strict)
	}
	if !decodePodFast([]byte(`{}`), &v1.Pod{}) {
		t.Skip("built without encoding/json/v2 (GOEXPERIMENT=jsonv2, as the Makefile builds): no fast decoder")
	}
	got := &v1.Pod{}
	if !decodePodFast(js, got) {
		t.Fatal("the fast decoder refused the rich pod")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the fast decoder's pod differs from the strict one's:\nfast   %+v\nstrict %+v", got, want)
	}
	for _, bad := range []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i","imagee":"j"}]}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","name":"y"}}`,
		`{"apiVersion":"v1","kind":"Pod","metadata":{"Name":"x"}}`,
		`{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"lots"}}}]}}`,
	} {
		if decodePodFast([]byte(bad), &v1.Pod{}) {
			t.Errorf("the fast decoder took %s", bad)
		}
	}
	// Through decodeDocument, the strict decoder words the refusal.
	_, err = decodeDocument("pod.yaml", 1, []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  Name: y\nspec:\n  containers:\n  - name: c\n    image: i\n    imagee: j\n"), "")
	if err == nil || !strings.Contains(err.Error(), `strict decoding error: unknown field "metadata.Name", unknown field "spec.containers[0].imagee"`) {
		t.Errorf("unknown fields: %v; want every one named, as the API server does", err)
	}
}
