package cri

import (
	"context"
	"sync"
	"time"

	"hull/internal/engine"
	"hull/internal/spec"
)

// sparePool is hull-cri's small pool of warm spare monitors (engine
// NewSpare: `hull monitor -`, its Go runtime started and its database
// open), so that StartContainer does not start a monitor from nothing
// (docs/cri.md "Benchmark"). Each container takes its own spare:
//
//   - CreateContainer takes an idle spare from the pool (refilled once
//     that spare is started or closed: see take) and binds it to the
//     container: Create sends it the
//     container's spec and record (engine.CreateOptions.Spare), and it
//     starts the container's process in the pod's namespaces and opens
//     its log and attach socket while the container is CREATED (engine
//     NewSpare).
//   - StartContainer claims the container's spare and hands it to Start
//     (engine.StartOptions.Spare), which tells it the container's ID: it
//     becomes the container's monitor, with the spec it already has.
//   - A container removed before it started (RemoveContainer, or its
//     sandbox stopped or removed), or whose resources are updated (its
//     spare's spec would be stale), has its spare closed: it reads
//     end-of-file and ends what it prepared (docs/prepared.md).
//   - hull-cri killed: every spare reads end-of-file and ends; the next
//     server starts a created container with a plain monitor (its
//     config.json is written at create, as without a spare).
//
// A nil pool (Options.Spares 0: `hull kube`'s in-process server, tests)
// binds nothing: every call then goes as without it.
type sparePool struct {
	eng  *engine.Engine
	size int

	mu       sync.Mutex
	idle     []*engine.Spare
	starting int       // spares being started by fill
	lastTake time.Time // see target
	trim     *time.Timer
	bound    map[string]boundSpare // container ID -> its spare
	podNext  map[string]podSpare   // pod ID -> the spare of its next container (bindPod)
	closed   bool
	wg       sync.WaitGroup // fill goroutines, closes
}

// boundSpare is a spare sent a container's spec, and the container's pod.
type boundSpare struct {
	spare *engine.Spare
	pod   string
}

// podSpare is a spare bound to a pod's next container, and the ID chosen
// for that container.
type podSpare struct {
	spare *engine.Spare
	id    string
}

// newSparePool is a pool of size spares over eng (nil if size is 0). It
// starts none before fill.
func newSparePool(eng *engine.Engine, size int) *sparePool {
	if size <= 0 {
		return nil
	}
	return &sparePool{eng: eng, size: size, bound: map[string]boundSpare{}, podNext: map[string]podSpare{}}
}

// burstWindow is how long after a spare was taken the pool keeps one
// spare more than its size (target): pods made one after another (a
// burst: a node starting its pods, a Deployment scaled up, critest) then
// each find a spare that has booted, where one spare, refilled only once
// the last container started, was still booting when the next pod came
// at once. Past the window the extra idle spare ends (trimIdle): a quiet
// node keeps size spares, each an idle hull process (about 12 MB).
const burstWindow = 2 * time.Second

// target is how many idle spares the pool keeps now (see burstWindow);
// a pool of size 0 (GiveSpare's) keeps none, making nothing.
func (p *sparePool) target() int {
	if p.size > 0 && !p.lastTake.IsZero() && time.Since(p.lastTake) < burstWindow {
		return p.size + 1
	}
	return p.size
}

// trimIdle ends the idle spares beyond the pool's size once a burst is
// over (see burstWindow).
func (p *sparePool) trimIdle() {
	p.mu.Lock()
	var extra []*engine.Spare
	if !p.closed && time.Since(p.lastTake) >= burstWindow {
		for len(p.idle) > p.size {
			n := len(p.idle) - 1
			extra = append(extra, p.idle[n])
			p.idle = p.idle[:n]
		}
	}
	p.mu.Unlock()
	closeAll(extra)
}

// fill starts, in the background, the spares that make the pool whole.
func (p *sparePool) fill() { p.fillUpTo(-1) }

// fillUpTo is fill starting at most n spares (n < 0: no bound).
func (p *sparePool) fillUpTo(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for ; !p.closed && len(p.idle)+p.starting < p.target() && n != 0; p.starting++ {
		n--
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			s := p.eng.NewSpare(true)
			p.mu.Lock()
			p.starting--
			if s != nil && !p.closed {
				p.idle = append(p.idle, s)
				s = nil
			}
			p.mu.Unlock()
			s.Close() // the pool closed meanwhile
		}()
	}
}

// take is an idle spare for a pod or container being made (nil: none
// ready, the container goes without). The pool is refilled once the spare
// is done with (StartContainer's answer, or closed unused: drop), not
// now: a spare's start (a hull process, its Go runtime and database, tens
// of milliseconds of processor time) would compete with the bound spare's
// own work for the container's start, which follows at once. Only when it
// leaves no idle spare for the next pod does one boot at once; a burst
// keeps one more (burstWindow), so that the next pod has a spare that
// booted while this one's container started.
func (p *sparePool) take() *engine.Spare {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	s := p.idleLocked()
	p.lastTake = time.Now()
	if p.trim == nil {
		p.trim = time.AfterFunc(burstWindow, p.trimIdle)
	} else {
		p.trim.Reset(burstWindow)
	}
	idle := len(p.idle)
	p.mu.Unlock()
	if s == nil || idle == 0 {
		p.fillUpTo(1) // none left for the next pod: one boots now
	}
	return s
}

// bindPod binds an idle spare to pod's next container, as RunPodSandbox
// ends: it chooses the container's ID and sends the spare what the
// container's first process needs (engine PrepareSpare, with o, the
// container's namespace modes), so that the process is waiting in the
// pod's namespaces, its Go runtime started, by the time CreateContainer
// comes (kubelet pulls the image first; critest asks at once). It is
// called once the pod's namespaces are pinned, before its network is
// attached (engine StartPodPinned). The pool is refilled once that spare
// is used or closed (take).
func (p *sparePool) bindPod(ctx context.Context, pod *engine.Pod, o spec.Options) {
	if p == nil || pod == nil {
		return
	}
	p.mu.Lock()
	s := p.idleLocked()
	p.mu.Unlock()
	if s == nil {
		return
	}
	id := engine.NewID()
	p.eng.PrepareSpare(ctx, s, id, pod, o)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, taken := p.podNext[pod.ID]; p.closed || taken {
		go s.Close()
		return
	}
	p.podNext[pod.ID] = podSpare{spare: s, id: id}
}

// takeForPod is the spare bound to pod's next container (bindPod) and the
// ID chosen for it, which the caller then owns; nil and "" if none.
func (p *sparePool) takeForPod(pod string) (*engine.Spare, string) {
	if p == nil {
		return nil, ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ps, ok := p.podNext[pod]
	if !ok {
		return nil, ""
	}
	delete(p.podNext, pod)
	return ps.spare, ps.id
}

// idleLocked takes an idle spare that is still alive (nil: none).
func (p *sparePool) idleLocked() *engine.Spare {
	var s *engine.Spare
	for len(p.idle) > 0 && s == nil {
		s, p.idle = p.idle[0], p.idle[1:]
		if s.Exited() { // died idle: not usable
			go s.Close()
			s = nil
		}
	}
	return s
}

// createContainer is engine Create with a spare of the pool's, if one is
// ready, bound to the container it made (closed if the creation failed).
func (s *Server) createContainer(ctx context.Context, co engine.CreateOptions, pod string) (*engine.Container, error) {
	if co.Spare == nil {
		co.Spare = s.spares.take()
	}
	c, err := s.eng.Create(ctx, co)
	if co.Spare == nil {
		return c, err
	}
	if err != nil || !s.spares.bind(c.ID, pod, co.Spare) {
		co.Spare.Close()
	}
	return c, err
}

// bind records spare as container id's, of pod; false once the pool is
// closed.
func (p *sparePool) bind(id, pod string, spare *engine.Spare) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.bound[id] = boundSpare{spare: spare, pod: pod}
	return true
}

// claim is container id's spare, for Start, which then owns it (nil:
// none; Start starts a monitor).
func (p *sparePool) claim(id string) *engine.Spare {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.bound[id]
	if !ok {
		return nil
	}
	delete(p.bound, id)
	return b.spare
}

// boundPid is the pid of container id's spare (0: none).
func (p *sparePool) boundPid(id string) int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if b, ok := p.bound[id]; ok {
		return b.spare.Pid()
	}
	return 0
}

// drop closes container id's spare, if it has one, and waits for it to
// end what it prepared (its log, its attach socket), before the
// container's removal.
func (p *sparePool) drop(id string) {
	if p == nil {
		return
	}
	p.eng.AwaitCreation(id) // it may still be sending the spare the spec
	if s := p.claim(id); s != nil {
		s.Close()
		p.fill()
	}
}

// dropPodWhile closes the spares of pod's containers (dropPod) while
// during runs: StopPodSandbox stops the pod meanwhile (a spare's end, its
// early process killed and its cgroups removed, takes milliseconds).
func (p *sparePool) dropPodWhile(pod string, during func() error) error {
	done := make(chan struct{})
	go func() { p.dropPod(pod); close(done) }()
	err := during()
	<-done
	return err
}

// dropPod closes the spares of pod's containers (see drop).
func (p *sparePool) dropPod(pod string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	var ss []*engine.Spare
	var ids []string
	for id, b := range p.bound {
		if b.pod == pod {
			ss = append(ss, b.spare)
			ids = append(ids, id)
			delete(p.bound, id)
		}
	}
	if ps, ok := p.podNext[pod]; ok {
		ss = append(ss, ps.spare)
		delete(p.podNext, pod)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.eng.AwaitCreation(id) // see drop
	}
	closeAll(ss)
	if len(ss) > 0 {
		p.fill()
	}
}

// close closes every spare, idle or bound, and waits for them (the
// server stops).
func (p *sparePool) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	if p.trim != nil {
		p.trim.Stop()
	}
	ss := p.idle
	p.idle = nil
	for id, b := range p.bound {
		ss = append(ss, b.spare)
		delete(p.bound, id)
	}
	for pod, ps := range p.podNext {
		ss = append(ss, ps.spare)
		delete(p.podNext, pod)
	}
	p.mu.Unlock()
	closeAll(ss)
	p.wg.Wait()
}

// closeAll closes spares side by side: each waits for its process.
func closeAll(ss []*engine.Spare) {
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	wg.Wait()
}
