// Package redisstore keeps the parts of the store that gateway replicas
// share at request speed in Redis: counter windows (store.Hits), sessions
// (store.Sessions and store.SessionTouches) and single-use records
// (store.Records), and it carries the replicas' session invalidations
// over pub/sub (session.Invalidator). Profiles, devices, factors and
// signing keys stay in a durable store (SQLite or PostgreSQL);
// plugins/store/combined joins the two.
//
// Every step that decides a limit or a single use is one Lua script, which
// Redis runs atomically: AddHit increments the window's counter and returns
// the count, TakeRecord reads and deletes, AttemptRecord checks the expiry
// and increments, PutRecord checks the record in the way and replaces it.
// The scripts touch keys they compute from the prefix, so the store needs a
// single Redis server (or a primary with its replicas), not Redis Cluster.
//
// The store keeps no clock of its own and never asks Redis for the time:
// expiry is judged at the now its caller gives, to the nanosecond. Keys are
// also given a Redis TTL a minute past their end, so that Redis drops what
// expired without a Sweep: a counter window's key a minute after the window
// ends, a record's a minute after its ExpiresAt (both measured from the now
// of the write), a session's a minute after its ExpiresAt measured from its
// LastSeen at creation. Sweep deletes the sessions that have expired at the
// now it is given.
//
// Every key starts with the configured prefix (default "portcullis:"), so
// that deployments and tests can share a server:
//
//	hits:<window ns>:<start ns>:<key>    counter of one window
//	session:<id>                         hash of one session
//	user-sessions:<user ID>              set of the user's session IDs
//	login-sessions:<login ID>            set of the login's session IDs
//	session-expiry                       sorted set of session IDs by ExpiresAt
//	record:<len(kind)>:<kind>:<id>       hash of one record
//	heartbeat                            counter Ping increments
//	invalidations                        pub/sub channel of session invalidations
//
// Times are stored as Unix seconds and nanoseconds ("1900000000.000000500"),
// so they round-trip exactly; the zero time.Time is stored as "".
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/store"
)

// DefaultPrefix starts every key when Config.Prefix is empty.
const DefaultPrefix = "portcullis:"

// expiryMargin is how long after its end Redis keeps a key, so that a
// record or session is judged expired by the store, at the caller's now,
// before Redis drops it.
const expiryMargin = time.Minute

// Config says which Redis to use and under which prefix.
type Config struct {
	// URL is redis://[user:password@]host:port/db, rediss:// for TLS, or
	// unix:///path/to/socket. It may hold a password, so no error and no
	// log line of this package repeats it.
	URL string
	// Prefix starts every key; DefaultPrefix when empty.
	Prefix string
}

// Store keeps hits, sessions and records in Redis. It is safe for
// concurrent use, by any number of goroutines and gateway replicas.
type Store struct {
	client *redis.Client
	keys   keys
}

var (
	_ store.Hits           = (*Store)(nil)
	_ store.Sessions       = (*Store)(nil)
	_ store.SessionTouches = (*Store)(nil)
	_ store.Records        = (*Store)(nil)
	_ store.Upkeep         = (*Store)(nil)
)

// Open connects to the Redis at cfg.URL and checks that it answers. An
// unreachable server is an error here and from every method later.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	opts, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: open: %w", err)
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsFunc(prefix, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, errors.New("redisstore: open: the prefix must not contain spaces or control characters")
	}
	s := &Store{client: redis.NewClient(opts), keys: keys{prefix: prefix}}
	if err := s.client.Ping(ctx).Err(); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("redisstore: open %s: %w", opts.Addr, err)
	}
	return s, nil
}

// parseURL reads a Redis URL without repeating it, or any part of it that
// could be its password, in the error.
func parseURL(raw string) (*redis.Options, error) {
	if raw == "" {
		return nil, errors.New("no URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("the URL cannot be parsed (not repeated here: it may hold a password)")
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return nil, fmt.Errorf("the %s URL names no host", u.Scheme)
		}
	case "unix":
	default:
		return nil, fmt.Errorf("the URL's scheme %q is not redis, rediss or unix", u.Scheme)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		// go-redis names the option or the database number that is
		// wrong, never the user information.
		return nil, err
	}
	return opts, nil
}

// Ping reports whether Redis can be written: it increments the heartbeat
// counter, which nothing else reads, and reads the count back.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Incr(ctx, s.keys.heartbeat()).Err(); err != nil {
		return storeErr("ping", err)
	}
	return nil
}

// Close closes the connections to Redis.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return storeErr("close", err)
	}
	return nil
}

// keys builds the store's key names under its prefix.
type keys struct{ prefix string }

func (k keys) hits(key string, window time.Duration, start int64) string {
	return k.prefix + "hits:" + strconv.FormatInt(int64(window), 10) + ":" + strconv.FormatInt(start, 10) + ":" + key
}

func (k keys) session(id string) string          { return k.sessionPrefix() + id }
func (k keys) sessionPrefix() string             { return k.prefix + "session:" }
func (k keys) userSessions(userID string) string { return k.userSessionsPrefix() + userID }
func (k keys) userSessionsPrefix() string        { return k.prefix + "user-sessions:" }
func (k keys) loginSessions(loginID string) string {
	return k.loginSessionsPrefix() + loginID
}
func (k keys) loginSessionsPrefix() string { return k.prefix + "login-sessions:" }
func (k keys) sessionExpiry() string       { return k.prefix + "session-expiry" }
func (k keys) heartbeat() string           { return k.prefix + "heartbeat" }
func (k keys) invalidations() string       { return k.prefix + "invalidations" }

// record is the key of a record: the kind's length first, so that no kind
// and ID run together into another's.
func (k keys) record(kind, id string) string {
	return k.prefix + "record:" + strconv.Itoa(len(kind)) + ":" + kind + ":" + id
}

// storeErr wraps err with the operation: redis.Nil (no such key, or a
// script that found nothing) as store.ErrNotFound.
func storeErr(op string, err error) error {
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: %s: %w", op, store.ErrNotFound)
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// fields reads the n string fields of a stored record or session, as
// HMGET or a script returned them.
func fields(what string, v []any, n int) ([]string, error) {
	if len(v) != n {
		return nil, fmt.Errorf("a %s has %d fields, want %d", what, len(v), n)
	}
	f := make([]string, n)
	for i, x := range v {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("a %s lacks a field", what)
		}
		f[i] = s
	}
	return f, nil
}

// formatTime is t as stored: Unix seconds and nanoseconds, "" for the zero
// time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%09d", t.Nanosecond())
}

// parseTime reads a time written by formatTime.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	secs, nanos, ok := strings.Cut(s, ".")
	sec, err1 := strconv.ParseInt(secs, 10, 64)
	nsec, err2 := strconv.ParseInt(nanos, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(nanos) != 9 || nsec < 0 {
		return time.Time{}, fmt.Errorf("stored time %q is not seconds.nanoseconds", s)
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// nowArgs are the script arguments for the instant now: Unix seconds and
// nanoseconds, which the scripts compare as numbers (a count of
// nanoseconds would not fit a Lua number exactly).
func nowArgs(now time.Time) []any {
	return []any{now.Unix(), now.Nanosecond()}
}

// ttlMillis is the Redis lifetime, in whole milliseconds, of a key that
// ends d from now: d (at least zero, at most what a Duration holds with the
// margin) and the margin, rounded up.
func ttlMillis(d time.Duration) int64 {
	d = min(max(d, 0), math.MaxInt64-expiryMargin-time.Millisecond) + expiryMargin
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// luaExpired is the scripts' judgement of expiry: expired(v, s, n) is true
// when the time v, as formatTime writes it, is at or before the instant of
// Unix seconds s and nanoseconds n. The zero time ("") and anything
// unreadable have expired.
const luaExpired = `
local function expired(v, s, n)
  local vs, vn = string.match(v or '', '^(%-?%d+)%.(%d+)$')
  if not vs then return true end
  vs, vn = tonumber(vs), tonumber(vn)
  return vs < s or (vs == s and vn <= n)
end
`
