package kube

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Probes as kubelet's prober runs them (pkg/kubelet/prober: worker.go,
// prober.go). Each probe of a running app container runs in a goroutine
// of its own, as kubelet's per-probe workers: the sync loop starts a
// probe that is due and not already running (bounded by its
// timeoutSeconds), so a slow probe delays only itself; when one ends it
// wakes the loop, which moves its result by kubelet's thresholds (the
// supervisor's state stays the loop's alone). Readiness drives the
// container's `ready` (and the Ready and ContainersReady conditions);
// a startup probe holds liveness and readiness back until it succeeds
// and sets `started`; a liveness or startup probe that fails
// failureThreshold times in a row kills the container, which then
// restarts by the restart policy and its crash back-off. Results live in
// the supervisor's memory only: a restarted supervisor probes afresh
// (kubelet does the same when it restarts).

// probeKind is kubelet's probeType, as its events name it.
type probeKind string

const (
	liveness  probeKind = "Liveness"
	readiness probeKind = "Readiness"
	startup   probeKind = "Startup"
)

// probeResult is kubelet's results.Result.
type probeResult int

const (
	probeUnknown probeResult = iota
	probeSuccess
	probeFailure
)

// prober is one probe of one container (kubelet's worker): its state is
// for the container instance it was made for and starts over with a new
// one.
type prober struct {
	containerID string
	spec        *v1.Probe
	result      probeResult // the result the thresholds let through
	last        probeResult // the last probe's own result
	run         int         // how many probes in a row had last's result
	next        time.Time   // when the probe is due
	// onHold: a liveness or startup failure killed the container; no
	// more probes until the next instance (kubelet's onHold).
	onHold bool
	// running: a probe of this prober is under way in its goroutine.
	running bool
}

// probeDone is the outcome of one probe, from its goroutine to the
// sync loop.
type probeDone struct {
	key string
	p   *prober
	res probeResult
	out string
}

// initialResult is kubelet's: a container is not ready until a
// readiness probe says so, alive until a liveness probe says not, and
// not started until a startup probe succeeds.
func initialResult(kind probeKind) probeResult {
	switch kind {
	case readiness:
		return probeFailure
	case liveness:
		return probeSuccess
	}
	return probeUnknown
}

// specProbe is c's probe of a kind, or nil.
func specProbe(c *v1.Container, kind probeKind) *v1.Probe {
	switch kind {
	case liveness:
		return c.LivenessProbe
	case readiness:
		return c.ReadinessProbe
	}
	return c.StartupProbe
}

// prober is the probe of kind for c's current instance (id), made or
// started over as needed; nil when c has no such probe.
func (k *kubelet) prober(c *v1.Container, kind probeKind, id string) *prober {
	spec := specProbe(c, kind)
	if spec == nil {
		return nil
	}
	if k.probes == nil {
		k.probes = map[string]*prober{}
	}
	key := c.Name + "/" + string(kind)
	p := k.probes[key]
	if p == nil || p.containerID != id {
		p = &prober{containerID: id, spec: spec, result: initialResult(kind)}
		k.probes[key] = p
	}
	return p
}

// started reports whether c's current instance has started: running,
// and its startup probe (if any) has succeeded.
func (k *kubelet) started(c *v1.Container, cs *runtimeapi.ContainerStatus) bool {
	if cs == nil || cs.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return false
	}
	p := k.prober(c, startup, cs.GetId())
	return p == nil || p.result == probeSuccess
}

// ready reports whether c's current instance is ready: started, and its
// readiness probe (if any) succeeding.
func (k *kubelet) ready(c *v1.Container, cs *runtimeapi.ContainerStatus) bool {
	if !k.started(c, cs) {
		return false
	}
	p := k.prober(c, readiness, cs.GetId())
	return p == nil || p.result == probeSuccess
}

// runProbes runs the due probes of the running app containers, and kills
// a container whose liveness or startup probe has failed.
func (k *kubelet) runProbes(ctx context.Context) {
	for _, c := range k.probed() { // sidecar.go
		cs := k.status[c.Name]
		if cs == nil || cs.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		for _, kind := range []probeKind{startup, liveness, readiness} {
			p := k.prober(c, kind, cs.GetId())
			if p == nil || p.onHold || p.running {
				continue
			}
			if kind == startup && p.result == probeSuccess {
				continue // started: the startup probe is done
			}
			if kind != startup && !k.started(c, cs) {
				continue // the startup probe holds the others back
			}
			k.startProbe(ctx, c, cs, kind, p) // in its goroutine
		}
	}
	k.applyProbes(ctx) // the probes that have ended meanwhile
}

// startProbe starts p in a goroutine if it is due (kubelet's worker
// tick): its outcome goes to k.probeOut and wakes the sync loop.
func (k *kubelet) startProbe(ctx context.Context, c *v1.Container, cs *runtimeapi.ContainerStatus, kind probeKind, p *prober) {
	now := time.Now()
	if now.Before(p.next) {
		return
	}
	if started := time.Unix(0, cs.GetStartedAt()); now.Sub(started) < time.Duration(p.spec.InitialDelaySeconds)*time.Second {
		return
	}
	p.next = now.Add(time.Duration(max(p.spec.PeriodSeconds, 1)) * time.Second)
	p.running = true
	key, id, host := c.Name+"/"+string(kind), cs.GetId(), k.probeHost()
	go func() {
		res, out := k.runProbe(ctx, c, id, p.spec, host)
		k.probeMu.Lock()
		k.probeOut = append(k.probeOut, probeDone{key: key, p: p, res: res, out: out})
		k.probeMu.Unlock()
		select {
		case k.probeWake <- struct{}{}:
		default:
		}
	}()
}

// applyProbes moves each ended probe's result by the thresholds
// (kubelet's doProbe) and kills a container whose liveness or startup
// probe failed. The outcome of a probe of an instance that is gone is
// dropped.
func (k *kubelet) applyProbes(ctx context.Context) {
	k.probeMu.Lock()
	done := k.probeOut
	k.probeOut = nil
	k.probeMu.Unlock()
	for _, d := range done {
		p := d.p
		p.running = false
		if k.probes[d.key] != p || p.onHold {
			continue
		}
		name, kindName, _ := strings.Cut(d.key, "/")
		kind := probeKind(kindName)
		switch d.res {
		case probeFailure:
			k.event(v1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe failed: %s", kind, d.out))
		case probeUnknown:
			k.event(v1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe errored: %s", kind, d.out))
			continue // kubelet leaves the result as it was
		}
		if d.res == p.last {
			p.run++
		} else {
			p.last, p.run = d.res, 1
		}
		if (d.res == probeFailure && p.run < int(max(p.spec.FailureThreshold, 1))) ||
			(d.res == probeSuccess && p.run < int(max(p.spec.SuccessThreshold, 1))) {
			continue
		}
		p.result = d.res
		if (kind == liveness || kind == startup) && p.result == probeFailure {
			p.onHold, p.run = true, 0
			if c := findContainer(k.pod, name); c != nil { // downwardvol.go
				k.killForProbe(ctx, c, p.containerID, kind, p.spec)
			}
		}
	}
}

// killForProbe is kubelet's kill of a container that failed its liveness
// or startup probe (within the probe's grace period, else the pod's);
// the sync then restarts it by its restart policy.
func (k *kubelet) killForProbe(ctx context.Context, c *v1.Container, id string, kind probeKind, spec *v1.Probe) {
	grace := *k.pod.Spec.TerminationGracePeriodSeconds
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	k.killContainer(ctx, c, id, grace, fmt.Sprintf("Container %s failed %s probe, will be restarted", c.Name, strings.ToLower(string(kind))))
}

// probeOutputMax is how much of a probe's output kubelet keeps (10 KiB).
const probeOutputMax = 10 * 1024

// runProbe runs one probe against the container's instance id: its
// result and output (kubelet's prober.runProbe). It runs in a probe's
// goroutine: it reads only what does not change (the pod's spec, the
// CRI server), host being the address probeHost gave.
func (k *kubelet) runProbe(ctx context.Context, c *v1.Container, id string, p *v1.Probe, host string) (probeResult, string) {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	return k.runHandler(ctx, c, id, p.ProbeHandler, timeout, host)
}

// runHandler runs a probe or hook action: exec in the container (CRI
// ExecSync), an HTTP GET or a TCP connection to the pod's IP (the
// host's for hostNetwork), a gRPC health check.
func (k *kubelet) runHandler(ctx context.Context, c *v1.Container, id string, h v1.ProbeHandler, timeout time.Duration, podHost string) (probeResult, string) {
	switch {
	case h.Exec != nil:
		r, err := k.cri.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: h.Exec.Command, Timeout: int64(timeout / time.Second)})
		if err != nil {
			if status.Code(err) == codes.DeadlineExceeded {
				return probeFailure, fmt.Sprintf("command %q timed out", strings.Join(h.Exec.Command, " "))
			}
			return probeUnknown, err.Error()
		}
		out := string(append(r.GetStdout(), r.GetStderr()...))
		if len(out) > probeOutputMax {
			out = out[:probeOutputMax]
		}
		if r.GetExitCode() != 0 {
			return probeFailure, out
		}
		return probeSuccess, out
	case h.HTTPGet != nil:
		return k.httpProbe(ctx, c, h.HTTPGet, timeout, podHost)
	case h.TCPSocket != nil:
		host := h.TCPSocket.Host
		if host == "" {
			host = podHost
		}
		port, err := resolvePort(h.TCPSocket.Port, c)
		if err != nil {
			return probeUnknown, err.Error()
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), timeout)
		if err != nil {
			return probeFailure, err.Error()
		}
		conn.Close()
		return probeSuccess, ""
	case h.GRPC != nil:
		return k.grpcProbe(ctx, h.GRPC, timeout, podHost)
	}
	return probeUnknown, "missing probe handler"
}

// probeHost is where probes connect: the pod's IP, or the host's for a
// hostNetwork pod.
func (k *kubelet) probeHost() string {
	if k.pod.Spec.HostNetwork || k.podIP == "" {
		return hostIP()
	}
	return k.podIP
}

// httpProbe is kubelet's HTTP probe: success for a status in
// [200, 400), redirects followed on the same host, TLS unverified.
func (k *kubelet) httpProbe(ctx context.Context, c *v1.Container, g *v1.HTTPGetAction, timeout time.Duration, podHost string) (probeResult, string) {
	host := g.Host
	if host == "" {
		host = podHost
	}
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return probeUnknown, err.Error()
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	if pu, err := url.Parse(path); err == nil {
		u.Path, u.RawQuery = pu.Path, pu.RawQuery
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return probeUnknown, err.Error()
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 10 || r.URL.Hostname() != u.Hostname() {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return probeFailure, err.Error()
	}
	defer resp.Body.Close()
	body := make([]byte, probeOutputMax)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return probeSuccess, string(body[:n])
	}
	return probeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

// grpcProbe is kubelet's gRPC probe: the standard health service's Check.
func (k *kubelet) grpcProbe(ctx context.Context, g *v1.GRPCAction, timeout time.Duration, podHost string) (probeResult, string) {
	addr := net.JoinHostPort(podHost, strconv.Itoa(int(g.Port)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return probeFailure, fmt.Sprintf("failed to connect service %q within %v: %+v", addr, timeout, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		switch status.Code(err) {
		case codes.Unimplemented:
			return probeFailure, fmt.Sprintf("this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", status.Convert(err).Message())
		case codes.DeadlineExceeded:
			return probeFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)
		}
		return probeFailure, fmt.Sprintf("error: health rpc probe failed: %+v", err)
	}
	if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return probeFailure, fmt.Sprintf("service unhealthy (responded with %q)", r.GetStatus().String())
	}
	return probeSuccess, ""
}

// resolvePort is a probe's port: a number, or the name of one of c's
// ports.
func resolvePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %s in container %s", p.StrVal, c.Name)
}

// defaultProbe fills the API server's defaults of a probe.
func defaultProbe(p *v1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHandler(&p.ProbeHandler)
}

func defaultHandler(h *v1.ProbeHandler) {
	if g := h.HTTPGet; g != nil {
		if g.Path == "" {
			g.Path = "/"
		}
		if g.Scheme == "" {
			g.Scheme = v1.URISchemeHTTP
		}
	}
}

// validateProbe is the API server's validation of a probe.
func validateProbe(p *field.Path, probe *v1.Probe, c *v1.Container, successOne bool) field.ErrorList {
	if probe == nil {
		return nil
	}
	if isInitPath(p) && !isSidecar(c) {
		return field.ErrorList{field.Forbidden(p, "may not be set for init containers without restartPolicy=Always")}
	}
	var errs field.ErrorList
	nonNeg := func(name string, v int32) {
		if v < 0 {
			errs = append(errs, field.Invalid(p.Child(name), v, "must be greater than or equal to 0"))
		}
	}
	nonNeg("initialDelaySeconds", probe.InitialDelaySeconds)
	nonNeg("timeoutSeconds", probe.TimeoutSeconds)
	nonNeg("periodSeconds", probe.PeriodSeconds)
	nonNeg("successThreshold", probe.SuccessThreshold)
	nonNeg("failureThreshold", probe.FailureThreshold)
	if successOne && probe.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), probe.SuccessThreshold, "must be 1"))
	}
	return append(errs, validateHandler(p, probe.ProbeHandler, c)...)
}

// isInitPath says whether a field path is in an init container (which
// the API server allows no probes or hooks, sidecars aside).
func isInitPath(p *field.Path) bool { return strings.HasPrefix(p.String(), "spec.initContainers[") }

// validateHandler checks that a probe or hook names exactly one action,
// and its port.
func validateHandler(p *field.Path, h v1.ProbeHandler, c *v1.Container) field.ErrorList {
	var errs field.ErrorList
	n := 0
	for _, set := range []bool{h.Exec != nil, h.HTTPGet != nil, h.TCPSocket != nil, h.GRPC != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return field.ErrorList{field.Required(p, "must specify a handler type")}
	case n > 1:
		return field.ErrorList{field.Forbidden(p, "may not specify more than 1 handler type")}
	}
	port := func(pp *field.Path, v intstr.IntOrString) {
		if _, err := resolvePort(v, c); err != nil {
			errs = append(errs, field.Invalid(pp, v.String(), "must contain at least one port name of the container's ports, or a number"))
		} else if n, _ := resolvePort(v, c); n < 1 || n > 65535 {
			errs = append(errs, field.Invalid(pp, v.String(), "must be between 1 and 65535, inclusive"))
		}
	}
	switch {
	case h.Exec != nil && len(h.Exec.Command) == 0:
		errs = append(errs, field.Required(p.Child("exec", "command"), ""))
	case h.HTTPGet != nil:
		port(p.Child("httpGet", "port"), h.HTTPGet.Port)
		if s := h.HTTPGet.Scheme; s != v1.URISchemeHTTP && s != v1.URISchemeHTTPS {
			errs = append(errs, field.NotSupported(p.Child("httpGet", "scheme"), s, []string{"HTTP", "HTTPS"}))
		}
	case h.TCPSocket != nil:
		port(p.Child("tcpSocket", "port"), h.TCPSocket.Port)
	case h.GRPC != nil && (h.GRPC.Port < 1 || h.GRPC.Port > 65535):
		errs = append(errs, field.Invalid(p.Child("grpc", "port"), h.GRPC.Port, "must be between 1 and 65535, inclusive"))
	}
	return errs
}
