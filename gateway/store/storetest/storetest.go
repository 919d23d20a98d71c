// Package storetest is the conformance suite for the parts of package store.
// Every store runs it from its own tests, so that SQLite, PostgreSQL and Redis
// behave alike behind the gateway. A store that keeps everything runs Run:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.All {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// A store that keeps only some parts runs the groups for those: RunUsers,
// RunHits, RunSessions, RunRecords, RunDevices, RunFactors, RunKeys and
// RunUpkeep. A store with an optional part runs its group as well:
// RunSessionUsers for store.SessionUsers, RunSessionTouches for
// store.SessionTouches.
//
// Beyond the interface documentation, the suite pins down these points:
//
//   - Times keep at least millisecond precision and may come back in any
//     location: the suite uses whole milliseconds between the years 2000 and
//     2100, some of them outside UTC, and compares instants with
//     time.Time.Equal. The zero time.Time (an unlocked user's LockedAt, an
//     active key's RetiredAt, the LastUsedAt of a device or factor never
//     used) comes back as the zero time.
//   - A user's targeted updates (SetUsername, SetDisplayName, SetProducts,
//     SetSecurityPhone, SetEmail, SetPasswordHash, LockUser, UnlockUser)
//     change their own fields and UpdatedAt and nothing else, also when they
//     race each other and the failure counter. UnlockUser sets LockedAt back
//     to the zero time. An empty SecurityPhone or Email round-trips as empty.
//   - StepUpFailures is a counter of its own: AddLoginFailure,
//     ResetLoginFailures, ConfirmLogin and SetPasswordHash leave it as it
//     is; ConfirmStepUp and UnlockUser set it to zero.
//   - No products and an empty list of products are the same.
//   - The empty CustomerID is no customer ID: any number of profiles may
//     have it and UserByCustomerID never finds it. A non-empty one is unique:
//     of concurrent CreateUsers with one customer ID, exactly one succeeds
//     and the rest are ErrConflict. A profile without consent has the zero
//     ConsentAt and an empty ConsentVersion.
//   - AddHit windows are fixed, back to back, and aligned to an instant the
//     store chooses; the suite uses hour-aligned times and windows that divide
//     an hour, so alignment to the Unix epoch satisfies it.
//   - A record is found while now is before its ExpiresAt; from ExpiresAt on
//     it has expired, for TakeRecord, AttemptRecord and PutRecord alike. A
//     PutRecord whose now is the ExpiresAt of the record in the way, or later,
//     replaces that record whole (Attempts included); one a millisecond
//     before is ErrConflict and leaves it as it was. Of concurrent PutRecords
//     over an expired record, one replaces it and the rest are ErrConflict.
//   - A record keeps every field as put, Attempts included; its Payload comes
//     back byte for byte, whatever the bytes (NUL, invalid UTF-8), and nil
//     and empty payloads compare equal.
//   - A device is found while now is before its ExpiresAt; from ExpiresAt on
//     it has expired, for DeviceByID and ListDevices alike. ListDevices orders
//     by LastUsedAt, latest first; a device never used (the zero LastUsedAt)
//     comes last. The suite never gives two devices of one user the same
//     LastUsedAt. DeleteDevice and DeleteDevices touch only the devices of
//     the user they name. The suite calls DeleteDevices only on devices that
//     have not expired, so whether it counts expired devices a store still
//     keeps is left open.
//   - FactorsOf orders by CreatedAt, oldest first; the suite never gives two
//     factors of one user the same CreatedAt. A factor's Secret comes back
//     byte for byte, whatever the bytes, and Counter comes back exactly, up
//     to math.MaxInt64 (not rounded through a float64).
//   - AdvanceFactor with a counter equal to or below the stored one reports
//     false and changes nothing, LastUsedAt included. It reports ErrNotFound,
//     not false, for a factor the user does not have, whatever the counter.
//     Of concurrent AdvanceFactor calls, a call that returns true had a
//     counter above that of every success that returned before it started,
//     and a call that returns false lost to a greater counter already under
//     way.
//   - A session keeps its DeviceID for GetSession, GetSessionUser and
//     ListUserSessions alike; the empty DeviceID (no registered device)
//     round-trips as empty.
//   - ListUserSessions orders by LastSeen, latest first; the suite never
//     gives two sessions of one user the same LastSeen. DeleteUserSessions
//     touches only the sessions of the user it names, and of sessions
//     created while it runs each is either deleted and among the IDs it
//     returns, or kept and not among them.
//   - Sweep deletes the sessions and devices that have expired at the now it
//     is given, ExpiresAt equal to now included (a swept device is not found
//     even at an earlier now), and keeps live sessions, records and devices.
//   - ErrConflict covers every uniqueness rule: a username already taken (by
//     CreateUser or SetUsername), and an ID already used by another user,
//     session, device, factor or signing key (whichever user holds it), or by
//     a live record of the same kind.
//   - ErrNotFound and ErrConflict are matched with errors.Is, so stores may
//     wrap them. Other failures (such as a cancelled context) may be any
//     error; a write that fails on a cancelled context has no effect.
//
// Subtests run one after another, each on a store of its own from open.
package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/store"
)

// All is a store that keeps every part.
type All interface {
	store.Users
	store.Hits
	store.Sessions
	store.Records
	store.Devices
	store.Factors
	assertion.KeyStore
	store.Upkeep
}

// Upkept is what RunUpkeep checks: the upkeep, with the parts whose expiry
// Sweep is checked on.
type Upkept interface {
	store.Upkeep
	store.Sessions
	store.Records
	store.Devices
}

// Run runs every group of the conformance suite. open returns a new, empty
// store; releasing it (t.Cleanup) is the factory's job.
func Run(t *testing.T, open func(t *testing.T) All) {
	t.Helper()
	RunUsers(t, func(t *testing.T) store.Users { return open(t) })
	RunHits(t, func(t *testing.T) store.Hits { return open(t) })
	RunSessions(t, func(t *testing.T) store.Sessions { return open(t) })
	RunRecords(t, func(t *testing.T) store.Records { return open(t) })
	RunDevices(t, func(t *testing.T) store.Devices { return open(t) })
	RunFactors(t, func(t *testing.T) store.Factors { return open(t) })
	RunKeys(t, func(t *testing.T) assertion.KeyStore { return open(t) })
	RunUpkeep(t, func(t *testing.T) Upkept { return open(t) })
}

// RunUsers checks store.Users: profiles, their targeted updates, the failure
// counter and the lock. open returns a new, empty store.
func RunUsers(t *testing.T, open func(t *testing.T) store.Users) {
	t.Helper()
	run(t, open,
		group[store.Users]{"Users", userTests()},
		group[store.Users]{"CustomerIDs", customerIDTests()},
		group[store.Users]{"Updates", updateTests()},
		group[store.Users]{"LoginFailures", loginFailureTests()},
		group[store.Users]{"Locks", lockTests()},
		group[store.Users]{"StepUpFailures", stepUpFailureTests()},
	)
}

// RunHits checks store.Hits. open returns a new, empty store.
func RunHits(t *testing.T, open func(t *testing.T) store.Hits) {
	t.Helper()
	run(t, open, group[store.Hits]{"Hits", hitTests()})
}

// RunSessions checks store.Sessions, the sessions of one user taken
// together included. open returns a new, empty store.
func RunSessions(t *testing.T, open func(t *testing.T) store.Sessions) {
	t.Helper()
	run(t, open, group[store.Sessions]{"Sessions", sessionTests()},
		group[store.Sessions]{"UserSessions", userSessionTests()})
}

// RunRecords checks store.Records. open returns a new, empty store.
func RunRecords(t *testing.T, open func(t *testing.T) store.Records) {
	t.Helper()
	run(t, open, group[store.Records]{"Records", recordTests()})
}

// RunDevices checks store.Devices: registration, expiry, the list, and
// removal of one user's devices only. open returns a new, empty store.
func RunDevices(t *testing.T, open func(t *testing.T) store.Devices) {
	t.Helper()
	run(t, open, group[store.Devices]{"Devices", deviceTests()})
}

// RunFactors checks store.Factors: enrolment, the list, the replay guard's
// compare-and-set under concurrency, and removal of one user's factors only.
// open returns a new, empty store.
func RunFactors(t *testing.T, open func(t *testing.T) store.Factors) {
	t.Helper()
	run(t, open, group[store.Factors]{"Factors", factorTests()})
}

// RunKeys checks assertion.KeyStore. open returns a new, empty store.
func RunKeys(t *testing.T, open func(t *testing.T) assertion.KeyStore) {
	t.Helper()
	run(t, open, group[assertion.KeyStore]{"SigningKeys", signingKeyTests()})
}

// RunUpkeep checks store.Upkeep: Ping, and what Sweep removes from the
// sessions, records and devices and what it keeps. open returns a new, empty store.
func RunUpkeep(t *testing.T, open func(t *testing.T) Upkept) {
	t.Helper()
	run(t, open, group[Upkept]{"Upkeep", upkeepTests()})
}

// test is one behaviour checked against a fresh store of type S.
type test[S any] struct {
	name string
	run  func(t *testing.T, s S)
}

// group is a named list of tests, run as a subtest.
type group[S any] struct {
	name  string
	tests []test[S]
}

// run runs each group as a subtest and each test in it on a store of its own.
func run[S any](t *testing.T, open func(t *testing.T) S, groups ...group[S]) {
	t.Helper()
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
