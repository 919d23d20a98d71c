package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

func customerIDTests() []test[store.Users] {
	return []test[store.Users]{
		{"a profile is found by its customer ID", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			other := newUser("u2", "bob")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			ok(t, "CreateUser", s.CreateUser(t.Context(), other))
			got, err := s.UserByCustomerID(t.Context(), u.CustomerID)
			ok(t, "UserByCustomerID", err)
			checkUser(t, "UserByCustomerID("+u.CustomerID+")", got, u)
			got, err = s.UserByCustomerID(t.Context(), other.CustomerID)
			ok(t, "UserByCustomerID", err)
			checkUser(t, "UserByCustomerID("+other.CustomerID+")", got, other)
		}},
		{"an unknown customer ID is not found", func(t *testing.T, s store.Users) {
			_, err := s.UserByCustomerID(t.Context(), "customer-u1")
			is(t, "UserByCustomerID on an empty store", err, store.ErrNotFound)
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			for _, id := range []string{"customer-u2", "CUSTOMER-U1", "customer-u1 ", "u1", "alice"} {
				_, err := s.UserByCustomerID(t.Context(), id)
				is(t, fmt.Sprintf("UserByCustomerID(%q)", id), err, store.ErrNotFound)
			}
		}},
		{"profiles without a customer ID or consent round-trip and are never found by it", func(t *testing.T, s store.Users) {
			var users []store.User
			for i, name := range []string{"alice", "bob", "carol"} {
				u := newUser(fmt.Sprintf("u%d", i+1), name)
				u.CustomerID, u.ConsentAt, u.ConsentVersion = "", time.Time{}, ""
				ok(t, "CreateUser without a customer ID", s.CreateUser(t.Context(), u))
				users = append(users, u)
			}
			for _, u := range users {
				lookUp(t, s, u)
			}
			_, err := s.UserByCustomerID(t.Context(), "")
			is(t, `UserByCustomerID("")`, err, store.ErrNotFound)
		}},
		{"a second profile for a customer ID conflicts", func(t *testing.T, s store.Users) {
			first := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), first))
			second := newUser("u2", "bob")
			second.CustomerID = first.CustomerID
			is(t, "CreateUser with a taken customer ID", s.CreateUser(t.Context(), second), store.ErrConflict)
			_, err := s.UserByName(t.Context(), "bob")
			is(t, "UserByName of the rejected user", err, store.ErrNotFound)
			got, err := s.UserByCustomerID(t.Context(), first.CustomerID)
			ok(t, "UserByCustomerID", err)
			checkUser(t, "UserByCustomerID after the conflict", got, first)
		}},
		{"of concurrent creations for one customer ID exactly one wins", func(t *testing.T, s store.Users) {
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					u := newUser(fmt.Sprintf("u%d", i), fmt.Sprintf("user%d", i))
					u.CustomerID = "customer-joint"
					errs[i] = s.CreateUser(t.Context(), u)
				})
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("creations %d and %d both succeeded for one customer ID", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, store.ErrConflict):
					t.Fatalf("creation %d: error = %v, want ErrConflict", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no creation succeeded")
			}
			got, err := s.UserByCustomerID(t.Context(), "customer-joint")
			ok(t, "UserByCustomerID", err)
			if got.ID != fmt.Sprintf("u%d", winner) {
				t.Fatalf("UserByCustomerID = %s, want the winner u%d", got.ID, winner)
			}
		}},
	}
}
