package ui

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"hull/internal/image"
)

// Progress shows per-layer pull or push progress: one bar per layer on a
// terminal (bytes, rate, state), or a plain line per state change otherwise.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	p     *mpb.Progress
	bars  map[string]*layerBar
	order []string
	seen  map[string]image.LayerState
}

type layerBar struct {
	bar   *mpb.Bar
	state atomic.Value // image.LayerState; read by the render goroutine
}

// NewProgress renders to w; tty selects bars.
func NewProgress(w io.Writer, tty bool) *Progress {
	p := &Progress{w: w, bars: map[string]*layerBar{}, seen: map[string]image.LayerState{}}
	if tty {
		p.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	}
	return p
}

// Update implements image.Progress.
func (p *Progress) Update(id string, state image.LayerState, current, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p == nil {
		if p.seen[id] == state {
			return
		}
		p.seen[id] = state
		if state == image.StateDownloading || state == image.StatePushing && current > 0 {
			return // one line when a download starts is enough
		}
		fmt.Fprintf(p.w, "%s: %s\n", id, state)
		return
	}
	lb := p.bars[id]
	if lb == nil {
		lb = &layerBar{}
		lb.state.Store(state)
		// The render goroutine calls this while Update may be waiting on
		// it inside a bar method: it must not take p.mu.
		stateOf := func(decor.Statistics) string { return string(lb.state.Load().(image.LayerState)) }
		lb.bar = p.p.AddBar(total,
			mpb.PrependDecorators(decor.Name(id+": "), decor.Any(stateOf, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Counters(decor.SizeB1000(0), "% .1f / % .1f", decor.WCSyncSpace),
				decor.OnComplete(decor.AverageSpeed(decor.SizeB1000(0), "% .1f", decor.WCSyncSpace), "")),
		)
		p.bars[id] = lb
		p.order = append(p.order, id)
	}
	lb.state.Store(state)
	switch state {
	case image.StateDone, image.StateExists, image.StatePushed, image.StateMounted:
		lb.bar.SetCurrent(current)
		lb.bar.SetTotal(-1, true)
		return
	}
	if total > 0 {
		lb.bar.SetTotal(total, false)
		// A bar completes when it reaches its total and then stops
		// redrawing; hold it one byte short until the layer is done so the
		// later states (verifying, extracting) still show.
		current = min(current, total-1)
	}
	lb.bar.SetCurrent(current)
}

// Done waits for the bars to finish drawing.
func (p *Progress) Done() {
	if p.p == nil {
		return
	}
	p.mu.Lock()
	for _, lb := range p.bars {
		if !lb.bar.Completed() {
			lb.bar.Abort(false)
		}
	}
	p.mu.Unlock()
	p.p.Wait()
}
