package main

import "github.com/spf13/cobra"

// addOCICommands adds `hull oci`, the runc-compatible low-level runtime.
func addOCICommands(root *cobra.Command, g *globals) {}
