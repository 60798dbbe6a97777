package main

import (
	"time"

	"github.com/spf13/cobra"
)

// stopTimeoutFlags are stop's and restart's -t/--timeout, with docker's
// deprecated --time still accepted.
func stopTimeoutFlags(cmd *cobra.Command, timeout *int) {
	cmd.Flags().IntVarP(timeout, "timeout", "t", 10, "seconds to wait before killing (default: the container's --stop-timeout, else 10)")
	cmd.Flags().IntVar(timeout, "time", 10, "seconds to wait before killing")
	cmd.Flags().MarkDeprecated("time", "use --timeout")
}

// stopSeconds is the -t/--timeout duration, or -1 (the container's own
// default) when neither it nor --time was given.
func stopSeconds(cmd *cobra.Command, v int) time.Duration {
	if cmd.Flags().Changed("time") {
		return seconds(cmd, "time", v)
	}
	return seconds(cmd, "timeout", v)
}
