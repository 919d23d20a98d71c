package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/portcullis/portcullis/gateway/store"
)

// OfUser returns the live sessions of the user, on every host and of every
// login, most recently seen first: those past their absolute limit or idle
// too long are left out (they no longer let anyone in).
func (m *Manager) OfUser(ctx context.Context, userID string) ([]store.Session, error) {
	all, err := m.sessions.ListUserSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	now := m.now()
	live := make([]store.Session, 0, len(all))
	for _, sess := range all {
		if at, ok := m.touches.seen(sess.ID); ok && at.After(sess.LastSeen) {
			sess.LastSeen = at
		}
		if now.Before(sess.ExpiresAt) && now.Sub(sess.LastSeen) < m.idle {
			live = append(live, sess)
		}
	}
	// LastSeen writes still queued may reorder the store's list.
	slices.SortStableFunc(live, func(a, b store.Session) int { return b.LastSeen.Compare(a.LastSeen) })
	return live, nil
}

// EndSession ends one session of the user in the store and on every
// replica at once (its cached copies are dropped). ErrNotFound when the user has
// no such session.
func (m *Manager) EndSession(ctx context.Context, userID, sessionID string) error {
	sess, err := m.sessions.GetSession(ctx, sessionID)
	if err == nil && sess.UserID != userID {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if err := m.sessions.DeleteSession(ctx, sessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.cache.remove(sessionID)
		return fmt.Errorf("end session: %w", err)
	}
	m.invalidate(ctx, Invalidation{SessionID: sessionID})
	return nil
}

// EndUserSessions ends every session of the user but keep ("" ends them
// all), on every host, and returns how many it ended. The store deletes
// them in one step; every replica's cached copies go too, so a cookie of an
// ended session is refused on the next request, wherever it goes.
func (m *Manager) EndUserSessions(ctx context.Context, userID, keep string) (int, error) {
	ended, err := m.sessions.DeleteUserSessions(ctx, userID, keep)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	for _, sid := range ended {
		m.cache.remove(sid)
	}
	m.cache.removeUser(userID, keep)
	if len(ended) > 0 {
		// The other replicas drop every cached session of the user:
		// the one kept is read anew there.
		m.invalidate(ctx, Invalidation{UserID: userID})
	}
	return len(ended), nil
}

// EndDeviceSessions ends every login of the user made from the registered
// device deviceID (each login's sessions on every host), in the store and
// on every replica, and returns how many sessions it ended: after the
// device is removed, nothing signed in from it goes on. Logins from other
// devices are left alone.
func (m *Manager) EndDeviceSessions(ctx context.Context, userID, deviceID string) (int, error) {
	if deviceID == "" {
		return 0, nil
	}
	all, err := m.sessions.ListUserSessions(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("end device sessions: %w", err)
	}
	ended := 0
	logins := map[string]bool{}
	for _, s := range all {
		if s.DeviceID != deviceID {
			continue
		}
		ended++
		if logins[s.LoginID] {
			continue
		}
		logins[s.LoginID] = true
		if err := m.sessions.DeleteLogin(ctx, s.LoginID); err != nil {
			m.cache.removeLogin(s.LoginID)
			return ended, fmt.Errorf("end device sessions: %w", err)
		}
		m.invalidate(ctx, Invalidation{LoginID: s.LoginID})
	}
	return ended, nil
}

// RefreshUser drops the cached copies of every session of the user on
// every replica, so that the next request of each reads the profile anew
// (after a change to it, such as a new username).
func (m *Manager) RefreshUser(userID string) {
	m.invalidate(context.Background(), Invalidation{UserID: userID})
}

// Renew replaces the request's session with one under a new ID (and a new
// cookie), of the same login, methods and limits: after a change of
// credentials, a session ID seen before it no longer works.
func (m *Manager) Renew(w http.ResponseWriter, r *http.Request, id Identity) (store.Session, error) {
	old := id.Session
	sess, err := m.open(w, r, store.Session{LoginID: old.LoginID, UserID: old.UserID, Methods: old.Methods,
		AuthTime: old.AuthTime, ExpiresAt: old.ExpiresAt, DeviceID: old.DeviceID})
	if err != nil {
		return store.Session{}, fmt.Errorf("renew session: %w", err)
	}
	if err := m.sessions.DeleteSession(r.Context(), old.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.cache.remove(old.ID)
		return store.Session{}, fmt.Errorf("renew session: %w", err)
	}
	m.invalidate(r.Context(), Invalidation{SessionID: old.ID})
	return sess, nil
}

// removeUser drops every cached session of the user but keep.
func (c cache) removeUser(userID, keep string) {
	if c.lru == nil {
		return
	}
	for _, sid := range c.lru.Keys() {
		if id, ok := c.lru.Peek(sid); ok && id.Session.UserID == userID && sid != keep {
			c.lru.Remove(sid)
		}
	}
}
