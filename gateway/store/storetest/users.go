package storetest

import (
	"context"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// newUser returns a user with every field except FailedLogins and the lock
// set, distinct per ID.
func newUser(id, username string) store.User {
	return store.User{
		ID:             id,
		Username:       username,
		DisplayName:    "Display " + id,
		PasswordHash:   "$argon2id$v=19$m=65536,t=3,p=4$c2FsdC0" + id + "$aGFzaC0" + id,
		Products:       []string{"savings", "card-" + id},
		SecurityPhone:  securityPhone(id),
		Email:          "user-" + id + "@example.com",
		CustomerID:     "customer-" + id,
		ConsentAt:      at(30*time.Second + 789*time.Millisecond).In(elsewhere),
		ConsentVersion: "consent-v" + id,
		CreatedAt:      at(time.Minute + 123*time.Millisecond),
		UpdatedAt:      at(2*time.Minute + 456*time.Millisecond).In(elsewhere),
	}
}

// securityPhone returns an E.164 number in the range kept for drama
// (+44 7700 900000 to 900999), derived from s.
func securityPhone(s string) string {
	return fmt.Sprintf("+447700900%03d", crc32.ChecksumIEEE([]byte(s))%1000)
}

// checkUser compares every field of a user read back.
func checkUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	var d diff
	check(&d, "ID", got.ID, want.ID)
	check(&d, "Username", got.Username, want.Username)
	check(&d, "DisplayName", got.DisplayName, want.DisplayName)
	check(&d, "PasswordHash", got.PasswordHash, want.PasswordHash)
	check(&d, "FailedLogins", got.FailedLogins, want.FailedLogins)
	check(&d, "StepUpFailures", got.StepUpFailures, want.StepUpFailures)
	check(&d, "Locked", got.Locked, want.Locked)
	checkTime(&d, "LockedAt", got.LockedAt, want.LockedAt)
	check(&d, "Products", strings.Join(got.Products, ","), strings.Join(want.Products, ","))
	check(&d, "SecurityPhone", got.SecurityPhone, want.SecurityPhone)
	check(&d, "Email", got.Email, want.Email)
	check(&d, "CustomerID", got.CustomerID, want.CustomerID)
	checkTime(&d, "ConsentAt", got.ConsentAt, want.ConsentAt)
	check(&d, "ConsentVersion", got.ConsentVersion, want.ConsentVersion)
	checkTime(&d, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(&d, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	d.report(t, what)
}

// lookUp checks that the user can be found, by ID and by username, exactly as
// wanted.
func lookUp(t *testing.T, s store.Users, want store.User) {
	t.Helper()
	got, err := s.UserByID(t.Context(), want.ID)
	ok(t, "UserByID("+want.ID+")", err)
	checkUser(t, "UserByID("+want.ID+")", got, want)
	got, err = s.UserByName(t.Context(), want.Username)
	ok(t, "UserByName("+want.Username+")", err)
	checkUser(t, "UserByName("+want.Username+")", got, want)
}

func userTests() []test[store.Users] {
	return []test[store.Users]{
		{"create then look up by name and by ID", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			other := newUser("u2", "bob")
			ok(t, "CreateUser", s.CreateUser(t.Context(), other))
			lookUp(t, s, u)
			lookUp(t, s, other)
		}},
		{"locked user round-trips", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			u.Locked = true
			u.LockedAt = at(3*time.Minute + 789*time.Millisecond).In(elsewhere)
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			lookUp(t, s, u)
		}},
		{"a user without a security phone or email round-trips", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			u.SecurityPhone, u.Email = "", ""
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			// One with only an email, one with only a phone.
			emailOnly := newUser("u2", "bob")
			emailOnly.SecurityPhone = ""
			phoneOnly := newUser("u3", "carol")
			phoneOnly.Email = ""
			ok(t, "CreateUser", s.CreateUser(t.Context(), emailOnly))
			ok(t, "CreateUser", s.CreateUser(t.Context(), phoneOnly))
			lookUp(t, s, u)
			lookUp(t, s, emailOnly)
			lookUp(t, s, phoneOnly)
		}},
		{"unknown user is not found", func(t *testing.T, s store.Users) {
			_, err := s.UserByID(t.Context(), "u1")
			is(t, "UserByID on an empty store", err, store.ErrNotFound)
			_, err = s.UserByName(t.Context(), "alice")
			is(t, "UserByName on an empty store", err, store.ErrNotFound)
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			_, err = s.UserByID(t.Context(), "u2")
			is(t, "UserByID(u2)", err, store.ErrNotFound)
			_, err = s.UserByName(t.Context(), "bob")
			is(t, "UserByName(bob)", err, store.ErrNotFound)
			_, err = s.UserByID(t.Context(), "alice")
			is(t, "UserByID with a username", err, store.ErrNotFound)
		}},
		{"usernames compare exactly", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			for _, name := range []string{"Alice", "ALICE", "alice ", " alice", "alic", "alice2", ""} {
				_, err := s.UserByName(t.Context(), name)
				is(t, "UserByName("+strconv.Quote(name)+")", err, store.ErrNotFound)
			}
		}},
		{"duplicate username on create conflicts", func(t *testing.T, s store.Users) {
			first := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), first))
			err := s.CreateUser(t.Context(), newUser("u2", "alice"))
			is(t, "CreateUser with a taken username", err, store.ErrConflict)
			_, err = s.UserByID(t.Context(), "u2")
			is(t, "UserByID of the rejected user", err, store.ErrNotFound)
			lookUp(t, s, first)
		}},
		{"duplicate ID on create conflicts", func(t *testing.T, s store.Users) {
			first := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), first))
			err := s.CreateUser(t.Context(), newUser("u1", "bob"))
			is(t, "CreateUser with a taken ID", err, store.ErrConflict)
			_, err = s.UserByName(t.Context(), "bob")
			is(t, "UserByName of the rejected user", err, store.ErrNotFound)
			lookUp(t, s, first)
		}},
		{"list is ordered by username", func(t *testing.T, s store.Users) {
			got, err := s.ListUsers(t.Context())
			ok(t, "ListUsers on an empty store", err)
			if len(got) != 0 {
				t.Fatalf("ListUsers on an empty store returned %d users", len(got))
			}
			// Created out of order, with IDs in a different order again.
			users := map[string]store.User{}
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
		{"a cancelled context fails reads", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.UserByName(ctx, "alice")
			fails(t, "UserByName with a cancelled context", err)
			_, err = s.UserByID(ctx, "u1")
			fails(t, "UserByID with a cancelled context", err)
			_, err = s.ListUsers(ctx)
			fails(t, "ListUsers with a cancelled context", err)
		}},
		{"a cancelled context fails writes, which have no effect", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()

			fails(t, "CreateUser with a cancelled context", s.CreateUser(ctx, newUser("u2", "bob")))
			_, err := s.UserByName(t.Context(), "bob")
			is(t, "UserByName after a cancelled CreateUser", err, store.ErrNotFound)

			_, err = s.AddLoginFailure(ctx, "u1")
			fails(t, "AddLoginFailure with a cancelled context", err)
			if n := failedLogins(t, s, "u1"); n != 0 {
				t.Fatalf("FailedLogins after a cancelled AddLoginFailure = %d, want 0", n)
			}

			fails(t, "SetProducts with a cancelled context", s.SetProducts(ctx, "u1", []string{"brokerage"}, at(time.Hour)))
			fails(t, "SetSecurityPhone with a cancelled context", s.SetSecurityPhone(ctx, "u1", "+447700900123", at(time.Hour)))
			fails(t, "SetEmail with a cancelled context", s.SetEmail(ctx, "u1", "new@example.com", at(time.Hour)))
			_, err = s.LockUser(ctx, "u1", at(time.Hour))
			fails(t, "LockUser with a cancelled context", err)
			lookUp(t, s, u)
		}},
	}
}
