package session

import (
	"context"
	"errors"
	"time"
)

// Invalidation names cached sessions that every replica must stop trusting:
// one session, every session of a login, or every session of a user. Each
// field set widens what is dropped; a zero Invalidation drops nothing.
type Invalidation struct {
	SessionID string `json:"sid,omitempty"`
	LoginID   string `json:"login,omitempty"`
	UserID    string `json:"user,omitempty"`
}

// Invalidator tells the gateway's replicas which cached sessions to drop
// (plugins/store/redis implements it with pub/sub, plugins/store/postgres
// with LISTEN/NOTIFY, and AnyOf joins several). A single instance needs
// none: Deps.Invalidator is then nil. It is safe for concurrent use.
type Invalidator interface {
	// Publish tells every replica listening now, this one included, to
	// drop inv's sessions. An error means some may not have been told.
	Publish(ctx context.Context, inv Invalidation) error
	// Listen subscribes and calls ready once the subscription is in place
	// (from then on no published invalidation is missed), then drop for
	// every invalidation received, one at a time, until ctx is done or the
	// subscription breaks. It returns ctx's error in the first case and
	// the failure in the second; it never returns nil.
	Listen(ctx context.Context, ready func(), drop func(Invalidation)) error
}

// Backoff bounds between two subscription attempts after a failure.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// publishTimeout bounds one Publish: a request that ended a session does
// not wait longer than this for the channels to the other replicas.
const publishTimeout = 2 * time.Second

// Watch keeps this replica subscribed to the invalidations of the others
// until ctx is done, and returns then. While subscribed the session cache
// is used; while not (before the first subscription, and from a break until
// the next one) every request reads the store, so a session ended on
// another replica is never trusted from a cache that could have missed it.
// It resubscribes with a backoff from 100 ms doubling to 5 s. With AnyOf's
// Invalidator it is subscribed while any of the channels is. Without an Invalidator it returns at
// once: a single instance trusts its cache.
func (m *Manager) Watch(ctx context.Context) {
	if m.inval == nil {
		return
	}
	backoff := listenBackoffMin
	for {
		subscribed := false
		err := m.inval.Listen(ctx, func() {
			// Anything cached before now may have missed an
			// invalidation; the cache starts empty.
			m.cache.purge()
			m.trusted.Store(true)
			subscribed = true
			m.log.InfoContext(ctx, "session invalidations subscribed")
		}, m.drop)
		m.distrust()
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			backoff = listenBackoffMin
		}
		m.log.ErrorContext(ctx, "session invalidations lost: reading every session from the store until resubscribed",
			"error", err, "retry_in", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// distrust stops using the cache and empties it. The generation moves on,
// so that a read begun while the cache was trusted is not added to it.
func (m *Manager) distrust() {
	m.trusted.Store(false)
	m.gen.Add(1)
	m.cache.purge()
}

// useCache reports whether the cache may be used now: always without an
// Invalidator, and only while subscribed with one.
func (m *Manager) useCache() bool {
	return m.inval == nil || m.trusted.Load()
}

// drop removes inv's sessions from this replica's cache. The generation
// moves on first, so that a session read from the store before the
// invalidation, and still in flight, is not cached after it.
func (m *Manager) drop(inv Invalidation) {
	m.gen.Add(1)
	if inv.SessionID != "" {
		m.cache.remove(inv.SessionID)
	}
	if inv.LoginID != "" {
		m.cache.removeLogin(inv.LoginID)
	}
	if inv.UserID != "" {
		m.cache.removeUser(inv.UserID, "")
	}
}

// invalidate drops inv's sessions here at once and tells the other
// replicas. A failure to tell them is logged: they then see the change when
// their entry expires (within the cache's lifetime) or, if their own link
// to Redis broke too, at once, as they stop using the cache.
func (m *Manager) invalidate(ctx context.Context, inv Invalidation) {
	m.drop(inv)
	if m.inval == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := m.inval.Publish(ctx, inv); err != nil {
		m.log.ErrorContext(ctx, "publish session invalidation", "error", err,
			"user_id", inv.UserID, "kind", inv.kind())
	}
}

// kind names what inv drops, for logs (session and login IDs are secrets
// of the cookie's holder and are not logged).
func (inv Invalidation) kind() string {
	switch {
	case inv.UserID != "":
		return "user"
	case inv.LoginID != "":
		return "login"
	case inv.SessionID != "":
		return "session"
	}
	return "none"
}

// Validate reports an Invalidation that names nothing, as one received from
// outside may.
func (inv Invalidation) Validate() error {
	if inv.SessionID == "" && inv.LoginID == "" && inv.UserID == "" {
		return errors.New("session: the invalidation names no session, login or user")
	}
	return nil
}
