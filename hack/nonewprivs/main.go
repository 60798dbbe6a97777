// Command nonewprivs is the stand-in for critest's
// registry.k8s.io/e2e-test-images/nonewprivs image: installed setuid
// root, it prints the effective uid it runs with, which is 0 unless the
// container has no_new_privs (then the setuid bit is ignored).
// hack/critest.sh builds it statically for hack/testenv critest-images.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
