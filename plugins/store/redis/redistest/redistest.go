// Package redistest runs tests against the Redis server named by the
// PORTCULLIS_TEST_REDIS environment variable (e.g. redis://127.0.0.1:6379/0),
// each test under a key prefix of its own whose keys it deletes when the
// test ends, so that tests and packages can share one server. A test that
// needs Redis skips, saying why, when the variable is not set.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	redisstore "github.com/portcullis/portcullis/plugins/store/redis"
)

// EnvVar names the environment variable that holds the test server's URL.
const EnvVar = "PORTCULLIS_TEST_REDIS"

// URL returns the test server's URL, or skips the test when none is set.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvVar)
	if u == "" {
		t.Skip(EnvVar + " is not set (e.g. redis://127.0.0.1:6379/0); skipping a test that needs a Redis server")
	}
	return u
}

// Prefix returns a key prefix no other test uses and deletes every key
// under it when the test ends.
func Prefix(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	prefix := "portcullis-test:" + hex.EncodeToString(b) + ":"
	c := Client(t, url)
	t.Cleanup(func() {
		// t.Context is done by the time cleanups run.
		ctx := context.Background()
		keys := Keys(t, c, prefix+"*")
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("delete the test's keys: %v", err)
			}
		}
	})
	return prefix
}

// Keys returns the keys that match the pattern, failing the test on an
// error.
func Keys(t testing.TB, c *redis.Client, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan %s: %v", pattern, err)
	}
	return keys
}

// Client returns a plain client of the server at url, closed when the test
// ends (after the cleanups registered later, which may use it).
func Client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Open opens a store on the test server under a prefix of its own, closed
// (unless the test closed it) and emptied when the test ends; it skips the test without a server.
func Open(t testing.TB) *redisstore.Store {
	t.Helper()
	url := URL(t)
	prefix := Prefix(t, url)
	s, err := redisstore.Open(context.Background(), redisstore.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The test may have closed it (a store that owns it does).
		if err := s.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			t.Error(err)
		}
	})
	return s
}

// TCPOptions returns the test server's URL and options, skipping the test
// when there is no server or it is not reached over TCP (fault tests
// forward TCP).
func TCPOptions(t testing.TB) (string, *redis.Options) {
	t.Helper()
	url := URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Network != "tcp" {
		t.Skip("the fault test forwards TCP; " + EnvVar + " is not a TCP URL")
	}
	return url, opts
}
