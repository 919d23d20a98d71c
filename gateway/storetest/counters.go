package storetest

import (
	"fmt"
	"slices"
	"sync"
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
		{"concurrent hits all count", func(t *testing.T, s gateway.Store) {
			counts, errs := concurrently(parallelism, func() (int, error) {
				return s.AddHit(t.Context(), "ip:192.0.2.1", time.Hour, at(time.Minute))
			})
			countsOneToN(t, "AddHit", counts, errs)
			addHit(t, s, "ip:192.0.2.1", time.Hour, at(59*time.Minute), parallelism+1)
		}},
	}
}
