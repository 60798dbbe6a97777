// Command hull-cri serves the Container Runtime Interface over hull's
// engine (package hull/internal/cri); `hull cri serve` runs it. It is a
// binary of its own so gRPC's package inits never run in hull, which
// every container start runs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"hull/internal/cri"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	if err := cri.Main(os.Args[1:], version, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "hull-cri:", err)
		os.Exit(1)
	}
}
