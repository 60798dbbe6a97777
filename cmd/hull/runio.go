package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"hull/internal/config"
	"hull/internal/engine"
)

// ioFlags are run's and create's flags for mounts, attaching and logging.
type ioFlags struct {
	mounts, volumesFrom []string
	attach              []string
	cidFile             string
	sigProxy            bool   // run only
	detachKeys          string // run only
	detached            bool   // run -d, set by run
	logDriver           string
	logOpts             []string
	logDefault          config.Logging // hull.toml's [logging], set by createContainer
}

func (f *ioFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount: type=bind|volume|tmpfs,src=,dst=[,readonly,...]")
	fs.StringArrayVar(&f.volumesFrom, "volumes-from", nil, "mount the volumes of a container: CONTAINER[:ro|rw]")
	fs.StringArrayVarP(&f.attach, "attach", "a", nil, "attach to STDIN, STDOUT or STDERR (repeatable; default stdout and stderr)")
	fs.StringVar(&f.cidFile, "cidfile", "", "write the container ID to the file (which must not exist)")
	fs.StringVar(&f.logDriver, "log-driver", "", "logging driver: k8s-file (default: hull's CRI-format log), json-file, local (the same file) or none")
	fs.StringArrayVar(&f.logOpts, "log-opt", nil, "log driver option: max-size=10m, max-file=3, compress=false")
	f.sigProxy, f.detachKeys = true, "ctrl-p,ctrl-q"
}

// registerRun adds the flags only run has.
func (f *ioFlags) registerRun(fs *pflag.FlagSet) {
	fs.BoolVar(&f.sigProxy, "sig-proxy", true, "forward received signals to the container (without a terminal)")
	fs.StringVar(&f.detachKeys, "detach-keys", "ctrl-p,ctrl-q", "key sequence that detaches, leaving the container running")
}

// ioConfig maps the ioFlags into c.
func (f *ioFlags) ioConfig(c *engine.Config) error {
	for _, s := range f.mounts {
		m, err := engine.ParseMount(s)
		if err != nil {
			return err
		}
		c.Spec.Mounts = append(c.Spec.Mounts, m)
	}
	for _, s := range f.volumesFrom {
		v, err := engine.ParseVolumesFrom(s)
		if err != nil {
			return err
		}
		c.VolumesFrom = append(c.VolumesFrom, v)
	}
	if _, err := engine.ParseAttach(f.attach); err != nil {
		return err
	}
	if f.detached && len(f.attach) > 0 {
		return errors.New("conflicting options: -a and -d (a detached container has nothing attached)")
	}
	if _, err := engine.ParseDetachKeys(f.detachKeys); err != nil {
		return fmt.Errorf("--detach-keys: %w", err)
	}
	// hull.toml's [logging] applies to a container without --log-driver,
	// or with the same driver (as docker's daemon log-opts).
	driver, defaults := f.logDriver, map[string]string(nil)
	defDriver := f.logDefault.Driver
	if defDriver == "" {
		defDriver = engine.DefaultLogDriver
	}
	if driver == "" || driver == defDriver {
		driver, defaults = f.logDefault.Driver, f.logDefault.Opts
	}
	if driver != "" || len(defaults) > 0 || len(f.logOpts) > 0 {
		lc, err := engine.ParseLogConfig(driver, f.logOpts, defaults)
		if err != nil {
			if f.logDriver == "" && len(f.logOpts) == 0 {
				err = fmt.Errorf("hull.toml [logging]: %w", err)
			}
			return err
		}
		c.LogConfig = lc
	}
	return nil
}

// attachOptions are how a foreground run or start -a attaches.
type attachOptions struct {
	streams    engine.Streams
	sigProxy   bool
	detachKeys string
}

// attachOptions are the ioFlags' attachment: stdin with -i.
func (f *ioFlags) attachOptions(interactive bool) attachOptions {
	s, _ := engine.ParseAttach(f.attach) // checked by ioConfig
	s.Stdin = interactive
	return attachOptions{streams: s, sigProxy: f.sigProxy, detachKeys: f.detachKeys}
}

// engineOptions are the engine's AttachOptions for the command's streams;
// a stream not attached is discarded.
func (a attachOptions) engineOptions(stdin io.Reader, stdout, stderr io.Writer) engine.AttachOptions {
	o := engine.AttachOptions{DetachKeys: a.detachKeys}
	if a.streams.Stdin {
		o.Stdin = stdin
	}
	if a.streams.Stdout {
		o.Stdout = stdout
	}
	if a.streams.Stderr {
		o.Stderr = stderr
	}
	return o
}

// cidFile is run's and create's --cidfile: made (empty) before the
// container is created, as docker's CLI does, so an existing file (a
// container that may still run) stops the run; the ID is written once
// the container exists, and the file removed if it never does.
type cidFile struct {
	path string
	f    *os.File
}

func openCIDFile(path string) (*cidFile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", path)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to create the container ID file: %w", err)
	}
	return &cidFile{path: path, f: f}, nil
}

// write records id, or removes the file when the creation failed ("").
func (c *cidFile) write(id string) error {
	if c == nil {
		return nil
	}
	_, err := c.f.WriteString(id)
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if id == "" || err != nil {
		os.Remove(c.path)
	}
	if err != nil {
		return fmt.Errorf("failed to write the container ID to %s: %w", c.path, err)
	}
	return nil
}
