package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AnyOf returns an Invalidator that carries every invalidation over each
// of invs, independent channels to the same replicas (Redis pub/sub and
// PostgreSQL NOTIFY), so that a replica that loses one of them keeps
// trusting its cache over the others.
//
// Publish publishes on every channel at once and waits for all of them (or
// for ctx): an error, the channels' joined, means some replicas may not
// have been told. Listen keeps every channel subscribed, each resubscribing
// by itself with the same backoff as Manager.Watch; it calls ready once the
// first one is subscribed and drop for what any of them receives (an
// invalidation comes once per channel: dropping twice is harmless), one at
// a time. It returns as soon as no channel is subscribed any more, as an
// invalidation published from then on would reach none, or when every
// channel failed its first attempt before any subscribed. Each channel's
// loss and return is logged to log (nil: not logged).
//
// AnyOf of one Invalidator is that one, and of none nil.
func AnyOf(log *slog.Logger, invs ...Invalidator) Invalidator {
	switch len(invs) {
	case 0:
		return nil
	case 1:
		return invs[0]
	}
	return &anyOf{invs: slices.Clone(invs), log: log}
}

// anyOf is AnyOf's Invalidator.
type anyOf struct {
	invs []Invalidator
	log  *slog.Logger // nil: nothing is logged
}

// Publish publishes inv on every channel concurrently.
func (a *anyOf) Publish(ctx context.Context, inv Invalidation) error {
	results := make(chan error, len(a.invs))
	for _, c := range a.invs {
		go func() { results <- c.Publish(ctx, inv) }()
	}
	var errs []error
	for range a.invs {
		select {
		case err := <-results:
			errs = append(errs, err)
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("session: publish: %w", ctx.Err()))...)
		}
	}
	return errors.Join(errs...)
}

// Listen keeps every channel subscribed until none is (see AnyOf).
func (a *anyOf) Listen(ctx context.Context, ready func(), drop func(Invalidation)) error {
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &fanIn{ready: ready, drop: drop, errs: make([]error, len(a.invs)), over: make(chan struct{})}
	var wg sync.WaitGroup
	for i, c := range a.invs {
		wg.Go(func() { a.keep(inner, f, i, c) })
	}
	select {
	case <-ctx.Done():
		f.end(nil)
		cancel()
		wg.Wait()
		return ctx.Err()
	case <-f.over:
		// The channels still trying end with inner, soon, and call
		// nothing more: Listen does not wait for them, so that the
		// Manager stops trusting its cache at once.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return f.err
	}
}

// keep subscribes channel i until Listen is over, with a backoff between
// attempts from listenBackoffMin doubling to listenBackoffMax, back to the
// least after a subscription.
func (a *anyOf) keep(ctx context.Context, f *fanIn, i int, c Invalidator) {
	name := channelName(c)
	backoff := listenBackoffMin
	for first := true; ; first = false {
		var subscribed atomic.Bool
		err := c.Listen(ctx, func() {
			// Counted once per attempt, however often it is called.
			if !subscribed.Load() && f.subscribe() {
				subscribed.Store(true)
				a.note(ctx, slog.LevelInfo, "session invalidation channel subscribed", "channel", name)
			}
		}, f.forward)
		if err == nil {
			err = errors.New("session: listen returned nil")
		}
		if ctx.Err() != nil {
			return
		}
		goOn := f.broken(i, subscribed.Load(), first, err)
		switch {
		case subscribed.Load() && !goOn:
			a.note(ctx, slog.LevelError, "session invalidation channel lost: no channel left", "channel", name, "error", err)
		case subscribed.Load():
			backoff = listenBackoffMin
			a.note(ctx, slog.LevelError, "session invalidation channel lost: the others carry the invalidations until it is back",
				"channel", name, "error", err, "retry_in", backoff.String())
		case goOn:
			a.note(ctx, slog.LevelWarn, "session invalidation channel unavailable", "channel", name, "error", err, "retry_in", backoff.String())
		}
		if !goOn {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// note logs msg at level, when a logs at all.
func (a *anyOf) note(ctx context.Context, level slog.Level, msg string, args ...any) {
	if a.log != nil {
		a.log.Log(ctx, level, msg, args...)
	}
}

// channelName names an Invalidator in logs by its type, such as
// redisstore.Store.
func channelName(c Invalidator) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", c), "*")
}

// fanIn is the state one Listen of anyOf shares with its channels: how
// many are subscribed, and whether ready was called. Its mutex also makes
// the calls of ready and drop one at a time.
type fanIn struct {
	ready func()
	drop  func(Invalidation)

	mu      sync.Mutex
	up      int     // channels subscribed now
	readied bool    // ready was called
	failed  int     // channels whose first attempt failed before ready
	errs    []error // each channel's last failure
	ended   bool
	err     error         // why Listen is over
	over    chan struct{} // closed when ended
}

// subscribe counts a channel subscribed, calling ready for the first, and
// reports whether it counted: nothing counts once Listen is over.
func (f *fanIn) subscribe() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return false
	}
	f.up++
	if !f.readied {
		f.readied = true
		f.ready()
	}
	return true
}

// forward drops inv, unless Listen is over.
func (f *fanIn) forward(inv Invalidation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ended {
		f.drop(inv)
	}
}

// broken records the end of channel i's attempt and reports whether it
// should try again: not once Listen is over, which it is from the moment
// the last subscribed channel breaks, or the last first attempt fails
// before any channel subscribed.
func (f *fanIn) broken(i int, subscribed, first bool, err error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return false
	}
	f.errs[i] = err
	switch {
	case subscribed:
		f.up--
		if f.up == 0 {
			f.endLocked(fmt.Errorf("session: every invalidation channel is lost: %w", errors.Join(f.errs...)))
			return false
		}
	case first && !f.readied:
		f.failed++
		if f.failed == len(f.errs) {
			f.endLocked(fmt.Errorf("session: no invalidation channel could subscribe: %w", errors.Join(f.errs...)))
			return false
		}
	}
	return true
}

// end ends Listen with err, unless it is over already.
func (f *fanIn) end(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ended {
		f.endLocked(err)
	}
}

func (f *fanIn) endLocked(err error) {
	f.ended, f.err = true, err
	close(f.over)
}
