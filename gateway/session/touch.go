package session

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// touchFlush is how long a LastSeen write waits to be written with the
// others of the moment. It delays what other replicas see of LastSeen by as
// much, against an idle limit measured in minutes.
const touchFlush = time.Second

// maxPendingTouches bounds the writes waiting; beyond it requests write
// their own, as though there were no batching.
const maxPendingTouches = 16384

// touches writes LastSeen in batches: requests queue the time they saw a
// session, and one goroutine, started when the first touch waits and ending
// when none is left, writes all of them every touchFlush in one step of the
// store (store.SessionTouches, or one TouchSession each). A session is
// queued at most once; a later time replaces an earlier one.
type touches struct {
	sessions store.Sessions
	batch    store.SessionTouches // nil when the store has no batch write
	log      *slog.Logger

	mu       sync.Mutex
	pending  map[string]time.Time
	inflight map[string]time.Time // being written
	running  bool
	done     chan struct{} // closed when the running writer stops; nil when none runs
}

func newTouches(s store.Sessions, log *slog.Logger) *touches {
	t := &touches{sessions: s, log: log, pending: map[string]time.Time{}}
	t.batch, _ = s.(store.SessionTouches)
	return t
}

// seen returns the latest time queued or being written for the session.
func (t *touches) seen(sid string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.pending[sid]
	if in, inOK := t.inflight[sid]; inOK && (!ok || in.After(at)) {
		at, ok = in, true
	}
	return at, ok
}

// add queues a write of the session's LastSeen, and reports false when the
// queue is full (the caller writes it itself).
func (t *touches) add(sid string, at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, ok := t.pending[sid]; ok {
		if at.After(prev) {
			t.pending[sid] = at
		}
		return true
	}
	if len(t.pending) >= maxPendingTouches {
		return false
	}
	t.pending[sid] = at
	if !t.running {
		t.running = true
		t.done = make(chan struct{})
		go t.run(t.done)
	}
	return true
}

// run writes what is queued every touchFlush until nothing is.
func (t *touches) run(done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(touchFlush)
	defer timer.Stop()
	for {
		<-timer.C
		if !t.flush() {
			return
		}
		timer.Reset(touchFlush)
	}
}

// flush writes the queued touches, and reports whether more were queued
// meanwhile; when none were, the writer is marked stopped.
func (t *touches) flush() (more bool) {
	t.mu.Lock()
	batch := t.pending
	t.pending = map[string]time.Time{}
	t.inflight = batch
	t.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := t.write(ctx, batch); err != nil {
		t.log.ErrorContext(ctx, "write session last seen", "error", err, "sessions", len(batch))
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight = nil
	if len(t.pending) == 0 {
		t.running = false
		return false
	}
	return true
}

func (t *touches) write(ctx context.Context, batch map[string]time.Time) error {
	if len(batch) == 0 {
		return nil
	}
	if t.batch != nil {
		return t.batch.TouchSessions(ctx, batch)
	}
	var errs []error
	for sid, at := range batch {
		if err := t.sessions.TouchSession(ctx, sid, at); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// wait returns when the writer running now, if any, has stopped: every touch
// queued has been written.
func (t *touches) wait(ctx context.Context) error {
	t.mu.Lock()
	done := t.done
	t.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
