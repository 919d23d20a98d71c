// Package combined is the store the gateway runs on, joined from a durable
// store and, optionally, a shared one: profiles, devices, factors and signing
// keys always live in the durable store (SQLite, PostgreSQL); counter
// windows, sessions and single-use records live in the shared store (Redis)
// when there is one, so that every replica sees the same five-strike count,
// the same single-use codes and the same logouts, and in the durable store
// otherwise.
package combined

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/gateway/store"
)

// Shared is a store of the parts that replicas share at request speed
// (plugins/store/redis).
type Shared interface {
	store.Hits
	store.Sessions
	store.Records
	store.Upkeep
}

// Durable is a store that keeps every part: the shared ones and profiles,
// devices, factors and signing keys (plugins/store/sqlite,
// plugins/store/postgres).
type Durable interface {
	Shared
	store.Users
	store.Devices
	store.Factors
	assertion.KeyStore
}

// Store routes each part to the store that keeps it. It is safe for
// concurrent use when its stores are. Besides the parts it implements
// store.SessionUsers and store.SessionTouches (see GetSessionUser and
// TouchSessions).
type Store struct {
	store.Users
	store.Devices
	store.Factors
	assertion.KeyStore
	store.Sessions
	store.Records

	// hits is not embedded: its method Hits would be hidden by the field.
	hits    store.Hits
	durable Durable
	shared  Shared // nil when the durable store keeps every part
}

var (
	_ Durable              = (*Store)(nil)
	_ store.SessionUsers   = (*Store)(nil)
	_ store.SessionTouches = (*Store)(nil)
	_ store.Upkeep         = (*Store)(nil)
)

// New returns the store of durable's parts and, when shared is not nil,
// shared's. The Store owns both: Close closes them.
func New(durable Durable, shared Shared) (*Store, error) {
	if durable == nil {
		return nil, errors.New("combined: no durable store")
	}
	s := &Store{Users: durable, Devices: durable, Factors: durable, KeyStore: durable,
		Sessions: durable, Records: durable, hits: durable, durable: durable}
	if shared != nil {
		s.Sessions, s.Records, s.hits, s.shared = shared, shared, shared, shared
	}
	return s, nil
}

// AddHit counts a hit in the hits' store.
func (s *Store) AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	return s.hits.AddHit(ctx, key, window, now)
}

// ReleaseHit takes a hit back in the hits' store.
func (s *Store) ReleaseHit(ctx context.Context, key string, window time.Duration, now time.Time) error {
	return s.hits.ReleaseHit(ctx, key, window, now)
}

// Hits reads a count from the hits' store.
func (s *Store) Hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	return s.hits.Hits(ctx, key, window, now)
}

// GetSessionUser returns the session with its user. When the durable store
// keeps both and reads them together (store.SessionUsers), it does so, in
// one step; otherwise the session is read from its store and then the user
// from the durable store, two reads: a change to the user between them is
// seen, as it would be by a request a moment later. A session whose user
// does not exist comes with the zero User.
func (s *Store) GetSessionUser(ctx context.Context, id string) (store.Session, store.User, error) {
	if j, ok := s.durable.(store.SessionUsers); ok && s.shared == nil {
		return j.GetSessionUser(ctx, id)
	}
	sess, err := s.Sessions.GetSession(ctx, id)
	if err != nil {
		return store.Session{}, store.User{}, err
	}
	u, err := s.Users.UserByID(ctx, sess.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return sess, store.User{}, nil
	case err != nil:
		return store.Session{}, store.User{}, err
	}
	return sess, u, nil
}

// TouchSessions sets the LastSeen of every session named in seen, in one
// step when the sessions' store has a batch write (store.SessionTouches),
// otherwise one TouchSession each, skipping sessions that do not exist.
func (s *Store) TouchSessions(ctx context.Context, seen map[string]time.Time) error {
	if b, ok := s.Sessions.(store.SessionTouches); ok {
		return b.TouchSessions(ctx, seen)
	}
	for id, at := range seen {
		if err := s.Sessions.TouchSession(ctx, id, at); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Ping reports whether every store can be read and written.
func (s *Store) Ping(ctx context.Context) error {
	return s.each(func(u store.Upkeep) error { return u.Ping(ctx) })
}

// Sweep sweeps every store at now.
func (s *Store) Sweep(ctx context.Context, now time.Time) error {
	return s.each(func(u store.Upkeep) error { return u.Sweep(ctx, now) })
}

// Durable returns the durable store, for what it keeps besides the parts
// (the PostgreSQL store's certificate storage).
func (s *Store) Durable() Durable {
	return s.durable
}

// Shared returns the shared store, nil when the durable store keeps every
// part (for what it carries besides the parts: Redis's session
// invalidations).
func (s *Store) Shared() Shared {
	return s.shared
}

// Close closes every store.
func (s *Store) Close() error {
	return s.each(store.Upkeep.Close)
}

// each calls f on the durable store and the shared one, and joins what
// they returned, each error naming its store.
func (s *Store) each(f func(store.Upkeep) error) error {
	var errs []error
	if err := f(s.durable); err != nil {
		errs = append(errs, fmt.Errorf("durable store: %w", err))
	}
	if s.shared != nil {
		if err := f(s.shared); err != nil {
			errs = append(errs, fmt.Errorf("shared store: %w", err))
		}
	}
	return errors.Join(errs...)
}
