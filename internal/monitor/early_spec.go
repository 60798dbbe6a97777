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

// StartEarlyIn starts the first process of container id before its spec
// arrives, in the namespaces and cgroups o names (CgroupsPath,
// Namespaces, Sealed: what the spec will say), so that the process's
// start overlaps with the end of the container's creation: the engine
// sends them to a CRI container's spare as the creation begins. SetSpec
// then gives it the spec's limits, and runtime.Create takes it if the spec
// matches (else closes it). Sent again for the same container and shape
// (the pod's spare is sent it ahead of the create, and the create sends
// its own), it keeps the process; for another, it starts one anew.
func (p *Prepared) StartEarlyIn(rt *runtime.Runtime, id string, o runtime.EarlyOptions) {
	if p == nil || p.NetNS != nil || p.Network != nil {
		return
	}
	if p.Early != nil {
		if p.EarlyID == id && p.Early.rt.Suits(id, o) {
			return // started for this very shape (sent again by the create)
		}
		p.Early.Close() // for a shape or container the create did not confirm
		p.Early = nil
	}
	early, err := startEarly(func(eo runtime.EarlyOptions) (*runtime.Early, error) {
		eo.CgroupsPath, eo.Namespaces, eo.Sealed = o.CgroupsPath, o.Namespaces, o.Sealed
		return rt.StartEarly(id, eo)
	})
	if err != nil {
		return
	}
	trace.Mark("monitor: early process ahead of the spec")
	p.Early, p.EarlyID = early, id
}

// DropEarlyFor closes the early process started ahead for container id
// (StartEarlyIn) if spec, arrived since, does not allow one
// (runtime.SuitsEarly).
func (p *Prepared) DropEarlyFor(id string, spec *specs.Spec) {
	if p != nil && p.Early != nil && p.EarlyID == id && !runtime.SuitsEarly(spec) {
		p.Early.Close()
		p.Early = nil
	}
}
