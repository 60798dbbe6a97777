package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"
)

// The streaming RPCs through client-go's clients, the ones kubelet,
// kubectl and crictl use: SPDY and websocket executors for exec and
// attach, the SPDY port forwarder (plain and tunnelled in a websocket).

// syncBuf is a bytes.Buffer the client's copy goroutines may write while
// the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runStream runs a remote command session on rawURL over transport ("spdy"
// or "websocket") and returns its output and the client's error.
func runStream(t *testing.T, transport, rawURL string, o remotecommand.StreamOptions) (stdout, stderr string, err error) {
	t.Helper()
	var x remotecommand.Executor
	if transport == "websocket" {
		x, err = remotecommand.NewWebSocketExecutor(&rest.Config{}, "GET", rawURL)
	} else {
		u, perr := url.Parse(rawURL)
		if perr != nil {
			t.Fatal(perr)
		}
		x, err = remotecommand.NewSPDYExecutor(&rest.Config{}, "POST", u)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuf
	if o.Stdout == nil {
		o.Stdout = &out
	}
	if o.Stderr == nil && !o.Tty {
		o.Stderr = &errOut
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = x.StreamWithContext(ctx, o)
	return out.String(), errOut.String(), err
}

// exitCode is the exit status a client error carries, or -1.
func exitCode(err error) int {
	var ce exec.CodeExitError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// sizes is a TerminalSizeQueue giving one size, then none.
type sizes struct {
	once chan remotecommand.TerminalSize
}

func (s sizes) Next() *remotecommand.TerminalSize {
	sz, ok := <-s.once
	if !ok {
		return nil
	}
	return &sz
}

func TestExecStreaming(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "exec")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "sleeper", nil, "sleep", "300")
	startContainer(t, c, id)

	execURL := func(t *testing.T, req *runtimeapi.ExecRequest) string {
		t.Helper()
		req.ContainerId = id
		r, err := c.rt.Exec(ctx, req)
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		if !strings.HasPrefix(r.Url, "http://127.0.0.1:") || !strings.Contains(r.Url, "/exec/") {
			t.Fatalf("Exec URL %q; want http://127.0.0.1:PORT/exec/TOKEN", r.Url)
		}
		return r.Url
	}
	for _, transport := range []string{"spdy", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			// Output on both streams, and the exit status.
			u := execURL(t, &runtimeapi.ExecRequest{Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: true, Stderr: true})
			out, errOut, err := runStream(t, transport, u, remotecommand.StreamOptions{})
			if out != "out\n" || errOut != "err\n" || exitCode(err) != 3 {
				t.Errorf("exec exit 3: stdout %q stderr %q err %v; want out, err, exit code 3", out, errOut, err)
			}
			// Success is no error.
			u = execURL(t, &runtimeapi.ExecRequest{Cmd: []string{"true"}, Stdout: true})
			if _, _, err := runStream(t, transport, u, remotecommand.StreamOptions{Stderr: io.Discard}); err != nil {
				t.Errorf("exec true: %v", err)
			}
			// stdin, to its end.
			u = execURL(t, &runtimeapi.ExecRequest{Cmd: []string{"sh", "-c", "cat; echo done"}, Stdin: true, Stdout: true, Stderr: true})
			out, _, err = runStream(t, transport, u, remotecommand.StreamOptions{Stdin: strings.NewReader("line 1\nline 2\n")})
			if out != "line 1\nline 2\ndone\n" || err != nil {
				t.Errorf("exec cat: stdout %q, %v; want the input then done", out, err)
			}
			// A tty, of the client's size from the start: the process
			// reads it at once.
			u = execURL(t, &runtimeapi.ExecRequest{Cmd: []string{"sh", "-c", "test -t 0 && test -t 1 && echo tty; echo size $(busybox stty size 2>&1); exit 5"}, Stdin: true, Stdout: true, Tty: true})
			q := sizes{make(chan remotecommand.TerminalSize, 1)}
			q.once <- remotecommand.TerminalSize{Width: 101, Height: 33}
			close(q.once)
			pr, pw := io.Pipe()
			defer pw.Close()
			out, _, err = runStream(t, transport, u, remotecommand.StreamOptions{Stdin: pr, Tty: true, TerminalSizeQueue: q})
			if out != "tty\r\nsize 33 101\r\n" || exitCode(err) != 5 {
				t.Errorf("exec -t: %q, %v; want tty, size 33 101 (the client's size from the start), exit code 5", out, err)
			}
		})
	}

	t.Run("older protocols", func(t *testing.T) {
		// What older clients negotiate over SPDY: before v4 the error
		// stream carries a failure's message, not a status.
		for _, proto := range []string{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"} {
			u, err := url.Parse(execURL(t, &runtimeapi.ExecRequest{Cmd: []string{"sh", "-c", "read l; echo $l; echo err >&2; exit 3"}, Stdin: true, Stdout: true, Stderr: true}))
			if err != nil {
				t.Fatal(err)
			}
			tr, up, err := spdy.RoundTripperFor(&rest.Config{})
			if err != nil {
				t.Fatal(err)
			}
			x, err := remotecommand.NewSPDYExecutorForProtocols(tr, up, "POST", u, proto)
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut syncBuf
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = x.StreamWithContext(sctx, remotecommand.StreamOptions{Stdin: strings.NewReader("in\n"), Stdout: &out, Stderr: &errOut})
			cancel()
			failed := err != nil && strings.Contains(err.Error(), "exit code 3")
			output := out.String() == "in\n" && errOut.String() == "err\n"
			if proto == "channel.k8s.io" {
				// A v1 client returns at whichever comes first: the end of
				// its output streams (then without the error) or the error
				// stream's message (then it resets the output streams, and
				// what they had not copied yet is lost). kubelet's server
				// has the same race; the status goes first (remotecommand.go).
				if !(failed || err == nil && output) {
					t.Errorf("%s: stdout %q stderr %q, %v; want exit code 3, or in and err without an error", proto, out.String(), errOut.String(), err)
				}
				continue
			}
			if !output || !failed {
				t.Errorf("%s: stdout %q stderr %q, %v; want in, err, exit code 3", proto, out.String(), errOut.String(), err)
			}
		}
	})

	t.Run("client gone", func(t *testing.T) {
		// A client that goes away takes its process with it.
		u, err := url.Parse(execURL(t, &runtimeapi.ExecRequest{Cmd: []string{"sh", "-c", "echo started; exec sleep 1234"}, Stdout: true, Stderr: true}))
		if err != nil {
			t.Fatal(err)
		}
		x, err := remotecommand.NewSPDYExecutor(&rest.Config{}, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuf
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- x.StreamWithContext(sctx, remotecommand.StreamOptions{Stdout: &out, Stderr: io.Discard})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for out.String() == "" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		for {
			r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"ps", "-o", "args"}, Timeout: 10})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(r.Stdout), "sleep 1234") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the exec'd process outlived its client:\n%s", r.Stdout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("token", func(t *testing.T) {
		u := execURL(t, &runtimeapi.ExecRequest{Cmd: []string{"true"}, Stdout: true})
		if _, _, err := runStream(t, "spdy", u, remotecommand.StreamOptions{Stderr: io.Discard}); err != nil {
			t.Fatal(err)
		}
		// Used once: refused.
		resp, err := http.Post(u, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "used or expired") {
			t.Errorf("a used URL: %d %s; want 404 saying it is used or expired", resp.StatusCode, body)
		}
		if _, _, err := runStream(t, "spdy", u, remotecommand.StreamOptions{Stderr: io.Discard}); err == nil {
			t.Error("a used URL streamed again")
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			req  *runtimeapi.ExecRequest
			code codes.Code
		}{
			{&runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}}, codes.InvalidArgument},
			{&runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true, Stderr: true, Tty: true}, codes.InvalidArgument},
			{&runtimeapi.ExecRequest{ContainerId: strings.Repeat("0", 64), Cmd: []string{"true"}, Stdout: true}, codes.NotFound},
		} {
			if _, err := c.rt.Exec(ctx, tc.req); status.Code(err) != tc.code {
				t.Errorf("Exec %v: %v; want %v", tc.req, err, tc.code)
			}
		}
		stopped := createContainer(t, c, f, podID, pod, "stopped", nil, "true")
		if _, err := c.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: stopped, Cmd: []string{"true"}, Stdout: true}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("Exec in a created container: %v; want FailedPrecondition", err)
		}
	})
}

func TestAttachStreaming(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "attach")
	podID := runSandbox(t, c, pod)
	for _, transport := range []string{"spdy", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			// A shell reading its stdin, as critest's: what the client types
			// runs, and the end of its input ends the shell.
			id := createContainer(t, c, f, podID, pod, "shell-"+transport, func(cc *runtimeapi.ContainerConfig) {
				cc.Stdin, cc.StdinOnce = true, true
			}, "sh", "-c", "echo ready; exec sh")
			startContainer(t, c, id)
			r, err := c.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
			if err != nil {
				t.Fatalf("Attach: %v", err)
			}
			pr, pw := io.Pipe()
			var out syncBuf
			go func() {
				defer pw.Close()
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(out.String(), "ready") && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				fmt.Fprintln(pw, "echo hello; echo oops >&2")
				for !strings.Contains(out.String(), "hello") && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
			}()
			_, errOut, err := runStream(t, transport, r.Url, remotecommand.StreamOptions{Stdin: pr, Stdout: &out})
			if err != nil || !strings.HasSuffix(out.String(), "hello\n") || errOut != "oops\n" {
				t.Errorf("attach: stdout %q stderr %q, %v; want hello and oops", out.String(), errOut, err)
			}
			if st := waitExited(t, c, id); st.ExitCode != 0 {
				t.Errorf("the shell exited %d after its input ended; want 0", st.ExitCode)
			}
		})
	}
	t.Run("stdin kept", func(t *testing.T) {
		// Without stdin_once the end of a client's input ends its
		// attachment only: the shell keeps its stdin for the next one.
		id := createContainer(t, c, f, podID, pod, "shell-kept", func(cc *runtimeapi.ContainerConfig) {
			cc.Stdin = true
		}, "sh")
		startContainer(t, c, id)
		for i, input := range []string{"echo one\n", "echo two; exit 4\n"} {
			r, err := c.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
			if err != nil {
				t.Fatalf("Attach %d: %v", i, err)
			}
			pr, pw := io.Pipe()
			var out syncBuf
			go func() {
				defer pw.Close()
				time.Sleep(300 * time.Millisecond) // attached before the shell answers
				io.WriteString(pw, input)
				deadline := time.Now().Add(10 * time.Second)
				for out.String() == "" && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
			}()
			if _, _, err := runStream(t, "spdy", r.Url, remotecommand.StreamOptions{Stdin: pr, Stdout: &out}); err != nil {
				t.Errorf("attach %d: %v", i, err)
			}
			if want := []string{"one\n", "two\n"}[i]; out.String() != want {
				t.Errorf("attach %d: %q; want %q", i, out.String(), want)
			}
			if i == 0 {
				time.Sleep(200 * time.Millisecond)
				if st := containerStatus(t, c, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
					t.Fatalf("after the first client's input ended the shell is %v (exit %d); want running", st.State, st.ExitCode)
				}
			}
		}
		if st := waitExited(t, c, id); st.ExitCode != 4 {
			t.Errorf("the shell exited %d; want 4 (its exit command)", st.ExitCode)
		}
	})
	t.Run("tty", func(t *testing.T) {
		// A container with a terminal gets the attached client's size.
		id := createContainer(t, c, f, podID, pod, "tty", func(cc *runtimeapi.ContainerConfig) {
			cc.Stdin, cc.Tty = true, true
		}, "sh", "-c", "for i in $(seq 100); do s=$(busybox stty size); [ \"$s\" = '22 77' ] && echo size $s && exit 6; sleep 0.1; done")
		startContainer(t, c, id)
		r, err := c.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Tty: true})
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		q := sizes{make(chan remotecommand.TerminalSize, 1)}
		q.once <- remotecommand.TerminalSize{Width: 77, Height: 22}
		close(q.once)
		pr, pw := io.Pipe()
		defer pw.Close()
		out, _, err := runStream(t, "spdy", r.Url, remotecommand.StreamOptions{Stdin: pr, Tty: true, TerminalSizeQueue: q})
		if err != nil || !strings.Contains(out, "size 22 77") {
			t.Errorf("attach -t: %q, %v; want size 22 77", out, err)
		}
		if st := waitExited(t, c, id); st.ExitCode != 6 {
			t.Errorf("the container exited %d; want 6 (it saw the size)", st.ExitCode)
		}
	})
	t.Run("output", func(t *testing.T) {
		// Output only, from a container already running: the client that
		// goes away leaves it running.
		id := createContainer(t, c, f, podID, pod, "ticker", nil, "sh", "-c", "while true; do echo tick; sleep 0.1; done")
		startContainer(t, c, id)
		r, err := c.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		u, _ := url.Parse(r.Url)
		x, err := remotecommand.NewSPDYExecutor(&rest.Config{}, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuf
		sctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- x.StreamWithContext(sctx, remotecommand.StreamOptions{Stdout: &out, Stderr: io.Discard})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(out.String(), "tick") < 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		if n := strings.Count(out.String(), "tick"); n < 3 {
			t.Errorf("attached output %q; want ticks", out.String())
		}
		time.Sleep(200 * time.Millisecond)
		if st := containerStatus(t, c, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("after the client left the container is %v; want running", st.State)
		}
	})
}

func TestPortForwardStreaming(t *testing.T) {
	c, f := serveRuntime(t)
	ctx := ctxT(t)
	pod := sandboxConfig(t, "web")
	podID := runSandbox(t, c, pod)
	id := createContainer(t, c, f, podID, pod, "httpd", nil, "sh", "-c", "mkdir /tmp/www && echo hello from the pod > /tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www")
	startContainer(t, c, id)
	// httpd listens within moments; the pod's loopback is not ours to poll.
	if _, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "for i in $(seq 50); do wget -q -O /dev/null http://127.0.0.1:8080/ && exit; sleep 0.1; done; exit 1"}, Timeout: 10}); err != nil {
		t.Fatalf("httpd in the pod: %v", err)
	}

	forwardURL := func(t *testing.T) *url.URL {
		t.Helper()
		r, err := c.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: podID})
		if err != nil {
			t.Fatalf("PortForward: %v", err)
		}
		u, err := url.Parse(r.Url)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	spdyDialer := func(u *url.URL) httpstream.Dialer {
		tr, up, err := spdy.RoundTripperFor(&rest.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return spdy.NewDialerForStreaming(up, &http.Client{Transport: tr}, "POST", u)
	}
	dialers := map[string]func(*url.URL) httpstream.Dialer{
		"spdy": spdyDialer,
		"websocket": func(u *url.URL) httpstream.Dialer {
			d, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, &rest.Config{})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	}
	for transport, dialer := range dialers {
		t.Run(transport, func(t *testing.T) {
			stop, ready := make(chan struct{}), make(chan struct{})
			var pfOut, pfErr syncBuf
			pf, err := portforward.NewOnAddressesForStreaming(dialer(forwardURL(t)), []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, &pfOut, &pfErr)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- pf.ForwardPorts() }()
			defer func() { close(stop); <-done }()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("ForwardPorts: %v\n%s", err, pfErr.String())
			}
			ports, err := pf.GetPorts()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // two connections over one forwarding
				resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
				if err != nil {
					t.Fatalf("GET %d through the forward: %v\n%s", i, err, pfErr.String())
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "hello from the pod\n" {
					t.Errorf("GET %d through the forward: %q; want the pod's page", i, body)
				}
			}
		})
	}

	t.Run("websocket channels", func(t *testing.T) {
		// kubelet's websocket form: ports in the query, a data and an
		// error channel per port, each first saying its port.
		u := forwardURL(t)
		u.Scheme, u.RawQuery = "ws", "port=8080"
		cfg, err := websocket.NewConfig(u.String(), "http://127.0.0.1/")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Protocol = []string{"v4.channel.k8s.io"}
		ws, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatalf("websocket: %v", err)
		}
		defer ws.Close()
		ws.SetDeadline(time.Now().Add(20 * time.Second))
		for ch := range byte(2) {
			var msg []byte
			if err := websocket.Message.Receive(ws, &msg); err != nil || !bytes.Equal(msg, []byte{ch, 0x90, 0x1f}) {
				t.Fatalf("channel %d's first message: %v, %v; want the port, 8080 little endian", ch, msg, err)
			}
		}
		if err := websocket.Message.Send(ws, append([]byte{0}, "GET / HTTP/1.0\r\n\r\n"...)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for !bytes.Contains(got, []byte("hello from the pod")) {
			var msg []byte
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				t.Fatalf("the page through websocket channels: %v after %q", err, got)
			}
			if len(msg) > 0 && msg[0] == 0 {
				got = append(got, msg[1:]...)
			}
		}
	})

	t.Run("closed port", func(t *testing.T) {
		conn, _, err := spdyDialer(forwardURL(t)).Dial("portforward.k8s.io")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		h := http.Header{}
		h.Set("streamType", "error")
		h.Set("port", "8081")
		h.Set("requestID", "0")
		errStream, err := conn.CreateStream(h)
		if err != nil {
			t.Fatal(err)
		}
		errStream.Close()
		h.Set("streamType", "data")
		if _, err := conn.CreateStream(h); err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(errStream)
		want := fmt.Sprintf("error forwarding port 8081 to pod %s, uid : failed to connect to localhost:8081 inside namespace %q", podID, podID)
		if !strings.HasPrefix(string(msg), want) {
			t.Errorf("forwarding a closed port: %q; want %q...", msg, want)
		}
	})

	t.Run("unknown or stopped sandbox", func(t *testing.T) {
		if _, err := c.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: strings.Repeat("0", 64)}); status.Code(err) != codes.NotFound {
			t.Errorf("PortForward of an unknown sandbox: %v; want NotFound", err)
		}
		stopped := runSandbox(t, c, sandboxConfig(t, "stopped"))
		if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: stopped}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: stopped}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("PortForward of a stopped sandbox: %v; want FailedPrecondition", err)
		}
	})
}
