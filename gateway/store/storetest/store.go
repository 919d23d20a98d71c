package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
)

func storeTests() []test {
	return []test{
		{"ping", func(t *testing.T, s gateway.Store) {
			ok(t, "Ping", s.Ping(t.Context()))
		}},
		{"sweep removes what has expired and keeps the rest", func(t *testing.T, s gateway.Store) {
			old := newSession(sessionID(1), "login-1", "savings.example.com")
			old.ExpiresAt = base.Add(time.Hour)
			live := newSession(sessionID(2), "login-2", "savings.example.com")
			live.ExpiresAt = base.Add(3 * time.Hour)
			ok(t, "CreateSession", s.CreateSession(t.Context(), old))
			ok(t, "CreateSession", s.CreateSession(t.Context(), live))
			ok(t, "Sweep", s.Sweep(t.Context(), base.Add(2*time.Hour)))
			_, err := s.GetSession(t.Context(), sessionID(1))
			is(t, "GetSession of a swept session", err, gateway.ErrNotFound)
			_, err = s.GetSession(t.Context(), sessionID(2))
			ok(t, "GetSession of a live session", err)
		}},
		{"a cancelled context fails reads", func(t *testing.T, s gateway.Store) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			ok(t, "CreateSession", s.CreateSession(t.Context(), newSession(sessionID(1), "login-1", "savings.example.com")))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.UserByName(ctx, "alice")
			fails(t, "UserByName with a cancelled context", err)
			_, err = s.UserByID(ctx, "u1")
			fails(t, "UserByID with a cancelled context", err)
			_, err = s.GetSession(ctx, sessionID(1))
			fails(t, "GetSession with a cancelled context", err)
			_, err = s.SigningKeys(ctx)
			fails(t, "SigningKeys with a cancelled context", err)
		}},
		{"a cancelled context fails writes, which have no effect", func(t *testing.T, s gateway.Store) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			ok(t, "PutGrant", s.PutGrant(t.Context(), "g1", newGrant("brokerage.example.com")))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()

			fails(t, "CreateUser with a cancelled context", s.CreateUser(ctx, newUser("u2", "bob")))
			_, err := s.UserByName(t.Context(), "bob")
			is(t, "UserByName after a cancelled CreateUser", err, gateway.ErrNotFound)

			_, err = s.AddLoginFailure(ctx, "u1")
			fails(t, "AddLoginFailure with a cancelled context", err)
			if n := failedLogins(t, s, "u1"); n != 0 {
				t.Fatalf("FailedLogins after a cancelled AddLoginFailure = %d, want 0", n)
			}

			_, err = s.TakeGrant(ctx, "g1", at(0))
			fails(t, "TakeGrant with a cancelled context", err)
			takeGrant(t, s, "g1", at(0), newGrant("brokerage.example.com"))

			fails(t, "AddSigningKey with a cancelled context", s.AddSigningKey(ctx, newKey("k1", at(0))))
			signingKeys(t, s)

			_, err = s.AddHit(ctx, "ip:192.0.2.1", time.Minute, at(0))
			fails(t, "AddHit with a cancelled context", err)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
		}},
	}
}
