// Package session keeps people signed in: it starts a session when a flow
// has verified someone, finds the session a request carries, ends one
// session or the whole login (every host it reached), and runs the
// cross-host exchange that opens a session of the same login on another of
// the gateway's hosts. It declares the stores it needs.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/web"
	"github.com/portcullis/portcullis/policies"
)

// Cookie is the session cookie's name: host-only, Secure, HttpOnly, Lax.
const Cookie = "__Host-portcullis"

// Users is what the manager reads of profiles.
type Users interface {
	UserByID(ctx context.Context, id string) (store.User, error)
}

// Identity is a valid session with its user, as the proxy and the flows need
// it.
type Identity struct {
	Session store.Session
	User    store.User
}

// Deps are what a Manager works with.
type Deps struct {
	Sessions store.Sessions
	// Records keep the single-use exchange codes.
	Records store.Records
	Users   Users
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration
	// CacheSize bounds how many sessions (with their users) are kept in
	// memory between requests: 0 means DefaultCacheSize, and a negative
	// value disables the cache (every request reads the store).
	CacheSize int
	// Invalidator tells the other replicas which cached sessions to
	// drop, and tells this one theirs (see Watch); nil for a single
	// instance.
	Invalidator Invalidator
	Log         *slog.Logger
	Now         func() time.Time
	Rand        io.Reader
}

// Manager starts, finds and ends sessions. It is safe for concurrent use.
type Manager struct {
	sessions store.Sessions
	records  store.Records
	users    Users
	idle     time.Duration
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader
	// joined reads a session with its user in one step, when one store
	// keeps both and can; nil otherwise.
	joined store.SessionUsers
	cache  cache
	// inval is nil for a single instance. With one, the cache is used
	// only while trusted (subscribed to the other replicas'
	// invalidations); gen moves on whenever trust is lost or sessions are
	// dropped, so that a read begun before is not cached.
	inval   Invalidator
	trusted atomic.Bool
	gen     atomic.Uint64
	// touches writes LastSeen in batches.
	touches *touches
}

// DefaultCacheSize is the session cache's size when Deps.CacheSize is 0.
const DefaultCacheSize = 10000

// cacheTTL bounds how long a session read from the store is used without
// reading it again: how late this instance sees a session ended elsewhere
// when no Invalidator tells it sooner.
const cacheTTL = 5 * time.Second

// New returns a Manager. Every field of deps must be set, except CacheSize
// and Invalidator.
func New(deps Deps) *Manager {
	m := &Manager{
		sessions: deps.Sessions,
		records:  deps.Records,
		users:    deps.Users,
		idle:     deps.IdleTimeout,
		log:      deps.Log,
		now:      deps.Now,
		rand:     deps.Rand,
		inval:    deps.Invalidator,
	}
	size := deps.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	m.cache = newCache(size, cacheTTL)
	m.touches = newTouches(deps.Sessions, deps.Log)
	if j, ok := deps.Sessions.(store.SessionUsers); ok && sameStore(deps.Sessions, deps.Users) {
		m.joined = j
	}
	return m
}

// sameStore reports whether a and b are the same store value.
func sameStore(a, b any) bool {
	t := reflect.TypeOf(a)
	return t != nil && t == reflect.TypeOf(b) && t.Comparable() && a == b
}

// touchEvery bounds how often a session's LastSeen is written: idle limits
// are measured with this granularity, and busy sessions do not write on every
// request.
func (m *Manager) touchEvery() time.Duration {
	return min(m.idle/10, 30*time.Second)
}

// Current returns the session named by the request's cookie on this host,
// with its user. ok is false when there is no valid session: no cookie,
// unknown, for another host, idle or past its absolute limit. An error means
// the store could not answer, and the caller must deny.
func (m *Manager) Current(r *http.Request) (id Identity, ok bool, err error) {
	c, err := r.Cookie(Cookie)
	if err != nil || !web.ValidToken(c.Value) {
		return Identity{}, false, nil
	}
	return m.ByID(r.Context(), web.TokenID(c.Value), web.HostName(r.Host))
}

// ByID returns the session with the given ID if it is valid on host, as
// Current does.
func (m *Manager) ByID(ctx context.Context, sid, host string) (Identity, bool, error) {
	now := m.now()
	gen, useCache := m.gen.Load(), m.useCache()
	var id Identity
	var cached bool
	if useCache {
		id, cached = m.cache.get(sid)
	}
	if cached && m.touchDue(sid, &id.Session, now) {
		// A cached session whose LastSeen is due is read anew, which
		// finds out whether it was ended elsewhere (another replica, an
		// administrator) since it was cached: busy use does not keep a
		// revoked session alive past the next write of LastSeen.
		m.cache.remove(sid)
		cached = false
	}
	if !cached {
		var found bool
		var err error
		id, found, err = m.read(ctx, sid)
		if err != nil || !found {
			return Identity{}, false, err
		}
	}
	sess := &id.Session
	if sess.Host != host {
		return Identity{}, false, nil
	}
	due := !cached && m.touchDue(sid, sess, now)
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= m.idle {
		if err := m.sessions.DeleteSession(ctx, sid); err != nil && !errors.Is(err, store.ErrNotFound) {
			m.log.ErrorContext(ctx, "delete expired session", "error", err)
		}
		m.invalidate(ctx, Invalidation{SessionID: sid})
		return Identity{}, false, nil
	}
	if due {
		// The session was read from the store just now, so it exists:
		// its LastSeen is queued and written with the others of the
		// moment, unless the queue is full.
		if !m.touches.add(sid, now) {
			err := m.sessions.TouchSession(ctx, sid, now)
			if errors.Is(err, store.ErrNotFound) {
				return Identity{}, false, nil
			}
			if err != nil {
				return Identity{}, false, fmt.Errorf("touch session: %w", err)
			}
		}
		sess.LastSeen = now
	}
	if !cached && useCache && m.useCache() && m.gen.Load() == gen {
		// Added only when read from the store: re-adding on every hit would
		// renew the entry's lifetime and keep a revoked session alive
		// while it is busy. A read begun before trust in the cache was
		// lost is not added.
		m.cache.add(sid, id)
	}
	return id, true, nil
}

// touchDue reports whether the session's LastSeen is due to be written at
// now. A write queued but not yet made counts as made: sess.LastSeen is
// moved up to it.
func (m *Manager) touchDue(sid string, sess *store.Session, now time.Time) bool {
	if now.Sub(sess.LastSeen) < m.touchEvery() {
		return false
	}
	if at, ok := m.touches.seen(sid); ok && at.After(sess.LastSeen) {
		sess.LastSeen = at
	}
	return now.Sub(sess.LastSeen) >= m.touchEvery()
}

// Flush returns once every LastSeen queued so far has been written (within
// about a second), or ctx is done: for a clean shutdown, and for tests that
// read LastSeen from the store.
func (m *Manager) Flush(ctx context.Context) error { return m.touches.wait(ctx) }

// read reads the session and its user from the store. found is false for an
// unknown session, and for one whose user is gone, whose login it ends.
func (m *Manager) read(ctx context.Context, sid string) (id Identity, found bool, err error) {
	if m.joined != nil {
		id.Session, id.User, err = m.joined.GetSessionUser(ctx, sid)
	} else {
		id.Session, err = m.sessions.GetSession(ctx, sid)
	}
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("get session: %w", err)
	}
	userGone := m.joined != nil && id.User.ID == ""
	if m.joined == nil {
		id.User, err = m.users.UserByID(ctx, id.Session.UserID)
		userGone = errors.Is(err, store.ErrNotFound)
		if err != nil && !userGone {
			return Identity{}, false, fmt.Errorf("get session user: %w", err)
		}
	}
	if userGone {
		_ = m.sessions.DeleteLogin(ctx, id.Session.LoginID)
		m.invalidate(ctx, Invalidation{LoginID: id.Session.LoginID})
		return Identity{}, false, nil
	}
	return id, true, nil
}

// Start opens a session on the request's host for a user who has just
// signed in, as a new login, made from the registered device deviceID (""
// for none). Any session the browser already had on this host is ended
// first, so a session ID planted before sign-in is never promoted (session
// fixation).
func (m *Manager) Start(w http.ResponseWriter, r *http.Request, user store.User, methods []string, deviceID string, lifetime time.Duration) (store.Session, error) {
	m.EndCurrent(r)
	_, loginID, err := web.NewToken(m.rand)
	if err != nil {
		return store.Session{}, err
	}
	now := m.now()
	return m.open(w, r, store.Session{
		LoginID:   loginID,
		UserID:    user.ID,
		Methods:   methods,
		AuthTime:  now,
		ExpiresAt: now.Add(lifetime),
		DeviceID:  deviceID,
	})
}

// open stores a session for the request's host with a fresh token and sets
// its cookie. LoginID, UserID, Methods, AuthTime, ExpiresAt and DeviceID
// come from tmpl.
func (m *Manager) open(w http.ResponseWriter, r *http.Request, tmpl store.Session) (store.Session, error) {
	token, sid, err := web.NewToken(m.rand)
	if err != nil {
		return store.Session{}, err
	}
	sess := tmpl
	sess.ID = sid
	sess.Host = web.HostName(r.Host)
	sess.LastSeen = m.now()
	if err := m.sessions.CreateSession(r.Context(), sess); err != nil {
		return store.Session{}, fmt.Errorf("create session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: Cookie, Value: token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return sess, nil
}

// EndCurrent deletes the request's session on this host, if any.
func (m *Manager) EndCurrent(r *http.Request) {
	c, err := r.Cookie(Cookie)
	if err != nil || !web.ValidToken(c.Value) {
		return
	}
	sid := web.TokenID(c.Value)
	if err := m.sessions.DeleteSession(r.Context(), sid); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.ErrorContext(r.Context(), "delete session", "error", err)
	}
	m.invalidate(r.Context(), Invalidation{SessionID: sid})
}

// EndLogin ends every session of the login, on every host.
func (m *Manager) EndLogin(ctx context.Context, loginID string) error {
	if err := m.sessions.DeleteLogin(ctx, loginID); err != nil {
		return fmt.Errorf("end login: %w", err)
	}
	m.invalidate(ctx, Invalidation{LoginID: loginID})
	return nil
}

// ClearCookie tells the browser to forget this host's session cookie.
func ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: Cookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// Facts are what the policies know of a session: how the person
// authenticated and when. A session is opened when the last step of a
// login passes and replaced when a step-up passes inside it, so a session
// with a method beyond the password stepped up at its AuthTime.
func Facts(sess store.Session) *policies.Session {
	f := &policies.Session{Methods: sess.Methods, AuthTime: sess.AuthTime.Unix(),
		LastSeen: sess.LastSeen.Unix(), Created: sess.AuthTime.Unix()}
	if len(sess.Methods) > 1 {
		f.StepUpAt = sess.AuthTime.Unix()
	}
	return f
}

// Refresh drops the session's cached copy on every replica, so that the
// next request reads the session and its user from the store (after a
// change to the profile).
func (m *Manager) Refresh(sessionID string) {
	m.invalidate(context.Background(), Invalidation{SessionID: sessionID})
}

// RefreshLogin drops every session of the login from every replica's
// cache, so that a change to its user (a product added) is seen at once on
// every host it signed in to.
func (m *Manager) RefreshLogin(loginID string) {
	m.invalidate(context.Background(), Invalidation{LoginID: loginID})
}

// Require returns the request's session, or the 401 refusal for a request
// without one (no_session), or the store's failure as a 503.
func (m *Manager) Require(r *http.Request) (Identity, error) {
	id, ok, err := m.Current(r)
	if err != nil {
		return id, web.Unavailable(err)
	}
	if !ok {
		return id, &web.Error{Status: http.StatusUnauthorized, Reason: policies.ReasonNoSession, Message: web.MsgSessionEnded}
	}
	return id, nil
}

// Lifetime is the lifetime of a session a decision opens: max, or the
// policy's session_max_seconds when that is shorter.
func Lifetime(max time.Duration, d policies.Decision) time.Duration {
	if p := time.Duration(d.SessionMaxSeconds) * time.Second; p > 0 && p < max {
		return p
	}
	return max
}
