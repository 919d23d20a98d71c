package storetest

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
)

// parallelism is how many goroutines the concurrency tests start at once.
const parallelism = 30

// concurrently calls f from n goroutines released together and returns what
// each call returned, in no particular order.
func concurrently[T any](n int, f func() (T, error)) ([]T, []error) {
	results := make([]T, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = f()
		})
	}
	close(start)
	wg.Wait()
	return results, errs
}

// countsOneToN checks that concurrent increments each saw a distinct new
// count, 1 to len(counts): no increment was lost or observed twice.
func countsOneToN(t *testing.T, op string, counts []int, errs []error) {
	t.Helper()
	for _, err := range errs {
		ok(t, op, err)
	}
	got := slices.Sorted(slices.Values(counts))
	for i, c := range got {
		if c != i+1 {
			t.Fatalf("%s from %d goroutines returned counts %v, want each of 1 to %d once", op, len(counts), got, len(counts))
		}
	}
}

// addHit calls AddHit and fails the test unless it returns want.
func addHit(t *testing.T, s gateway.Store, key string, window time.Duration, now time.Time, want int) {
	t.Helper()
	op := fmt.Sprintf("AddHit(%s, %v, base%+v)", key, window, now.Sub(base))
	got, err := s.AddHit(t.Context(), key, window, now)
	ok(t, op, err)
	if got != want {
		t.Fatalf("%s = %d, want %d", op, got, want)
	}
}

// hits calls Hits and fails the test unless it returns want.
func hits(t *testing.T, s gateway.Store, key string, window time.Duration, now time.Time, want int) {
	t.Helper()
	op := fmt.Sprintf("Hits(%s, %v, base%+v)", key, window, now.Sub(base))
	got, err := s.Hits(t.Context(), key, window, now)
	ok(t, op, err)
	if got != want {
		t.Fatalf("%s = %d, want %d", op, got, want)
	}
}

// failedLogins returns the user's FailedLogins as read back.
func failedLogins(t *testing.T, s gateway.Store, id string) int {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	ok(t, "UserByID("+id+")", err)
	return u.FailedLogins
}

func loginFailureTests() []test {
	return []test{
		{"failures count up and reset", func(t *testing.T, s gateway.Store) {
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
		{"failures are counted per user", func(t *testing.T, s gateway.Store) {
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
		{"failure for an unknown user is not found", func(t *testing.T, s gateway.Store) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			_, err := s.AddLoginFailure(t.Context(), "u2")
			is(t, "AddLoginFailure(u2)", err, gateway.ErrNotFound)
			_, err = s.UserByID(t.Context(), "u2")
			is(t, "UserByID after AddLoginFailure of an unknown user", err, gateway.ErrNotFound)
		}},
		{"concurrent failures all count", func(t *testing.T, s gateway.Store) {
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
func addFailures(t *testing.T, s gateway.Store, id string, n int) {
	t.Helper()
	for range n {
		_, err := s.AddLoginFailure(t.Context(), id)
		ok(t, "AddLoginFailure("+id+")", err)
	}
}

// confirm calls ConfirmLogin and fails the test unless it returns want.
func confirm(t *testing.T, s gateway.Store, id string, maxFailures int, want bool) {
	t.Helper()
	op := fmt.Sprintf("ConfirmLogin(%s, %d)", id, maxFailures)
	got, err := s.ConfirmLogin(t.Context(), id, maxFailures)
	ok(t, op, err)
	if got != want {
		t.Fatalf("%s = %v, want %v", op, got, want)
	}
}

func lockTests() []test {
	return []test{
		{"a login is confirmed below the limit and resets the count", func(t *testing.T, s gateway.Store) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addFailures(t, s, "u1", 4)
			confirm(t, s, "u1", 5, true)
			if n := failedLogins(t, s, "u1"); n != 0 {
				t.Fatalf("FailedLogins after a confirmed login = %d, want 0", n)
			}
			confirm(t, s, "u1", 5, true)
		}},
		{"a login at the limit is refused and the count kept", func(t *testing.T, s gateway.Store) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addFailures(t, s, "u1", 5)
			confirm(t, s, "u1", 5, false)
			if n := failedLogins(t, s, "u1"); n != 5 {
				t.Fatalf("FailedLogins after a refused confirmation = %d, want 5", n)
			}
			confirm(t, s, "u1", 6, true)
		}},
		{"a locked profile is never confirmed", func(t *testing.T, s gateway.Store) {
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
		{"locking twice reports the first only and keeps its time", func(t *testing.T, s gateway.Store) {
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
		{"a new password hash keeps the lock", func(t *testing.T, s gateway.Store) {
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
			is(t, "SetPasswordHash(nobody)", s.SetPasswordHash(t.Context(), "nobody", "x", at(0)), gateway.ErrNotFound)
		}},
		{"lock and confirm of an unknown user are not found", func(t *testing.T, s gateway.Store) {
			_, err := s.LockUser(t.Context(), "nobody", at(0))
			is(t, "LockUser(nobody)", err, gateway.ErrNotFound)
			_, err = s.ConfirmLogin(t.Context(), "nobody", 5)
			is(t, "ConfirmLogin(nobody)", err, gateway.ErrNotFound)
		}},
		{"concurrent lockers: exactly one locks", func(t *testing.T, s gateway.Store) {
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
		{"failures racing confirmations: no confirmation at or past the limit", func(t *testing.T, s gateway.Store) {
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

func hitTests() []test {
	return []test{
		{"hits accumulate within a window", func(t *testing.T, s gateway.Store) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(30*time.Second), 2)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Minute-time.Millisecond), 3)
		}},
		{"the next window starts at one", func(t *testing.T, s gateway.Store) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(10*time.Second), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(50*time.Second), 2)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Minute), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Minute+59*time.Second), 2)
			// A window later than the next one starts over as well.
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(5*time.Minute+time.Second), 1)
			// A longer window covers its own span.
			addHit(t, s, "ip:192.0.2.2", 15*time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.2", 15*time.Minute, at(14*time.Minute), 2)
			addHit(t, s, "ip:192.0.2.2", 15*time.Minute, at(15*time.Minute), 1)
		}},
		{"keys are independent", func(t *testing.T, s gateway.Store) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Second), 2)
			addHit(t, s, "ip:192.0.2.2", time.Minute, at(2*time.Second), 1)
			addHit(t, s, "ip:192.0.2.10", time.Minute, at(2*time.Second), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(3*time.Second), 3)
		}},
		{"hits are read without counting", func(t *testing.T, s gateway.Store) {
			hits(t, s, "ip:192.0.2.1", time.Minute, at(0), 0)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Second), 2)
			hits(t, s, "ip:192.0.2.1", time.Minute, at(2*time.Second), 2)
			hits(t, s, "ip:192.0.2.1", time.Minute, at(3*time.Second), 2)
			hits(t, s, "ip:192.0.2.1", time.Minute, at(time.Minute), 0)
			hits(t, s, "ip:192.0.2.1", 2*time.Minute, at(time.Second), 0)
			hits(t, s, "ip:192.0.2.2", time.Minute, at(time.Second), 0)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(4*time.Second), 3)
		}},
		{"a released hit is taken back, never below zero", func(t *testing.T, s gateway.Store) {
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(0), 1)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(time.Second), 2)
			ok(t, "ReleaseHit", s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Minute, at(2*time.Second)))
			hits(t, s, "ip:192.0.2.1", time.Minute, at(2*time.Second), 1)
			ok(t, "ReleaseHit", s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Minute, at(2*time.Second)))
			ok(t, "ReleaseHit at zero", s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Minute, at(2*time.Second)))
			ok(t, "ReleaseHit of an unknown key", s.ReleaseHit(t.Context(), "ip:192.0.2.9", time.Minute, at(2*time.Second)))
			hits(t, s, "ip:192.0.2.1", time.Minute, at(2*time.Second), 0)
			hits(t, s, "ip:192.0.2.9", time.Minute, at(2*time.Second), 0)
			addHit(t, s, "ip:192.0.2.1", time.Minute, at(3*time.Second), 1)
			// A release in the next window leaves this one alone.
			ok(t, "ReleaseHit next window", s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Minute, at(time.Minute)))
			hits(t, s, "ip:192.0.2.1", time.Minute, at(4*time.Second), 1)
		}},
		{"concurrent reservations: no more than the limit pass", func(t *testing.T, s gateway.Store) {
			// The gateway reserves a hit before the password check and
			// lets the attempt on only if the count it got back is within
			// the limit; refused reservations are released.
			const limit = 20
			passed, errs := concurrently(2*parallelism, func() (bool, error) {
				n, err := s.AddHit(t.Context(), "ip:192.0.2.1", time.Hour, at(time.Minute))
				if err != nil || n <= limit {
					return err == nil, err
				}
				return false, s.ReleaseHit(t.Context(), "ip:192.0.2.1", time.Hour, at(time.Minute))
			})
			n := 0
			for i, p := range passed {
				ok(t, "AddHit or ReleaseHit", errs[i])
				if p {
					n++
				}
			}
			if n != limit {
				t.Fatalf("%d concurrent reservations let %d pass, want exactly %d", 2*parallelism, n, limit)
			}
			hits(t, s, "ip:192.0.2.1", time.Hour, at(time.Minute), limit)
		}},
		{"concurrent hits all count", func(t *testing.T, s gateway.Store) {
			counts, errs := concurrently(parallelism, func() (int, error) {
				return s.AddHit(t.Context(), "ip:192.0.2.1", time.Hour, at(time.Minute))
			})
			countsOneToN(t, "AddHit", counts, errs)
			addHit(t, s, "ip:192.0.2.1", time.Hour, at(59*time.Minute), parallelism+1)
		}},
	}
}
