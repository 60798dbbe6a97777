package main

import "github.com/spf13/cobra"

// addImageCommands adds pull, push, images, image *, tag, rmi, save, load,
// login and logout.
func addImageCommands(root *cobra.Command, g *globals) {}
