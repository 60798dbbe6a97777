package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"hull/internal/engine"
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
			s := engine.ExecSpec{Args: args[1:], Env: env, EnvFiles: envFiles, WorkingDir: workdir, User: user, TTY: tty}
			eng, done, err := g.openEngine(cmd)
			if err != nil {
				return withCode(125, err)
			}
			defer done()
			code, err := runExec(cmd, eng, args[0], s, interactive, detach)
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

// newExecExitedCmd is the hidden `hull exec-exited ID STATUS` that
// hull-shim exec runs to record the end of an exec'd process whose hull
// exec is gone.
func newExecExitedCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "exec-exited ID STATUS",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: withEngine(g, func(cmd *cobra.Command, eng *engine.Engine, args []string) error {
			code, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("exec-exited %s: status %q: %w", args[0], args[1], err)
			}
			return eng.ExecExited(cmd.Context(), args[0], code)
		}),
	}
}

// runExec starts the process and, unless detached, connects it to this
// command's stdio (with -t on a pty: this terminal raw with -i, its size
// passed on) and returns its exit status.
func runExec(cmd *cobra.Command, eng *engine.Engine, ref string, s engine.ExecSpec, interactive, detach bool) (int, error) {
	if detach {
		x, err := eng.Exec(cmd.Context(), ref, s, engine.ExecIO{})
		if err != nil {
			return 0, err
		}
		x.Release()
		return 0, nil
	}
	pio := engine.ExecIO{Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
	in := cmd.InOrStdin()
	if interactive {
		pio.Stdin = in
	}
	f, ok := in.(*os.File)
	onTerminal := ok && s.TTY && term.IsTerminal(int(f.Fd()))
	if onTerminal {
		// The process starts on a terminal of this one's size (a
		// resize once it runs could come after it read the size).
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			s.Rows, s.Cols = uint16(h), uint16(w)
		}
	}
	x, err := eng.Exec(cmd.Context(), ref, s, pio)
	if err != nil {
		return 0, err
	}
	if onTerminal {
		if interactive {
			if old, err := term.MakeRaw(int(f.Fd())); err == nil {
				defer term.Restore(int(f.Fd()), old)
			}
		}
		stop := onResize(f, func(rows, cols uint16) { x.Resize(rows, cols) })
		defer stop()
	}
	return x.Wait(), nil
}
