package main

// The CRI server (every command line but `hull-cri kube ...`) starts
// without huge pages for its heap (package hull/internal/hugeheap): it
// starts once, before kubelet's first call, and stays for the node's
// life, so its start's few milliseconds matter less than the memory a
// huge page's unused part would keep. This C constructor ends them before
// the Go runtime maps its heap. `hull kube` (a command, or a pod's
// supervisor, which settles after its first round) keeps them: its start
// is on the path from apply to Running. (The package is linked through
// hull/internal/engine, which ends an idle spare's huge pages with it.)

// int hull_hugeheap_end(void);
import "C"
