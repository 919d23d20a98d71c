package policies

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Shadow names a candidate policy that the engine evaluates beside the
// live one on every decision, off the request path, and never enforces:
// what it would have decided differently goes to the decision log and to
// ShadowStats. A directory laid out like rego/, or a bundle.
type Shadow struct {
	Dir    string
	Bundle *Bundle
}

// shadowQueue bounds the decisions waiting for their shadow evaluation (a
// variable for tests). A decision that finds it full is not shadowed, and
// is counted.
var shadowQueue = 4096

// shadow is the engine's running shadow evaluation.
type shadow struct {
	origin string
	read   func() (*sources, error)
	set    atomic.Pointer[policySet]
	jobs   chan shadowJob
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	idle    sync.Cond // signalled when pending falls to 0
	pending int       // decisions queued or being evaluated
}

type shadowJob struct {
	in   Input
	live Decision
}

// ShadowDifference is a pair of reasons the live and shadow policies gave
// for the same input at one decision point.
type ShadowDifference struct {
	Point        Point
	LiveReason   string
	ShadowReason string
}

// ShadowStats count what shadow evaluation has done since the engine
// started: the decisions evaluated, those the shadow decided differently
// (by point and reason pair), those dropped because the queue was full,
// and those the shadow policy failed to decide.
type ShadowStats struct {
	Revision    string // the shadow policy's, "" when shadow is off
	Evaluated   uint64
	Dropped     uint64
	Failed      uint64
	Differences map[ShadowDifference]uint64
}

// shadowCounts are the engine's ShadowStats counters; they survive turning
// shadow off and on.
type shadowCounts struct {
	evaluated, dropped, failed atomic.Uint64
	mu                         sync.Mutex
	diffs                      map[ShadowDifference]uint64
}

// SetShadow starts evaluating sh beside the live policies, replacing any
// shadow already running; nil turns shadow evaluation off. A candidate
// that does not load is refused with its error and the previous shadow
// (or none) stays. It needs no restart, and decisions go on meanwhile.
func (e *Engine) SetShadow(ctx context.Context, sh *Shadow) error {
	e.shadowMu.Lock()
	defer e.shadowMu.Unlock()
	if sh == nil {
		e.stopShadow()
		return nil
	}
	next := &shadow{stop: make(chan struct{}), done: make(chan struct{}), jobs: make(chan shadowJob, shadowQueue)}
	next.idle.L = &next.mu
	switch {
	case sh.Bundle != nil && sh.Dir != "":
		return errors.New("policies: shadow: a directory and a bundle are both configured; choose one")
	case sh.Bundle != nil:
		if _, err := sh.Bundle.verification(); err != nil {
			return fmt.Errorf("policies: shadow: %w", err)
		}
		r := &bundleReader{Bundle: *sh.Bundle}
		next.origin, next.read = sh.Bundle.Path, r.read
	case sh.Dir != "":
		info, err := os.Stat(sh.Dir)
		if err != nil {
			return fmt.Errorf("policies: shadow: %w", err)
		}
		if !info.IsDir() {
			return fmt.Errorf("policies: shadow: %s is not a directory", sh.Dir)
		}
		fsys := os.DirFS(sh.Dir)
		next.origin, next.read = sh.Dir, func() (*sources, error) { return readSources(fsys, false) }
	default:
		return errors.New("policies: shadow: neither a directory nor a bundle")
	}
	src, err := next.read()
	if err != nil {
		return fmt.Errorf("policies: shadow: %w", err)
	}
	set, err := load(ctx, src)
	if err != nil {
		return fmt.Errorf("policies: shadow: load %s: %w", next.origin, err)
	}
	next.set.Store(set)
	e.stopShadow()
	go e.runShadow(next)
	e.shadow.Store(next)
	e.logger.Info("shadow policies on", "source", next.origin, "shadow_rev", set.revision)
	return nil
}

// ReloadShadow reads the shadow policies again and swaps them in when they
// changed and load; a candidate that does not load keeps the previous
// shadow and is returned. Without shadow evaluation it does nothing.
func (e *Engine) ReloadShadow(ctx context.Context) error {
	e.shadowMu.Lock()
	defer e.shadowMu.Unlock()
	sh := e.shadow.Load()
	if sh == nil {
		return nil
	}
	src, err := sh.read()
	if err != nil {
		return fmt.Errorf("policies: shadow: %w", err)
	}
	old := sh.set.Load()
	if src.revision == old.revision || src.revision == e.shadowFailed {
		return nil
	}
	set, err := load(ctx, src)
	if err != nil {
		e.shadowFailed = src.revision
		e.logger.Error("shadow policy reload failed", "source", sh.origin, "shadow_rev", src.revision, "error", err)
		return fmt.Errorf("policies: shadow: reload %s: %w", sh.origin, err)
	}
	e.shadowFailed = ""
	sh.set.Store(set)
	e.logger.Info("shadow policies reloaded", "source", sh.origin, "shadow_rev", set.revision, "previous_rev", old.revision)
	return nil
}

// stopShadow ends the running shadow, if any, once its queue is drained.
// The caller holds shadowMu.
func (e *Engine) stopShadow() {
	sh := e.shadow.Swap(nil)
	if sh == nil {
		return
	}
	close(sh.stop)
	<-sh.done
	e.logger.Info("shadow policies off", "source", sh.origin)
}

// offerShadow queues a live decision for its shadow evaluation without
// waiting: a full queue drops it, counted.
func (e *Engine) offerShadow(in Input, live Decision) {
	sh := e.shadow.Load()
	if sh == nil {
		return
	}
	sh.add(1)
	select {
	case sh.jobs <- shadowJob{in: in, live: live}:
	default:
		sh.add(-1)
		e.shadowCounts.dropped.Add(1)
	}
}

func (e *Engine) runShadow(sh *shadow) {
	defer close(sh.done)
	for {
		select {
		case job := <-sh.jobs:
			e.evaluateShadow(sh.set.Load(), job)
			sh.add(-1)
		case <-sh.stop:
			for {
				select {
				case job := <-sh.jobs:
					e.evaluateShadow(sh.set.Load(), job)
					sh.add(-1)
				default:
					return
				}
			}
		}
	}
}

// evaluateShadow decides job's input with the shadow set, as Decide would
// have with it live: the facts the engine owns are completed from the
// shadow's own data (its allow-list, its sensitive paths).
func (e *Engine) evaluateShadow(set *policySet, job shadowJob) {
	in := job.in
	in.Client.AllowListed, in.Request.PathClass = false, ""
	e.complete(set, &in)
	start := time.Now()
	d, err := e.evaluate(context.Background(), set, &in, nil)
	took := time.Since(start)
	e.shadowCounts.evaluated.Add(1)
	if err != nil {
		e.shadowCounts.failed.Add(1)
		e.logger.Warn("shadow policy evaluation failed", "point", string(in.Point), "shadow_rev", set.revision, "error", err)
		d = failure(set.revision)
	}
	if sameOutcome(job.live, d) {
		return
	}
	c := &e.shadowCounts
	c.mu.Lock()
	if c.diffs == nil {
		c.diffs = map[ShadowDifference]uint64{}
	}
	c.diffs[ShadowDifference{Point: in.Point, LiveReason: job.live.Reason, ShadowReason: d.Reason}]++
	c.mu.Unlock()
	if e.log != nil {
		e.writeShadowDecision(in, job.live, d, took)
	}
}

// sameOutcome reports whether two decisions would have the gateway act
// alike: allow, reason, step-up methods, lock and notifications.
func sameOutcome(a, b Decision) bool {
	return a.Allow == b.Allow && a.Reason == b.Reason && a.Lock == b.Lock &&
		slices.Equal(a.StepUp, b.StepUp) && slices.Equal(a.Notify, b.Notify)
}

// ShadowStats returns the shadow evaluation counters.
func (e *Engine) ShadowStats() ShadowStats {
	c := &e.shadowCounts
	st := ShadowStats{Evaluated: c.evaluated.Load(), Dropped: c.dropped.Load(), Failed: c.failed.Load()}
	if sh := e.shadow.Load(); sh != nil {
		st.Revision = sh.set.Load().revision
	}
	c.mu.Lock()
	st.Differences = make(map[ShadowDifference]uint64, len(c.diffs))
	for k, v := range c.diffs {
		st.Differences[k] = v
	}
	c.mu.Unlock()
	return st
}

// WaitShadow blocks until every decision queued for shadow evaluation so
// far has been evaluated.
func (e *Engine) WaitShadow() {
	sh := e.shadow.Load()
	if sh == nil {
		return
	}
	sh.mu.Lock()
	for sh.pending > 0 {
		sh.idle.Wait()
	}
	sh.mu.Unlock()
}

// add counts n more decisions pending evaluation (negative when done).
func (sh *shadow) add(n int) {
	sh.mu.Lock()
	sh.pending += n
	if sh.pending == 0 {
		sh.idle.Broadcast()
	}
	sh.mu.Unlock()
}
