package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"hull/internal/engine"
	"hull/internal/runtime"
	"hull/internal/spec"
	"hull/internal/streams"
)

func newExecCmd(g *globals) *cobra.Command {
	var interactive, tty, detach bool
	var env, envFiles []string
	var workdir, user string
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Args:  minArgs(2, "a container and a command"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if detach && tty {
				return withCode(125, errors.New("exec -d with -t is not supported: a detached process has nobody to read its terminal"))
			}
			o := engine.ExecOptions{Args: args[1:], WorkingDir: workdir, User: user, TTY: tty}
			for _, file := range envFiles {
				kvs, err := spec.ParseEnvFile(file)
				if err != nil {
					return withCode(125, err)
				}
				o.Env = append(o.Env, kvs...)
			}
			kvs, err := spec.ParseEnv(env)
			if err != nil {
				return withCode(125, err)
			}
			o.Env = append(o.Env, kvs...)
			if user != "" {
				if _, _, err := spec.ParseUser(user); err != nil {
					return withCode(125, err)
				}
			}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return withCode(125, err)
			}
			defer done()
			code, err := runExec(cmd, eng, args[0], o, interactive, detach)
			if err != nil {
				return withCode(failureStatus(err, true), err)
			}
			if code != 0 {
				return withCode(code, silentError{})
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after the container belong to the command
	f.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	f.BoolVarP(&detach, "detach", "d", false, "run the command in the background")
	f.StringArrayVarP(&env, "env", "e", nil, "set environment variables (KEY=VALUE, or KEY to take it from here)")
	f.StringArrayVar(&envFiles, "env-file", nil, "read environment variables from a file")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&user, "user", "u", "", "user[:group] (names or ids, looked up in the container) to run as")
	return cmd
}

// runExec starts the process and, unless detached, connects it to this
// command's stdio (through pipes, or a pty in raw mode with -t) and
// returns its exit status.
func runExec(cmd *cobra.Command, eng *engine.Engine, ref string, o engine.ExecOptions, interactive, detach bool) (int, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 125, err
	}
	defer devnull.Close()
	o.Stdin, o.Stdout, o.Stderr = devnull, devnull, devnull
	if detach {
		pid, _, err := eng.Exec(cmd.Context(), ref, o)
		if err != nil {
			return 0, err
		}
		// Reaped here while this process lives (in tests it lives on);
		// by whoever inherits it once hull exits.
		go waitExec(pid)
		return 0, nil
	}
	if o.TTY {
		return execTTY(cmd, eng, ref, o, interactive)
	}

	var childEnds []*os.File
	closeChildEnds := func() {
		for _, f := range childEnds {
			f.Close()
		}
		childEnds = nil
	}
	defer closeChildEnds()
	outR, outW, err := os.Pipe()
	if err != nil {
		return 125, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return 125, err
	}
	o.Stdout, o.Stderr = outW, errW
	childEnds = append(childEnds, outW, errW)
	var inW *os.File
	if interactive {
		var inR *os.File
		if inR, inW, err = os.Pipe(); err != nil {
			return 125, err
		}
		o.Stdin = inR
		childEnds = append(childEnds, inR)
	}
	pid, c, err := eng.Exec(cmd.Context(), ref, o)
	closeChildEnds()
	if err != nil {
		outR.Close()
		errR.Close()
		if inW != nil {
			inW.Close()
		}
		return 0, err
	}
	if inW != nil {
		go func() {
			io.Copy(inW, cmd.InOrStdin())
			inW.Close()
		}()
	}
	copied := make(chan struct{}, 2)
	copyOut := func(w io.Writer, r *os.File) {
		streams.CopyBuffered(w, r)
		copied <- struct{}{}
	}
	go copyOut(cmd.OutOrStdout(), outR)
	go copyOut(cmd.ErrOrStderr(), errR)
	code := waitExec(pid)
	// A process the command left in the background may hold the pipes
	// open: take what is buffered, then stop reading.
	streams.EndReadsBy(time.Now().Add(time.Second), outR, errR)
	<-copied
	<-copied
	outR.Close()
	errR.Close()
	eng.ExecDied(cmd.Context(), c, code)
	return code, nil
}

// execTTY runs the process on a pty whose master this command proxies:
// stdin in raw mode when it is a terminal, window size changes forwarded.
func execTTY(cmd *cobra.Command, eng *engine.Engine, ref string, o engine.ExecOptions, interactive bool) (int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 125, fmt.Errorf("console socketpair: %w", err)
	}
	o.Console = os.NewFile(uintptr(fds[0]), "console")
	peer := os.NewFile(uintptr(fds[1]), "console-peer")
	defer peer.Close()
	pid, c, err := eng.Exec(cmd.Context(), ref, o)
	o.Console.Close()
	if err != nil {
		return 0, err
	}
	master, err := runtime.RecvConsole(peer)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		waitExec(pid)
		return 125, err
	}
	defer master.Close()
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if interactive {
			if old, err := term.MakeRaw(int(f.Fd())); err == nil {
				defer term.Restore(int(f.Fd()), old)
			}
		}
		resize := func() {
			if w, h, err := term.GetSize(int(f.Fd())); err == nil {
				unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(h), Col: uint16(w)})
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	if interactive {
		go io.Copy(master, in)
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(cmd.OutOrStdout(), master) // ends with EIO once the last slave closes
		close(copied)
	}()
	code := waitExec(pid)
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // a background process keeps the pty
	}
	eng.ExecDied(cmd.Context(), c, code)
	return code, nil
}

// waitExec reaps the exec'd process (our child) and returns a shell-style
// status. Signals are not forwarded, as with docker exec: a terminal's
// interrupt reaches the process through the pty.
func waitExec(pid int) int {
	none := make(chan os.Signal)
	close(none)
	return waitForward(pid, none)
}
