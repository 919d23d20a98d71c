// Package storetest is the conformance suite for gateway.Store
// implementations. Every store runs it from its own tests, so that SQLite,
// PostgreSQL and Redis behave alike behind the gateway:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) gateway.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Beyond the interface documentation, the suite pins down these points:
//
//   - Times keep at least millisecond precision and may come back in any
//     location: the suite uses whole milliseconds between the years 2000 and
//     2100, some of them outside UTC, and compares instants with
//     time.Time.Equal. The zero time.Time (an unlocked user's LockedAt, an
//     active key's RetiredAt) comes back as the zero time.
//   - AddHit windows are fixed, back to back, and aligned to an instant the
//     store chooses; the suite uses hour-aligned times and windows that divide
//     an hour, so alignment to the Unix epoch satisfies it.
//   - A grant is valid while now is before its ExpiresAt; from ExpiresAt on
//     it has expired.
//   - ErrConflict covers every uniqueness rule: a username already taken, and
//     an ID already used by another user, session or signing key.
//   - ErrNotFound and ErrConflict are matched with errors.Is, so stores may
//     wrap them. Other failures (such as a cancelled context) may be any error.
//
// Subtests run one after another, each on a store of its own from open.
package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway"
)

// Run runs the conformance suite. open returns a new, empty store; releasing
// it (t.Cleanup) is the factory's job.
func Run(t *testing.T, open func(t *testing.T) gateway.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Users", userTests()},
		{"LoginFailures", loginFailureTests()},
		{"Locks", lockTests()},
		{"Hits", hitTests()},
		{"Sessions", sessionTests()},
		{"Grants", grantTests()},
		{"SigningKeys", signingKeyTests()},
		{"Store", storeTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, open(t))
				})
			}
		})
	}
}

// test is one behaviour checked against a fresh store.
type test struct {
	name string
	run  func(t *testing.T, s gateway.Store)
}

// base is the suite's reference instant: hour-aligned, so that every window
// length dividing an hour starts at base.
var base = time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)

// elsewhere is a zone other than UTC, to check that stores keep instants and
// not wall-clock readings.
var elsewhere = time.FixedZone("UTC+05:30", 5*3600+30*60)

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// ok fails the test at once when err is not nil.
func ok(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", op, err)
	}
}

// is fails the test at once unless errors.Is(err, want).
func is(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", op, err, want)
	}
}

// fails fails the test at once when err is nil.
func fails(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want an error", op)
	}
}

// diff collects field mismatches between a record read back and the record
// expected, so that one failure names every wrong field.
type diff []string

// check records a mismatch of a comparable field.
func check[T comparable](d *diff, field string, got, want T) {
	if got != want {
		*d = append(*d, fmt.Sprintf("%s = %#v, want %#v", field, got, want))
	}
}

// checkTime records a mismatch of an instant.
func checkTime(d *diff, field string, got, want time.Time) {
	if !got.Equal(want) {
		*d = append(*d, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
}

// report fails the test at once if any field differed.
func (d diff) report(t *testing.T, what string) {
	t.Helper()
	if len(d) == 0 {
		return
	}
	for _, line := range d {
		t.Errorf("%s: %s", what, line)
	}
	t.FailNow()
}
