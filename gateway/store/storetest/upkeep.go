package storetest

import (
	"testing"
	"time"
)

func upkeepTests() []test[Upkept] {
	return []test[Upkept]{
		{"ping", func(t *testing.T, s Upkept) {
			ok(t, "Ping", s.Ping(t.Context()))
		}},
		{"sweep removes what has expired and keeps the rest", func(t *testing.T, s Upkept) {
			now := base.Add(2 * time.Hour)
			old := newSession(sessionID(1), "login-1", "savings.example.com")
			old.ExpiresAt = base.Add(time.Hour)
			live := newSession(sessionID(2), "login-2", "savings.example.com")
			live.ExpiresAt = base.Add(3 * time.Hour)
			atExpiry := newSession(sessionID(3), "login-3", "savings.example.com")
			atExpiry.ExpiresAt = now
			ok(t, "CreateSession", s.CreateSession(t.Context(), old))
			ok(t, "CreateSession", s.CreateSession(t.Context(), live))
			ok(t, "CreateSession", s.CreateSession(t.Context(), atExpiry))
			expired := newRecord(exchange, "r1")
			expired.ExpiresAt = base.Add(time.Hour)
			kept := newRecord(exchange, "r2")
			kept.ExpiresAt = base.Add(3 * time.Hour)
			putRecord(t, s, at(0), expired)
			putRecord(t, s, at(0), kept)
			oldDevice := newDevice(1, "u1")
			oldDevice.ExpiresAt = base.Add(time.Hour)
			deviceAtExpiry := newDevice(2, "u1")
			deviceAtExpiry.ExpiresAt = now
			liveDevice := newDevice(3, "u1")
			liveDevice.ExpiresAt = base.Add(3 * time.Hour)
			addDevice(t, s, oldDevice, deviceAtExpiry, liveDevice)

			ok(t, "Sweep", s.Sweep(t.Context(), now))
			sessionGone(t, s, old.ID, "of a swept session")
			sessionGone(t, s, atExpiry.ID, "of a session swept at its expiry")
			getSession(t, s, live)
			recordGone(t, s, exchange, expired.ID, now, "after Sweep")
			kept.Attempts = 1
			attemptRecord(t, s, now, kept)
			takeRecord(t, s, now, kept)
			// Looked up at a time when they were live, the expired devices
			// are gone: Sweep deleted them.
			deviceGone(t, s, oldDevice.ID, at(0), "of a swept device")
			deviceGone(t, s, deviceAtExpiry.ID, at(0), "of a device swept at its expiry")
			listDevices(t, s, "u1", at(0), liveDevice)
			deviceByID(t, s, now, liveDevice)
		}},
	}
}
