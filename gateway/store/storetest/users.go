package storetest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
)

// newUser returns a user with every field except FailedLogins and the lock
// set, distinct per ID.
func newUser(id, username string) gateway.User {
	return gateway.User{
		ID:           id,
		Username:     username,
		DisplayName:  "Display " + id,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdC0" + id + "$aGFzaC0" + id,
		Products:     []string{"savings", "card-" + id},
		CreatedAt:    at(time.Minute + 123*time.Millisecond),
		UpdatedAt:    at(2*time.Minute + 456*time.Millisecond).In(elsewhere),
	}
}

// checkUser compares every field of a user read back.
func checkUser(t *testing.T, what string, got, want gateway.User) {
	t.Helper()
	var d diff
	check(&d, "ID", got.ID, want.ID)
	check(&d, "Username", got.Username, want.Username)
	check(&d, "DisplayName", got.DisplayName, want.DisplayName)
	check(&d, "PasswordHash", got.PasswordHash, want.PasswordHash)
	check(&d, "FailedLogins", got.FailedLogins, want.FailedLogins)
	check(&d, "Locked", got.Locked, want.Locked)
	checkTime(&d, "LockedAt", got.LockedAt, want.LockedAt)
	check(&d, "Products", strings.Join(got.Products, ","), strings.Join(want.Products, ","))
	checkTime(&d, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(&d, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	d.report(t, what)
}

// lookUp checks that the user can be found, by ID and by username, exactly as
// wanted.
func lookUp(t *testing.T, s gateway.Store, want gateway.User) {
	t.Helper()
	got, err := s.UserByID(t.Context(), want.ID)
	ok(t, "UserByID("+want.ID+")", err)
	checkUser(t, "UserByID("+want.ID+")", got, want)
	got, err = s.UserByName(t.Context(), want.Username)
	ok(t, "UserByName("+want.Username+")", err)
	checkUser(t, "UserByName("+want.Username+")", got, want)
}

func userTests() []test {
	return []test{
		{"create then look up by name and by ID", func(t *testing.T, s gateway.Store) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			other := newUser("u2", "bob")
			ok(t, "CreateUser", s.CreateUser(t.Context(), other))
			lookUp(t, s, u)
			lookUp(t, s, other)
		}},
		{"locked user round-trips", func(t *testing.T, s gateway.Store) {
			u := newUser("u1", "alice")
			u.Locked = true
			u.LockedAt = at(3*time.Minute + 789*time.Millisecond).In(elsewhere)
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			lookUp(t, s, u)
		}},
		{"unknown user is not found", func(t *testing.T, s gateway.Store) {
			_, err := s.UserByID(t.Context(), "u1")
			is(t, "UserByID on an empty store", err, gateway.ErrNotFound)
			_, err = s.UserByName(t.Context(), "alice")
			is(t, "UserByName on an empty store", err, gateway.ErrNotFound)
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			_, err = s.UserByID(t.Context(), "u2")
			is(t, "UserByID(u2)", err, gateway.ErrNotFound)
			_, err = s.UserByName(t.Context(), "bob")
			is(t, "UserByName(bob)", err, gateway.ErrNotFound)
			_, err = s.UserByID(t.Context(), "alice")
			is(t, "UserByID with a username", err, gateway.ErrNotFound)
		}},
		{"usernames compare exactly", func(t *testing.T, s gateway.Store) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			for _, name := range []string{"Alice", "ALICE", "alice ", " alice", "alic", "alice2", ""} {
				_, err := s.UserByName(t.Context(), name)
				is(t, "UserByName("+strconv.Quote(name)+")", err, gateway.ErrNotFound)
			}
		}},
		{"duplicate username on create conflicts", func(t *testing.T, s gateway.Store) {
			first := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), first))
			err := s.CreateUser(t.Context(), newUser("u2", "alice"))
			is(t, "CreateUser with a taken username", err, gateway.ErrConflict)
			_, err = s.UserByID(t.Context(), "u2")
			is(t, "UserByID of the rejected user", err, gateway.ErrNotFound)
			lookUp(t, s, first)
		}},
		{"duplicate ID on create conflicts", func(t *testing.T, s gateway.Store) {
			first := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), first))
			err := s.CreateUser(t.Context(), newUser("u1", "bob"))
			is(t, "CreateUser with a taken ID", err, gateway.ErrConflict)
			_, err = s.UserByName(t.Context(), "bob")
			is(t, "UserByName of the rejected user", err, gateway.ErrNotFound)
			lookUp(t, s, first)
		}},
		{"update replaces every field", func(t *testing.T, s gateway.Store) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			u := gateway.User{
				ID:           "u1",
				Username:     "alice.smith",
				DisplayName:  "Alice Smith",
				PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$bmV3$bmV3",
				Locked:       true,
				LockedAt:     at(10*time.Minute + time.Millisecond),
				Products:     []string{"savings", "carloans", "brokerage"},
				CreatedAt:    at(-time.Hour),
				UpdatedAt:    at(11*time.Minute + 2*time.Millisecond).In(elsewhere),
			}
			ok(t, "UpdateUser", s.UpdateUser(t.Context(), u))
			lookUp(t, s, u)
			_, err := s.UserByName(t.Context(), "alice")
			is(t, "UserByName of the old username", err, gateway.ErrNotFound)

			// Unlocking clears the lock time back to zero; products can
			// all go.
			u.Locked, u.LockedAt, u.Products = false, time.Time{}, nil
			ok(t, "UpdateUser", s.UpdateUser(t.Context(), u))
			lookUp(t, s, u)
		}},
		{"update keeping the username succeeds", func(t *testing.T, s gateway.Store) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			u.DisplayName = "Alice Again"
			ok(t, "UpdateUser", s.UpdateUser(t.Context(), u))
			lookUp(t, s, u)
		}},
		{"update onto another user's username conflicts", func(t *testing.T, s gateway.Store) {
			alice, bob := newUser("u1", "alice"), newUser("u2", "bob")
			ok(t, "CreateUser", s.CreateUser(t.Context(), alice))
			ok(t, "CreateUser", s.CreateUser(t.Context(), bob))
			renamed := bob
			renamed.Username = "alice"
			renamed.DisplayName = "Not Alice"
			err := s.UpdateUser(t.Context(), renamed)
			is(t, "UpdateUser onto a taken username", err, gateway.ErrConflict)
			lookUp(t, s, alice)
			lookUp(t, s, bob)
		}},
		{"update of an unknown user is not found", func(t *testing.T, s gateway.Store) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			err := s.UpdateUser(t.Context(), newUser("u2", "bob"))
			is(t, "UpdateUser(u2)", err, gateway.ErrNotFound)
			_, err = s.UserByName(t.Context(), "bob")
			is(t, "UserByName after a failed update", err, gateway.ErrNotFound)
		}},
		{"update leaves failed logins alone", func(t *testing.T, s gateway.Store) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			for range 2 {
				_, err := s.AddLoginFailure(t.Context(), "u1")
				ok(t, "AddLoginFailure", err)
			}
			u.DisplayName = "Changed"
			u.FailedLogins = 99
			ok(t, "UpdateUser", s.UpdateUser(t.Context(), u))
			u.FailedLogins = 2
			lookUp(t, s, u)

			u.FailedLogins = 0
			ok(t, "UpdateUser", s.UpdateUser(t.Context(), u))
			u.FailedLogins = 2
			lookUp(t, s, u)
		}},
		{"list is ordered by username", func(t *testing.T, s gateway.Store) {
			got, err := s.ListUsers(t.Context())
			ok(t, "ListUsers on an empty store", err)
			if len(got) != 0 {
				t.Fatalf("ListUsers on an empty store returned %d users", len(got))
			}
			// Created out of order, with IDs in a different order again.
			users := map[string]gateway.User{}
			for i, name := range []string{"carol", "alice2", "bob", "alice", "dave"} {
				u := newUser(fmt.Sprintf("u%d", 9-i), name)
				users[name] = u
				ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			}
			got, err = s.ListUsers(t.Context())
			ok(t, "ListUsers", err)
			want := []string{"alice", "alice2", "bob", "carol", "dave"}
			if len(got) != len(want) {
				t.Fatalf("ListUsers returned %d users, want %d", len(got), len(want))
			}
			for i, name := range want {
				checkUser(t, "ListUsers["+name+"]", got[i], users[name])
			}
		}},
	}
}
