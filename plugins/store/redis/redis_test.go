package redisstore_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/store/storetest"
	"github.com/portcullis/portcullis/plugins/store/faultproxy"
	redisstore "github.com/portcullis/portcullis/plugins/store/redis"
	"github.com/portcullis/portcullis/plugins/store/redis/redistest"
)

// redisParts is what the Redis store keeps.
type redisParts interface {
	store.Hits
	store.Sessions
	store.SessionTouches
	store.Records
}

var _ redisParts = (*redisstore.Store)(nil)

func TestConformance(t *testing.T) {
	redistest.URL(t)
	storetest.RunHits(t, func(t *testing.T) store.Hits { return redistest.Open(t) })
	storetest.RunSessions(t, func(t *testing.T) store.Sessions { return redistest.Open(t) })
	storetest.RunSessionTouches(t, func(t *testing.T) storetest.SessionTouchStore { return redistest.Open(t) })
	storetest.RunRecords(t, func(t *testing.T) store.Records { return redistest.Open(t) })
}

// base is an instant of the tests' clock, hour-aligned.
var base = time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)

func TestSweepDeletesExpiredSessionsOnly(t *testing.T) {
	s := redistest.Open(t)
	ctx := t.Context()
	now := base.Add(2 * time.Hour)
	sessions := map[string]time.Time{
		"expired":        now.Add(-time.Hour),
		"at-expiry":      now,
		"a-nanosecond":   now.Add(time.Nanosecond), // same millisecond, not yet expired
		"live":           now.Add(time.Hour),
		"never-expiring": {},
	}
	for id, exp := range sessions {
		sess := store.Session{ID: id, LoginID: "login-" + id, UserID: "alice", LastSeen: base, ExpiresAt: exp}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sweep(ctx, now); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"expired": false, "at-expiry": false, "a-nanosecond": true, "live": true, "never-expiring": false} {
		_, err := s.GetSession(ctx, id)
		switch {
		case want && err != nil:
			t.Errorf("GetSession(%s) after Sweep: %v, want it kept", id, err)
		case !want && !errors.Is(err, store.ErrNotFound):
			t.Errorf("GetSession(%s) after Sweep: error = %v, want ErrNotFound", id, err)
		}
	}
	list, err := s.ListUserSessions(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Errorf("ListUserSessions after Sweep = %d sessions, want the 2 live ones", len(list))
	}
	// The one a nanosecond later goes at the next sweep.
	if err := s.Sweep(ctx, now.Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "a-nanosecond"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession after its expiry's sweep: error = %v, want ErrNotFound", err)
	}
}

// A record's expiry is judged to the nanosecond, at the caller's now.
func TestRecordExpiryToTheNanosecond(t *testing.T) {
	s := redistest.Open(t)
	ctx := t.Context()
	exp := base.Add(20*time.Minute + 500*time.Nanosecond)
	r := store.Record{ID: "r1", Kind: "code", Subject: "u1", ExpiresAt: exp}
	if err := s.PutRecord(ctx, r, base); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRecord(ctx, "code", "r1", exp); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRecord at ExpiresAt: error = %v, want ErrNotFound", err)
	}
	if _, err := s.AttemptRecord(ctx, "code", "r1", exp); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AttemptRecord at ExpiresAt: error = %v, want ErrNotFound", err)
	}
	before := exp.Add(-time.Nanosecond)
	got, err := s.TakeRecord(ctx, "code", "r1", before)
	if err != nil {
		t.Fatalf("TakeRecord a nanosecond before ExpiresAt: %v", err)
	}
	if !got.ExpiresAt.Equal(exp) {
		t.Errorf("ExpiresAt = %v, want %v exactly", got.ExpiresAt, exp)
	}
}

// A lifetime longer than a time.Duration holds is kept, not overflowed
// into one Redis would take as already over.
func TestFarFutureRecordIsKept(t *testing.T) {
	s := redistest.Open(t)
	ctx := t.Context()
	now := time.Date(1900, time.January, 1, 0, 0, 0, 0, time.UTC)
	r := store.Record{ID: "r1", Kind: "code", ExpiresAt: time.Date(2261, time.January, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.PutRecord(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeRecord(ctx, "code", "r1", now); err != nil {
		t.Fatalf("TakeRecord of a record expiring 361 years later: %v", err)
	}
}

// Redis drops what it keeps a minute after its end, measured from the
// write's now, whatever the clock says the date is.
func TestKeysGetTTLs(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := base.Add(30 * time.Second)
	if _, err := s.AddHit(ctx, "ip:192.0.2.1", time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, store.Record{ID: "r1", Kind: "code", ExpiresAt: now.Add(20 * time.Minute)}, now); err != nil {
		t.Fatal(err)
	}
	sess := store.Session{ID: "s1", LoginID: "l1", UserID: "u1", LastSeen: now, ExpiresAt: now.Add(12 * time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	c := redistest.Client(t, url)
	start := base.UnixNano()
	for key, want := range map[string]time.Duration{
		prefix + "hits:60000000000:" + strconv.FormatInt(start, 10) + ":ip:192.0.2.1": 30*time.Second + time.Minute,
		prefix + "record:4:code:r1":  21 * time.Minute,
		prefix + "session:s1":        12*time.Hour + time.Minute,
		prefix + "user-sessions:u1":  12*time.Hour + time.Minute,
		prefix + "login-sessions:l1": 12*time.Hour + time.Minute,
	} {
		got, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got > want || got < want-5*time.Second {
			t.Errorf("PTTL(%s) = %v, want %v (less the test's own time)", key, got, want)
		}
	}
}

// The password in the URL appears in no error.
func TestOpenNeverRepeatsTheURL(t *testing.T) {
	const password = "s3cr3t-pa55word"
	closed := closedPort(t)
	for _, tc := range []struct{ name, url, want string }{
		{"no URL", "", "no URL"},
		{"unparsable", "redis://user:" + password + "@host:port:x/0%zz", "cannot be parsed"},
		{"other scheme", "http://user:" + password + "@127.0.0.1:6379/0", `"http" is not redis`},
		{"no host", "redis:///0?password=" + password, "no host"},
		{"bad database", "redis://user:" + password + "@127.0.0.1:6379/zero", "database number"},
		{"unreachable", "redis://user:" + password + "@" + closed + "/0?dial_timeout=1s&max_retries=-1", "redisstore: open 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.Open(t.Context(), redisstore.Config{URL: tc.url})
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded")
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("the error repeats the password: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to say %q", err, tc.want)
			}
		})
	}
	if _, err := redisstore.Open(t.Context(), redisstore.Config{URL: "redis://127.0.0.1:6379/0", Prefix: "with space:"}); err == nil {
		t.Error("Open with a prefix holding a space succeeded")
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// When Redis goes away, every method fails, none with ErrNotFound or
// ErrConflict: the gateway denies.
func TestUnreachableRedisFailsEveryMethod(t *testing.T) {
	url, opts := redistest.TCPOptions(t)
	p := faultproxy.New(t, opts.Addr)
	prefix := redistest.Prefix(t, url)
	s, err := redisstore.Open(t.Context(), redisstore.Config{URL: "redis://" + p.Addr() + "/" + strconv.Itoa(opts.DB) + "?max_retries=1", Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	sess := store.Session{ID: "s1", LoginID: "l1", UserID: "u1", LastSeen: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, store.Record{ID: "r1", Kind: "code", ExpiresAt: base.Add(time.Hour)}, base); err != nil {
		t.Fatal(err)
	}
	p.Cut()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, call := range []struct {
		name string
		err  func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Sweep", func() error { return s.Sweep(ctx, base) }},
		{"AddHit", func() error { _, err := s.AddHit(ctx, "k", time.Minute, base); return err }},
		{"ReleaseHit", func() error { return s.ReleaseHit(ctx, "k", time.Minute, base) }},
		{"Hits", func() error { _, err := s.Hits(ctx, "k", time.Minute, base); return err }},
		{"CreateSession", func() error { return s.CreateSession(ctx, store.Session{ID: "s2", ExpiresAt: base}) }},
		{"GetSession", func() error { _, err := s.GetSession(ctx, "s1"); return err }},
		{"TouchSession", func() error { return s.TouchSession(ctx, "s1", base) }},
		{"TouchSessions", func() error { return s.TouchSessions(ctx, map[string]time.Time{"s1": base}) }},
		{"DeleteSession", func() error { return s.DeleteSession(ctx, "s1") }},
		{"DeleteLogin", func() error { return s.DeleteLogin(ctx, "l1") }},
		{"ListUserSessions", func() error { _, err := s.ListUserSessions(ctx, "u1"); return err }},
		{"DeleteUserSessions", func() error { _, err := s.DeleteUserSessions(ctx, "u1", ""); return err }},
		{"PutRecord", func() error { return s.PutRecord(ctx, store.Record{ID: "r1", Kind: "code", ExpiresAt: base}, base) }},
		{"GetRecord", func() error { _, err := s.GetRecord(ctx, "code", "r1", base); return err }},
		{"TakeRecord", func() error { _, err := s.TakeRecord(ctx, "code", "r1", base); return err }},
		{"AttemptRecord", func() error { _, err := s.AttemptRecord(ctx, "code", "r1", base); return err }},
	} {
		err := call.err()
		switch {
		case err == nil:
			t.Errorf("%s with Redis gone succeeded", call.name)
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
			t.Errorf("%s with Redis gone: error = %v, want a failure, not an answer", call.name, err)
		}
	}
}

// BenchmarkAddHit measures the counter script, one round trip, on
// PORTCULLIS_TEST_REDIS.
func BenchmarkAddHit(b *testing.B) {
	s := redistest.Open(b)
	ctx := b.Context()
	for b.Loop() {
		if _, err := s.AddHit(ctx, "ip:192.0.2.1", time.Hour, base); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetSession measures the read on the path of every request whose
// session the gateway has not cached.
func BenchmarkGetSession(b *testing.B) {
	s := redistest.Open(b)
	ctx := b.Context()
	sess := store.Session{ID: "s1", LoginID: "l1", UserID: "u1", Methods: []string{"pwd", "otp"},
		AuthTime: base, LastSeen: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.GetSession(ctx, "s1"); err != nil {
			b.Fatal(err)
		}
	}
}

// A session stored before sessions named their device, a hash without the
// device field, reads with none, by ID and in its user's list, beside one
// that names its device.
func TestSessionWithoutDeviceField(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	s := openPrefix(t, url, prefix)
	ctx := t.Context()
	old := store.Session{ID: "s1", LoginID: "l1", UserID: "alice", Host: "bank.example", Methods: []string{"pwd"},
		AuthTime: base, LastSeen: base, ExpiresAt: base.Add(time.Hour)}
	fresh := old
	fresh.ID, fresh.LoginID, fresh.LastSeen, fresh.DeviceID = "s2", "l2", base.Add(time.Minute), "d1"
	for _, sess := range []store.Session{old, fresh} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	c := redistest.Client(t, url)
	if err := c.HDel(ctx, prefix+"session:s1", "device").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.HLen(ctx, prefix+"session:s1").Result(); err != nil || n != 7 {
		t.Fatalf("the old session's hash has %d fields (%v), want 7", n, err)
	}
	for id, want := range map[string]string{"s1": "", "s2": "d1"} {
		got, err := s.GetSession(ctx, id)
		if err != nil || got.LoginID == "" || got.DeviceID != want {
			t.Errorf("GetSession(%s) = %+v, %v; want device %q", id, got, err, want)
		}
	}
	list, err := s.ListUserSessions(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "s2" || list[0].DeviceID != "d1" || list[1].ID != "s1" || list[1].DeviceID != "" {
		t.Errorf("ListUserSessions = %+v, want s2 with device d1, then s1 with none", list)
	}
}
