package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/seccomp"
)

func seccompDefault(caps []string) *specs.LinuxSeccomp { return seccomp.Default(caps) }
