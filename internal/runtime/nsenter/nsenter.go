// Package nsenter holds the part of hull's OCI runtime that must run before
// the Go runtime starts its threads: joining existing namespaces (setns into
// a mount or user namespace is refused to a multi-threaded process) and
// unsharing the new ones, so that every thread of the Go program that follows
// is already inside the container's namespaces.
//
// The C constructor in nsenter.c does nothing unless the environment variable
// _HULL_SYNCFD is set, which only hull's runtime does when it starts a
// container's init or an exec'd process. Importing this package is enough to
// install the constructor.
//
// Protocol on the SOCK_SEQPACKET socket named by _HULL_SYNCFD, seen from the
// child:
//
//	parent -> child  'c'            (with _HULL_CGROUP_WAIT) cgroups made: join them
//	child  -> parent 'U'            (new user ns only) write my uid/gid maps
//	parent -> child  'u'            maps written
//	child  -> parent 'P' + int32    pid of the process that continues into Go
//	child  -> parent 'E' + text     a step failed; the child exits
//
// Environment read by the constructor: _HULL_CGROUP_V1 (newline-separated
// v1 cgroup directories, joined first, by writing 0 to their tasks files),
// _HULL_CGROUP_V2 (the cgroup2 directory the child is forked into with
// clone3 CLONE_INTO_CGROUP), _HULL_NS_JOIN (newline-separated "type=path"
// entries, joined in order with the user namespace first), _HULL_NS_NEW
// (clone flags to unshare, hex; a new cgroup namespace is unshared later,
// in Go, once the process is in the container's cgroups),
// _HULL_TIMENS_OFFSETS (content for /proc/self/timens_offsets when a time
// namespace is created).
//
// The constructor makes the process non-dumpable before anything else, and
// nothing makes it dumpable again before the execve of the user's program:
// the container must not open the /proc/PID files (fd, environ, mem) of a
// process that still runs hull's code with hull's descriptors. Its /proc/PID
// files then belong to root of the caller's user namespace: the parent (root)
// writes the uid/gid maps there, and the constructor opens
// /proc/self/timens_offsets before it enters a user namespace.
//
// After unsharing, the constructor always forks once with CLONE_PARENT: the
// new child is the first process of a new pid or time namespace, already in
// the container's cgroups, and is a direct child of the hull process that
// started it, so that process can wait for it. The intermediate process
// reports the pid and exits.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void hull_nsenter(void);
static void __attribute__((constructor)) hull_nsenter_init(void) { hull_nsenter(); }
*/
import "C"
