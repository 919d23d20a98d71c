package session_test

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	m     *session.Manager
	db    *sqlite.Store
	clock *clock
	user  store.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{now: time.Date(2031, 3, 4, 5, 0, 0, 0, time.UTC)}
	u := store.User{ID: "u1", Username: "alice", CreatedAt: c.now, UpdatedAt: c.now}
	if err := db.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	m := session.New(session.Deps{Sessions: db, Records: db, Users: db, IdleTimeout: 15 * time.Minute,
		Log: slog.New(slog.DiscardHandler), Now: c.Now, Rand: rand.Reader})
	return &fixture{m: m, db: db, clock: c, user: u}
}

// signIn starts a login on host and returns the request that carries its
// cookie.
func (f *fixture) signIn(t *testing.T, host string) (*http.Request, session.Identity) {
	t.Helper()
	w := httptest.NewRecorder()
	if _, err := f.m.Start(w, httptest.NewRequest(http.MethodPost, "https://"+host+"/", nil), f.user, []string{"pwd"}, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	r := withCookies(httptest.NewRequest(http.MethodGet, "https://"+host+"/", nil), w)
	id, ok, err := f.m.Current(r)
	if err != nil || !ok {
		t.Fatalf("Current after Start: %v %v", ok, err)
	}
	return r, id
}

func withCookies(r *http.Request, w *httptest.ResponseRecorder) *http.Request {
	for _, c := range w.Result().Cookies() {
		if c.MaxAge >= 0 {
			r.AddCookie(c)
		}
	}
	return r
}

func TestExchangeOpensASessionOfTheSameLoginOnce(t *testing.T) {
	f := newFixture(t)
	_, src := f.signIn(t, "login.example")
	code, err := f.m.Issue(t.Context(), src, "bank.example:8443")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "https://bank.example:8443/.portcullis/callback", nil)
	ok, err := f.m.Redeem(w, r, code, "bank.example:8443", "login.example")
	if err != nil || !ok {
		t.Fatalf("Redeem: %v %v", ok, err)
	}
	id, ok, err := f.m.Current(withCookies(httptest.NewRequest(http.MethodGet, "https://bank.example:8443/", nil), w))
	if err != nil || !ok || id.Session.LoginID != src.Session.LoginID || id.Session.ID == src.Session.ID {
		t.Fatalf("session on the target host: %+v %v %v", id.Session, ok, err)
	}
	if _, err := f.m.Redeem(httptest.NewRecorder(), r, code, "bank.example:8443", "login.example"); !errors.Is(err, session.ErrBadExchange) {
		t.Fatalf("second Redeem: %v, want ErrBadExchange", err)
	}
}

func TestExchangeRefusals(t *testing.T) {
	f := newFixture(t)
	_, src := f.signIn(t, "login.example")
	issue := func() string {
		code, err := f.m.Issue(t.Context(), src, "bank.example")
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	redeem := func(code, here string) (bool, error) {
		r := httptest.NewRequest(http.MethodGet, "https://"+here+"/.portcullis/callback", nil)
		return f.m.Redeem(httptest.NewRecorder(), r, code, here, "login.example")
	}
	t.Run("malformed", func(t *testing.T) {
		for _, code := range []string{"", "abc", issue() + "x"} {
			if _, err := redeem(code, "bank.example"); !errors.Is(err, session.ErrBadExchange) {
				t.Errorf("Redeem(%q): %v, want ErrBadExchange", code, err)
			}
		}
	})
	t.Run("another host, and the code is spent", func(t *testing.T) {
		code := issue()
		for _, here := range []string{"cards.example", "bank.example:8443", "bank.example"} {
			if _, err := redeem(code, here); !errors.Is(err, session.ErrBadExchange) {
				t.Errorf("Redeem on %s: %v, want ErrBadExchange", here, err)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		code := issue()
		f.clock.add(30 * time.Second)
		if _, err := redeem(code, "bank.example"); !errors.Is(err, session.ErrBadExchange) {
			t.Errorf("Redeem after 30s: %v, want ErrBadExchange", err)
		}
		f.clock.add(-30 * time.Second)
	})
	t.Run("the issuing login ended", func(t *testing.T) {
		code := issue()
		if err := f.m.EndLogin(t.Context(), src.Session.LoginID); err != nil {
			t.Fatal(err)
		}
		if ok, err := redeem(code, "bank.example"); ok || err != nil {
			t.Errorf("Redeem after logout: %v %v, want not ok and no error", ok, err)
		}
	})
}

// Ending a login is seen at once by the instance that ended it, cache and
// all, on every host of the login.
func TestEndLoginIsImmediate(t *testing.T) {
	f := newFixture(t)
	r, id := f.signIn(t, "bank.example")
	if _, ok, _ := f.m.Current(r); !ok {
		t.Fatal("no session before logout")
	}
	if err := f.m.EndLogin(t.Context(), id.Session.LoginID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.m.Current(r); ok || err != nil {
		t.Fatalf("Current after EndLogin: %v %v", ok, err)
	}
}

func TestSessionIsBoundToItsHostAndIdleLimit(t *testing.T) {
	f := newFixture(t)
	r, _ := f.signIn(t, "bank.example")
	other := r.Clone(t.Context())
	other.Host = "cards.example"
	if _, ok, _ := f.m.Current(other); ok {
		t.Fatal("a bank.example session was accepted on cards.example")
	}
	f.clock.add(15 * time.Minute)
	if _, ok, _ := f.m.Current(r); ok {
		t.Fatal("a session idle for the whole idle timeout was accepted")
	}
}

// splitUsers hides that the users live in the same store as the sessions,
// so the manager reads a session and its user in two steps.
type splitUsers struct{ *sqlite.Store }

// A session whose user no longer exists is refused and its login ended,
// whether the store reads the two in one step or the manager in two.
func TestSessionOfAMissingUserIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		users func(db *sqlite.Store) session.Users
	}{
		{"one step", func(db *sqlite.Store) session.Users { return db }},
		{"two steps", func(db *sqlite.Store) session.Users { return splitUsers{db} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			m := session.New(session.Deps{Sessions: f.db, Records: f.db, Users: tc.users(f.db), IdleTimeout: 15 * time.Minute,
				Log: slog.New(slog.DiscardHandler), Now: f.clock.Now, Rand: rand.Reader})
			now := f.clock.Now()
			orphan := store.Session{ID: "orphan", LoginID: "login-orphan", UserID: "gone", Host: "bank.example",
				Methods: []string{"pwd"}, AuthTime: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
			if err := f.db.CreateSession(t.Context(), orphan); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := m.ByID(t.Context(), orphan.ID, "bank.example"); ok || err != nil {
				t.Fatalf("ByID: %v %v, want not ok and no error", ok, err)
			}
			if _, err := f.db.GetSession(t.Context(), orphan.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("GetSession after the refusal: %v, want ErrNotFound", err)
			}
			_, ok, err := m.ByID(t.Context(), "unknown", "bank.example")
			if ok || err != nil {
				t.Fatalf("ByID of an unknown session: %v %v, want not ok and no error", ok, err)
			}
		})
	}
}

// Without a cache every request reads the store, so a session ended
// anywhere (here: in the store, as another replica would) is refused on the
// next request.
func TestUncachedManagerSeesSessionsEndedElsewhere(t *testing.T) {
	f := newFixture(t)
	f.m = session.New(session.Deps{Sessions: f.db, Records: f.db, Users: f.db, IdleTimeout: 15 * time.Minute,
		CacheSize: -1, Log: slog.New(slog.DiscardHandler), Now: f.clock.Now, Rand: rand.Reader})
	r, id := f.signIn(t, "bank.example")
	for range 2 {
		if _, ok, err := f.m.Current(r); !ok || err != nil {
			t.Fatalf("Current: %v %v", ok, err)
		}
	}
	if err := f.db.DeleteLogin(t.Context(), id.Session.LoginID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.m.Current(r); ok || err != nil {
		t.Fatalf("Current after the login ended in the store: %v %v", ok, err)
	}
}

// LastSeen is written after the request that used the session, in a batch,
// and a write not yet made already counts for the idle limit.
func TestLastSeenIsWrittenInBatches(t *testing.T) {
	f := newFixture(t)
	r, id := f.signIn(t, "bank.example")
	f.clock.add(14 * time.Minute)
	if _, ok, err := f.m.Current(r); !ok || err != nil {
		t.Fatalf("Current after 14 minutes: %v %v", ok, err)
	}
	seen := f.clock.Now()
	// Read anew from the store, where LastSeen may not be written yet:
	// the queued write keeps the session from idling out.
	f.m.Refresh(id.Session.ID)
	f.clock.add(2 * time.Minute)
	if _, ok, err := f.m.Current(r); !ok || err != nil {
		t.Fatalf("Current 2 minutes after the last use: %v %v", ok, err)
	}
	if err := f.m.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.GetSession(t.Context(), id.Session.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastSeen.Before(seen) {
		t.Errorf("LastSeen in the store = %v, want %v or later", got.LastSeen, seen)
	}
}
