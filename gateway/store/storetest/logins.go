package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// failedLogins returns the user's FailedLogins as read back.
func failedLogins(t *testing.T, s store.Users, id string) int {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	ok(t, "UserByID("+id+")", err)
	return u.FailedLogins
}

func loginFailureTests() []test[store.Users] {
	return []test[store.Users]{
		{"failures count up and reset", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			if n := failedLogins(t, s, "u1"); n != 0 {
				t.Fatalf("FailedLogins of a new user = %d, want 0", n)
			}
			for want := 1; want <= 5; want++ {
				n, err := s.AddLoginFailure(t.Context(), "u1")
				ok(t, "AddLoginFailure", err)
				if n != want {
					t.Fatalf("AddLoginFailure #%d = %d, want %d", want, n, want)
				}
			}
			if n := failedLogins(t, s, "u1"); n != 5 {
				t.Fatalf("FailedLogins after five failures = %d, want 5", n)
			}
			ok(t, "ResetLoginFailures", s.ResetLoginFailures(t.Context(), "u1"))
			if n := failedLogins(t, s, "u1"); n != 0 {
				t.Fatalf("FailedLogins after reset = %d, want 0", n)
			}
			n, err := s.AddLoginFailure(t.Context(), "u1")
			ok(t, "AddLoginFailure after reset", err)
			if n != 1 {
				t.Fatalf("AddLoginFailure after reset = %d, want 1", n)
			}
		}},
		{"failures are counted per user", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u2", "bob")))
			for range 3 {
				_, err := s.AddLoginFailure(t.Context(), "u1")
				ok(t, "AddLoginFailure(u1)", err)
			}
			n, err := s.AddLoginFailure(t.Context(), "u2")
			ok(t, "AddLoginFailure(u2)", err)
			if n != 1 {
				t.Fatalf("AddLoginFailure(u2) = %d, want 1", n)
			}
			ok(t, "ResetLoginFailures(u2)", s.ResetLoginFailures(t.Context(), "u2"))
			if n := failedLogins(t, s, "u1"); n != 3 {
				t.Fatalf("FailedLogins of u1 after resetting u2 = %d, want 3", n)
			}
		}},
		{"failure for an unknown user is not found", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			_, err := s.AddLoginFailure(t.Context(), "u2")
			is(t, "AddLoginFailure(u2)", err, store.ErrNotFound)
			_, err = s.UserByID(t.Context(), "u2")
			is(t, "UserByID after AddLoginFailure of an unknown user", err, store.ErrNotFound)
		}},
		{"concurrent failures all count", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			counts, errs := concurrently(parallelism, func() (int, error) {
				return s.AddLoginFailure(t.Context(), "u1")
			})
			countsOneToN(t, "AddLoginFailure", counts, errs)
			if n := failedLogins(t, s, "u1"); n != parallelism {
				t.Fatalf("FailedLogins after %d concurrent failures = %d", parallelism, n)
			}
		}},
	}
}

// addFailures adds n failures to the user.
func addFailures(t *testing.T, s store.Users, id string, n int) {
	t.Helper()
	for range n {
		_, err := s.AddLoginFailure(t.Context(), id)
		ok(t, "AddLoginFailure("+id+")", err)
	}
}

// confirm calls ConfirmLogin and fails the test unless it returns want.
func confirm(t *testing.T, s store.Users, id string, maxFailures int, want bool) {
	t.Helper()
	op := fmt.Sprintf("ConfirmLogin(%s, %d)", id, maxFailures)
	got, err := s.ConfirmLogin(t.Context(), id, maxFailures)
	ok(t, op, err)
	if got != want {
		t.Fatalf("%s = %v, want %v", op, got, want)
	}
}

func lockTests() []test[store.Users] {
	return []test[store.Users]{
		{"a login is confirmed below the limit and resets the count", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addFailures(t, s, "u1", 4)
			confirm(t, s, "u1", 5, true)
			if n := failedLogins(t, s, "u1"); n != 0 {
				t.Fatalf("FailedLogins after a confirmed login = %d, want 0", n)
			}
			confirm(t, s, "u1", 5, true)
		}},
		{"a login at the limit is refused and the count kept", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addFailures(t, s, "u1", 5)
			confirm(t, s, "u1", 5, false)
			if n := failedLogins(t, s, "u1"); n != 5 {
				t.Fatalf("FailedLogins after a refused confirmation = %d, want 5", n)
			}
			confirm(t, s, "u1", 6, true)
		}},
		{"a locked profile is never confirmed", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			locked, err := s.LockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "LockUser", err)
			if !locked {
				t.Fatal("LockUser of an unlocked user = false, want true")
			}
			confirm(t, s, "u1", 5, false)
			u, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			var d diff
			check(&d, "Locked", u.Locked, true)
			checkTime(&d, "LockedAt", u.LockedAt, at(time.Minute))
			check(&d, "Username", u.Username, "alice")
			d.report(t, "locked user")
		}},
		{"locking twice reports the first only and keeps its time", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			first, err := s.LockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "LockUser", err)
			again, err := s.LockUser(t.Context(), "u1", at(2*time.Minute))
			ok(t, "LockUser again", err)
			if !first || again {
				t.Fatalf("LockUser twice = %v, %v; want true, false", first, again)
			}
			u, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			var d diff
			checkTime(&d, "LockedAt", u.LockedAt, at(time.Minute))
			d.report(t, "user locked twice")
		}},
		{"a new password hash keeps the lock", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			_, err := s.LockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "LockUser", err)
			ok(t, "SetPasswordHash", s.SetPasswordHash(t.Context(), "u1", "$argon2id$new", at(2*time.Minute)))
			u, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			var d diff
			check(&d, "PasswordHash", u.PasswordHash, "$argon2id$new")
			check(&d, "Locked", u.Locked, true)
			checkTime(&d, "UpdatedAt", u.UpdatedAt, at(2*time.Minute))
			d.report(t, "user after SetPasswordHash")
			is(t, "SetPasswordHash(nobody)", s.SetPasswordHash(t.Context(), "nobody", "x", at(0)), store.ErrNotFound)
		}},
		{"lock and confirm of an unknown user are not found", func(t *testing.T, s store.Users) {
			_, err := s.LockUser(t.Context(), "nobody", at(0))
			is(t, "LockUser(nobody)", err, store.ErrNotFound)
			_, err = s.ConfirmLogin(t.Context(), "nobody", 5)
			is(t, "ConfirmLogin(nobody)", err, store.ErrNotFound)
		}},
		{"concurrent lockers: exactly one locks", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			results, errs := concurrently(parallelism, func() (bool, error) {
				return s.LockUser(t.Context(), "u1", at(time.Minute))
			})
			n := 0
			for i, locked := range results {
				ok(t, "LockUser", errs[i])
				if locked {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d concurrent LockUser calls locked %d times, want once", parallelism, n)
			}
		}},
		{"unlock reports the lock, resets failures and clears the lock time", func(t *testing.T, s store.Users) {
			u := newUser("u1", "alice")
			ok(t, "CreateUser", s.CreateUser(t.Context(), u))
			addFailures(t, s, "u1", 5)
			_, err := s.LockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "LockUser", err)
			unlocked, err := s.UnlockUser(t.Context(), "u1", at(2*time.Minute).In(elsewhere))
			ok(t, "UnlockUser", err)
			if !unlocked {
				t.Fatal("UnlockUser of a locked user = false, want true")
			}
			u.UpdatedAt = at(2 * time.Minute)
			lookUp(t, s, u)

			again, err := s.UnlockUser(t.Context(), "u1", at(3*time.Minute))
			ok(t, "UnlockUser again", err)
			if again {
				t.Fatal("UnlockUser of an unlocked user = true, want false")
			}
			confirm(t, s, "u1", 5, true)
			relocked, err := s.LockUser(t.Context(), "u1", at(4*time.Minute))
			ok(t, "LockUser after UnlockUser", err)
			if !relocked {
				t.Fatal("LockUser after UnlockUser = false, want true")
			}
			got, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			var d diff
			check(&d, "Locked", got.Locked, true)
			checkTime(&d, "LockedAt", got.LockedAt, at(4*time.Minute))
			d.report(t, "user locked again")
		}},
		{"unlocking an unlocked profile resets its failures", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addFailures(t, s, "u1", 3)
			unlocked, err := s.UnlockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "UnlockUser", err)
			if unlocked {
				t.Fatal("UnlockUser of an unlocked user = true, want false")
			}
			u, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			var d diff
			check(&d, "FailedLogins", u.FailedLogins, 0)
			check(&d, "Locked", u.Locked, false)
			checkTime(&d, "LockedAt", u.LockedAt, time.Time{})
			d.report(t, "user after UnlockUser")
		}},
		{"concurrent unlockers: exactly one unlocks", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addFailures(t, s, "u1", 5)
			_, err := s.LockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "LockUser", err)
			results, errs := concurrently(parallelism, func() (bool, error) {
				return s.UnlockUser(t.Context(), "u1", at(2*time.Minute))
			})
			n := 0
			for i, unlocked := range results {
				ok(t, "UnlockUser", errs[i])
				if unlocked {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d concurrent UnlockUser calls unlocked %d times, want once", parallelism, n)
			}
			if n := failedLogins(t, s, "u1"); n != 0 {
				t.Fatalf("FailedLogins after concurrent unlocks = %d, want 0", n)
			}
		}},
		{"failures racing confirmations: no confirmation at or past the limit", func(t *testing.T, s store.Users) {
			// Each failure goroutine adds one and locks on the count it
			// got back, as the gateway does; each confirmation goroutine
			// records the count it would have reset from. A confirmation
			// that succeeded must have seen fewer than the limit, and once
			// the profile is locked, none succeeds.
			const limit = 5
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addFailures(t, s, "u1", limit-2)
			type result struct {
				failure, confirmed bool
				count              int
			}
			var turn atomic.Int32
			results, errs := concurrently(2*parallelism, func() (result, error) {
				// Every other goroutine fails, the rest confirm; the
				// scheduler interleaves them.
				if turn.Add(1)%2 == 0 {
					n, err := s.AddLoginFailure(t.Context(), "u1")
					if err != nil || n < limit {
						return result{failure: true, count: n}, err
					}
					_, err = s.LockUser(t.Context(), "u1", at(time.Minute))
					return result{failure: true, count: n}, err
				}
				c, err := s.ConfirmLogin(t.Context(), "u1", limit)
				return result{confirmed: c}, err
			})
			for _, err := range errs {
				ok(t, "failure or confirmation", err)
			}
			u, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			reachedLimit := false
			for _, r := range results {
				if r.failure && r.count >= limit {
					reachedLimit = true
				}
			}
			if reachedLimit != u.Locked {
				t.Fatalf("a failure reached the limit: %v, but Locked = %v", reachedLimit, u.Locked)
			}
			if u.Locked {
				confirm(t, s, "u1", limit, false)
			}
		}},
	}
}
