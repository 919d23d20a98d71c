package sqlite

import (
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/portcullis/portcullis/gateway/store"
)

// withUmask sets the process umask for the test and restores it after.
// Tests that call it must not run in parallel.
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// The database holds signing keys and password hashes: the file and its
// -wal and -shm are 0600 whatever the umask and the directory's mode.
func TestNewFilesArePrivate(t *testing.T) {
	withUmask(t, 0o022)
	tests := []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"temp directory", func(t *testing.T) string { return t.TempDir() }},
		{"existing 0755 directory", func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "shared")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(tc.dir(t), "portcullis.db")
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// A write, so that the WAL holds a frame while the files are
			// checked.
			if err := s.CreateUser(t.Context(), store.User{ID: "u1", Username: "alice"}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != 0o600 {
					t.Errorf("%s: mode %v, want 0600", filepath.Base(p), got)
				}
			}
		})
	}
}

// An existing database keeps its mode: Open does not loosen or silently
// repair it (the gateway's start-up check refuses a loose one).
func TestOpenKeepsExistingMode(t *testing.T) {
	withUmask(t, 0o022)
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("after reopening: %v %v, want mode 0640 kept", fi.Mode().Perm(), err)
	}
}

// Sidecars left with a looser mode than the database (by a crash, or by a
// release that created files 0644) lose the extra bits.
func TestTightenSidecars(t *testing.T) {
	withUmask(t, 0o022)
	dir := t.TempDir()
	db := filepath.Join(dir, "portcullis.db")
	for p, mode := range map[string]os.FileMode{db: 0o600, db + "-wal": 0o644, db + "-shm": 0o666} {
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := tightenSidecars(db); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{db + "-wal", db + "-shm"} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", filepath.Base(p), fi.Mode().Perm(), err)
		}
	}
	// The database itself must exist.
	if err := tightenSidecars(filepath.Join(dir, "other.db")); err == nil {
		t.Error("tightenSidecars of a missing database succeeded")
	}
}

// Ping proves the store takes writes, not only reads: a store whose file
// cannot be written fails it, as every sign-in would. (Tests run as root,
// where chmod stops nothing, so the writer is made read-only through
// SQLite.)
func TestPingFailsWhenWritesFail(t *testing.T) {
	tests := []struct {
		name     string
		readOnly func(t *testing.T, s *Store, path string)
	}{
		{"query_only writer", func(t *testing.T, s *Store, _ string) {
			if _, err := s.write.ExecContext(t.Context(), `PRAGMA query_only = 1`); err != nil {
				t.Fatal(err)
			}
		}},
		{"writer opened mode=ro", func(t *testing.T, s *Store, path string) {
			ro, err := sql.Open("sqlite", dsn(path, url.Values{"mode": {"ro"}, "_busy_timeout": {"100"}}))
			if err != nil {
				t.Fatal(err)
			}
			ro.SetMaxOpenConns(1)
			s.write.Close()
			s.write = ro
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "portcullis.db")
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping of a writable store: %v", err)
			}
			tc.readOnly(t, s, path)
			// Reads still work: the old Ping would have passed.
			if _, err := s.UserByName(t.Context(), "nobody"); err == nil {
				t.Fatal("UserByName found nobody")
			}
			if err := s.Ping(t.Context()); err == nil {
				t.Error("Ping of a read-only store succeeded")
			}
		})
	}
}

// Ping's write changes nothing but the heartbeat row.
func TestPingWritesOnlyTheHeartbeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 3 {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var rows, beats int
	if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(beats) FROM heartbeat`).Scan(&rows, &beats); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || beats != 3 {
		t.Errorf("heartbeat has %d rows, %d beats; want 1 row, 3 beats", rows, beats)
	}
}
