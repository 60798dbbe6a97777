package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"hull/internal/engine"
)

// miscFlags are run/create's remaining docker flags: a few that map onto
// container options, and those hull accepts only with the value that
// means what hull does (docker's defaults), refusing others with why.
type miscFlags struct {
	domainname         string
	expose             []string
	memorySwappiness   int64
	quiet              bool
	contentTrustOff    bool
	runtime, volDriver string
	storageOpts, gpus  []string
	useAPISocket       bool
	blkioWeightDevices []string
}

func (f *miscFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.domainname, "domainname", "", "the container's NIS domain name")
	fs.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports (80, 8000-8010/udp)")
	fs.Int64Var(&f.memorySwappiness, "memory-swappiness", -1, "tune the container's swappiness (0 to 100; cgroup v1)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "suppress the pull output")
	fs.BoolVar(&f.contentTrustOff, "disable-content-trust", true, "skip image verification (hull does not verify signatures)")
	fs.StringVar(&f.runtime, "runtime", "", "runtime to use for this container (hull's own)")
	fs.StringVar(&f.volDriver, "volume-driver", "", "volume driver for the container (local)")
	fs.StringArrayVar(&f.storageOpts, "storage-opt", nil, "storage driver options (not supported)")
	fs.StringArrayVar(&f.gpus, "gpus", nil, "GPU devices to add (not supported)")
	fs.BoolVar(&f.useAPISocket, "use-api-socket", false, "bind-mount the engine's API socket (hull has none)")
	fs.StringArrayVar(&f.blkioWeightDevices, "blkio-weight-device", nil, "block IO weight of a device (not supported)")
}

// apply sets c's options from the flags; errors name the flag.
func (f *miscFlags) apply(c *engine.Config) error {
	o := &c.Spec
	o.Domainname = f.domainname
	for _, e := range f.expose {
		ports, err := engine.ParseExpose(e)
		if err != nil {
			return err
		}
		o.Expose = append(o.Expose, ports...)
	}
	if f.memorySwappiness != -1 {
		v := f.memorySwappiness
		o.MemorySwappiness = &v
	}
	switch {
	case !f.contentTrustOff:
		return errors.New("--disable-content-trust=false: hull does not verify image signatures; pull by digest (IMAGE@sha256:...) to pin content")
	case f.runtime != "" && f.runtime != "hull":
		return fmt.Errorf("--runtime %q: hull runs containers with its own runtime (hull); for another OCI runtime use it directly, or podman --runtime", f.runtime)
	case f.volDriver != "" && f.volDriver != "local":
		return fmt.Errorf("--volume-driver %q: hull has the local volume driver only", f.volDriver)
	case len(f.storageOpts) > 0:
		return errors.New("--storage-opt: hull's snapshotters (overlay, copy) take no per-container options such as size=")
	case len(f.gpus) > 0:
		return errors.New("--gpus: hull has no GPU support; pass device nodes with --device")
	case f.useAPISocket:
		return errors.New("--use-api-socket: hull is daemonless and has no API socket to mount")
	case len(f.blkioWeightDevices) > 0:
		return errors.New("--blkio-weight-device: per-device weights are not supported; use --device-read-bps and friends")
	}
	return nil
}
