package main

// `hull kube ...` is hull-cri's (cmd/hull/kube.go): hull only finds
// hull-cri and hands it the command line. For that, hull's own start (its
// Go runtime and package initialisation, the command tree, the
// configuration, about 10-15 ms of a short apply on the 2-core test
// machine, where the pod's start is what the user waits for) is not
// needed: kubefast.c, a C constructor, does it before the Go runtime
// starts, for a command line of hull's global flags (--config, --root,
// --run-root, --log-level, each with its value) followed by `kube`. It
// execs `hull-cri kube --hull SELF FLAGS ARGS` (hull-cri resolves the
// configuration from the same flags, file and environment as hull), or,
// for apply, runs it as its child and exits with the status the child
// reports, as runKubeApply (kube_apply.go). Any other command line, or
// anything it cannot do, is left to the Go command tree, which does the
// same.

/*
extern void hull_kube_start(int argc, char **argv);
static void __attribute__((constructor)) hull_kube_init(int argc, char **argv) { hull_kube_start(argc, argv); }
*/
import "C"
