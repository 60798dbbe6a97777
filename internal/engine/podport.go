package engine

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/containerd/errdefs"

	"hull/internal/runtime"
)

// DialPod connects to port on the loopback of a running pod's network
// namespace (its pinned one, or the host's for a host-network pod), as a
// process of the pod would: IPv4 first, then IPv6. It is what port
// forwarding (the CRI's PortForward, kubectl port-forward) copies to
// and from. The error of a port nothing listens on names both attempts,
// as containerd's.
func (e *Engine) DialPod(ctx context.Context, ref string, port int) (net.Conn, error) {
	p, err := e.GetPod(ctx, ref)
	if err != nil {
		return nil, err
	}
	if p.State != PodRunning {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("pod %s is not running (it is %s)", p.Name, p.State))
	}
	if !p.shares("net") {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("pod %s shares no network namespace: each container has its own, so a pod port names none", p.Name))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dial := func(network, host string) (net.Conn, error) {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		if p.Config.Network == NetworkHost {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		return runtime.DialInNetNS(ctx, e.podNS(p.ID, "net"), network, addr)
	}
	c, err4 := dial("tcp4", "127.0.0.1")
	if err4 == nil {
		return c, nil
	}
	c, err6 := dial("tcp6", "::1")
	if err6 == nil {
		return c, nil
	}
	return nil, fmt.Errorf("failed to connect to localhost:%d inside namespace %q, IPv4: %v IPv6 %v", port, p.ID, err4, err6)
}
