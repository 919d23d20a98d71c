package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// addHit calls AddHit and fails the test unless it returns want.
func addHit(t *testing.T, s store.Hits, key string, window time.Duration, now time.Time, want int) {
	t.Helper()
	op := fmt.Sprintf("AddHit(%s, %v, base%+v)", key, window, now.Sub(base))
	got, err := s.AddHit(t.Context(), key, window, now)
	ok(t, op, err)
	if got != want {
		t.Fatalf("%s = %d, want %d", op, got, want)
	}
}

// hits calls Hits and fails the test unless it returns want.
func hits(t *testing.T, s store.Hits, key string, window time.Duration, now time.Time, want int) {
	t.Helper()
	op := fmt.Sprintf("Hits(%s, %v, base%+v)", key, window, now.Sub(base))
	got, err := s.Hits(t.Context(), key, window, now)
	ok(t, op, err)
	if got != want {
		t.Fatalf("%s = %d, want %d", op, got, want)
	}
}

func hitTests() []test[store.Hits] {
	return []test[store.Hits]{
		{"hits accumulate within a window", func(t *testing.T, s store.Hits) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(30*time.Second), 2)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Minute-time.Millisecond), 3)
		}},
		{"the next window starts at one", func(t *testing.T, s store.Hits) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(10*time.Second), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(50*time.Second), 2)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Minute), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Minute+59*time.Second), 2)
			// A window later than the next one starts over as well.
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(5*time.Minute+time.Second), 1)
			// A longer window covers its own span.
			addHit(t, s, "ip:192.0.2.2", 15*time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.2", 15*time.Minute, at(14*time.Minute), 2)
			addHit(t, s, "ip:192.0.2.2", 15*time.Minute, at(15*time.Minute), 1)
		}},
		{"keys are independent", func(t *testing.T, s store.Hits) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Second), 2)
			addHit(t, s, "ip:192.0.2.2", time.Minute, at(2*time.Second), 1)
			addHit(t, s, "ip:192.0.2.10", time.Minute, at(2*time.Second), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(3*time.Second), 3)
		}},
		{"hits are read without counting", func(t *testing.T, s store.Hits) {
			hits(t, s, "ip:192.0.2.1", time.Minute, at(0), 0)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Second), 2)
			hits(t, s, "ip:192.0.2.1", time.Minute, at(2*time.Second), 2)
			hits(t, s, "ip:192.0.2.1", time.Minute, at(3*time.Second), 2)
			hits(t, s, "ip:192.0.2.1", time.Minute, at(time.Minute), 0)
			hits(t, s, "ip:192.0.2.1", 2*time.Minute, at(time.Second), 0)
			hits(t, s, "ip:192.0.2.2", time.Minute, at(time.Second), 0)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(4*time.Second), 3)
		}},
		{"a released hit is taken back, never below zero", func(t *testing.T, s store.Hits) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Second), 2)
			ok(t, "ReleaseHit", s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Minute, at(2*time.Second)))
			hits(t, s, "ip:192.0.2.1", time.Minute, at(2*time.Second), 1)
			ok(t, "ReleaseHit", s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Minute, at(2*time.Second)))
			ok(t, "ReleaseHit at zero", s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Minute, at(2*time.Second)))
			ok(t, "ReleaseHit of an unknown key", s.ReleaseHit(t.Context(), "ip:192.0.2.9", time.Minute, at(2*time.Second)))
			hits(t, s, "ip:192.0.2.1", time.Minute, at(2*time.Second), 0)
			hits(t, s, "ip:192.0.2.9", time.Minute, at(2*time.Second), 0)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(3*time.Second), 1)
			// A release in the next window leaves this one alone.
			ok(t, "ReleaseHit next window", s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Minute, at(time.Minute)))
			hits(t, s, "ip:192.0.2.1", time.Minute, at(4*time.Second), 1)
		}},
		{"concurrent reservations: no more than the limit pass", func(t *testing.T, s store.Hits) {
			// The gateway reserves a hit before the password check and
			// lets the attempt on only if the count it got back is within
			// the limit; refused reservations are released.
			const limit = 20
			passed, errs := concurrently(2*parallelism, func() (bool, error) {
				n, err := s.AddHit(t.Context(), "ip:192.0.2.1", time.Hour, at(time.Minute))
				if err != nil || n <= limit {
					return err == nil, err
				}
				return false, s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Hour, at(time.Minute))
			})
			n := 0
			for i, p := range passed {
				ok(t, "AddHit or ReleaseHit", errs[i])
				if p {
					n++
				}
			}
			if n != limit {
				t.Fatalf("%d concurrent reservations let %d pass, want exactly %d", 2*parallelism, n, limit)
			}
			hits(t, s, "ip:192.0.2.1", time.Hour, at(time.Minute), limit)
		}},
		{"concurrent hits all count", func(t *testing.T, s store.Hits) {
			counts, errs := concurrently(parallelism, func() (int, error) {
				return s.AddHit(t.Context(), "ip:192.0.2.1", time.Hour, at(time.Minute))
			})
			countsOneToN(t, "AddHit", counts, errs)
			addHit(t, s, "ip:192.0.2.1", time.Hour, at(59*time.Minute), parallelism+1)
		}},
		{"a cancelled context fails reads", func(t *testing.T, s store.Hits) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.Hits(ctx, "ip:192.0.2.1", time.Minute, at(0))
			fails(t, "Hits with a cancelled context", err)
		}},
		{"a cancelled context fails writes, which have no effect", func(t *testing.T, s store.Hits) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.AddHit(ctx, "ip:192.0.2.1", time.Minute, at(0))
			fails(t, "AddHit with a cancelled context", err)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			fails(t, "ReleaseHit with a cancelled context", s.ReleaseHit(ctx, "ip:192.0.2.1", time.Minute, at(0)))
			hits(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
		}},
	}
}
