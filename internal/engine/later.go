package engine

import "time"

// afterAnswer is how long the work a CRI call leaves to the background
// (a deferred creation's rest, a deferred removal's) waits before it
// starts unasked; whoever needs it done starts it at once (later.wait).
//
// Started with the answer, that work took the second of a two-processor
// node's processors while the answer was still being written and read:
// the client, woken by the answer, found both processors busy and waited
// for one. CreateContainer as critest measures it was so three times its
// handler's time. Half a millisecond is past the answer's delivery
// (critest's CreateContainer fell from 1.5 to 1.0 ms with it) and, where
// the next call needs the work (StartContainer after CreateContainer),
// that call starts it itself.
const afterAnswer = 500 * time.Microsecond

// later is work started afterAnswer from now, or when waited for if that
// is sooner.
type later struct {
	timer *time.Timer // runs it; stopped by whoever starts it first
	run   func()
	done  chan struct{}
}

// startLater runs f in its own goroutine afterAnswer from now, or when
// the returned later is waited for.
func startLater(f func()) *later {
	l := &later{done: make(chan struct{})}
	l.run = func() {
		defer close(l.done)
		f()
	}
	l.timer = time.AfterFunc(afterAnswer, l.run)
	return l
}

// now starts the work unless it has started.
func (l *later) now() {
	if l.timer.Stop() {
		go l.run()
	}
}

// wait starts the work unless it has started, and waits for its end.
func (l *later) wait() {
	l.now()
	<-l.done
}
