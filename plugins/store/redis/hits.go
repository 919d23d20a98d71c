package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// addHit increments the window's counter and returns the new count; the key
// lives until a minute after the window ends (ARGV[1] milliseconds).
var addHit = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n
`)

// releaseHit takes one from the window's counter unless it is zero or
// missing.
var releaseHit = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n and n > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
`)

// AddHit counts a hit in the window of the given length that contains now
// and returns the window's count, in one script. Windows are aligned to the
// Unix epoch.
func (s *Store) AddHit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	k, end, err := s.window(key, window, now)
	if err != nil {
		return 0, storeErr("add hit", err)
	}
	n, err := addHit.Run(ctx, s.client, []string{k}, ttlMillis(end.Sub(now))).Int()
	if err != nil {
		return 0, storeErr("add hit", err)
	}
	return n, nil
}

// ReleaseHit takes one hit back from the window that contains now, never
// below zero.
func (s *Store) ReleaseHit(ctx context.Context, key string, window time.Duration, now time.Time) error {
	k, _, err := s.window(key, window, now)
	if err == nil {
		err = releaseHit.Run(ctx, s.client, []string{k}).Err()
	}
	if err != nil {
		return storeErr("release hit", err)
	}
	return nil
}

// Hits returns the count in the window of the given length that contains
// now, without adding to it.
func (s *Store) Hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	k, _, err := s.window(key, window, now)
	if err != nil {
		return 0, storeErr("hits", err)
	}
	v, err := s.client.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, storeErr("hits", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, storeErr("hits", errors.New("the counter does not hold a number"))
	}
	return n, nil
}

// window returns the key of the counter for key in the epoch-aligned window
// of the given length that contains now, and when that window ends.
func (s *Store) window(key string, window time.Duration, now time.Time) (string, time.Time, error) {
	if window <= 0 {
		return "", time.Time{}, errors.New("window must be positive")
	}
	t, w := now.UnixNano(), int64(window)
	start := t - t%w
	if t%w < 0 { // before the epoch, % rounds toward zero
		start -= w
	}
	return s.keys.hits(key, window, start), time.Unix(0, start+w), nil
}
