package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/store"
)

// A session is a hash of login, user, host, methods (a JSON array), auth,
// seen, exp and device (absent from sessions stored before devices were
// kept, which name none), indexed in its user's and its login's sets and in
// the expiry sorted set (scored by ExpiresAt in Unix milliseconds, rounded
// down). The scripts that reach sessions through an index take the key
// prefixes as ARGV[1] (sessions), ARGV[2] (user sets), ARGV[3] (login sets)
// and ARGV[4] (the expiry set).

// luaDrop deletes the session id and takes it out of its indexes; false
// when its hash was not there (Redis dropped it at its TTL), in which case
// only the expiry set is cleaned and the caller cleans the set it read.
const luaDrop = `
local function drop(id)
  local f = redis.call('HMGET', ARGV[1] .. id, 'user', 'login')
  redis.call('ZREM', ARGV[4], id)
  if not f[1] then return false end
  redis.call('DEL', ARGV[1] .. id)
  redis.call('SREM', ARGV[2] .. f[1], id)
  redis.call('SREM', ARGV[3] .. f[2], id)
  return true
end
`

// createSession stores the session (KEYS[1], its fields in ARGV[5] to
// ARGV[11] and ARGV[15]) unless the ID is taken, adds it (ARGV[14]) to its
// user's set (KEYS[2]), its login's set (KEYS[3]) and the expiry set
// (KEYS[4], score ARGV[12]), and gives the hash a lifetime of ARGV[13]
// milliseconds ("" for none), which the sets get too unless they already
// outlive it: 1 when it stored the session, 0 when the ID was taken.
var createSession = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'login', ARGV[6], 'user', ARGV[7], 'host', ARGV[8], 'methods', ARGV[9],
  'auth', ARGV[10], 'seen', ARGV[11], 'exp', ARGV[5], 'device', ARGV[15])
redis.call('ZADD', KEYS[4], ARGV[12], ARGV[14])
local ttl = ARGV[13]
if ttl ~= '' then redis.call('PEXPIRE', KEYS[1], ttl) end
for i = 2, 3 do
  local fresh = redis.call('EXISTS', KEYS[i]) == 0
  redis.call('SADD', KEYS[i], ARGV[14])
  if ttl == '' then
    redis.call('PERSIST', KEYS[i])
  elseif fresh then
    redis.call('PEXPIRE', KEYS[i], ttl)
  elseif redis.call('PTTL', KEYS[i]) >= 0 then
    redis.call('PEXPIRE', KEYS[i], ttl, 'GT')
  end
end
return 1
`)

// touchSession sets the seen field of each existing session hash in KEYS to
// the time at the same place in ARGV; it returns how many it set.
var touchSession = redis.NewScript(`
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    redis.call('HSET', k, 'seen', ARGV[i])
    n = n + 1
  end
end
return n
`)

// deleteSession deletes the session ARGV[5].
var deleteSession = redis.NewScript(luaDrop + `
drop(ARGV[5])
return 1
`)

// deleteLogin deletes every session in the login's set (KEYS[1]) and the
// set.
var deleteLogin = redis.NewScript(luaDrop + `
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  drop(id)
end
redis.call('DEL', KEYS[1])
return 1
`)

// deleteUserSessions deletes every session in the user's set (KEYS[1]) but
// ARGV[5] and returns the IDs of those it deleted.
var deleteUserSessions = redis.NewScript(luaDrop + `
local deleted = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[5] then
    if drop(id) then
      deleted[#deleted + 1] = id
    else
      redis.call('SREM', KEYS[1], id)
    end
  end
end
return deleted
`)

// listUserSessions returns, for every session in the user's set (KEYS[1])
// whose hash is there, its ID and the sessionFields fields, nine values a
// session; a missing device field comes back as "".
var listUserSessions = redis.NewScript(`
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'login', 'user', 'host', 'methods', 'auth', 'seen', 'exp', 'device')
  if f[1] then
    out[#out + 1] = id
    for i = 1, 8 do out[#out + 1] = f[i] or '' end
  end
end
return out
`)

// sweepSessions deletes up to ARGV[8] sessions of the expiry set that have
// expired at now (ARGV[5] seconds, ARGV[6] nanoseconds; ARGV[7] is now in
// Unix milliseconds, rounded down) and returns how many candidates it read
// and how many it deleted.
var sweepSessions = redis.NewScript(luaExpired + luaDrop + `
local s, n = tonumber(ARGV[5]), tonumber(ARGV[6])
local ids = redis.call('ZRANGEBYSCORE', ARGV[4], '-inf', ARGV[7], 'LIMIT', 0, tonumber(ARGV[8]))
local deleted = 0
for _, id in ipairs(ids) do
  if expired(redis.call('HGET', ARGV[1] .. id, 'exp'), s, n) then
    drop(id)
    deleted = deleted + 1
  end
end
return {#ids, deleted}
`)

// sweepBatch bounds how many sessions one sweep script reads, so that a
// sweep never holds Redis for long.
const sweepBatch = 500

// indexArgs are the key prefixes the index scripts take as ARGV[1] to
// ARGV[4].
func (s *Store) indexArgs() []any {
	k := s.keys
	return []any{k.sessionPrefix(), k.userSessionsPrefix(), k.loginSessionsPrefix(), k.sessionExpiry()}
}

// CreateSession stores a new session; ErrConflict if its ID is taken.
// Redis keeps it until a minute after ExpiresAt, measured from LastSeen (a
// session without either is kept until Sweep or a deletion).
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	methods := sess.Methods
	if methods == nil {
		methods = []string{}
	}
	methodsJSON, err := json.Marshal(methods)
	if err != nil {
		return storeErr("create session", err)
	}
	ttl := ""
	if !sess.ExpiresAt.IsZero() && !sess.LastSeen.IsZero() {
		ttl = fmt.Sprint(ttlMillis(sess.ExpiresAt.Sub(sess.LastSeen)))
	}
	k := s.keys
	args := append(s.indexArgs(), formatTime(sess.ExpiresAt), sess.LoginID, sess.UserID, sess.Host, string(methodsJSON),
		formatTime(sess.AuthTime), formatTime(sess.LastSeen), expiryScore(sess.ExpiresAt), ttl, sess.ID, sess.DeviceID)
	created, err := createSession.Run(ctx, s.client,
		[]string{k.session(sess.ID), k.userSessions(sess.UserID), k.loginSessions(sess.LoginID), k.sessionExpiry()}, args...).Int()
	if err != nil {
		return storeErr("create session", err)
	}
	if created == 0 {
		return fmt.Errorf("redisstore: create session: %w: the ID is taken", store.ErrConflict)
	}
	return nil
}

// GetSession returns the session with the given ID, whether or not it has
// expired: expiry is the caller's decision.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	v, err := s.client.HMGet(ctx, s.keys.session(id), "login", "user", "host", "methods", "auth", "seen", "exp", "device").Result()
	if err == nil && v[0] == nil {
		err = redis.Nil
	}
	var sess store.Session
	if err == nil {
		sess, err = sessionOf(id, v)
	}
	if err != nil {
		return store.Session{}, storeErr("get session", err)
	}
	return sess, nil
}

// TouchSession sets the session's LastSeen; ErrNotFound for an unknown
// session.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	n, err := touchSession.Run(ctx, s.client, []string{s.keys.session(id)}, formatTime(at)).Int()
	if err == nil && n == 0 {
		err = redis.Nil
	}
	if err != nil {
		return storeErr("touch session", err)
	}
	return nil
}

// TouchSessions sets the LastSeen of every session named in seen that
// exists, in one script.
func (s *Store) TouchSessions(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	keys := make([]string, 0, len(seen))
	args := make([]any, 0, len(seen))
	for id, at := range seen {
		keys = append(keys, s.keys.session(id))
		args = append(args, formatTime(at))
	}
	if err := touchSession.Run(ctx, s.client, keys, args...).Err(); err != nil {
		return storeErr("touch sessions", err)
	}
	return nil
}

// DeleteSession deletes the session; deleting an unknown session is not an
// error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := deleteSession.Run(ctx, s.client, []string{s.keys.session(id)}, append(s.indexArgs(), id)...).Err(); err != nil {
		return storeErr("delete session", err)
	}
	return nil
}

// DeleteLogin deletes every session of the login, in one script.
func (s *Store) DeleteLogin(ctx context.Context, loginID string) error {
	if err := deleteLogin.Run(ctx, s.client, []string{s.keys.loginSessions(loginID)}, s.indexArgs()...).Err(); err != nil {
		return storeErr("delete login", err)
	}
	return nil
}

// ListUserSessions returns every session of the user, expired or not, most
// recently seen first (of sessions seen at the same instant, by ID), read in
// one script.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	v, err := listUserSessions.Run(ctx, s.client, []string{s.keys.userSessions(userID)}, s.indexArgs()...).Slice()
	if err != nil {
		return nil, storeErr("list user sessions", err)
	}
	const per = 1 + sessionFields
	if len(v)%per != 0 {
		return nil, storeErr("list user sessions", fmt.Errorf("the list has %d values, not %d a session", len(v), per))
	}
	sessions := make([]store.Session, 0, len(v)/per)
	for i := 0; i < len(v); i += per {
		id, _ := v[i].(string)
		sess, err := sessionOf(id, v[i+1:i+per])
		if err != nil {
			return nil, storeErr("list user sessions", err)
		}
		sessions = append(sessions, sess)
	}
	slices.SortFunc(sessions, func(a, b store.Session) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return sessions, nil
}

// DeleteUserSessions deletes every session of the user but keep in one
// script, which returns the IDs it deleted: Redis runs it whole, so a
// session created concurrently is created before it (deleted and returned)
// or after it (kept).
func (s *Store) DeleteUserSessions(ctx context.Context, userID, keep string) ([]string, error) {
	ids, err := deleteUserSessions.Run(ctx, s.client, []string{s.keys.userSessions(userID)}, append(s.indexArgs(), keep)...).StringSlice()
	if err != nil {
		return nil, storeErr("delete user sessions", err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// Sweep deletes the sessions that have expired at now. Counter windows and
// records need no sweep: Redis drops them at their TTL, and they are judged
// expired at the caller's now before that.
func (s *Store) Sweep(ctx context.Context, now time.Time) error {
	args := append(s.indexArgs(), now.Unix(), now.Nanosecond(), expiryScore(now), sweepBatch)
	for {
		v, err := sweepSessions.Run(ctx, s.client, nil, args...).Int64Slice()
		if err != nil {
			return storeErr("sweep", err)
		}
		if len(v) != 2 {
			return storeErr("sweep", errors.New("the sweep script answered unexpectedly"))
		}
		// A full batch of which some were deleted may have more behind
		// it; candidates not deleted expire later in the same
		// millisecond, and the next sweep takes them.
		if v[0] < sweepBatch || v[1] == 0 {
			return nil
		}
	}
}

// expiryScore is t's score in the expiry set: Unix milliseconds, rounded
// down (UnixMilli rounds toward the past, before 1970 too), so that every
// session expired at an instant scores at most that instant's score.
func expiryScore(t time.Time) int64 { return t.UnixMilli() }

// sessionFields is how many fields of a session hash sessionOf reads: login,
// user, host, methods, auth, seen, exp and device.
const sessionFields = 8

// sessionOf reads the login, user, host, methods, auth, seen, exp and device
// fields of a session hash, as HMGET or a script returned them. The device
// field may be missing (nil): a session stored before devices were kept
// names none.
func sessionOf(id string, v []any) (store.Session, error) {
	if len(v) != sessionFields {
		return store.Session{}, fmt.Errorf("a session has %d fields, want %d", len(v), sessionFields)
	}
	if v[7] == nil {
		v = append(v[:7:7], "")
	}
	f, err := fields("session", v, sessionFields)
	if err != nil {
		return store.Session{}, err
	}
	sess := store.Session{ID: id, LoginID: f[0], UserID: f[1], Host: f[2], DeviceID: f[7]}
	if err := json.Unmarshal([]byte(f[3]), &sess.Methods); err != nil {
		return store.Session{}, fmt.Errorf("a session's methods: %w", err)
	}
	for i, t := range []*time.Time{&sess.AuthTime, &sess.LastSeen, &sess.ExpiresAt} {
		if *t, err = parseTime(f[4+i]); err != nil {
			return store.Session{}, err
		}
	}
	return sess, nil
}
