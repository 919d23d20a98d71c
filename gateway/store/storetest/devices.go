package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// deviceExpiry is when the suite's devices expire unless a test says
// otherwise.
var deviceExpiry = at(30*24*time.Hour + 250*time.Millisecond)

// deviceID returns a device ID shaped like the gateway's: the hex SHA-256 of
// a device cookie's secret.
func deviceID(n byte) string {
	sum := sha256.Sum256([]byte{'d', 'e', 'v', 'i', 'c', 'e', n})
	return hex.EncodeToString(sum[:])
}

// newDevice returns a device of the user with every field set, distinct per
// n (LastUsedAt included, later for a greater n), expiring at deviceExpiry.
func newDevice(n byte, userID string) store.Device {
	return store.Device{
		ID:         deviceID(n),
		UserID:     userID,
		Name:       fmt.Sprintf("Firefox 128 on Ubuntu — “desk” %d", n),
		CreatedAt:  at(3*time.Second + 7*time.Millisecond),
		LastUsedAt: at(time.Duration(n)*time.Minute + 11*time.Millisecond).In(elsewhere),
		ExpiresAt:  deviceExpiry,
	}
}

// checkDevice compares every field of a device read back.
func checkDevice(t *testing.T, what string, got, want store.Device) {
	t.Helper()
	var d diff
	check(&d, "ID", got.ID, want.ID)
	check(&d, "UserID", got.UserID, want.UserID)
	check(&d, "Name", got.Name, want.Name)
	checkTime(&d, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(&d, "LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	checkTime(&d, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	d.report(t, what)
}

// addDevice stores the devices and fails the test if it cannot.
func addDevice(t *testing.T, s store.Devices, ds ...store.Device) {
	t.Helper()
	for _, d := range ds {
		ok(t, fmt.Sprintf("AddDevice(%.8s)", d.ID), s.AddDevice(t.Context(), d))
	}
}

// deviceByID checks that the device is found at now, exactly as wanted.
func deviceByID(t *testing.T, s store.Devices, now time.Time, want store.Device) {
	t.Helper()
	op := fmt.Sprintf("DeviceByID(%.8s, base%+v)", want.ID, now.Sub(base))
	got, err := s.DeviceByID(t.Context(), want.ID, now)
	ok(t, op, err)
	checkDevice(t, op, got, want)
}

// deviceGone checks that the device is not found at now.
func deviceGone(t *testing.T, s store.Devices, id string, now time.Time, why string) {
	t.Helper()
	_, err := s.DeviceByID(t.Context(), id, now)
	is(t, fmt.Sprintf("DeviceByID(%.8s, base%+v) %s", id, now.Sub(base), why), err, store.ErrNotFound)
}

// listDevices checks that ListDevices returns exactly want, in order.
func listDevices(t *testing.T, s store.Devices, userID string, now time.Time, want ...store.Device) {
	t.Helper()
	op := fmt.Sprintf("ListDevices(%s, base%+v)", userID, now.Sub(base))
	got, err := s.ListDevices(t.Context(), userID, now)
	ok(t, op, err)
	if len(got) != len(want) {
		ids := make([]string, len(got))
		for i, d := range got {
			ids[i] = fmt.Sprintf("%.8s", d.ID)
		}
		t.Fatalf("%s returned %d devices %v, want %d", op, len(got), ids, len(want))
	}
	for i := range want {
		checkDevice(t, fmt.Sprintf("%s[%d]", op, i), got[i], want[i])
	}
}

// deleteDevices calls DeleteDevices and fails the test unless it returns
// want.
func deleteDevices(t *testing.T, s store.Devices, userID string, want int) {
	t.Helper()
	n, err := s.DeleteDevices(t.Context(), userID)
	ok(t, "DeleteDevices("+userID+")", err)
	if n != want {
		t.Fatalf("DeleteDevices(%s) = %d, want %d", userID, n, want)
	}
}

func deviceTests() []test[store.Devices] {
	before := deviceExpiry.Add(-time.Millisecond)
	return []test[store.Devices]{
		{"add then find by ID", func(t *testing.T, s store.Devices) {
			a, b := newDevice(1, "u1"), newDevice(2, "u2")
			addDevice(t, s, a, b)
			deviceByID(t, s, at(0), a)
			deviceByID(t, s, at(0), b)
		}},
		{"every field round-trips", func(t *testing.T, s store.Devices) {
			d := newDevice(1, "u1")
			d.Name = "Safari 18 on iPhone (Ana’s) ✓"
			d.CreatedAt = at(-36*time.Hour + 999*time.Millisecond).In(elsewhere)
			d.LastUsedAt = at(17*time.Minute + 333*time.Millisecond)
			d.ExpiresAt = at(90*24*time.Hour + time.Millisecond).In(elsewhere)
			// A device never used since it was registered.
			unused := newDevice(2, "u1")
			unused.LastUsedAt = time.Time{}
			addDevice(t, s, d, unused)
			deviceByID(t, s, at(0), d)
			deviceByID(t, s, at(0), unused)
			listDevices(t, s, "u1", at(0), d, unused)
		}},
		{"unknown device is not found", func(t *testing.T, s store.Devices) {
			deviceGone(t, s, deviceID(1), at(0), "on an empty store")
			addDevice(t, s, newDevice(1, "u1"))
			deviceGone(t, s, deviceID(2), at(0), "of another ID")
			deviceGone(t, s, "u1", at(0), "by user ID")
			deviceGone(t, s, "", at(0), "with no ID")
		}},
		{"a device is found until just before it expires", func(t *testing.T, s store.Devices) {
			d := newDevice(1, "u1")
			addDevice(t, s, d)
			deviceByID(t, s, before, d)
			deviceByID(t, s, before.In(elsewhere), d)
			listDevices(t, s, "u1", before, d)
			listDevices(t, s, "u1", before.In(elsewhere), d)
		}},
		{"an expired device is not found nor listed", func(t *testing.T, s store.Devices) {
			d := newDevice(1, "u1")
			// A device registered later that outlives the first.
			later := newDevice(2, "u1")
			later.ExpiresAt = deviceExpiry.Add(60 * 24 * time.Hour)
			addDevice(t, s, d, later)
			for _, now := range []time.Time{
				deviceExpiry,
				deviceExpiry.In(elsewhere),
				deviceExpiry.Add(time.Second),
				deviceExpiry.Add(30 * 24 * time.Hour),
			} {
				deviceGone(t, s, d.ID, now, "when expired")
				listDevices(t, s, "u1", now, later)
			}
			deviceGone(t, s, later.ID, later.ExpiresAt, "when expired")
			listDevices(t, s, "u1", later.ExpiresAt)
		}},
		{"devices are listed most recently used first", func(t *testing.T, s store.Devices) {
			newest := newDevice(1, "u1")
			newest.LastUsedAt = at(5*time.Hour + time.Millisecond).In(elsewhere)
			newest.CreatedAt = at(-48 * time.Hour) // registered first, used last
			middle := newDevice(2, "u1")
			middle.LastUsedAt = at(5 * time.Hour)
			oldest := newDevice(3, "u1")
			oldest.LastUsedAt = at(-24 * time.Hour)
			never := newDevice(4, "u1")
			never.LastUsedAt = time.Time{}
			expired := newDevice(5, "u1")
			expired.LastUsedAt, expired.ExpiresAt = at(6*time.Hour), at(time.Hour)
			// Another user's device, used between this user's.
			theirs := newDevice(6, "u2")
			theirs.LastUsedAt = at(5*time.Hour - time.Millisecond)
			// Added out of order, with IDs that sort in neither order.
			addDevice(t, s, middle, never, theirs, expired, oldest, newest)
			listDevices(t, s, "u1", at(2*time.Hour), newest, middle, oldest, never)
			listDevices(t, s, "u2", at(2*time.Hour), theirs)
		}},
		{"a user without devices lists none", func(t *testing.T, s store.Devices) {
			listDevices(t, s, "u1", at(0))
			addDevice(t, s, newDevice(1, "u1"))
			listDevices(t, s, "u2", at(0))
			listDevices(t, s, "", at(0))
		}},
		{"touch updates last used only and reorders the list", func(t *testing.T, s store.Devices) {
			a, b := newDevice(1, "u1"), newDevice(2, "u1")
			other := newDevice(3, "u2")
			addDevice(t, s, a, b, other)
			listDevices(t, s, "u1", at(0), b, a)
			for _, used := range []time.Time{
				at(3*time.Hour + 5*time.Millisecond),
				at(4*time.Hour + 999*time.Millisecond).In(elsewhere),
			} {
				ok(t, "TouchDevice", s.TouchDevice(t.Context(), a.ID, used))
				a.LastUsedAt = used
				deviceByID(t, s, at(0), a)
				listDevices(t, s, "u1", at(0), a, b)
			}
			deviceByID(t, s, at(0), b)
			deviceByID(t, s, at(0), other)
		}},
		{"duplicate ID conflicts", func(t *testing.T, s store.Devices) {
			first := newDevice(1, "u1")
			addDevice(t, s, first)
			again := newDevice(1, "u1")
			again.Name, again.ExpiresAt = "Chrome on Android", deviceExpiry.Add(time.Hour)
			is(t, "AddDevice with a taken ID", s.AddDevice(t.Context(), again), store.ErrConflict)
			again.UserID = "u2"
			is(t, "AddDevice with another user's ID", s.AddDevice(t.Context(), again), store.ErrConflict)
			deviceByID(t, s, at(0), first)
			listDevices(t, s, "u2", at(0))
		}},
		{"delete removes one of the user's devices", func(t *testing.T, s store.Devices) {
			a, b := newDevice(1, "u1"), newDevice(2, "u1")
			addDevice(t, s, a, b)
			ok(t, "DeleteDevice", s.DeleteDevice(t.Context(), "u1", a.ID))
			deviceGone(t, s, a.ID, at(0), "after DeleteDevice")
			listDevices(t, s, "u1", at(0), b)
			is(t, "DeleteDevice again", s.DeleteDevice(t.Context(), "u1", a.ID), store.ErrNotFound)
		}},
		{"delete refuses another user's device and leaves it", func(t *testing.T, s store.Devices) {
			mine, theirs := newDevice(1, "u1"), newDevice(2, "u2")
			addDevice(t, s, mine, theirs)
			is(t, "DeleteDevice of another user's device", s.DeleteDevice(t.Context(), "u1", theirs.ID), store.ErrNotFound)
			is(t, "DeleteDevice of an unknown device", s.DeleteDevice(t.Context(), "u1", deviceID(3)), store.ErrNotFound)
			is(t, "DeleteDevice of an unknown user", s.DeleteDevice(t.Context(), "u3", mine.ID), store.ErrNotFound)
			deviceByID(t, s, at(0), mine)
			deviceByID(t, s, at(0), theirs)
			listDevices(t, s, "u2", at(0), theirs)
		}},
		{"delete all removes and counts the user's devices only", func(t *testing.T, s store.Devices) {
			mine := []store.Device{newDevice(1, "u1"), newDevice(3, "u1"), newDevice(5, "u1")}
			theirs := []store.Device{newDevice(2, "u2"), newDevice(4, "u2")}
			addDevice(t, s, mine...)
			addDevice(t, s, theirs...)
			deleteDevices(t, s, "u1", len(mine))
			for _, d := range mine {
				deviceGone(t, s, d.ID, at(0), "after DeleteDevices")
			}
			listDevices(t, s, "u1", at(0))
			listDevices(t, s, "u2", at(0), theirs[1], theirs[0])
			deleteDevices(t, s, "u1", 0)
			deleteDevices(t, s, "u3", 0)
			// The user can register again.
			addDevice(t, s, newDevice(7, "u1"))
			listDevices(t, s, "u1", at(0), newDevice(7, "u1"))
		}},
		{"a cancelled context fails reads", func(t *testing.T, s store.Devices) {
			addDevice(t, s, newDevice(1, "u1"))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.DeviceByID(ctx, deviceID(1), at(0))
			fails(t, "DeviceByID with a cancelled context", err)
			_, err = s.ListDevices(ctx, "u1", at(0))
			fails(t, "ListDevices with a cancelled context", err)
		}},
		{"a cancelled context fails writes, which have no effect", func(t *testing.T, s store.Devices) {
			d := newDevice(1, "u1")
			addDevice(t, s, d)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			fails(t, "AddDevice with a cancelled context", s.AddDevice(ctx, newDevice(2, "u1")))
			deviceGone(t, s, deviceID(2), at(0), "after a cancelled AddDevice")
			fails(t, "TouchDevice with a cancelled context", s.TouchDevice(ctx, d.ID, at(time.Hour)))
			fails(t, "DeleteDevice with a cancelled context", s.DeleteDevice(ctx, "u1", d.ID))
			_, err := s.DeleteDevices(ctx, "u1")
			fails(t, "DeleteDevices with a cancelled context", err)
			deviceByID(t, s, at(0), d)
			listDevices(t, s, "u1", at(0), d)
		}},
	}
}
