package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"hull/internal/engine"
	"hull/internal/streams"
	"hull/internal/trace"
)

func newAttachCmd(g *globals) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach this terminal's input and output to a running container (detach with ctrl-p,ctrl-q)",
		Args:  exactArgs(1, "a container"),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return err
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			c, err := eng.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			switch c.State {
			case engine.StateRunning:
			case engine.StatePaused:
				return fmt.Errorf("you cannot attach to a paused container %s, unpause it first", c.Name)
			default:
				return fmt.Errorf("you cannot attach to a stopped container %s, start it first", c.Name)
			}
			conn, err := streams.Dial(eng.AttachSocket(c.ID))
			if err != nil {
				return fmt.Errorf("attach to %s: %w", c.Name, err)
			}
			defer conn.Close()
			code, detached, err := attachTo(cmd, eng, c, conn, !noStdin && c.Config.OpenStdin, sigProxy, keys)
			if err != nil {
				return err
			}
			if detached {
				fmt.Fprintln(cmd.ErrOrStderr(), "read escape sequence")
				return withCode(1, silentError{})
			}
			if code != 0 {
				return withCode(code, silentError{})
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noStdin, "no-stdin", false, "do not attach stdin")
	f.BoolVar(&sigProxy, "sig-proxy", true, "forward received signals to the container (without a terminal)")
	f.StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "key sequence that detaches, leaving the container running")
	return cmd
}

// parseDetachKeys reads docker's key list: letters, or ctrl-<key> for
// ctrl-a..ctrl-z, ctrl-@, ctrl-[, ctrl-\, ctrl-], ctrl-^, ctrl-_.
func parseDetachKeys(s string) ([]byte, error) {
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		key, isCtrl := strings.CutPrefix(strings.ToLower(k), "ctrl-")
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case isCtrl && len(key) == 1 && key[0] >= 'a' && key[0] <= 'z':
			keys = append(keys, key[0]-'a'+1)
		case isCtrl && len(key) == 1 && strings.Contains("@[\\]^_", key):
			keys = append(keys, key[0]-'@')
		default:
			return nil, fmt.Errorf("--detach-keys %q: %q is not a key: use a letter or ctrl-<letter> (e.g. ctrl-p,ctrl-q)", s, k)
		}
	}
	return keys, nil
}

// attachTo streams the container's output here and, with stdin, this
// input there until the container exits (its status) or the detach keys
// are typed (detached).
func attachTo(cmd *cobra.Command, eng *engine.Engine, c *engine.Container, conn net.Conn, stdin, sigProxy bool, keys []byte) (int, bool, error) {
	in := cmd.InOrStdin()
	if c.Config.Spec.TTY {
		if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			if stdin {
				if old, err := term.MakeRaw(int(f.Fd())); err == nil {
					defer term.Restore(int(f.Fd()), old)
				}
			}
			sendSize(conn, f)
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, syscall.SIGWINCH)
			defer signal.Stop(winch)
			go func() {
				for range winch {
					sendSize(conn, f)
				}
			}()
		}
	} else if sigProxy {
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		// Stop waits for the signal loop to go idle (0.15 ms); every
		// caller ends its command once the container has, so nothing
		// waits for it (a signal until then goes to a container that is
		// gone, as it would have a moment before).
		defer func() { go signal.Stop(sigs) }()
		go func() {
			for s := range sigs {
				eng.Kill(cmd.Context(), c.ID, s.(syscall.Signal))
			}
		}()
	}
	detach := make(chan struct{})
	if stdin {
		go func() {
			if forwardInput(conn, in, keys) {
				close(detach)
				conn.Close()
			}
		}()
	}
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	for {
		kind, data, err := streams.ReadFrame(conn)
		if err != nil {
			select {
			case <-detach:
				return 0, true, nil
			default:
			}
			// The monitor went away without an exit frame: ask the record.
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				code, werr := eng.Wait(cmd.Context(), c.ID)
				return code, false, werr
			}
			return 0, false, fmt.Errorf("attach to %s: %w", c.Name, err)
		}
		switch kind {
		case streams.FrameStdout:
			out.Write(data)
		case streams.FrameStderr:
			errOut.Write(data)
		case streams.FrameExit:
			trace.Mark("cli: exit frame")
			if len(data) == 4 {
				return int(int32(uint32(data[0])<<24 | uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3]))), false, nil
			}
			return 0, false, nil
		}
	}
}

// forwardInput copies input to the container until EOF (then closes the
// container's stdin) or until the detach keys arrive (true). Bytes that
// begin the key sequence are held until it is clear they do not finish it.
func forwardInput(conn net.Conn, in io.Reader, keys []byte) bool {
	buf := make([]byte, 32*1024)
	matched := 0
	for {
		n, err := in.Read(buf)
		var send []byte
		for _, b := range buf[:n] {
			if len(keys) > 0 && b == keys[matched] {
				matched++
				if matched == len(keys) {
					if len(send) > 0 {
						streams.WriteFrame(conn, streams.FrameStdin, send)
					}
					return true
				}
				continue
			}
			send = append(send, keys[:matched]...)
			matched = 0
			if len(keys) > 0 && b == keys[0] {
				matched = 1
				continue
			}
			send = append(send, b)
		}
		if len(send) > 0 && streams.WriteFrame(conn, streams.FrameStdin, send) != nil {
			return false
		}
		if err != nil {
			streams.WriteFrame(conn, streams.FrameStdinClose, nil)
			return false
		}
	}
}
