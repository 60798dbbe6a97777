package monitor

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/runtime"
	"hull/internal/trace"
)

// StartEarlyFor starts, for a spare monitor sent container id's spec long
// before the id itself (a CRI container, between its creation and its
// start), the container's first process as the spec says: in the pod's
// namespaces joined by path, in its cgroups with its limits
// (runtime.StartEarlyFor), its output into pipes as StartEarly's. Nothing
// is done if a process or a network namespace was prepared already, or
// the spec does not suit one: the start then makes it as usual. Call it
// after SetSpec.
func (p *Prepared) StartEarlyFor(rt *runtime.Runtime, id string, spec *specs.Spec) {
	if p == nil || p.Early != nil || p.NetNS != nil || p.ID != id {
		return
	}
	early, err := startEarly(func(o runtime.EarlyOptions) (*runtime.Early, error) {
		return rt.StartEarlyFor(id, spec, o)
	})
	if err != nil {
		return
	}
	trace.Mark("monitor: early process for the spec")
	p.Early, p.EarlyID = early, id
}
