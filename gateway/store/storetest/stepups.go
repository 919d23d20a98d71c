package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// stepUpFailures returns the user's StepUpFailures as read back.
func stepUpFailures(t *testing.T, s store.Users, id string) int {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	ok(t, "UserByID("+id+")", err)
	return u.StepUpFailures
}

// addStepUpFailures adds n step-up failures to the user.
func addStepUpFailures(t *testing.T, s store.Users, id string, n int) {
	t.Helper()
	for range n {
		_, err := s.AddStepUpFailure(t.Context(), id)
		ok(t, "AddStepUpFailure("+id+")", err)
	}
}

// confirmStepUp calls ConfirmStepUp and fails the test unless it returns
// want.
func confirmStepUp(t *testing.T, s store.Users, id string, maxFailures int, want bool) {
	t.Helper()
	op := fmt.Sprintf("ConfirmStepUp(%s, %d)", id, maxFailures)
	got, err := s.ConfirmStepUp(t.Context(), id, maxFailures)
	ok(t, op, err)
	if got != want {
		t.Fatalf("%s = %v, want %v", op, got, want)
	}
}

func stepUpFailureTests() []test[store.Users] {
	return []test[store.Users]{
		{"step-up failures count up over the user's life", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			if n := stepUpFailures(t, s, "u1"); n != 0 {
				t.Fatalf("StepUpFailures of a new user = %d, want 0", n)
			}
			for want := 1; want <= 12; want++ {
				n, err := s.AddStepUpFailure(t.Context(), "u1")
				ok(t, "AddStepUpFailure", err)
				if n != want {
					t.Fatalf("AddStepUpFailure #%d = %d, want %d", want, n, want)
				}
			}
			if n := stepUpFailures(t, s, "u1"); n != 12 {
				t.Fatalf("StepUpFailures after twelve failures = %d, want 12", n)
			}
		}},
		{"step-up failures are their own count", func(t *testing.T, s store.Users) {
			// Neither counter moves the other, and what resets the
			// password failures leaves the step-up failures alone.
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u2", "bob")))
			addStepUpFailures(t, s, "u1", 3)
			addFailures(t, s, "u1", 2)
			if n, err := s.AddStepUpFailure(t.Context(), "u2"); err != nil || n != 1 {
				t.Fatalf("AddStepUpFailure(u2) = %d, %v; want 1", n, err)
			}
			ok(t, "ResetLoginFailures", s.ResetLoginFailures(t.Context(), "u1"))
			confirm(t, s, "u1", 5, true)
			ok(t, "SetPasswordHash", s.SetPasswordHash(t.Context(), "u1", "$argon2id$new", at(time.Hour)))
			u, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			if u.StepUpFailures != 3 || u.FailedLogins != 0 {
				t.Fatalf("u1 after resetting its password failures: StepUpFailures %d, FailedLogins %d; want 3, 0",
					u.StepUpFailures, u.FailedLogins)
			}
		}},
		{"a passed step-up resets the count", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u2", "bob")))
			addStepUpFailures(t, s, "u1", 10)
			addStepUpFailures(t, s, "u2", 4)
			confirmStepUp(t, s, "u1", 10, true)
			if n := stepUpFailures(t, s, "u1"); n != 0 {
				t.Fatalf("StepUpFailures after a confirmed step-up = %d, want 0", n)
			}
			if n := stepUpFailures(t, s, "u2"); n != 4 {
				t.Fatalf("StepUpFailures of u2 after u1's step-up = %d, want 4", n)
			}
			if n, err := s.AddStepUpFailure(t.Context(), "u1"); err != nil || n != 1 {
				t.Fatalf("AddStepUpFailure after a confirmed step-up = %d, %v; want 1", n, err)
			}
		}},
		{"a step-up past the limit is refused and the count kept", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addStepUpFailures(t, s, "u1", 11)
			confirmStepUp(t, s, "u1", 10, false)
			if n := stepUpFailures(t, s, "u1"); n != 11 {
				t.Fatalf("StepUpFailures after a refused confirmation = %d, want 11", n)
			}
		}},
		{"a locked profile's step-up is refused", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addStepUpFailures(t, s, "u1", 2)
			_, err := s.LockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "LockUser", err)
			confirmStepUp(t, s, "u1", 10, false)
			if n := stepUpFailures(t, s, "u1"); n != 2 {
				t.Fatalf("StepUpFailures after a refused confirmation = %d, want 2", n)
			}
		}},
		{"an unlock resets the step-up failures", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addStepUpFailures(t, s, "u1", 10)
			_, err := s.LockUser(t.Context(), "u1", at(time.Minute))
			ok(t, "LockUser", err)
			unlocked, err := s.UnlockUser(t.Context(), "u1", at(2*time.Minute))
			ok(t, "UnlockUser", err)
			if !unlocked {
				t.Fatal("UnlockUser of a locked user = false, want true")
			}
			if n := stepUpFailures(t, s, "u1"); n != 0 {
				t.Fatalf("StepUpFailures after UnlockUser = %d, want 0", n)
			}
			confirmStepUp(t, s, "u1", 10, true)
		}},
		{"step-up failures of an unknown user are not found", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			_, err := s.AddStepUpFailure(t.Context(), "u2")
			is(t, "AddStepUpFailure(u2)", err, store.ErrNotFound)
			_, err = s.ConfirmStepUp(t.Context(), "u2", 10)
			is(t, "ConfirmStepUp(u2)", err, store.ErrNotFound)
			_, err = s.UserByID(t.Context(), "u2")
			is(t, "UserByID after AddStepUpFailure of an unknown user", err, store.ErrNotFound)
		}},
		{"concurrent step-up failures all count", func(t *testing.T, s store.Users) {
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			counts, errs := concurrently(parallelism, func() (int, error) {
				return s.AddStepUpFailure(t.Context(), "u1")
			})
			countsOneToN(t, "AddStepUpFailure", counts, errs)
			if n := stepUpFailures(t, s, "u1"); n != parallelism {
				t.Fatalf("StepUpFailures after %d concurrent failures = %d", parallelism, n)
			}
		}},
		{"concurrent wrong answers lock once, on the count each got back", func(t *testing.T, s store.Users) {
			// Each goroutine reserves its answer's place and locks when
			// the count it got back reaches the limit, as the gateway
			// does: exactly one answer reaches it and locks, the rest
			// either stay under it or come after it, and no step-up is
			// confirmed afterwards.
			const limit = 10
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			type result struct {
				count  int
				locked bool
			}
			results, errs := concurrently(parallelism, func() (result, error) {
				n, err := s.AddStepUpFailure(t.Context(), "u1")
				if err != nil || n < limit {
					return result{count: n}, err
				}
				locked, err := s.LockUser(t.Context(), "u1", at(time.Minute))
				return result{count: n, locked: locked}, err
			})
			counts := make([]int, len(results))
			locks, reached := 0, 0
			for i, r := range results {
				counts[i] = r.count
				if r.locked {
					locks++
				}
				if r.count == limit {
					reached++
				}
			}
			countsOneToN(t, "AddStepUpFailure", counts, errs)
			if reached != 1 || locks != 1 {
				t.Fatalf("%d concurrent wrong answers: %d got the limit back and %d locked, want 1 and 1", parallelism, reached, locks)
			}
			u, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			if !u.Locked {
				t.Fatal("the profile is not locked after the limit was reached")
			}
			confirmStepUp(t, s, "u1", limit, false)
		}},
		{"wrong answers racing a passing one: no confirmation past the limit", func(t *testing.T, s store.Users) {
			// A passing answer reserves its place too, and is confirmed
			// only while the count it raced stays within the limit and
			// the profile unlocked; once a wrong answer locked the
			// profile, no confirmation succeeds.
			const limit = 10
			ok(t, "CreateUser", s.CreateUser(t.Context(), newUser("u1", "alice")))
			addStepUpFailures(t, s, "u1", limit-3)
			type result struct {
				count           int
				pass, confirmed bool
			}
			var turn = make(chan struct{}, 1)
			turn <- struct{}{}
			results, errs := concurrently(parallelism, func() (result, error) {
				n, err := s.AddStepUpFailure(t.Context(), "u1")
				if err != nil {
					return result{}, err
				}
				select {
				case <-turn:
					// One goroutine answers right: it may pass only on a
					// count within the limit.
					if n > limit {
						return result{count: n, pass: true}, nil
					}
					c, err := s.ConfirmStepUp(t.Context(), "u1", limit)
					return result{count: n, pass: true, confirmed: c}, err
				default:
				}
				if n >= limit {
					_, err = s.LockUser(t.Context(), "u1", at(time.Minute))
				}
				return result{count: n}, err
			})
			for _, err := range errs {
				ok(t, "answer", err)
			}
			u, err := s.UserByID(t.Context(), "u1")
			ok(t, "UserByID", err)
			for _, r := range results {
				if r.pass && r.confirmed && r.count > limit {
					t.Fatalf("a step-up was confirmed on count %d, past the limit %d", r.count, limit)
				}
			}
			if !u.Locked {
				// Only a confirmation that reset the count can have kept
				// every later wrong answer under the limit.
				confirmed := false
				for _, r := range results {
					confirmed = confirmed || r.confirmed
				}
				if !confirmed {
					t.Fatalf("no answer was confirmed and the profile is not locked (count %d)", u.StepUpFailures)
				}
			} else {
				confirmStepUp(t, s, "u1", limit, false)
			}
		}},
	}
}
