package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// SessionUserStore is what RunSessionUsers checks: the optional one-step
// read of a session with its user, beside the parts it reads.
type SessionUserStore interface {
	store.Users
	store.Sessions
	store.SessionUsers
}

// RunSessionUsers checks store.SessionUsers: a session comes back with
// exactly the user UserByID would return, a session without a user with the
// zero User, and an unknown session is ErrNotFound. open returns a new,
// empty store.
func RunSessionUsers(t *testing.T, open func(t *testing.T) SessionUserStore) {
	t.Helper()
	run(t, open, group[SessionUserStore]{"SessionUsers", sessionUserTests()})
}

// getSessionUser checks that the session and its user read back exactly as
// wanted.
func getSessionUser(t *testing.T, s SessionUserStore, sess store.Session, user store.User) {
	t.Helper()
	gotSess, gotUser, err := s.GetSessionUser(t.Context(), sess.ID)
	ok(t, "GetSessionUser", err)
	checkSession(t, "GetSessionUser session", gotSess, sess)
	checkUser(t, "GetSessionUser user", gotUser, user)
}

func sessionUserTests() []test[SessionUserStore] {
	// userSession returns a session of the user.
	userSession := func(n byte, loginID string, u store.User) store.Session {
		sess := newSession(sessionID(n), loginID, "savings.example.com")
		sess.UserID = u.ID
		return sess
	}
	return []test[SessionUserStore]{
		{"a session reads back with its user", func(t *testing.T, s SessionUserStore) {
			alice, bob := newUser("u1", "alice"), newUser("u2", "bob")
			bob.Products = nil
			ok(t, "CreateUser", s.CreateUser(t.Context(), alice))
			ok(t, "CreateUser", s.CreateUser(t.Context(), bob))
			a, b := userSession(1, "login-1", alice), userSession(2, "login-2", bob)
			b.Methods = nil
			ok(t, "CreateSession", s.CreateSession(t.Context(), a))
			ok(t, "CreateSession", s.CreateSession(t.Context(), b))
			getSessionUser(t, s, a, alice)
			gotSess, gotUser, err := s.GetSessionUser(t.Context(), b.ID)
			ok(t, "GetSessionUser", err)
			if len(gotSess.Methods) != 0 || len(gotUser.Products) != 0 {
				t.Fatalf("Methods = %v, Products = %v, want none", gotSess.Methods, gotUser.Products)
			}
		}},
		{"the session's device, or none, comes with the user", func(t *testing.T, s SessionUserStore) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			registered, unregistered := userSession(1, "login-1", u), userSession(2, "login-2", u)
			unregistered.DeviceID = ""
			ok(t, "CreateSession", s.CreateSession(t.Context(), registered))
			ok(t, "CreateSession", s.CreateSession(t.Context(), unregistered))
			getSessionUser(t, s, registered, u)
			getSessionUser(t, s, unregistered, u)
		}},
		{"changes to the session and the user are read", func(t *testing.T, s SessionUserStore) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			sess := userSession(1, "login-1", u)
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			seen := at(time.Hour + 7*time.Millisecond)
			ok(t, "TouchSession", s.TouchSession(t.Context(), sess.ID, seen))
			sess.LastSeen = seen
			locked := at(2 * time.Hour)
			_, err := s.LockUser(t.Context(), u.ID, locked)
			ok(t, "LockUser", err)
			u, err = s.UserByID(t.Context(), u.ID)
			ok(t, "UserByID", err)
			getSessionUser(t, s, sess, u)
		}},
		{"a session without its user comes with the zero user", func(t *testing.T, s SessionUserStore) {
			sess := newSession(sessionID(1), "login-1", "savings.example.com")
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("other", "bob")))
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			getSessionUser(t, s, sess, store.User{})
		}},
		{"an unknown or ended session is not found", func(t *testing.T, s SessionUserStore) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			_, _, err := s.GetSessionUser(t.Context(), sessionID(1))
			is(t, "GetSessionUser on an empty store", err, store.ErrNotFound)
			a, b := userSession(1, "login-1", u), userSession(2, "login-2", u)
			ok(t, "CreateSession", s.CreateSession(t.Context(), a))
			ok(t, "CreateSession", s.CreateSession(t.Context(), b))
			_, _, err = s.GetSessionUser(t.Context(), u.ID)
			is(t, "GetSessionUser by user ID", err, store.ErrNotFound)
			ok(t, "DeleteSession", s.DeleteSession(t.Context(), a.ID))
			_, _, err = s.GetSessionUser(t.Context(), a.ID)
			is(t, "GetSessionUser after DeleteSession", err, store.ErrNotFound)
			ok(t, "DeleteLogin", s.DeleteLogin(t.Context(), b.LoginID))
			_, _, err = s.GetSessionUser(t.Context(), b.ID)
			is(t, "GetSessionUser after DeleteLogin", err, store.ErrNotFound)
		}},
		{"a cancelled context fails the read", func(t *testing.T, s SessionUserStore) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			ok(t, "CreateSession", s.CreateSession(t.Context(), userSession(1, "login-1", u)))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, _, err := s.GetSessionUser(ctx, sessionID(1))
			fails(t, "GetSessionUser with a cancelled context", err)
		}},
	}
}
