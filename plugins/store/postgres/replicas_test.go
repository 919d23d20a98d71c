package postgres

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// replicas opens n stores on one fresh schema, each with a pool of its own:
// gateway replicas sharing a database.
func replicas(t *testing.T, n int) []*Store {
	t.Helper()
	_, dsn := freshSchema(t)
	stores := make([]*Store, n)
	for i := range stores {
		stores[i] = openDSN(t, dsn)
	}
	return stores
}

// acrossReplicas calls f perReplica times on each store at once, released
// together, and returns what the calls returned, in no particular order.
func acrossReplicas[T any](t *testing.T, stores []*Store, perReplica int, f func(s *Store) (T, error)) []T {
	t.Helper()
	var (
		mu      sync.Mutex
		results []T
		errs    []error
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for _, s := range stores {
		for range perReplica {
			wg.Go(func() {
				<-start
				v, err := f(s)
				mu.Lock()
				defer mu.Unlock()
				results = append(results, v)
				errs = append(errs, err)
			})
		}
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return results
}

// wantOneToN fails the test unless counts are each of 1 to len(counts)
// once: every increment counted, and each saw its own.
func wantOneToN(t *testing.T, op string, counts []int) {
	t.Helper()
	got := slices.Sorted(slices.Values(counts))
	for i, c := range got {
		if c != i+1 {
			t.Fatalf("%s across replicas returned %v, want each of 1 to %d once", op, got, len(got))
		}
	}
}

// wantOneTrue fails the test unless exactly one result is true.
func wantOneTrue(t *testing.T, op string, results []bool) {
	t.Helper()
	if n := len(slices.DeleteFunc(slices.Clone(results), func(b bool) bool { return !b })); n != 1 {
		t.Fatalf("%s across replicas: %d of %d calls won, want exactly 1", op, n, len(results))
	}
}

// The limits hold when the concurrent calls come from several replicas, each
// with connections of its own: every count is the one its own atomic step
// returned.
func TestLimitsHoldAcrossReplicas(t *testing.T) {
	const perReplica = 15
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	stores := replicas(t, 3)
	ctx := t.Context()
	first := stores[0]

	t.Run("login failures", func(t *testing.T) {
		if err := first.CreateUser(ctx, store.User{ID: "u1", Username: "alice"}); err != nil {
			t.Fatal(err)
		}
		wantOneToN(t, "AddLoginFailure", acrossReplicas(t, stores, perReplica, func(s *Store) (int, error) {
			return s.AddLoginFailure(ctx, "u1")
		}))
		wantOneTrue(t, "LockUser", acrossReplicas(t, stores, perReplica, func(s *Store) (bool, error) {
			return s.LockUser(ctx, "u1", now)
		}))
		wantOneTrue(t, "UnlockUser", acrossReplicas(t, stores, perReplica, func(s *Store) (bool, error) {
			return s.UnlockUser(ctx, "u1", now)
		}))
	})
	t.Run("step-up failures", func(t *testing.T) {
		if err := first.CreateUser(ctx, store.User{ID: "u2", Username: "bob"}); err != nil {
			t.Fatal(err)
		}
		wantOneToN(t, "AddStepUpFailure", acrossReplicas(t, stores, perReplica, func(s *Store) (int, error) {
			return s.AddStepUpFailure(ctx, "u2")
		}))
	})
	t.Run("a confirmed login against failures that reach the limit", func(t *testing.T) {
		// With four failures on the profile, one more reaches the limit of
		// five: a concurrent ConfirmLogin either lands first (and the
		// failures count from zero) or finds the limit reached.
		const limit = 5
		for round := range 20 {
			id := fmt.Sprintf("race%d", round)
			if err := first.CreateUser(ctx, store.User{ID: id, Username: id, FailedLogins: limit - 1}); err != nil {
				t.Fatal(err)
			}
			var confirmed bool
			var failures int
			var wg sync.WaitGroup
			wg.Go(func() {
				var err error
				if confirmed, err = stores[1].ConfirmLogin(ctx, id, limit); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				var err error
				if failures, err = stores[2].AddLoginFailure(ctx, id); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
			if confirmed == (failures == limit) {
				t.Fatalf("round %d: ConfirmLogin = %v with the concurrent failure counted as %d: a login confirmed past the limit, or refused before it",
					round, confirmed, failures)
			}
		}
	})
	t.Run("hits", func(t *testing.T) {
		wantOneToN(t, "AddHit", acrossReplicas(t, stores, perReplica, func(s *Store) (int, error) {
			return s.AddHit(ctx, "ip:192.0.2.1", time.Hour, now)
		}))
	})
	t.Run("single-use records", func(t *testing.T) {
		r := store.Record{Kind: "code", ID: "c1", Subject: "u1", ExpiresAt: now.Add(time.Minute)}
		if err := first.PutRecord(ctx, r, now); err != nil {
			t.Fatal(err)
		}
		attempts := acrossReplicas(t, stores, perReplica, func(s *Store) (int, error) {
			got, err := s.AttemptRecord(ctx, r.Kind, r.ID, now)
			return got.Attempts, err
		})
		wantOneToN(t, "AttemptRecord", attempts)
		taken := acrossReplicas(t, stores, perReplica, func(s *Store) (bool, error) {
			_, err := s.TakeRecord(ctx, r.Kind, r.ID, now)
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		})
		wantOneTrue(t, "TakeRecord", taken)
	})
	t.Run("factor counters", func(t *testing.T) {
		f := store.Factor{ID: "f1", UserID: "u1", Kind: "totp", Secret: []byte("k"), Counter: 100, CreatedAt: now}
		if err := first.AddFactor(ctx, f); err != nil {
			t.Fatal(err)
		}
		wantOneTrue(t, "AdvanceFactor", acrossReplicas(t, stores, perReplica, func(s *Store) (bool, error) {
			return s.AdvanceFactor(ctx, "u1", "f1", 101, now)
		}))
	})
}
