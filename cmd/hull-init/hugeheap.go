package main

// A container's first process starts from hull-init (`hull init`), with
// huge pages for its heap (package hull/internal/hugeheap) until it execs
// the container's command: half its page faults. As `--init` (`hull-init
// -- COMMAND`), it stays for the container's life as its PID 1, so it
// starts without: this C constructor ends them before the Go runtime
// maps its heap.

import "C"
