package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/session/sessiontest"
	"github.com/portcullis/portcullis/plugins/store/faultproxy"
	redisstore "github.com/portcullis/portcullis/plugins/store/redis"
	"github.com/portcullis/portcullis/plugins/store/redis/redistest"
)

// openPrefix opens a second store on the test server under prefix.
func openPrefix(t *testing.T, url, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// An invalidation published by one replica reaches every replica under the
// same prefix, the publisher included, and none under another.
func TestInvalidationsReachEveryReplica(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	one, two := openPrefix(t, url, prefix), openPrefix(t, url, prefix)
	other := openPrefix(t, url, redistest.Prefix(t, url))
	gotOne, _ := sessiontest.Listen(t, one)
	gotTwo, _ := sessiontest.Listen(t, two)
	gotOther, _ := sessiontest.Listen(t, other)

	sent := []session.Invalidation{{SessionID: "s1"}, {LoginID: "l1"}, {UserID: "u1"}, {SessionID: "s2", UserID: "u2"}}
	for _, inv := range sent {
		if err := one.Publish(t.Context(), inv); err != nil {
			t.Fatal(err)
		}
	}
	for name, got := range map[string]<-chan session.Invalidation{"publisher": gotOne, "other replica": gotTwo} {
		for _, want := range sent {
			sessiontest.Receive(t, name, got, want)
		}
	}
	if err := other.Publish(t.Context(), session.Invalidation{UserID: "u3"}); err != nil {
		t.Fatal(err)
	}
	select {
	case inv := <-gotOther:
		if inv.UserID != "u3" {
			t.Errorf("a replica under another prefix received %+v", inv)
		}
	case <-time.After(time.Second):
		t.Fatal("the replica under another prefix did not receive its own invalidation")
	}
	select {
	case inv := <-gotOne:
		t.Errorf("an invalidation under another prefix reached this one: %+v", inv)
	default:
	}

	if err := one.Publish(t.Context(), session.Invalidation{}); err == nil {
		t.Error("Publish of an invalidation that names nothing succeeded")
	}
}

// A message on the channel that is not an invalidation ends the
// subscription with an error: a replica that cannot tell what to drop must
// stop trusting its cache.
func TestInvalidationUnreadableEndsListen(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := openPrefix(t, url, prefix)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, func() { close(ready) }, func(session.Invalidation) {}) }()
	<-ready
	c := redistest.Client(t, url)
	for _, msg := range []string{"not json", "{}"} {
		if err := c.Publish(t.Context(), prefix+"invalidations", msg).Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err == nil || errors.Is(err, context.Canceled) {
				t.Fatalf("Listen after %q: %v, want a failure", msg, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("Listen went on after %q", msg)
		}
		ready = make(chan struct{})
		go func() { done <- s.Listen(ctx, func() { close(ready) }, func(session.Invalidation) {}) }()
		<-ready
	}
}

// When the link to Redis is cut, Listen returns an error within about a
// second, whether the connection is closed or merely goes silent, and
// Publish fails; once the link returns both work again.
func TestInvalidationFaultEndsListen(t *testing.T) {
	url, opts := redistest.TCPOptions(t)
	p := faultproxy.New(t, opts.Addr)
	prefix := redistest.Prefix(t, url)
	s := openPrefix(t, "redis://"+p.Addr()+"/"+strconv.Itoa(opts.DB)+"?max_retries=1&dial_timeout=500ms", prefix)
	_, done := sessiontest.Listen(t, s)

	p.Cut()
	start := time.Now()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Listen after the cut: %v, want a failure", err)
		}
		t.Logf("Listen noticed the cut after %v", time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("Listen went on for 2s after the link was cut")
	}
	if err := s.Publish(t.Context(), session.Invalidation{UserID: "u1"}); err == nil {
		t.Error("Publish with the link cut succeeded")
	}

	p.Restore()
	got, _ := sessiontest.Listen(t, s)
	if err := s.Publish(t.Context(), session.Invalidation{UserID: "u1"}); err != nil {
		t.Fatalf("Publish after the link returned: %v", err)
	}
	select {
	case inv := <-got:
		if inv.UserID != "u1" {
			t.Errorf("received %+v", inv)
		}
	case <-time.After(time.Second):
		t.Fatal("no invalidation received within 1s after the link returned")
	}
}

// An idle subscription stays up: the pings Listen sends while nothing is
// published are answered, and a message after the quiet still arrives.
func TestInvalidationListenSurvivesIdle(t *testing.T) {
	url := redistest.URL(t)
	s := openPrefix(t, url, redistest.Prefix(t, url))
	got, done := sessiontest.Listen(t, s)
	select {
	case err := <-done:
		t.Fatalf("an idle Listen ended: %v", err)
	case <-time.After(2 * time.Second): // four of Listen's 500 ms health periods
	}
	if err := s.Publish(t.Context(), session.Invalidation{LoginID: "l1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case inv := <-got:
		if inv.LoginID != "l1" {
			t.Errorf("received %+v", inv)
		}
	case <-time.After(time.Second):
		t.Fatal("no invalidation received after the quiet")
	}
}

// A link that goes silent (connections open, nothing carried) ends Listen
// within about a second: its ping goes unanswered.
func TestInvalidationFaultSilentLinkEndsListen(t *testing.T) {
	url, opts := redistest.TCPOptions(t)
	p := faultproxy.New(t, opts.Addr)
	s := openPrefix(t, "redis://"+p.Addr()+"/"+strconv.Itoa(opts.DB)+"?max_retries=1", redistest.Prefix(t, url))
	_, done := sessiontest.Listen(t, s)
	p.Stall()
	start := time.Now()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Listen after the link went silent: %v, want a failure", err)
		}
		t.Logf("Listen noticed the silent link after %v", time.Since(start))
	case <-time.After(3 * time.Second):
		t.Fatal("Listen went on for 3s after the link went silent")
	}
}
