package policies

import "time"

// An Observer is told of every decision and every reload, for metrics. It
// runs on the deciding goroutine, after the decision is made, so it must
// be quick and must not block: counters, not I/O.
type Observer interface {
	// Decided is called once per decision, with its input (as completed
	// by the engine, a copy) and the time the evaluation took. Decisions abandoned
	// because the request went away are not reported. The input's pointers
	// must not be retained.
	Decided(in Input, d Decision, took time.Duration)
	// Reloaded is called after each attempt to load changed policies:
	// ok is false when they were refused and the previous ones kept
	// serving.
	Reloaded(ok bool)
}

// reloaded reports a reload attempt to the observer, if any.
func (e *Engine) reloaded(ok bool) {
	if e.observer != nil {
		e.observer.Reloaded(ok)
	}
}
