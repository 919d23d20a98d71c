// Package sessiontest holds what the tests of session.Invalidator
// implementations share: a subscription run for the length of a test, and
// the wait for what it receives.
package sessiontest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/session"
)

// Listen runs inv.Listen until the test ends and returns the channel of
// what it received and the channel of its result; it returns once Listen
// has called ready. At the end of the test, a Listen still running must
// return context.Canceled.
func Listen(t testing.TB, inv session.Invalidator) (<-chan session.Invalidation, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan session.Invalidation, 16)
	done := make(chan error, 1)
	finished := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(finished)
		done <- inv.Listen(ctx, func() { close(ready) }, func(inv session.Invalidation) { got <- inv })
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Listen after its context ended: %v, want context.Canceled", err)
			}
		default: // the test took the result
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Listen: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not subscribe within 5s")
	}
	return got, done
}

// Receive waits at most a second for the next invalidation on got and
// requires it to be want; who names the listener in failures.
func Receive(t testing.TB, who string, got <-chan session.Invalidation, want session.Invalidation) {
	t.Helper()
	select {
	case inv := <-got:
		if inv != want {
			t.Errorf("%s received %+v, want %+v", who, inv, want)
		}
	case <-time.After(time.Second):
		t.Fatalf("%s did not receive %+v within 1s", who, want)
	}
}
