package storetest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// newFactor returns an authenticator app of the user with every field set,
// distinct per ID. Its Counter is a TOTP time step of the suite's years.
func newFactor(id, userID string) store.Factor {
	return store.Factor{
		ID:         id,
		UserID:     userID,
		Kind:       "totp",
		Name:       "work phone " + id,
		Secret:     append([]byte{0x00, 0xff, 0x80, 0x00, 'k'}, id...),
		Counter:    64_000_000,
		CreatedAt:  at(time.Second + 5*time.Millisecond),
		LastUsedAt: at(2*time.Minute + 9*time.Millisecond).In(elsewhere),
	}
}

// checkFactor compares every field of a factor read back.
func checkFactor(t *testing.T, what string, got, want store.Factor) {
	t.Helper()
	var d diff
	check(&d, "ID", got.ID, want.ID)
	check(&d, "UserID", got.UserID, want.UserID)
	check(&d, "Kind", got.Kind, want.Kind)
	check(&d, "Name", got.Name, want.Name)
	if !bytes.Equal(got.Secret, want.Secret) {
		d = append(d, fmt.Sprintf("Secret = %q, want %q", got.Secret, want.Secret))
	}
	check(&d, "Counter", got.Counter, want.Counter)
	checkTime(&d, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(&d, "LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	d.report(t, what)
}

// addFactor stores the factors and fails the test if it cannot.
func addFactor(t *testing.T, s store.Factors, fs ...store.Factor) {
	t.Helper()
	for _, f := range fs {
		ok(t, "AddFactor("+f.ID+")", s.AddFactor(t.Context(), f))
	}
}

// factorsOf checks that FactorsOf returns exactly want, in order.
func factorsOf(t *testing.T, s store.Factors, userID string, want ...store.Factor) {
	t.Helper()
	op := "FactorsOf(" + userID + ")"
	got, err := s.FactorsOf(t.Context(), userID)
	ok(t, op, err)
	if len(got) != len(want) {
		ids := make([]string, len(got))
		for i, f := range got {
			ids[i] = f.ID
		}
		t.Fatalf("%s returned %d factors %q, want %d", op, len(got), ids, len(want))
	}
	for i := range want {
		checkFactor(t, fmt.Sprintf("%s[%d]", op, i), got[i], want[i])
	}
}

// advance calls AdvanceFactor and fails the test unless it returns want.
func advance(t *testing.T, s store.Factors, userID, id string, counter int64, used time.Time, want bool) {
	t.Helper()
	op := fmt.Sprintf("AdvanceFactor(%s, %s, %d)", userID, id, counter)
	got, err := s.AdvanceFactor(t.Context(), userID, id, counter, used)
	ok(t, op, err)
	if got != want {
		t.Fatalf("%s = %v, want %v", op, got, want)
	}
}

// usedAt is when the concurrency tests' call with the given counter uses the
// factor: distinct per counter, so LastUsedAt tells which call won.
func usedAt(counter int64) time.Time {
	return at(time.Hour + time.Duration(counter)*time.Millisecond)
}

func factorTests() []test[store.Factors] {
	return []test[store.Factors]{
		{"add then list", func(t *testing.T, s store.Factors) {
			a, b := newFactor("f1", "u1"), newFactor("f2", "u1")
			b.CreatedAt = a.CreatedAt.Add(time.Millisecond)
			other := newFactor("f3", "u2")
			addFactor(t, s, a, b, other)
			factorsOf(t, s, "u1", a, b)
			factorsOf(t, s, "u2", other)
		}},
		{"every field round-trips", func(t *testing.T, s store.Factors) {
			totp := newFactor("f1", "u1")
			totp.Name = "Ana’s phone ✓"
			totp.CreatedAt = at(-36*time.Hour + 999*time.Millisecond).In(elsewhere)
			totp.LastUsedAt = at(17*time.Minute + 333*time.Millisecond)
			// A passkey's signature count, never used since it was added.
			passkey := newFactor("f2", "u1")
			passkey.Kind, passkey.Name = "passkey", "YubiKey 5C"
			passkey.Counter, passkey.LastUsedAt = math.MaxUint32, time.Time{}
			passkey.CreatedAt = at(-35 * time.Hour)
			// Counters beyond what a float64 holds exactly, and none at all.
			questions := newFactor("f3", "u1")
			questions.Kind, questions.Name, questions.Counter = "questions", "", 0
			questions.CreatedAt = at(-34 * time.Hour)
			huge := newFactor("f4", "u1")
			huge.Counter = 1<<53 + 1
			huge.CreatedAt = at(-33 * time.Hour)
			largest := newFactor("f5", "u1")
			largest.Counter = math.MaxInt64
			largest.CreatedAt = at(-32 * time.Hour)
			addFactor(t, s, totp, passkey, questions, huge, largest)
			factorsOf(t, s, "u1", totp, passkey, questions, huge, largest)
		}},
		{"secrets round-trip byte for byte", func(t *testing.T, s store.Factors) {
			large := make([]byte, 64<<10)
			for i := range large {
				large[i] = byte(i * 7)
			}
			secrets := [][]byte{
				{0},
				{0x00, 0xff, 0xfe, 0x00, 0x80, 0x7f, 0x00},
				[]byte("a\xc3\x28b\xffc"),
				[]byte("JBSWY3DPEHPK3PXP\x00"),
				[]byte("secret  \n"),
				large,
			}
			var want []store.Factor
			for i, secret := range secrets {
				f := newFactor(fmt.Sprintf("f%d", i), "u1")
				f.Secret = secret
				f.CreatedAt = at(time.Duration(i) * time.Second)
				addFactor(t, s, f)
				want = append(want, f)
			}
			factorsOf(t, s, "u1", want...)
		}},
		{"factors are listed oldest first", func(t *testing.T, s store.Factors) {
			oldest := newFactor("f-oldest", "u1")
			oldest.CreatedAt = at(-48*time.Hour + time.Millisecond)
			middle := newFactor("f-middle", "u1")
			middle.CreatedAt = at(-24 * time.Hour).In(elsewhere)
			newest := newFactor("f-newest", "u1")
			newest.CreatedAt = at(0)
			// Another user's factor, created between this user's.
			theirs := newFactor("f-theirs", "u2")
			theirs.CreatedAt = at(-30 * time.Hour)
			// Added out of order, with IDs that sort in neither order.
			addFactor(t, s, middle, theirs, newest, oldest)
			factorsOf(t, s, "u1", oldest, middle, newest)
			factorsOf(t, s, "u2", theirs)
		}},
		{"a user without factors lists none", func(t *testing.T, s store.Factors) {
			factorsOf(t, s, "u1")
			addFactor(t, s, newFactor("f1", "u1"))
			factorsOf(t, s, "u2")
			factorsOf(t, s, "")
			factorsOf(t, s, "f1")
		}},
		{"advance moves the counter forward only", func(t *testing.T, s store.Factors) {
			f, other := newFactor("f1", "u1"), newFactor("f2", "u1")
			other.CreatedAt = f.CreatedAt.Add(time.Second)
			addFactor(t, s, f, other)

			f.Counter, f.LastUsedAt = f.Counter+1, at(time.Hour+time.Millisecond).In(elsewhere)
			advance(t, s, "u1", "f1", f.Counter, f.LastUsedAt, true)
			factorsOf(t, s, "u1", f, other)

			// The same step again, and earlier ones, are replays.
			for _, c := range []int64{f.Counter, f.Counter - 1, 1, 0, -1, math.MinInt64} {
				advance(t, s, "u1", "f1", c, at(2*time.Hour), false)
				factorsOf(t, s, "u1", f, other)
			}

			// A jump forward is fine (a passkey's count, a clock step).
			f.Counter, f.LastUsedAt = f.Counter+1000, at(3*time.Hour+5*time.Millisecond)
			advance(t, s, "u1", "f1", f.Counter, f.LastUsedAt, true)
			factorsOf(t, s, "u1", f, other)
			f.Counter, f.LastUsedAt = math.MaxInt64, at(4*time.Hour)
			advance(t, s, "u1", "f1", f.Counter, f.LastUsedAt, true)
			advance(t, s, "u1", "f1", math.MaxInt64, at(5*time.Hour), false)
			factorsOf(t, s, "u1", f, other)
		}},
		{"advance of a factor the user does not have is not found", func(t *testing.T, s store.Factors) {
			mine, theirs := newFactor("f1", "u1"), newFactor("f2", "u2")
			addFactor(t, s, mine, theirs)
			for _, c := range []int64{theirs.Counter + 1, theirs.Counter, 0} {
				_, err := s.AdvanceFactor(t.Context(), "u1", "f2", c, at(time.Hour))
				is(t, fmt.Sprintf("AdvanceFactor of another user's factor to %d", c), err, store.ErrNotFound)
			}
			_, err := s.AdvanceFactor(t.Context(), "u1", "f3", mine.Counter+1, at(time.Hour))
			is(t, "AdvanceFactor of an unknown factor", err, store.ErrNotFound)
			_, err = s.AdvanceFactor(t.Context(), "u3", "f1", mine.Counter+1, at(time.Hour))
			is(t, "AdvanceFactor of an unknown user", err, store.ErrNotFound)
			factorsOf(t, s, "u1", mine)
			factorsOf(t, s, "u2", theirs)
		}},
		{"duplicate ID conflicts", func(t *testing.T, s store.Factors) {
			first := newFactor("f1", "u1")
			addFactor(t, s, first)
			again := newFactor("f1", "u1")
			again.Kind, again.Secret, again.Counter = "passkey", []byte("other credential"), 7
			is(t, "AddFactor with a taken ID", s.AddFactor(t.Context(), again), store.ErrConflict)
			again.UserID = "u2"
			is(t, "AddFactor with another user's ID", s.AddFactor(t.Context(), again), store.ErrConflict)
			factorsOf(t, s, "u1", first)
			factorsOf(t, s, "u2")
		}},
		{"delete removes one of the user's factors", func(t *testing.T, s store.Factors) {
			a, b := newFactor("f1", "u1"), newFactor("f2", "u1")
			b.CreatedAt = a.CreatedAt.Add(time.Second)
			addFactor(t, s, a, b)
			ok(t, "DeleteFactor", s.DeleteFactor(t.Context(), "u1", "f1"))
			factorsOf(t, s, "u1", b)
			is(t, "DeleteFactor again", s.DeleteFactor(t.Context(), "u1", "f1"), store.ErrNotFound)
			_, err := s.AdvanceFactor(t.Context(), "u1", "f1", a.Counter+1, at(time.Hour))
			is(t, "AdvanceFactor of a deleted factor", err, store.ErrNotFound)
			// The user can enrol another factor.
			c := newFactor("f3", "u1")
			c.CreatedAt = b.CreatedAt.Add(time.Second)
			addFactor(t, s, c)
			factorsOf(t, s, "u1", b, c)
		}},
		{"delete refuses another user's factor and leaves it", func(t *testing.T, s store.Factors) {
			mine, theirs := newFactor("f1", "u1"), newFactor("f2", "u2")
			addFactor(t, s, mine, theirs)
			is(t, "DeleteFactor of another user's factor", s.DeleteFactor(t.Context(), "u1", "f2"), store.ErrNotFound)
			is(t, "DeleteFactor of an unknown factor", s.DeleteFactor(t.Context(), "u1", "f3"), store.ErrNotFound)
			is(t, "DeleteFactor of an unknown user", s.DeleteFactor(t.Context(), "u3", "f1"), store.ErrNotFound)
			factorsOf(t, s, "u1", mine)
			factorsOf(t, s, "u2", theirs)
			advance(t, s, "u2", "f2", theirs.Counter+1, at(time.Hour), true)
		}},
		{"concurrent advances with the same counter: one succeeds", func(t *testing.T, s store.Factors) {
			// One TOTP code presented by many requests at once: one gets
			// in, the rest are replays. Several codes in turn, each
			// raced, give a lost update more than one chance to show.
			f := newFactor("f1", "u1")
			addFactor(t, s, f)
			var turn atomic.Int64
			type result struct {
				used     time.Time
				advanced bool
			}
			for range 5 {
				counter := f.Counter + 1
				results, errs := concurrently(parallelism, func() (result, error) {
					used := usedAt(turn.Add(1))
					advanced, err := s.AdvanceFactor(t.Context(), "u1", "f1", counter, used)
					return result{used, advanced}, err
				})
				wins := 0
				for i, r := range results {
					ok(t, "AdvanceFactor", errs[i])
					if r.advanced {
						wins++
						f.LastUsedAt = r.used
					}
				}
				if wins != 1 {
					t.Fatalf("%d of %d concurrent AdvanceFactor calls with counter %d succeeded, want exactly 1", wins, parallelism, counter)
				}
				f.Counter = counter
				factorsOf(t, s, "u1", f)
			}
		}},
		{"concurrent advances in any order: the counter only moves forward", func(t *testing.T, s store.Factors) {
			// Calls with counters 1 to n race in a shuffled order. Each
			// takes a ticket before it calls and one after it returns, so
			// that a call that returned before another started is known to
			// have come first. A success must beat every success that came
			// before it; a refusal must have lost to a greater counter that
			// had started by the time it returned.
			f := newFactor("f1", "u1")
			f.Counter = 0
			addFactor(t, s, f)
			const n = 2 * parallelism
			// A new order each run (the checks hold for any order); the
			// seed is logged so that an order that failed can be tried
			// again, though the interleaving cannot.
			seed := rand.Uint64()
			order := rand.New(rand.NewPCG(seed, 0)).Perm(n)
			type result struct {
				counter    int64
				advanced   bool
				start, end int64 // tickets
			}
			var turn, tickets atomic.Int64
			results, errs := concurrently(n, func() (result, error) {
				r := result{counter: int64(order[turn.Add(1)-1]) + 1}
				r.start = tickets.Add(1)
				advanced, err := s.AdvanceFactor(t.Context(), "u1", "f1", r.counter, usedAt(r.counter))
				r.end = tickets.Add(1)
				r.advanced = advanced
				return r, err
			})
			for _, err := range errs {
				ok(t, "AdvanceFactor", err)
			}
			wins := 0
			for i, b := range results {
				// beaten is the greatest counter that succeeded before b
				// started; rival, the greatest that succeeded having
				// started before b returned.
				var beaten, rival int64
				for j, a := range results {
					if i == j || !a.advanced {
						continue
					}
					if a.end < b.start {
						beaten = max(beaten, a.counter)
					}
					if a.start < b.end {
						rival = max(rival, a.counter)
					}
				}
				switch {
				case b.advanced && b.counter <= beaten:
					t.Errorf("AdvanceFactor to %d succeeded after AdvanceFactor to %d had", b.counter, beaten)
				case !b.advanced && b.counter >= rival:
					t.Errorf("AdvanceFactor to %d was refused, but no greater counter had been tried by then", b.counter)
				}
				if b.advanced {
					wins++
				}
			}
			if t.Failed() {
				t.Fatalf("counters shuffled with seed %d; %d of %d calls succeeded", seed, wins, n)
			}
			f.Counter, f.LastUsedAt = n, usedAt(n)
			factorsOf(t, s, "u1", f)
		}},
		{"a cancelled context fails reads", func(t *testing.T, s store.Factors) {
			addFactor(t, s, newFactor("f1", "u1"))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.FactorsOf(ctx, "u1")
			fails(t, "FactorsOf with a cancelled context", err)
		}},
		{"a cancelled context fails writes, which have no effect", func(t *testing.T, s store.Factors) {
			f := newFactor("f1", "u1")
			addFactor(t, s, f)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			fails(t, "AddFactor with a cancelled context", s.AddFactor(ctx, newFactor("f2", "u1")))
			advanced, err := s.AdvanceFactor(ctx, "u1", "f1", f.Counter+1, at(time.Hour))
			fails(t, "AdvanceFactor with a cancelled context", err)
			if advanced {
				t.Fatal("AdvanceFactor with a cancelled context reported that it advanced")
			}
			fails(t, "DeleteFactor with a cancelled context", s.DeleteFactor(ctx, "u1", "f1"))
			factorsOf(t, s, "u1", f)
		}},
	}
}
