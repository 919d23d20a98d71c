package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/gateway/store/storetest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// openTemp opens a store in a new file under t.TempDir.
func openTemp(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

var _ storetest.All = (*sqlite.Store)(nil)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.All { return openTemp(t) })
	storetest.RunSessionUsers(t, func(t *testing.T) storetest.SessionUserStore { return openTemp(t) })
	storetest.RunSessionTouches(t, func(t *testing.T) storetest.SessionTouchStore { return openTemp(t) })
}

func TestOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	notADatabase := filepath.Join(dir, "garbage.db")
	garbage := []byte(strings.Repeat("this is not a SQLite database\n", 200))
	if err := os.WriteFile(notADatabase, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(dir, "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"not a database", notADatabase, "not a database"},
		{"missing directory", filepath.Join(dir, "missing", "portcullis.db"), "no such file or directory"},
		{"parent is a file", filepath.Join(aFile, "portcullis.db"), "not a directory"},
		{"a directory", dir, "is a directory"},
		{"no path", "", "no path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tc.path)
			}
			t.Logf("Open(%q): %v", tc.path, err)
			msg := err.Error()
			if !strings.HasPrefix(msg, "sqlite: open") || !strings.Contains(msg, tc.path) || !strings.Contains(msg, tc.want) {
				t.Errorf("Open(%q) error = %q, want it to start with %q and name the path and %q", tc.path, msg, "sqlite: open", tc.want)
			}
		})
	}
	// A failed open leaves the file it could not read alone.
	if b, err := os.ReadFile(notADatabase); err != nil || string(b) != string(garbage) {
		t.Errorf("the file that is not a database was changed (err %v)", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{ID: "u1", Username: "alice", CreatedAt: time.Unix(1_900_000_000, 0)}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddLoginFailure(t.Context(), "u1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatalf("UserByName after reopening: %v", err)
	}
	if got.ID != "u1" || got.FailedLogins != 1 || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("after reopening, user = %+v", got)
	}
}

func TestSweep(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	now := time.Date(2031, time.March, 4, 5, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutRecord(ctx, store.Record{Kind: "exchange", ID: "expired", Subject: "s", ExpiresAt: now}, now.Add(-time.Hour)))
	must(s.PutRecord(ctx, store.Record{Kind: "exchange", ID: "live", Subject: "s", ExpiresAt: now.Add(time.Second)}, now.Add(-time.Hour)))
	must(s.CreateSession(ctx, store.Session{ID: "expired", LoginID: "l", ExpiresAt: now.Add(-time.Second)}))
	must(s.CreateSession(ctx, store.Session{ID: "live", LoginID: "l", ExpiresAt: now.Add(time.Hour)}))
	for range 3 {
		_, err := s.AddHit(ctx, "ended", time.Minute, now.Add(-time.Minute))
		must(err)
		_, err = s.AddHit(ctx, "current", time.Minute, now)
		must(err)
	}

	must(s.Sweep(ctx, now))

	// Taken at an earlier time, a record that was only expired at now would
	// still be valid: it is gone because Sweep deleted it.
	if _, err := s.TakeRecord(ctx, "exchange", "expired", now.Add(-time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeRecord of a swept record: error = %v, want ErrNotFound", err)
	}
	if _, err := s.TakeRecord(ctx, "exchange", "live", now); err != nil {
		t.Errorf("TakeRecord of a live record after Sweep: %v", err)
	}
	if _, err := s.GetSession(ctx, "expired"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession of a swept session: error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession(ctx, "live"); err != nil {
		t.Errorf("GetSession of a live session after Sweep: %v", err)
	}
	if n, err := s.AddHit(ctx, "ended", time.Minute, now.Add(-time.Minute)); err != nil || n != 1 {
		t.Errorf("AddHit in a swept window = %d, %v; want 1", n, err)
	}
	if n, err := s.AddHit(ctx, "current", time.Minute, now); err != nil || n != 4 {
		t.Errorf("AddHit in the current window = %d, %v; want 4", n, err)
	}
}

func TestClosedStoreFails(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded")
	}
	if _, err := s.UserByID(t.Context(), "u1"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID after Close: error = %v, want a failure other than ErrNotFound", err)
	}
}

// Two stores on one file stand for two processes (the gateway and an admin
// command): their concurrent writes wait for each other and all land.
func TestTwoHandlesWriteConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	var stores []*sqlite.Store
	for range 2 {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	if err := stores[0].CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	const perStore = 25
	var wg sync.WaitGroup
	errs := make(chan error, 4*perStore)
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				if _, err := s.AddLoginFailure(t.Context(), "u1"); err != nil {
					errs <- err
				}
				if _, err := s.AddHit(t.Context(), "ip:192.0.2.1", time.Hour, time.Unix(1_900_000_000, 0)); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	u, err := stores[1].UserByID(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if u.FailedLogins != 2*perStore {
		t.Errorf("FailedLogins = %d, want %d", u.FailedLogins, 2*perStore)
	}
}
