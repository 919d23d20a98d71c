package combined_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/store/storetest"
	"github.com/portcullis/portcullis/plugins/store/combined"
	"github.com/portcullis/portcullis/plugins/store/redis/redistest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// openSQLite opens a SQLite store in a new file; the combined store closes
// it.
func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openCombined joins a new SQLite store with, when shared is set, a Redis
// store on the test server.
func openCombined(t *testing.T, shared bool) *combined.Store {
	t.Helper()
	var sh combined.Shared
	if shared {
		sh = redistest.Open(t)
	}
	s, err := combined.New(openSQLite(t), sh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close the combined store: %v", err)
		}
	})
	return s
}

func TestConformanceSQLiteAndRedis(t *testing.T) {
	redistest.URL(t)
	open := func(t *testing.T) *combined.Store { return openCombined(t, true) }
	storetest.Run(t, func(t *testing.T) storetest.All { return open(t) })
	storetest.RunSessionUsers(t, func(t *testing.T) storetest.SessionUserStore { return open(t) })
	storetest.RunSessionTouches(t, func(t *testing.T) storetest.SessionTouchStore { return open(t) })
}

func TestConformanceSQLiteAlone(t *testing.T) {
	open := func(t *testing.T) *combined.Store { return openCombined(t, false) }
	storetest.Run(t, func(t *testing.T) storetest.All { return open(t) })
	storetest.RunSessionUsers(t, func(t *testing.T) storetest.SessionUserStore { return open(t) })
	storetest.RunSessionTouches(t, func(t *testing.T) storetest.SessionTouchStore { return open(t) })
}

// With Redis, hits, sessions and records are kept there and nowhere in
// SQLite; users stay in SQLite.
func TestPartsGoToTheirStores(t *testing.T) {
	ctx := t.Context()
	durable := openSQLite(t)
	shared := redistest.Open(t)
	s, err := combined.New(durable, shared)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	if err := s.CreateUser(ctx, store.User{ID: "u1", Username: "alice", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	sess := store.Session{ID: "s1", LoginID: "l1", UserID: "u1", LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, store.Record{ID: "r1", Kind: "code", Subject: "u1", ExpiresAt: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddHit(ctx, "ip:192.0.2.1", time.Minute, now); err != nil {
		t.Fatal(err)
	}

	if _, err := shared.GetSession(ctx, "s1"); err != nil {
		t.Errorf("the session is not in Redis: %v", err)
	}
	if _, err := durable.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession from SQLite: error = %v, want ErrNotFound", err)
	}
	if _, err := shared.GetRecord(ctx, "code", "r1", now); err != nil {
		t.Errorf("the record is not in Redis: %v", err)
	}
	if _, err := durable.GetRecord(ctx, "code", "r1", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRecord from SQLite: error = %v, want ErrNotFound", err)
	}
	if n, err := shared.Hits(ctx, "ip:192.0.2.1", time.Minute, now); err != nil || n != 1 {
		t.Errorf("Hits in Redis = %d, %v; want 1", n, err)
	}
	if n, err := durable.Hits(ctx, "ip:192.0.2.1", time.Minute, now); err != nil || n != 0 {
		t.Errorf("Hits in SQLite = %d, %v; want 0", n, err)
	}
	if _, err := durable.UserByID(ctx, "u1"); err != nil {
		t.Errorf("the user is not in SQLite: %v", err)
	}
	gotSess, gotUser, err := s.GetSessionUser(ctx, "s1")
	if err != nil || gotSess.ID != "s1" || gotUser.Username != "alice" {
		t.Errorf("GetSessionUser = %+v, %+v, %v", gotSess, gotUser, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing closed both.
	if err := durable.Ping(ctx); err == nil {
		t.Error("the SQLite store answers after Close")
	}
	if err := shared.Ping(ctx); err == nil {
		t.Error("the Redis store answers after Close")
	}
}

// failing is a shared store whose every upkeep fails, as an unreachable
// Redis does.
type failing struct{ combined.Shared }

var errDown = errors.New("connection refused")

func (failing) Ping(context.Context) error             { return errDown }
func (failing) Sweep(context.Context, time.Time) error { return errDown }
func (failing) Close() error                           { return nil }

func TestUpkeepFailsWhenEitherStoreFails(t *testing.T) {
	s, err := combined.New(openSQLite(t), failing{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); !errors.Is(err, errDown) {
		t.Errorf("Ping = %v, want the shared store's failure", err)
	}
	if err := s.Sweep(t.Context(), time.Now()); !errors.Is(err, errDown) {
		t.Errorf("Sweep = %v, want the shared store's failure", err)
	}
	if _, err := combined.New(nil, nil); err == nil {
		t.Error("New without a durable store succeeded")
	}
}
