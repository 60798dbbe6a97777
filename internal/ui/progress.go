package ui

import (
	"fmt"
	"io"
	"sync"

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
	state image.LayerState
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
		lb = &layerBar{state: state}
		stateOf := func(decor.Statistics) string {
			p.mu.Lock()
			defer p.mu.Unlock()
			return string(lb.state)
		}
		lb.bar = p.p.AddBar(total,
			mpb.PrependDecorators(decor.Name(id+": "), decor.Any(stateOf, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Counters(decor.SizeB1000(0), "% .1f / % .1f", decor.WCSyncSpace),
				decor.OnComplete(decor.AverageSpeed(decor.SizeB1000(0), "% .1f", decor.WCSyncSpace), "")),
		)
		p.bars[id] = lb
		p.order = append(p.order, id)
	}
	lb.state = state
	if total > 0 {
		lb.bar.SetTotal(total, false)
	}
	lb.bar.SetCurrent(current)
	switch state {
	case image.StateDone, image.StateExists, image.StatePushed, image.StateMounted:
		lb.bar.SetTotal(-1, true)
	}
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
