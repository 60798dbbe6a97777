package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// Argument checks whose errors say what was expected, docker-style:
// `"hull pull" requires exactly 1 argument (an image reference ...)`.

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q requires exactly %d argument(s): %s\nUsage: %s", cmd.CommandPath(), n, what, cmd.UseLine())
		}
		return nil
	}
}

func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("%q requires at least %d argument(s): %s\nUsage: %s", cmd.CommandPath(), n, what, cmd.UseLine())
		}
		return nil
	}
}

func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return fmt.Errorf("%q accepts %s\nUsage: %s", cmd.CommandPath(), what, cmd.UseLine())
		}
		return nil
	}
}

func rangeArgs(lo, hi int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("%q requires at least %d and at most %d arguments: %s\nUsage: %s", cmd.CommandPath(), lo, hi, what, cmd.UseLine())
		}
		return nil
	}
}
