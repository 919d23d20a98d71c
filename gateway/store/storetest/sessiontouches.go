package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// SessionTouchStore is what RunSessionTouches checks: the optional batch of
// LastSeen writes, beside the sessions it writes.
type SessionTouchStore interface {
	store.Sessions
	store.SessionTouches
}

// RunSessionTouches checks store.SessionTouches: every session named gets
// its own LastSeen and nothing else changes, unknown sessions are skipped,
// and a cancelled write has no effect. open returns a new, empty store.
func RunSessionTouches(t *testing.T, open func(t *testing.T) SessionTouchStore) {
	t.Helper()
	run(t, open, group[SessionTouchStore]{"SessionTouches", sessionTouchTests()})
}

func sessionTouchTests() []test[SessionTouchStore] {
	return []test[SessionTouchStore]{
		{"each session named gets its own last seen", func(t *testing.T, s SessionTouchStore) {
			a := newSession(sessionID(1), "login-1", "savings.example.com")
			b := newSession(sessionID(2), "login-1", "cards.example.com")
			other := newSession(sessionID(3), "login-2", "savings.example.com")
			for _, sess := range []store.Session{a, b, other} {
				ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			}
			a.LastSeen = at(5*time.Minute + 5*time.Millisecond)
			b.LastSeen = at(47*time.Minute + 999*time.Millisecond).In(elsewhere)
			ok(t, "TouchSessions", s.TouchSessions(t.Context(), map[string]time.Time{a.ID: a.LastSeen, b.ID: b.LastSeen}))
			getSession(t, s, a)
			getSession(t, s, b)
			getSession(t, s, other)
		}},
		{"unknown sessions are skipped", func(t *testing.T, s SessionTouchStore) {
			sess := newSession(sessionID(1), "login-1", "savings.example.com")
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			sess.LastSeen = at(time.Hour)
			ok(t, "TouchSessions", s.TouchSessions(t.Context(), map[string]time.Time{sessionID(9): at(time.Hour), sess.ID: sess.LastSeen}))
			getSession(t, s, sess)
			sessionGone(t, s, sessionID(9), "after TouchSessions named it")
			ok(t, "TouchSessions with none", s.TouchSessions(t.Context(), nil))
		}},
		{"a cancelled context fails the write, which has no effect", func(t *testing.T, s SessionTouchStore) {
			sess := newSession(sessionID(1), "login-1", "savings.example.com")
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			fails(t, "TouchSessions with a cancelled context", s.TouchSessions(ctx, map[string]time.Time{sess.ID: at(time.Hour)}))
			getSession(t, s, sess)
		}},
	}
}
