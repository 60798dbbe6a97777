package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
)

// kubeletImage is a stand-in for an image test/kubelet.sh's pods run.
type kubeletImage struct {
	name string // registry host first
	user string // USER
	cmd  []string
}

// kubeletImages stand in for the course's nginx (container-fundamentals):
// docker.io/library/nginx:1.25 runs as root, as the real one does, so
// kubelet refuses it under runAsNonRoot; nginx-unprivileged, the usual
// non-root nginx, runs as uid 101 and serves on 8080. Both are the busybox
// fixture with the critest accounts layer and /bin/web (webLayer).
var kubeletImages = []kubeletImage{
	{name: "docker.io/library/nginx:1.25", cmd: []string{"/bin/web", "80"}},
	{name: "docker.io/nginxinc/nginx-unprivileged:1.25", user: "101", cmd: []string{"/bin/web", "8080"}},
}

// kubeletStandIns pushes the stand-ins to the registry at addr, each under
// ADDR/<registry host>/<path>, and prints the [registries.mirrors] lines
// that make hull pull them under their own names (as critest-images).
func kubeletStandIns(args []string) error {
	fs := flag.NewFlagSet("kubelet-images", flag.ExitOnError)
	addr := fs.String("registry", "", "registry address, 127.0.0.1:PORT (required)")
	nonroot := fs.Bool("nonroot", false, "push docker.io/library/nginx:1.25 as the non-root stand-in (uid 101, port 8080), as the kube tests do, so the course's manifest runs")
	fs.Parse(args)
	if *addr == "" {
		return fmt.Errorf("kubelet-images: --registry is required")
	}
	base, err := standInBase(webLayer)
	if err != nil {
		return err
	}
	hosts := map[string]bool{}
	for _, ki := range kubeletImages {
		if *nonroot && ki.name == "docker.io/library/nginx:1.25" {
			ki.user, ki.cmd = "101", []string{"/bin/web", "8080"}
		}
		if err := pushStandIn(base, *addr, "io.hull.kubelet.image", ki.user, ki.cmd, []string{ki.name}, hosts); err != nil {
			return err
		}
	}
	printMirrors(*addr, hosts)
	return nil
}

// webLayer holds /bin/web PORT: busybox httpd serving /www on PORT, as
// whichever user the image runs as, its start logged on stdout; SIGTERM
// ends it at once (a shell as PID 1 would otherwise ignore it and wait
// for kubelet's SIGKILL).
func webLayer() (io.ReadCloser, error) {
	const body = "#!/bin/sh\n# web stand-in: busybox httpd on port $1, in the foreground\n" +
		"echo \"web stand-in: httpd on port $1 as uid $(id -u)\"\n" +
		"httpd -f -v -p \"$1\" -h /www &\ntrap 'kill $!; exit 0' TERM INT\nwait\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "bin/web", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return io.NopCloser(&buf), nil
}
