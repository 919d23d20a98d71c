package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// userSessionTests check the sessions of one user taken together: the list
// a person sees of where they are signed in, and the deletion behind "log
// out everywhere" and a password change.
func userSessionTests() []test[store.Sessions] {
	// of returns a session of userID, last seen at seen.
	of := func(n byte, userID, loginID string, seen time.Duration) store.Session {
		sess := newSession(sessionID(n), loginID, "savings.example.com")
		sess.UserID = userID
		sess.LastSeen = at(seen)
		return sess
	}
	create := func(t *testing.T, s store.Sessions, sessions ...store.Session) {
		t.Helper()
		for _, sess := range sessions {
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
		}
	}
	ids := func(sessions []store.Session) []string {
		out := make([]string, 0, len(sessions))
		for _, sess := range sessions {
			out = append(out, sess.ID)
		}
		return out
	}
	return []test[store.Sessions]{
		{"a user's sessions are listed most recently seen first, whole", func(t *testing.T, s store.Sessions) {
			old := of(1, "alice", "login-1", time.Minute)
			recent := of(2, "alice", "login-2", time.Hour)
			recent.Host = "auto.example.com"
			recent.Methods = []string{"pwd", "hwk", "user"}
			recent.DeviceID = "" // a login from a device not registered
			middle := of(3, "alice", "login-1", 30*time.Minute)
			middle.LastSeen = middle.LastSeen.In(elsewhere)
			create(t, s, old, recent, middle, of(4, "bob", "login-3", 2*time.Hour))
			got, err := s.ListUserSessions(t.Context(), "alice")
			ok(t, "ListUserSessions", err)
			if len(got) != 3 {
				t.Fatalf("ListUserSessions = %d sessions, want 3: %v", len(got), ids(got))
			}
			for i, want := range []store.Session{recent, middle, old} {
				checkSession(t, "ListUserSessions", got[i], want)
			}
		}},
		{"a user without sessions lists none", func(t *testing.T, s store.Sessions) {
			create(t, s, of(1, "bob", "login-1", time.Minute))
			got, err := s.ListUserSessions(t.Context(), "alice")
			ok(t, "ListUserSessions", err)
			if len(got) != 0 {
				t.Fatalf("ListUserSessions = %v, want none", ids(got))
			}
		}},
		{"ended sessions are not listed", func(t *testing.T, s store.Sessions) {
			a, b, c := of(1, "alice", "login-1", time.Minute), of(2, "alice", "login-2", 2*time.Minute), of(3, "alice", "login-3", 3*time.Minute)
			create(t, s, a, b, c)
			ok(t, "DeleteSession", s.DeleteSession(t.Context(), a.ID))
			ok(t, "DeleteLogin", s.DeleteLogin(t.Context(), b.LoginID))
			got, err := s.ListUserSessions(t.Context(), "alice")
			ok(t, "ListUserSessions", err)
			if !slices.Equal(ids(got), []string{c.ID}) {
				t.Fatalf("ListUserSessions = %v, want only %s", ids(got), c.ID)
			}
		}},
		{"deleting a user's sessions keeps the one named and other users'", func(t *testing.T, s store.Sessions) {
			a, b, c := of(1, "alice", "login-1", time.Minute), of(2, "alice", "login-1", 2*time.Minute), of(3, "alice", "login-2", 3*time.Minute)
			other := of(4, "bob", "login-3", time.Minute)
			create(t, s, a, b, c, other)
			deleted, err := s.DeleteUserSessions(t.Context(), "alice", b.ID)
			ok(t, "DeleteUserSessions", err)
			if got := slices.Sorted(slices.Values(deleted)); !slices.Equal(got, slices.Sorted(slices.Values([]string{a.ID, c.ID}))) {
				t.Fatalf("DeleteUserSessions returned %v, want %s and %s", got, a.ID, c.ID)
			}
			sessionGone(t, s, a.ID, "after DeleteUserSessions")
			sessionGone(t, s, c.ID, "after DeleteUserSessions")
			getSession(t, s, b)
			getSession(t, s, other)
		}},
		{"deleting with nothing kept ends every session of the user", func(t *testing.T, s store.Sessions) {
			a, b := of(1, "alice", "login-1", time.Minute), of(2, "alice", "login-2", 2*time.Minute)
			other := of(3, "bob", "login-3", time.Minute)
			create(t, s, a, b, other)
			deleted, err := s.DeleteUserSessions(t.Context(), "alice", "")
			ok(t, "DeleteUserSessions", err)
			if len(deleted) != 2 {
				t.Fatalf("DeleteUserSessions returned %v, want 2 IDs", deleted)
			}
			sessionGone(t, s, a.ID, "after DeleteUserSessions")
			sessionGone(t, s, b.ID, "after DeleteUserSessions")
			getSession(t, s, other)
			deleted, err = s.DeleteUserSessions(t.Context(), "alice", "")
			ok(t, "DeleteUserSessions again", err)
			if len(deleted) != 0 {
				t.Fatalf("DeleteUserSessions again returned %v, want none", deleted)
			}
		}},
		{"a session created during the deletion is deleted and returned, or kept", func(t *testing.T, s store.Sessions) {
			// Sessions are created while the user's sessions are deleted,
			// again and again: each new one must either be returned by a
			// deletion and be gone, or be returned by none and still be
			// there, never deleted without being reported or reported
			// without being deleted.
			const rounds, perRound = 10, parallelism
			n := byte(0)
			for round := range rounds {
				var created []store.Session
				for range perRound {
					n++
					created = append(created, of(n, "alice", "login-new", time.Duration(n)*time.Second))
				}
				var (
					mu       sync.Mutex
					reported = map[string]bool{}
				)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i, sess := range created {
					wg.Go(func() {
						<-start
						if err := s.CreateSession(t.Context(), sess); err != nil {
							t.Errorf("round %d: CreateSession: %v", round, err)
						}
					})
					if i%10 == 0 {
						wg.Go(func() {
							<-start
							deleted, err := s.DeleteUserSessions(t.Context(), "alice", "")
							if err != nil {
								t.Errorf("round %d: DeleteUserSessions: %v", round, err)
								return
							}
							mu.Lock()
							defer mu.Unlock()
							for _, id := range deleted {
								if reported[id] {
									t.Errorf("round %d: session %s deleted twice", round, id)
								}
								reported[id] = true
							}
						})
					}
				}
				close(start)
				wg.Wait()
				if t.Failed() {
					t.FailNow()
				}
				for _, sess := range created {
					_, err := s.GetSession(t.Context(), sess.ID)
					switch {
					case reported[sess.ID] && err == nil:
						t.Fatalf("round %d: session %s was reported deleted but is still there", round, sess.ID)
					case !reported[sess.ID] && err != nil:
						t.Fatalf("round %d: session %s was not reported deleted but is gone: %v", round, sess.ID, err)
					}
				}
				// What survived is cleared for the next round.
				_, err := s.DeleteUserSessions(t.Context(), "alice", "")
				ok(t, "DeleteUserSessions", err)
			}
		}},
		{"a cancelled context fails the list and the deletion, which deletes nothing", func(t *testing.T, s store.Sessions) {
			a := of(1, "alice", "login-1", time.Minute)
			create(t, s, a)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.ListUserSessions(ctx, "alice")
			fails(t, "ListUserSessions with a cancelled context", err)
			_, err = s.DeleteUserSessions(ctx, "alice", "")
			fails(t, "DeleteUserSessions with a cancelled context", err)
			getSession(t, s, a)
		}},
	}
}
