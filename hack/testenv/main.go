// Command testenv gives scripts (make demo, bench/pull.sh) the test harness
// of internal/testenv: a local registry and the fixture images.
//
//	testenv registry --dir DIR [--pidfile FILE] [--detach] [--user U --password P]
//	    Starts docker-registry on 127.0.0.1 with its state in DIR, prints
//	    ADDR=127.0.0.1:PORT, PID= (this process: kill it to stop the
//	    registry) and REGISTRY_PID=, then serves until SIGTERM/SIGINT.
//	    --detach returns once the registry answers and leaves it serving in
//	    the background.
//	testenv push --registry ADDR [--only big,busybox] [--user U --password P]
//	    Pushes fixtures and prints NAME=REF and NAME_DIGEST=sha256:... per
//	    fixture (NAME upper-cased, "-" as "_"), e.g. BIG=127.0.0.1:PORT/hull-test/big:1.0.
//	testenv critest-images --registry ADDR
//	    Pushes stand-ins for the images critest pulls under
//	    ADDR/<registry host>/<path> and prints the mirrors that make hull
//	    pull them under their own names, each as MIRROR <host> ADDR/<host>
//	    (not TOML: registries-toml makes hull.toml's block of them).
//	testenv kubelet-images --registry ADDR [--nonroot]
//	    The same for test/kubelet.sh's stand-ins for the course's nginx
//	    (docker.io/library/nginx:1.25, root) and a non-root web server
//	    (docker.io/nginxinc/nginx-unprivileged:1.25, uid 101, port 8080).
//	    --nonroot pushes nginx:1.25 as the non-root one too, so the
//	    course's manifest (runAsNonRoot) runs (bench/kube.sh).
//	testenv registries-toml <MIRROR-LINES
//	    Reads the MIRROR lines of critest-images and kubelet-images runs
//	    on stdin and prints hull.toml's whole [registries] block of them:
//	    mirrors_only = true and [registries.mirrors], so that a pull of
//	    what the registry lacks fails instead of reaching the real
//	    registry: tests and benchmarks contact only 127.0.0.1.
//	testenv network-rm --root R --run-root RR --bridge B --subnet S
//	    Removes the default network a hull in those roots made with that
//	    bridge and subnet (hull.toml's [network]): the bridge, its nftables
//	    rules, its address pool. For benchmarks, as tests' RemoveDefaultNetwork.
//
// Run it with `go run -tags libsqlite3 ./hack/testenv ...`, or build it once
// with `go build -tags libsqlite3 -o bin/testenv ./hack/testenv` so that PID
// is the process to kill.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"hull/internal/network"
	"hull/internal/testenv"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "registry":
		err = registry(os.Args[2:])
	case "push":
		err = push(os.Args[2:])
	case "critest-images":
		err = critest(os.Args[2:])
	case "kubelet-images":
		err = kubeletStandIns(os.Args[2:])
	case "registries-toml":
		err = registriesTOML(os.Args[2:])
	case "network-rm":
		err = networkRm(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  testenv registry --dir DIR [--pidfile FILE] [--detach] [--user U --password P]
  testenv push --registry ADDR [--only NAME,...] [--user U --password P]
  testenv critest-images --registry ADDR
  testenv kubelet-images --registry ADDR [--nonroot]
  testenv registries-toml <MIRROR-LINES
  testenv network-rm --root R --run-root RR --bridge B --subnet S
fixtures: `+strings.Join(testenv.AllFixtures, ", "))
	os.Exit(2)
}

func registry(args []string) error {
	fs := flag.NewFlagSet("registry", flag.ExitOnError)
	dir := fs.String("dir", "", "directory for the registry's config, log and data (required)")
	pidfile := fs.String("pidfile", "", "write this process's pid here; removed on exit")
	detach := fs.Bool("detach", false, "return once the registry serves; keep it running in the background")
	user := fs.String("user", "", "require basic auth with this user")
	password := fs.String("password", "", "password for --user")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("registry: --dir is required")
	}
	if *detach {
		return startDetached(*dir, args)
	}

	reg, err := testenv.StartRegistryWith(*dir, testenv.RegistryOptions{User: *user, Password: *password})
	if err != nil {
		return err
	}
	defer reg.Stop()
	if *pidfile != "" {
		if err := os.WriteFile(*pidfile, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
			return fmt.Errorf("registry: %w", err)
		}
		defer os.Remove(*pidfile)
	}
	fmt.Printf("ADDR=%s\nPID=%d\nREGISTRY_PID=%d\n", reg.Addr, os.Getpid(), reg.PID())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	select {
	case <-sigs:
		return reg.Stop()
	case <-reg.Done():
		return fmt.Errorf("registry on %s exited on its own; see %s", reg.Addr, filepath.Join(reg.Dir, "registry.log"))
	}
}

// startDetached runs this command again without --detach in its own session,
// relays its ADDR/PID lines and returns, leaving it serving.
func startDetached(dir string, args []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	childArgs := slices.DeleteFunc(slices.Clone(args), func(a string) bool {
		return a == "--detach" || a == "-detach" || a == "--detach=true" || a == "-detach=true"
	})
	logPath := filepath.Join(dir, "testenv.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(self, append([]string{"registry"}, childArgs...)...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("registry: start %s: %w", self, err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		fmt.Println(sc.Text())
		if strings.HasPrefix(sc.Text(), "REGISTRY_PID=") {
			// The child keeps running; it never writes to stdout again.
			return nil
		}
	}
	cmd.Wait()
	log, _ := os.ReadFile(logPath)
	return fmt.Errorf("registry did not start: %s", strings.TrimSpace(string(log)))
}

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	addr := fs.String("registry", "", "registry address, 127.0.0.1:PORT (required)")
	only := fs.String("only", "", "comma-separated fixtures to push (default all: "+strings.Join(testenv.AllFixtures, ",")+")")
	user := fs.String("user", "", "basic auth user")
	password := fs.String("password", "", "basic auth password")
	fs.Parse(args)
	if *addr == "" {
		return fmt.Errorf("push: --registry is required")
	}
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	} else {
		names = testenv.AllFixtures
	}
	reg := &testenv.Registry{Addr: *addr, User: *user, Password: *password}
	f, err := testenv.PushFixtures(reg, names...)
	if err != nil {
		return err
	}
	for _, n := range names {
		key := strings.ToUpper(strings.ReplaceAll(n, "-", "_"))
		fmt.Printf("%s=%s\n%s_DIGEST=%s\n", key, f.Ref(n), key, f.Digest(n))
	}
	return nil
}

// networkRm removes the default network of a hull's roots, if it was made.
func networkRm(args []string) error {
	fs := flag.NewFlagSet("network-rm", flag.ExitOnError)
	root := fs.String("root", "", "hull's --root (required)")
	runRoot := fs.String("run-root", "", "hull's --run-root (required)")
	bridge := fs.String("bridge", "", "the default network's bridge (network.default_bridge)")
	subnet := fs.String("subnet", "", "the default network's subnet (network.default_subnet)")
	fs.Parse(args)
	if *root == "" || *runRoot == "" {
		return fmt.Errorf("network-rm: --root and --run-root are required")
	}
	if _, err := os.Stat(filepath.Join(*root, "networks", network.DefaultNetwork+".conflist")); err != nil {
		return nil // never made
	}
	m, err := network.Open(*root, *runRoot, network.Options{DefaultBridge: *bridge, DefaultSubnet: *subnet})
	if err != nil {
		return err
	}
	return m.Remove(context.Background(), network.DefaultNetwork)
}
