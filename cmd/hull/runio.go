package main

import (
	"github.com/spf13/pflag"

	"hull/internal/engine"
)

// ioFlags are run's and create's flags for mounts, attaching and logging.
type ioFlags struct {
	mounts, volumesFrom []string
}

func (f *ioFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount: type=bind|volume|tmpfs,src=,dst=[,readonly,...]")
	fs.StringArrayVar(&f.volumesFrom, "volumes-from", nil, "mount the volumes of a container: CONTAINER[:ro|rw]")
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
	return nil
}
