package session_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/session"
)

// funcs is an Invalidator made of two functions.
type funcs struct {
	publish func(ctx context.Context, inv session.Invalidation) error
	listen  func(ctx context.Context, ready func(), drop func(session.Invalidation)) error
}

func (f funcs) Publish(ctx context.Context, inv session.Invalidation) error {
	return f.publish(ctx, inv)
}

func (f funcs) Listen(ctx context.Context, ready func(), drop func(session.Invalidation)) error {
	return f.listen(ctx, ready, drop)
}

// anyListen runs inv.Listen in the background and returns the channel of
// its result and a channel closed when ready is called; ready called twice
// fails the test. The test's end waits for Listen to return.
func anyListen(t *testing.T, ctx context.Context, inv session.Invalidator, drop func(session.Invalidation)) (<-chan error, <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	ready := make(chan struct{})
	var once atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- inv.Listen(ctx, func() {
			if !once.CompareAndSwap(false, true) {
				t.Error("ready called twice")
				return
			}
			close(ready)
		}, drop)
	}()
	t.Cleanup(func() { cancel(); <-finished })
	return done, ready
}

// within waits at most d for c.
func within[T any](t *testing.T, c <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
		var zero T
		return zero
	}
}

// A publication goes to every channel; one channel that fails makes
// Publish fail, having told the others all the same.
func TestAnyOfPublishesOnEveryChannel(t *testing.T) {
	a, b := newBus(), newBus()
	inv := session.AnyOf(nil, a.port(), b.port())
	got := make(chan string, 4)
	for name, bs := range map[string]*bus{"a": a, "b": b} {
		_, ready := anyListen(t, t.Context(), bs.port(), func(session.Invalidation) { got <- name })
		within(t, ready, 5*time.Second, "subscribed to "+name)
	}
	if err := inv.Publish(t.Context(), session.Invalidation{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{within(t, got, time.Second, "first"): true, within(t, got, time.Second, "second"): true}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("published on %v, want a and b", seen)
	}

	a.cut()
	err := inv.Publish(t.Context(), session.Invalidation{UserID: "u1"})
	if !errors.Is(err, errCut) {
		t.Fatalf("Publish with one channel cut: %v, want errCut", err)
	}
	if name := within(t, got, time.Second, "told"); name != "b" {
		t.Fatalf("the channel cut was told")
	}
	if err := inv.Publish(t.Context(), session.Invalidation{}); err == nil {
		t.Error("Publish of an invalidation that names nothing succeeded")
	}
}

// A channel that does not answer holds Publish no longer than its context.
func TestAnyOfPublishEndsWithContext(t *testing.T) {
	hung := funcs{publish: func(context.Context, session.Invalidation) error { select {} }}
	inv := session.AnyOf(nil, newBus().port(), hung)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- inv.Publish(ctx, session.Invalidation{UserID: "u1"}) }()
	if err := within(t, done, 2*time.Second, "Publish returned"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish past its deadline: %v, want DeadlineExceeded", err)
	}
}

// Listen is ready once one channel is subscribed, goes on while any is,
// hears every channel, resubscribes one that broke by itself, and returns
// once none is subscribed.
func TestAnyOfListensWhileAnyChannelIs(t *testing.T) {
	a, b := newBus(), newBus()
	pa, pb := a.port(), b.port()
	var mu sync.Mutex
	var dropped []string
	done, ready := anyListen(t, t.Context(), session.AnyOf(nil, pa, pb), func(inv session.Invalidation) {
		mu.Lock()
		defer mu.Unlock()
		dropped = append(dropped, inv.UserID)
	})
	within(t, ready, 5*time.Second, "ready")
	if !pa.waitAttempt(t) || !pb.waitAttempt(t) {
		t.Fatal("a channel did not subscribe")
	}
	droppedHas := func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range dropped {
			if d == id {
				return true
			}
		}
		return false
	}

	a.cut()
	if pa.waitAttempt(t) {
		t.Fatal("a cut channel subscribed")
	}
	select {
	case err := <-done:
		t.Fatalf("Listen returned with one channel up: %v", err)
	default:
	}
	if err := b.Publish(t.Context(), session.Invalidation{UserID: "over-b"}); err != nil {
		t.Fatal(err)
	}
	if !droppedHas("over-b") {
		t.Error("an invalidation over the channel still up was not dropped")
	}

	a.restore()
	for !pa.waitAttempt(t) {
	}
	b.cut()
	if pb.waitAttempt(t) {
		t.Fatal("a cut channel subscribed")
	}
	if err := a.Publish(t.Context(), session.Invalidation{UserID: "over-a"}); err != nil {
		t.Fatal(err)
	}
	if !droppedHas("over-a") {
		t.Error("an invalidation over the resubscribed channel was not dropped")
	}

	a.cut()
	err := within(t, done, time.Second, "Listen returned with both channels cut")
	if !errors.Is(err, errCut) {
		t.Fatalf("Listen with both channels cut: %v, want errCut", err)
	}
}

// The last subscribed channel breaking ends Listen at once, even while
// another channel is about to subscribe: what was published between the
// break and that subscription reached neither.
func TestAnyOfEndsWhenTheLastChannelBreaks(t *testing.T) {
	a := newBus()
	pa := a.port()
	// b's attempts after its first wait for the test, and then
	// subscribe.
	var attempts atomic.Int32
	waiting, release := make(chan struct{}), make(chan struct{})
	b := funcs{listen: func(ctx context.Context, ready func(), drop func(session.Invalidation)) error {
		switch attempts.Add(1) {
		case 1:
			return errCut
		case 2:
			close(waiting)
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		ready()
		<-ctx.Done()
		return ctx.Err()
	}}
	var afterEnd atomic.Bool
	var ended atomic.Bool
	done, ready := anyListen(t, t.Context(), session.AnyOf(nil, pa, b), func(session.Invalidation) {
		if ended.Load() {
			afterEnd.Store(true)
		}
	})
	within(t, ready, 5*time.Second, "ready")
	within(t, waiting, 5*time.Second, "b trying again")
	a.cut()
	err := within(t, done, time.Second, "Listen returned after the last subscribed channel broke")
	ended.Store(true)
	if !errors.Is(err, errCut) {
		t.Fatalf("Listen: %v, want errCut", err)
	}
	close(release)
	a.restore()
	if err := a.Publish(t.Context(), session.Invalidation{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if afterEnd.Load() {
		t.Error("drop was called after Listen returned")
	}
}

// Before any channel subscribed, Listen waits for every first attempt: it
// fails when all of them failed, and is ready when a later one succeeds.
func TestAnyOfFirstAttempts(t *testing.T) {
	t.Run("all fail", func(t *testing.T) {
		a, b := newBus(), newBus()
		a.cut()
		b.cut()
		done, ready := anyListen(t, t.Context(), session.AnyOf(nil, a.port(), b.port()), func(session.Invalidation) {})
		err := within(t, done, time.Second, "Listen returned with every channel down")
		if !errors.Is(err, errCut) {
			t.Fatalf("Listen: %v, want errCut", err)
		}
		select {
		case <-ready:
			t.Error("ready was called")
		default:
		}
	})
	t.Run("one slow, one failing", func(t *testing.T) {
		a := newBus()
		a.cut()
		pa := a.port()
		subscribe := make(chan struct{})
		slow := funcs{listen: func(ctx context.Context, ready func(), drop func(session.Invalidation)) error {
			select {
			case <-subscribe:
			case <-ctx.Done():
				return ctx.Err()
			}
			ready()
			<-ctx.Done()
			return ctx.Err()
		}}
		done, ready := anyListen(t, t.Context(), session.AnyOf(nil, pa, slow), func(session.Invalidation) {})
		if pa.waitAttempt(t) {
			t.Fatal("a cut channel subscribed")
		}
		select {
		case err := <-done:
			t.Fatalf("Listen returned with a channel still trying: %v", err)
		default:
		}
		close(subscribe)
		within(t, ready, 5*time.Second, "ready once the slow channel subscribed")
		// The failing channel keeps trying by itself.
		a.restore()
		for !pa.waitAttempt(t) {
		}
	})
}

// Drops from every channel are made one at a time, however the channels
// race (the race detector checks the unguarded counter).
func TestAnyOfDropsOneAtATime(t *testing.T) {
	const channels, each = 4, 200
	var buses []*bus
	var ports []*port
	var invs []session.Invalidator
	for range channels {
		b := newBus()
		p := b.port()
		buses, ports, invs = append(buses, b), append(ports, p), append(invs, p)
	}
	n := 0
	var inside atomic.Int32
	_, ready := anyListen(t, t.Context(), session.AnyOf(nil, invs...), func(session.Invalidation) {
		if inside.Add(1) != 1 {
			t.Error("two drops at once")
		}
		n++
		inside.Add(-1)
	})
	within(t, ready, 5*time.Second, "ready")
	for _, p := range ports {
		if !p.waitAttempt(t) {
			t.Fatal("a channel did not subscribe")
		}
	}
	var wg sync.WaitGroup
	for _, b := range buses {
		wg.Go(func() {
			for range each {
				if err := b.Publish(t.Context(), session.Invalidation{UserID: "u1"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if inside.Load() != 0 || n != channels*each {
		t.Errorf("dropped %d, want %d", n, channels*each)
	}
}

// Listen ends with its context, after its channels have.
func TestAnyOfListenEndsWithContext(t *testing.T) {
	var running atomic.Int32
	wait := funcs{listen: func(ctx context.Context, ready func(), drop func(session.Invalidation)) error {
		running.Add(1)
		defer running.Add(-1)
		ready()
		<-ctx.Done()
		return ctx.Err()
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done, ready := anyListen(t, ctx, session.AnyOf(nil, wait, wait, newBus().port()), func(session.Invalidation) {})
	within(t, ready, 5*time.Second, "ready")
	cancel()
	if err := within(t, done, time.Second, "Listen returned"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Listen: %v, want context.Canceled", err)
	}
	if n := running.Load(); n != 0 {
		t.Errorf("%d channels still listening after Listen returned", n)
	}
}

func TestAnyOfOfOneOrNone(t *testing.T) {
	p := newBus().port()
	if got := session.AnyOf(nil, p); got != session.Invalidator(p) {
		t.Errorf("AnyOf of one = %v, want it", got)
	}
	if got := session.AnyOf(nil); got != nil {
		t.Errorf("AnyOf of none = %v, want nil", got)
	}
}

// twoChannelReplicas returns two managers on the fixture's store, as two
// gateway replicas, each subscribed to a and b through AnyOf, the first as
// the fixture's; and the second's ports and log.
func (f *fixture) twoChannelReplicas(t *testing.T, a, b *bus) (*session.Manager, *session.Manager, [2]*port, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	newManager := func(ports [2]*port, log *slog.Logger) *session.Manager {
		m := session.New(session.Deps{Sessions: f.db, Records: f.db, Users: f.db, IdleTimeout: 15 * time.Minute,
			Invalidator: session.AnyOf(log, ports[0], ports[1]), Log: log, Now: f.clock.Now, Rand: rand.Reader})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); m.Watch(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		for _, p := range ports {
			if !p.waitAttempt(t) {
				t.Fatal("the replica did not subscribe")
			}
		}
		return m
	}
	one := newManager([2]*port{a.port(), b.port()}, slog.New(slog.DiscardHandler))
	ports := [2]*port{a.port(), b.port()}
	two := newManager(ports, slog.New(slog.NewTextHandler(logs, nil)))
	f.m = one
	return one, two, ports, logs
}

// With two channels, a replica that loses one keeps its cache and still
// hears the others' invalidations over the other; losing both stops the
// cache, as with one channel; both back, it uses its cache again.
func TestAnyOfKeepsTheCacheWhileOneChannelIsUp(t *testing.T) {
	f := newFixture(t)
	a, b := newBus(), newBus()
	one, two, ports, logs := f.twoChannelReplicas(t, a, b)
	// cachedOnTwo signs in, has two read the session, and deletes it
	// behind both replicas' backs: two serves it only from its cache.
	cachedOnTwo := func() (*http.Request, session.Identity) {
		t.Helper()
		r, id := f.signIn(t, "bank.test")
		if _, ok, err := two.Current(r); err != nil || !ok {
			t.Fatalf("Current: %v %v", ok, err)
		}
		return r, id
	}

	a.cut()
	if ports[0].waitAttempt(t) {
		t.Fatal("a subscription succeeded while cut")
	}
	r, id := cachedOnTwo()
	if err := f.db.DeleteSession(t.Context(), id.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := two.Current(r); err != nil || !ok {
		t.Fatalf("Current with one channel cut: %v %v; want the cached session", ok, err)
	}
	r, id = cachedOnTwo()
	if err := one.EndSession(t.Context(), f.user.ID, id.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := two.Current(r); ok {
		t.Fatal("the other replica still served a session ended with one channel cut")
	}
	if s := logs.String(); !strings.Contains(s, "session invalidation channel lost") || strings.Contains(s, "session invalidations lost") {
		t.Errorf("the replica's log after one channel was lost:\n%s", s)
	}

	b.cut()
	if ports[1].waitAttempt(t) {
		t.Fatal("a subscription succeeded while cut")
	}
	r, id = cachedOnTwo()
	if err := f.db.DeleteSession(t.Context(), id.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := two.Current(r); ok {
		t.Fatal("a session was served from the cache with both channels cut")
	}
	if !strings.Contains(logs.String(), "session invalidations lost") {
		t.Errorf("the replica's log does not say the invalidations were lost:\n%s", logs.String())
	}

	b.restore()
	for !ports[1].waitAttempt(t) {
	}
	r, id = cachedOnTwo()
	if err := f.db.DeleteSession(t.Context(), id.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := two.Current(r); err != nil || !ok {
		t.Fatalf("Current after one channel returned: %v %v; want the cached session", ok, err)
	}
}
