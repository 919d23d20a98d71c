package storetest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

func updateTests() []test[store.Users] {
	return []test[store.Users]{
		{"each update changes its own field and UpdatedAt only", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			other := newUser("u2", "bob")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			ok(t, "CreateUser", s.CreateUser(t.Context(), other))

			u.Username, u.UpdatedAt = "alice.smith", at(10*time.Minute+time.Millisecond).In(elsewhere)
			ok(t, "SetUsername", s.SetUsername(t.Context(), u.ID, u.Username, u.UpdatedAt))
			lookUp(t, s, u)
			_, err := s.UserByName(t.Context(), "alice")
			is(t, "UserByName of the old username", err, store.ErrNotFound)

			u.DisplayName, u.UpdatedAt = "Alice Smith", at(11*time.Minute+2*time.Millisecond)
			ok(t, "SetDisplayName", s.SetDisplayName(t.Context(), u.ID, u.DisplayName, u.UpdatedAt))
			lookUp(t, s, u)

			u.Products, u.UpdatedAt = []string{"savings", "carloans", "brokerage"}, at(12*time.Minute+3*time.Millisecond)
			ok(t, "SetProducts", s.SetProducts(t.Context(), u.ID, u.Products, u.UpdatedAt))
			lookUp(t, s, u)

			u.PasswordHash, u.UpdatedAt = "$argon2id$v=19$m=65536,t=3,p=4$bmV3$bmV3", at(13*time.Minute+4*time.Millisecond)
			ok(t, "SetPasswordHash", s.SetPasswordHash(t.Context(), u.ID, u.PasswordHash, u.UpdatedAt))
			lookUp(t, s, u)

			// Products can all go.
			u.Products, u.UpdatedAt = nil, at(14*time.Minute+5*time.Millisecond)
			ok(t, "SetProducts(nil)", s.SetProducts(t.Context(), u.ID, nil, u.UpdatedAt))
			lookUp(t, s, u)
			u.UpdatedAt = at(15 * time.Minute)
			ok(t, "SetProducts(empty)", s.SetProducts(t.Context(), u.ID, []string{}, u.UpdatedAt))
			lookUp(t, s, u)

			u.SecurityPhone, u.UpdatedAt = "+447700900555", at(16*time.Minute+6*time.Millisecond).In(elsewhere)
			ok(t, "SetSecurityPhone", s.SetSecurityPhone(t.Context(), u.ID, u.SecurityPhone, u.UpdatedAt))
			lookUp(t, s, u)

			u.Email, u.UpdatedAt = "alice.smith+alerts@example.org", at(17*time.Minute+7*time.Millisecond)
			ok(t, "SetEmail", s.SetEmail(t.Context(), u.ID, u.Email, u.UpdatedAt))
			lookUp(t, s, u)

			// The phone and the email can go.
			u.SecurityPhone, u.UpdatedAt = "", at(18*time.Minute+8*time.Millisecond)
			ok(t, "SetSecurityPhone(empty)", s.SetSecurityPhone(t.Context(), u.ID, "", u.UpdatedAt))
			lookUp(t, s, u)
			u.Email, u.UpdatedAt = "", at(19*time.Minute+9*time.Millisecond)
			ok(t, "SetEmail(empty)", s.SetEmail(t.Context(), u.ID, "", u.UpdatedAt))
			lookUp(t, s, u)

			lookUp(t, s, other)
		}},
		{"renaming to the user's own username succeeds", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			u.UpdatedAt = at(10 * time.Minute)
			ok(t, "SetUsername to the same name", s.SetUsername(t.Context(), "u1", "alice", u.UpdatedAt))
			lookUp(t, s, u)
		}},
		{"renaming onto another user's username conflicts", func(t *testing.T, s store.Users) {
			alice, bob := newUser("u1", "alice"), newUser("u2", "bob")
			ok(t, "CreateUser", s.CreateUser(t.Context(), alice))
			ok(t, "CreateUser", s.CreateUser(t.Context(), bob))
			err := s.SetUsername(t.Context(), "u2", "alice", at(10*time.Minute))
			is(t, "SetUsername onto a taken username", err, store.ErrConflict)
			lookUp(t, s, alice)
			lookUp(t, s, bob)
		}},
		{"updates of an unknown user are not found", func(t *testing.T, s store.Users) {
			alice := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), alice))
			is(t, "SetUsername(u2)", s.SetUsername(t.Context(), "u2", "bob", at(0)), store.ErrNotFound)
			is(t, "SetDisplayName(u2)", s.SetDisplayName(t.Context(), "u2", "Bob", at(0)), store.ErrNotFound)
			is(t, "SetProducts(u2)", s.SetProducts(t.Context(), "u2", []string{"savings"}, at(0)), store.ErrNotFound)
			is(t, "SetPasswordHash(u2)", s.SetPasswordHash(t.Context(), "u2", "x", at(0)), store.ErrNotFound)
			is(t, "SetSecurityPhone(u2)", s.SetSecurityPhone(t.Context(), "u2", "+447700900555", at(0)), store.ErrNotFound)
			is(t, "SetEmail(u2)", s.SetEmail(t.Context(), "u2", "bob@example.com", at(0)), store.ErrNotFound)
			_, err := s.UnlockUser(t.Context(), "u2", at(0))
			is(t, "UnlockUser(u2)", err, store.ErrNotFound)
			is(t, "ResetLoginFailures(u2)", s.ResetLoginFailures(t.Context(), "u2"), store.ErrNotFound)
			_, err = s.UserByName(t.Context(), "bob")
			is(t, "UserByName after failed updates", err, store.ErrNotFound)
			_, err = s.UserByID(t.Context(), "u2")
			is(t, "UserByID after failed updates", err, store.ErrNotFound)
			lookUp(t, s, alice)
		}},
		{"updates leave failed logins and the lock alone", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			addFailures(t, s, "u1", 2)
			_, err := s.LockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "LockUser", err)
			u.FailedLogins, u.Locked, u.LockedAt = 2, true, at(time.Minute)

			u.Username, u.UpdatedAt = "alice.smith", at(2*time.Minute)
			ok(t, "SetUsername", s.SetUsername(t.Context(), "u1", u.Username, u.UpdatedAt))
			lookUp(t, s, u)
			u.DisplayName, u.UpdatedAt = "Alice Smith", at(3*time.Minute)
			ok(t, "SetDisplayName", s.SetDisplayName(t.Context(), "u1", u.DisplayName, u.UpdatedAt))
			lookUp(t, s, u)
			u.Products, u.UpdatedAt = []string{"brokerage"}, at(4*time.Minute)
			ok(t, "SetProducts", s.SetProducts(t.Context(), "u1", u.Products, u.UpdatedAt))
			lookUp(t, s, u)
			u.SecurityPhone, u.UpdatedAt = "+447700900555", at(5*time.Minute)
			ok(t, "SetSecurityPhone", s.SetSecurityPhone(t.Context(), "u1", u.SecurityPhone, u.UpdatedAt))
			lookUp(t, s, u)
			u.Email, u.UpdatedAt = "alice.smith@example.org", at(6*time.Minute)
			ok(t, "SetEmail", s.SetEmail(t.Context(), "u1", u.Email, u.UpdatedAt))
			lookUp(t, s, u)
		}},
		{"concurrent updates, failures and locks all land", func(t *testing.T, s store.Users) {
			// Each goroutine makes one kind of change to the same user.
			// Whatever the interleaving, every failure counts, the lock
			// stays, and the products, display name, security phone and
			// email are ones that were written: no update is a
			// read-modify-write of the whole profile.
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			when := at(time.Hour)
			type result struct {
				op      string
				locked  bool
				written string
			}
			var turn atomic.Int32
			results, errs := concurrently(6*parallelism, func() (result, error) {
				n := turn.Add(1)
				switch n % 6 {
				case 0:
					_, err := s.AddLoginFailure(t.Context(), "u1")
					return result{op: "AddLoginFailure"}, err
				case 1:
					locked, err := s.LockUser(t.Context(), "u1", when)
					return result{op: "LockUser", locked: locked}, err
				case 2:
					p := []string{"savings", fmt.Sprintf("product-%d", n)}
					return result{op: "SetProducts", written: strings.Join(p, ",")}, s.SetProducts(t.Context(), "u1", p, when)
				case 3:
					phone := fmt.Sprintf("+447700900%03d", n)
					return result{op: "SetSecurityPhone", written: phone}, s.SetSecurityPhone(t.Context(), "u1", phone, when)
				case 4:
					email := fmt.Sprintf("alice+%d@example.com", n)
					return result{op: "SetEmail", written: email}, s.SetEmail(t.Context(), "u1", email, when)
				default:
					name := fmt.Sprintf("Alice %d", n)
					return result{op: "SetDisplayName", written: name}, s.SetDisplayName(t.Context(), "u1", name, when)
				}
			})
			locks := 0
			products, names, phones, emails := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
			for i, r := range results {
				ok(t, r.op, errs[i])
				switch r.op {
				case "LockUser":
					if r.locked {
						locks++
					}
				case "SetProducts":
					products[r.written] = true
				case "SetDisplayName":
					names[r.written] = true
				case "SetSecurityPhone":
					phones[r.written] = true
				case "SetEmail":
					emails[r.written] = true
				}
			}
			if locks != 1 {
				t.Errorf("%d concurrent LockUser calls locked %d times, want once", parallelism, locks)
			}
			got, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			var d diff
			check(&d, "Username", got.Username, u.Username)
			check(&d, "PasswordHash", got.PasswordHash, u.PasswordHash)
			check(&d, "FailedLogins", got.FailedLogins, parallelism)
			check(&d, "Locked", got.Locked, true)
			checkTime(&d, "LockedAt", got.LockedAt, when)
			checkTime(&d, "CreatedAt", got.CreatedAt, u.CreatedAt)
			checkTime(&d, "UpdatedAt", got.UpdatedAt, when)
			if p := strings.Join(got.Products, ","); !products[p] {
				d = append(d, fmt.Sprintf("Products = %q, want one of the lists written", got.Products))
			}
			if !names[got.DisplayName] {
				d = append(d, fmt.Sprintf("DisplayName = %q, want one of the names written", got.DisplayName))
			}
			if !phones[got.SecurityPhone] {
				d = append(d, fmt.Sprintf("SecurityPhone = %q, want one of the numbers written", got.SecurityPhone))
			}
			if !emails[got.Email] {
				d = append(d, fmt.Sprintf("Email = %q, want one of the addresses written", got.Email))
			}
			d.report(t, "user after concurrent changes")
		}},
	}
}
