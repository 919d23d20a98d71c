package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// newSession returns a session with every field set, distinct per ID; the
// device, like the user, is the login's.
func newSession(id, loginID, host string) store.Session {
	return store.Session{
		ID:        id,
		LoginID:   loginID,
		UserID:    "user-" + loginID,
		Host:      host,
		Methods:   []string{"pwd", "otp"},
		AuthTime:  at(7*time.Second + 1*time.Millisecond),
		LastSeen:  at(8*time.Second + 20*time.Millisecond).In(elsewhere),
		ExpiresAt: at(12 * time.Hour),
		DeviceID:  loginDeviceID(loginID),
	}
}

// loginDeviceID returns the ID of the device a login was made from, shaped
// like deviceID's.
func loginDeviceID(loginID string) string {
	sum := sha256.Sum256([]byte("device-" + loginID))
	return hex.EncodeToString(sum[:])
}

// sessionID returns a session ID shaped like the gateway's: the hex SHA-256
// of a cookie token.
func sessionID(n byte) string {
	sum := sha256.Sum256([]byte{'t', 'o', 'k', 'e', 'n', n})
	return hex.EncodeToString(sum[:])
}

// checkSession compares every field of a session read back.
func checkSession(t *testing.T, what string, got, want store.Session) {
	t.Helper()
	var d diff
	check(&d, "ID", got.ID, want.ID)
	check(&d, "LoginID", got.LoginID, want.LoginID)
	check(&d, "UserID", got.UserID, want.UserID)
	check(&d, "Host", got.Host, want.Host)
	if !slices.Equal(got.Methods, want.Methods) {
		d = append(d, fmt.Sprintf("Methods = %q, want %q", got.Methods, want.Methods))
	}
	checkTime(&d, "AuthTime", got.AuthTime, want.AuthTime)
	checkTime(&d, "LastSeen", got.LastSeen, want.LastSeen)
	checkTime(&d, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	check(&d, "DeviceID", got.DeviceID, want.DeviceID)
	d.report(t, what)
}

// getSession checks that the session reads back exactly as wanted.
func getSession(t *testing.T, s store.Sessions, want store.Session) {
	t.Helper()
	got, err := s.GetSession(t.Context(), want.ID)
	ok(t, "GetSession", err)
	checkSession(t, "GetSession", got, want)
}

// sessionGone checks that the session is not found.
func sessionGone(t *testing.T, s store.Sessions, id, why string) {
	t.Helper()
	_, err := s.GetSession(t.Context(), id)
	is(t, "GetSession "+why, err, store.ErrNotFound)
}

func sessionTests() []test[store.Sessions] {
	return []test[store.Sessions]{
		{"create then get", func(t *testing.T, s store.Sessions) {
			a := newSession(sessionID(1), "login-1", "savings.example.com")
			b := newSession(sessionID(2), "login-1", "brokerage.example.com")
			b.Methods = []string{"pwd", "hwk", "user"}
			ok(t, "CreateSession", s.CreateSession(t.Context(), a))
			ok(t, "CreateSession", s.CreateSession(t.Context(), b))
			getSession(t, s, a)
			getSession(t, s, b)
		}},
		{"methods round-trip in order", func(t *testing.T, s store.Sessions) {
			for i, methods := range [][]string{
				{"pwd"},
				{"otp", "pwd", "sms"},
				{"pwd", "pwd"},
			} {
				sess := newSession(sessionID(byte(i)), "login-1", "savings.example.com")
				sess.Methods = methods
				ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
				getSession(t, s, sess)
			}
		}},
		{"no methods round-trip as empty", func(t *testing.T, s store.Sessions) {
			sess := newSession(sessionID(1), "login-1", "savings.example.com")
			sess.Methods = nil
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			got, err := s.GetSession(t.Context(), sess.ID)
			ok(t, "GetSession", err)
			if len(got.Methods) != 0 {
				t.Fatalf("Methods = %v, want none", got.Methods)
			}
		}},
		{"the device round-trips, and no device as empty", func(t *testing.T, s store.Sessions) {
			registered := newSession(sessionID(1), "login-1", "savings.example.com")
			unregistered := newSession(sessionID(2), "login-2", "savings.example.com")
			unregistered.DeviceID = ""
			sameLogin := newSession(sessionID(3), "login-1", "cards.example.com")
			for _, sess := range []store.Session{registered, unregistered, sameLogin} {
				ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			}
			getSession(t, s, registered)
			getSession(t, s, unregistered)
			getSession(t, s, sameLogin)
		}},
		{"unknown session is not found", func(t *testing.T, s store.Sessions) {
			sessionGone(t, s, sessionID(1), "on an empty store")
			ok(t, "CreateSession", s.CreateSession(t.Context(), newSession(sessionID(1), "login-1", "savings.example.com")))
			sessionGone(t, s, sessionID(2), "of another ID")
			sessionGone(t, s, "login-1", "by login ID")
		}},
		{"duplicate ID conflicts", func(t *testing.T, s store.Sessions) {
			first := newSession(sessionID(1), "login-1", "savings.example.com")
			ok(t, "CreateSession", s.CreateSession(t.Context(), first))
			err := s.CreateSession(t.Context(), newSession(sessionID(1), "login-2", "cards.example.com"))
			is(t, "CreateSession with a taken ID", err, store.ErrConflict)
			getSession(t, s, first)
		}},
		{"touch updates last seen only", func(t *testing.T, s store.Sessions) {
			sess := newSession(sessionID(1), "login-1", "savings.example.com")
			other := newSession(sessionID(2), "login-1", "cards.example.com")
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			ok(t, "CreateSession", s.CreateSession(t.Context(), other))
			for _, seen := range []time.Time{
				at(5*time.Minute + 5*time.Millisecond),
				at(47*time.Minute + 999*time.Millisecond).In(elsewhere),
			} {
				ok(t, "TouchSession", s.TouchSession(t.Context(), sess.ID, seen))
				sess.LastSeen = seen
				getSession(t, s, sess)
			}
			getSession(t, s, other)
		}},
		{"delete ends one session", func(t *testing.T, s store.Sessions) {
			sess := newSession(sessionID(1), "login-1", "savings.example.com")
			other := newSession(sessionID(2), "login-1", "cards.example.com")
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			ok(t, "CreateSession", s.CreateSession(t.Context(), other))
			ok(t, "DeleteSession", s.DeleteSession(t.Context(), sess.ID))
			sessionGone(t, s, sess.ID, "after DeleteSession")
			getSession(t, s, other)
		}},
		{"delete login ends every session of that login", func(t *testing.T, s store.Sessions) {
			login1 := []store.Session{
				newSession(sessionID(1), "login-1", "savings.example.com"),
				newSession(sessionID(2), "login-1", "brokerage.example.com"),
				newSession(sessionID(3), "login-1", "cards.example.com"),
			}
			login2 := []store.Session{
				newSession(sessionID(4), "login-2", "savings.example.com"),
				newSession(sessionID(5), "login-2", "auto.example.com"),
			}
			for _, sess := range append(slices.Clone(login1), login2...) {
				ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			}
			ok(t, "DeleteLogin", s.DeleteLogin(t.Context(), "login-1"))
			for _, sess := range login1 {
				sessionGone(t, s, sess.ID, "after DeleteLogin of its login")
			}
			for _, sess := range login2 {
				getSession(t, s, sess)
			}
		}},
		{"a cancelled context fails reads", func(t *testing.T, s store.Sessions) {
			ok(t, "CreateSession", s.CreateSession(t.Context(), newSession(sessionID(1), "login-1", "savings.example.com")))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.GetSession(ctx, sessionID(1))
			fails(t, "GetSession with a cancelled context", err)
		}},
		{"a cancelled context fails writes, which have no effect", func(t *testing.T, s store.Sessions) {
			sess := newSession(sessionID(1), "login-1", "savings.example.com")
			ok(t, "CreateSession", s.CreateSession(t.Context(), sess))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			fails(t, "CreateSession with a cancelled context",
				s.CreateSession(ctx, newSession(sessionID(2), "login-2", "savings.example.com")))
			sessionGone(t, s, sessionID(2), "after a cancelled CreateSession")
			fails(t, "TouchSession with a cancelled context", s.TouchSession(ctx, sess.ID, at(time.Hour)))
			fails(t, "DeleteSession with a cancelled context", s.DeleteSession(ctx, sess.ID))
			fails(t, "DeleteLogin with a cancelled context", s.DeleteLogin(ctx, sess.LoginID))
			getSession(t, s, sess)
		}},
	}
}
