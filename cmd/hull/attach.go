package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"hull/internal/engine"
)

func newAttachCmd(g *globals) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach this terminal's input and output to a running container (detach with ctrl-p,ctrl-q)",
		Args:  exactArgs(1, "a container"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := engine.ParseDetachKeys(detachKeys); err != nil {
				return err
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return err
			}
			defer done()
			o := engine.AttachOptions{Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), DetachKeys: detachKeys}
			if !noStdin {
				o.Stdin = cmd.InOrStdin()
			}
			a, err := eng.Attach(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			code, err := followAttached(cmd, a, sigProxy)
			if errors.Is(err, engine.ErrDetached) {
				fmt.Fprintln(cmd.ErrOrStderr(), "read escape sequence")
				return withCode(1, silentError{})
			}
			if err != nil {
				return err
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

// followAttached is the terminal's side of an attachment until the
// container exits (its status) or the front end detaches (ErrDetached):
// with a terminal, this one raw (with input) and its size passed on;
// without, the signals this command receives forwarded (sigProxy).
func followAttached(cmd *cobra.Command, a *engine.Attached, sigProxy bool) (int, error) {
	defer a.Close()
	if a.TTY() {
		if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			if a.Stdin() {
				if old, err := term.MakeRaw(int(f.Fd())); err == nil {
					defer term.Restore(int(f.Fd()), old)
				}
			}
			stop := onResize(f, func(rows, cols uint16) { a.Resize(rows, cols) })
			defer stop()
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
				a.Signal(cmd.Context(), s.(syscall.Signal))
			}
		}()
	}
	return a.Wait()
}

// onResize calls resize with the terminal f's size now and whenever it
// changes (SIGWINCH), until the returned func is called.
func onResize(f *os.File, resize func(rows, cols uint16)) func() {
	send := func() {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			resize(uint16(h), uint16(w))
		}
	}
	send()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for range winch {
			send()
		}
	}()
	return func() { signal.Stop(winch) }
}
