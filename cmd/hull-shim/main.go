// Command hull-shim supervises a running detached container on behalf of
// hull's monitor; see package hull/internal/shim. It is built static
// (CGO_ENABLED=0) and small, so a running container costs little memory.
package main

import (
	"fmt"
	"os"

	"hull/internal/shim"
)

func main() {
	if err := shim.Main(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hull-shim:", err)
		os.Exit(1)
	}
}
