package session

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

// RevokingUsers returns u, except that each change to what a session's
// cached identity holds of its profile (a lock, an unlock, a new password,
// username, name, products, phone or email) drops the user's cached
// sessions on every replica once the store has made it, so that the next
// request of each, wherever it goes, sees the profile as it is now. Counts
// of failures are left alone: they change on every wrong answer and are
// judged at the store. The flows and the admin API are given this, not the
// plain store.
func (m *Manager) RevokingUsers(u store.Users) store.Users { return revokingUsers{u, m} }

// RevokingDevices returns d, except that removing devices drops the user's
// cached sessions on every replica once the store has removed them.
func (m *Manager) RevokingDevices(d store.Devices) store.Devices { return revokingDevices{d, m} }

type revokingUsers struct {
	store.Users
	m *Manager
}

// changed drops the user's sessions everywhere when err is nil.
func (m *Manager) changed(ctx context.Context, userID string, err error) error {
	if err == nil {
		m.invalidate(ctx, Invalidation{UserID: userID})
	}
	return err
}

func (u revokingUsers) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	return u.m.changed(ctx, userID, u.Users.SetPasswordHash(ctx, userID, hash, at))
}

func (u revokingUsers) SetUsername(ctx context.Context, userID, username string, at time.Time) error {
	return u.m.changed(ctx, userID, u.Users.SetUsername(ctx, userID, username, at))
}

func (u revokingUsers) SetDisplayName(ctx context.Context, userID, name string, at time.Time) error {
	return u.m.changed(ctx, userID, u.Users.SetDisplayName(ctx, userID, name, at))
}

func (u revokingUsers) SetProducts(ctx context.Context, userID string, products []string, at time.Time) error {
	return u.m.changed(ctx, userID, u.Users.SetProducts(ctx, userID, products, at))
}

func (u revokingUsers) SetSecurityPhone(ctx context.Context, userID, phone string, at time.Time) error {
	return u.m.changed(ctx, userID, u.Users.SetSecurityPhone(ctx, userID, phone, at))
}

func (u revokingUsers) SetEmail(ctx context.Context, userID, email string, at time.Time) error {
	return u.m.changed(ctx, userID, u.Users.SetEmail(ctx, userID, email, at))
}

// LockUser drops the user's sessions when this call locked the profile (a
// profile locked already was dropped when it was locked).
func (u revokingUsers) LockUser(ctx context.Context, userID string, at time.Time) (bool, error) {
	locked, err := u.Users.LockUser(ctx, userID, at)
	if locked {
		err = u.m.changed(ctx, userID, err)
	}
	return locked, err
}

// UnlockUser drops the user's sessions when the profile was locked.
func (u revokingUsers) UnlockUser(ctx context.Context, userID string, at time.Time) (bool, error) {
	was, err := u.Users.UnlockUser(ctx, userID, at)
	if was {
		err = u.m.changed(ctx, userID, err)
	}
	return was, err
}

type revokingDevices struct {
	store.Devices
	m *Manager
}

func (d revokingDevices) DeleteDevice(ctx context.Context, userID, id string) error {
	return d.m.changed(ctx, userID, d.Devices.DeleteDevice(ctx, userID, id))
}

func (d revokingDevices) DeleteDevices(ctx context.Context, userID string) (int, error) {
	n, err := d.Devices.DeleteDevices(ctx, userID)
	if n > 0 {
		err = d.m.changed(ctx, userID, err)
	}
	return n, err
}
