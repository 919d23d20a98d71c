package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/store"
)

// The record scripts take the record's key as KEYS[1] and now as ARGV[1]
// (Unix seconds) and ARGV[2] (nanoseconds). A record is a hash of subject,
// payload, attempts and exp; the scripts that return one return those four
// fields in that order.

// putRecord stores the record (ARGV[3] to ARGV[6]) with a lifetime of
// ARGV[7] milliseconds, unless a record that has not expired at now holds
// the key: 1 when it stored the record, 0 when one was in the way.
var putRecord = redis.NewScript(luaExpired + `
local cur = redis.call('HGET', KEYS[1], 'exp')
if cur and not expired(cur, tonumber(ARGV[1]), tonumber(ARGV[2])) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'subject', ARGV[3], 'payload', ARGV[4], 'attempts', ARGV[5], 'exp', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1
`)

// takeRecord deletes and returns the record if it has not expired at now;
// nil otherwise.
var takeRecord = redis.NewScript(luaExpired + `
local r = redis.call('HMGET', KEYS[1], 'subject', 'payload', 'attempts', 'exp')
if not r[4] or expired(r[4], tonumber(ARGV[1]), tonumber(ARGV[2])) then
  return false
end
redis.call('DEL', KEYS[1])
return r
`)

// attemptRecord adds one to the attempts of the record if it has not
// expired at now and returns it; nil otherwise.
var attemptRecord = redis.NewScript(luaExpired + `
local exp = redis.call('HGET', KEYS[1], 'exp')
if not exp or expired(exp, tonumber(ARGV[1]), tonumber(ARGV[2])) then
  return false
end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return redis.call('HMGET', KEYS[1], 'subject', 'payload', 'attempts', 'exp')
`)

// PutRecord stores a new record, or replaces one of the same kind and ID
// that has expired at now, in one script; ErrConflict when the one in the
// way is still live at now.
func (s *Store) PutRecord(ctx context.Context, r store.Record, now time.Time) error {
	args := append(nowArgs(now), r.Subject, r.Payload, r.Attempts, formatTime(r.ExpiresAt), ttlMillis(r.ExpiresAt.Sub(now)))
	stored, err := putRecord.Run(ctx, s.client, []string{s.keys.record(r.Kind, r.ID)}, args...).Int()
	if err != nil {
		return storeErr("put record", err)
	}
	if stored == 0 {
		return fmt.Errorf("redisstore: put record: %w: a live %s record has the ID", store.ErrConflict, r.Kind)
	}
	return nil
}

// GetRecord returns the record if it has not expired at now.
func (s *Store) GetRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	v, err := s.client.HMGet(ctx, s.keys.record(kind, id), "subject", "payload", "attempts", "exp").Result()
	if err != nil {
		return store.Record{}, storeErr("get record", err)
	}
	if v[3] == nil {
		return store.Record{}, storeErr("get record", redis.Nil)
	}
	r, err := recordOf(kind, id, v)
	if err != nil {
		return store.Record{}, storeErr("get record", err)
	}
	if !now.Before(r.ExpiresAt) {
		return store.Record{}, storeErr("get record", redis.Nil)
	}
	return r, nil
}

// TakeRecord deletes the record and returns it, if it has not expired at
// now, in one script.
func (s *Store) TakeRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	return s.runRecord(ctx, "take record", takeRecord, kind, id, now)
}

// AttemptRecord adds one to the attempts of a record that has not expired at
// now and returns it, in one script.
func (s *Store) AttemptRecord(ctx context.Context, kind, id string, now time.Time) (store.Record, error) {
	return s.runRecord(ctx, "attempt record", attemptRecord, kind, id, now)
}

// runRecord runs a script that returns the record of the given kind and ID
// as it judged it at now, or nil when there is none.
func (s *Store) runRecord(ctx context.Context, op string, script *redis.Script, kind, id string, now time.Time) (store.Record, error) {
	v, err := script.Run(ctx, s.client, []string{s.keys.record(kind, id)}, nowArgs(now)...).Slice()
	if err != nil {
		return store.Record{}, storeErr(op, err)
	}
	r, err := recordOf(kind, id, v)
	if err != nil {
		return store.Record{}, storeErr(op, err)
	}
	return r, nil
}

// recordOf reads the subject, payload, attempts and exp fields of a record
// hash.
func recordOf(kind, id string, v []any) (store.Record, error) {
	f, err := fields("record", v, 4)
	if err != nil {
		return store.Record{}, err
	}
	attempts, err := strconv.Atoi(f[2])
	if err != nil {
		return store.Record{}, errors.New("a record's attempts are not a number")
	}
	exp, err := parseTime(f[3])
	if err != nil {
		return store.Record{}, err
	}
	return store.Record{ID: id, Kind: kind, Subject: f[0], Payload: []byte(f[1]), Attempts: attempts, ExpiresAt: exp}, nil
}
