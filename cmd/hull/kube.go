package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"
)

// newKubeCmd is `hull kube ...`: kubectl's commands for pods on this
// machine (apply, get, describe, logs, exec, delete), with kubelet's
// semantics. It execs `hull-cri kube` with hull's resolved configuration:
// the Kubernetes API types and the CRI code it drives in-process are
// linked there only, as for `hull cri serve`. Flags are hull-cri's to
// parse, so this command forwards its arguments untouched.
func newKubeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:                "kube COMMAND",
		Short:              "Run Kubernetes pods on this machine: apply, get, describe, logs, exec, delete",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			bin := criBinary(self)
			argv := append([]string{bin, "kube", "--hull", self}, g.globalArgs()...)
			argv = append(argv, args...)
			if isKubeApply(args) { // kube_apply.go
				if code, ok := runKubeApply(argv, os.Environ()); ok {
					if code == 0 {
						return nil
					}
					return withCode(code, silentError{})
				}
			}
			if err := syscall.Exec(bin, argv, os.Environ()); err != nil {
				return fmt.Errorf("run %s: %w (build it with make build, or set HULL_CRI)", bin, err)
			}
			return nil
		},
	}
}
