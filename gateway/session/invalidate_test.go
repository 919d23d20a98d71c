package session_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
)

var errCut = errors.New("link cut")

// bus is an in-memory Invalidator shared by replicas: Publish hands the
// invalidation to every listener before it returns, and cut breaks every
// subscription and refuses new ones until restore.
type bus struct {
	mu        sync.Mutex
	listeners map[*listener]bool
	cutOff    bool
}

// port is one replica's connection to the bus.
type port struct {
	*bus
	// attempts receives one value per Listen call, after its outcome is
	// settled (subscribed or refused).
	attempts chan bool
}

func (b *bus) port() *port { return &port{bus: b, attempts: make(chan bool, 64)} }

type listener struct {
	drop   func(session.Invalidation)
	broken chan struct{}
}

func newBus() *bus {
	return &bus{listeners: map[*listener]bool{}}
}

func (b *bus) Publish(ctx context.Context, inv session.Invalidation) error {
	if err := inv.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cutOff {
		return errCut
	}
	for l := range b.listeners {
		l.drop(inv)
	}
	return nil
}

func (p *port) Listen(ctx context.Context, ready func(), drop func(session.Invalidation)) error {
	b := p.bus
	b.mu.Lock()
	if b.cutOff {
		b.mu.Unlock()
		p.attempts <- false
		return errCut
	}
	l := &listener{drop: drop, broken: make(chan struct{})}
	b.listeners[l] = true
	ready()
	b.mu.Unlock()
	p.attempts <- true
	defer func() {
		b.mu.Lock()
		delete(b.listeners, l)
		b.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.broken:
		return errCut
	}
}

func (b *bus) cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cutOff = true
	for l := range b.listeners {
		close(l.broken)
		delete(b.listeners, l)
	}
}

func (b *bus) restore() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cutOff = false
}

// waitAttempt waits for the next Listen call and reports whether it
// subscribed.
func (p *port) waitAttempt(t *testing.T) bool {
	t.Helper()
	select {
	case ok := <-p.attempts:
		return ok
	case <-time.After(10 * time.Second):
		t.Fatal("no subscription attempt within 10s")
		return false
	}
}

// syncBuffer is a log destination safe for the watcher's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// replicas returns two managers on the fixture's store, as two gateway
// replicas, both subscribed to b, the first as the fixture's; and the
// second's port and log.
func (f *fixture) replicas(t *testing.T, b *bus) (*session.Manager, *session.Manager, *port, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	newManager := func(p *port, log *slog.Logger) *session.Manager {
		m := session.New(session.Deps{Sessions: f.db, Records: f.db, Users: f.db, IdleTimeout: 15 * time.Minute,
			Invalidator: p, Log: log, Now: f.clock.Now, Rand: rand.Reader})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); m.Watch(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		if !p.waitAttempt(t) {
			t.Fatal("the replica did not subscribe")
		}
		return m
	}
	one := newManager(b.port(), slog.New(slog.DiscardHandler))
	p := b.port()
	two := newManager(p, slog.New(slog.NewTextHandler(logs, nil)))
	f.m = one
	return one, two, p, logs
}

// Each way of ending sessions or changing a profile on one replica drops
// the other's cached copy at once; a session deleted in the store behind
// both replicas' backs is still served from the cache, which shows the
// cache was in use.
func TestInvalidationReachesOtherReplica(t *testing.T) {
	for _, tc := range []struct {
		name   string
		end    func(t *testing.T, f *fixture, one *session.Manager, r *http.Request, id session.Identity)
		wantOK bool // the session still lets the person in, read anew
	}{
		{"EndSession", func(t *testing.T, f *fixture, one *session.Manager, r *http.Request, id session.Identity) {
			if err := one.EndSession(t.Context(), f.user.ID, id.Session.ID); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"EndUserSessions", func(t *testing.T, f *fixture, one *session.Manager, r *http.Request, id session.Identity) {
			if _, err := one.EndUserSessions(t.Context(), f.user.ID, ""); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"EndLogin", func(t *testing.T, f *fixture, one *session.Manager, r *http.Request, id session.Identity) {
			if err := one.EndLogin(t.Context(), id.Session.LoginID); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"EndCurrent", func(t *testing.T, f *fixture, one *session.Manager, r *http.Request, id session.Identity) {
			one.EndCurrent(r)
		}, false},
		{"LockUser", func(t *testing.T, f *fixture, one *session.Manager, r *http.Request, id session.Identity) {
			if locked, err := one.RevokingUsers(f.db).LockUser(t.Context(), f.user.ID, f.clock.Now()); err != nil || !locked {
				t.Fatalf("LockUser = %v, %v", locked, err)
			}
		}, true},
		{"SetUsername", func(t *testing.T, f *fixture, one *session.Manager, r *http.Request, id session.Identity) {
			if err := one.RevokingUsers(f.db).SetUsername(t.Context(), f.user.ID, "alice2", f.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			b := newBus()
			one, two, _, _ := f.replicas(t, b)
			r, id := f.signIn(t, "bank.test")
			cached, ok, err := two.Current(r)
			if err != nil || !ok {
				t.Fatalf("Current on the other replica: %v %v", ok, err)
			}
			tc.end(t, f, one, r, id)
			got, ok, err := two.Current(r)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.wantOK {
				t.Fatalf("Current on the other replica after %s: ok = %v, want %v", tc.name, ok, tc.wantOK)
			}
			if ok && reflect.DeepEqual(got.User, cached.User) {
				t.Errorf("the other replica still serves the cached profile %+v after %s", got.User, tc.name)
			}
		})
	}

	t.Run("unannounced", func(t *testing.T) {
		f := newFixture(t)
		_, two, _, _ := f.replicas(t, newBus())
		r, id := f.signIn(t, "bank.test")
		if _, ok, err := two.Current(r); err != nil || !ok {
			t.Fatalf("Current on the other replica: %v %v", ok, err)
		}
		if err := f.db.DeleteSession(t.Context(), id.Session.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := two.Current(r); err != nil || !ok {
			t.Fatalf("Current on the other replica, cached: %v %v; want the cached session", ok, err)
		}
	})
}

// While the subscription is broken, the replica reads every session from
// the store (a session ended where no invalidation reached it is refused
// at once), says so in its log, and resubscribes by itself when the link
// returns, after which it uses its cache again.
func TestBrokenSubscriptionStopsTheCache(t *testing.T) {
	f := newFixture(t)
	b := newBus()
	_, two, p, logs := f.replicas(t, b)
	r, id := f.signIn(t, "bank.test")
	if _, ok, err := two.Current(r); err != nil || !ok {
		t.Fatalf("Current: %v %v", ok, err)
	}

	b.cut()
	// The retry after the break is refused: by then the replica has
	// stopped trusting its cache.
	if p.waitAttempt(t) {
		t.Fatal("a subscription succeeded while cut")
	}
	if err := f.db.DeleteSession(t.Context(), id.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := two.Current(r); err != nil || ok {
		t.Fatalf("Current while unsubscribed of a session deleted in the store: ok = %v, err = %v; want refused", ok, err)
	}
	if !strings.Contains(logs.String(), "session invalidations lost") {
		t.Errorf("the replica's log does not say the invalidations were lost:\n%s", logs.String())
	}
	// Sessions read while unsubscribed are not cached either.
	r2, id2 := f.signIn(t, "bank.test")
	if _, ok, err := two.Current(r2); err != nil || !ok {
		t.Fatalf("Current: %v %v", ok, err)
	}
	if err := f.db.DeleteSession(t.Context(), id2.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := two.Current(r2); ok {
		t.Fatal("a session read while unsubscribed was served from the cache")
	}

	b.restore()
	for !p.waitAttempt(t) {
	}
	r3, id3 := f.signIn(t, "bank.test")
	if _, ok, err := two.Current(r3); err != nil || !ok {
		t.Fatalf("Current: %v %v", ok, err)
	}
	if err := f.db.DeleteSession(t.Context(), id3.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := two.Current(r3); err != nil || !ok {
		t.Fatalf("Current after resubscribing: %v %v; want the cached session", ok, err)
	}
	if !strings.Contains(logs.String(), "session invalidations subscribed") {
		t.Errorf("the replica's log does not say it resubscribed:\n%s", logs.String())
	}
}

// A replica that has not subscribed yet does not use its cache.
func TestNoCacheBeforeSubscribing(t *testing.T) {
	f := newFixture(t)
	b := newBus()
	b.cut()
	m := session.New(session.Deps{Sessions: f.db, Records: f.db, Users: f.db, IdleTimeout: 15 * time.Minute,
		Invalidator: b.port(), Log: slog.New(slog.DiscardHandler), Now: f.clock.Now, Rand: rand.Reader})
	f.m = m
	r, id := f.signIn(t, "bank.test")
	if err := f.db.DeleteSession(t.Context(), id.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := m.Current(r); ok {
		t.Fatal("a replica without a subscription served a session from its cache")
	}
}

// Removing a device drops the user's cached sessions on every replica.
func TestRevokingDevicesInvalidates(t *testing.T) {
	f := newFixture(t)
	one, two, _, _ := f.replicas(t, newBus())
	if err := f.db.AddDevice(t.Context(), store.Device{ID: "d1", UserID: f.user.ID, Name: "laptop",
		CreatedAt: f.clock.Now(), LastUsedAt: f.clock.Now(), ExpiresAt: f.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r, id := f.signIn(t, "bank.test")
	if _, ok, err := two.Current(r); err != nil || !ok {
		t.Fatalf("Current: %v %v", ok, err)
	}
	// Deleted behind the replicas' backs, so that only a read of the
	// store tells.
	if err := f.db.DeleteSession(t.Context(), id.Session.ID); err != nil {
		t.Fatal(err)
	}
	if err := one.RevokingDevices(f.db).DeleteDevice(t.Context(), f.user.ID, "d1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := two.Current(r); ok {
		t.Fatal("the other replica still served its cached session after a device was removed")
	}
	// A removal that fails (no such device) tells nobody.
	if err := one.RevokingDevices(f.db).DeleteDevice(t.Context(), f.user.ID, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteDevice of a removed device: %v, want ErrNotFound", err)
	}
}

// Reads racing an invalidation never leave the ended session cached: once
// EndSession has returned on one replica, the other refuses the session on
// every later request, although readers were busy with it throughout.
func TestInvalidationRacesReads(t *testing.T) {
	f := newFixture(t)
	one, two, _, _ := f.replicas(t, newBus())
	r, id := f.signIn(t, "bank.test")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := two.Current(r.Clone(context.Background())); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	if err := one.EndSession(t.Context(), f.user.ID, id.Session.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, ok, _ := two.Current(r); ok {
			t.Fatalf("request %d after EndSession returned: the other replica let the session through", i)
		}
	}
	close(stop)
	wg.Wait()
}
