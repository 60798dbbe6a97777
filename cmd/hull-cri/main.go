// Command hull-cri serves the Container Runtime Interface over hull's
// engine (package hull/internal/cri); `hull cri serve` runs it. It is a
// binary of its own so gRPC's package inits never run in hull, which
// every container start runs. `hull-cri kube ...` is `hull kube`
// (package hull/internal/kube), which drives the same CRI code
// in-process and links the Kubernetes API types, also kept out of hull.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"hull/internal/cri"
	"hull/internal/kube"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "kube" {
		if err := kube.Main(os.Args[2:], version, os.Stdin, os.Stdout, os.Stderr); err != nil {
			if errors.Is(err, pflag.ErrHelp) {
				return
			}
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	if err := cri.Main(os.Args[1:], version, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "hull-cri:", err)
		os.Exit(1)
	}
}
