package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// withUmask sets the process umask for the test and restores it after.
// Tests that call it must not run in parallel.
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// Every file the running gateway writes that holds secrets is 0600 under a
// umask of 022, in a data directory that already exists with mode 0755.
func TestDemoSecretFilesArePrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo")
	}
	withUmask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ctx, stop := context.WithCancel(ctx)
	var out, errs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--data", dir, "--addr", freeAddr(t), "--admin", freeAddr(t)}, nil, &out, &errs)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() {
			t.Logf("demo log:\n%s", errs.String())
		}
	})
	for !strings.Contains(out.String(), "demo is running") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("demo stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("demo did not start")
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The demo seeded customers through the store, so its WAL is in use.
	for _, name := range []string{"portcullis.db", "portcullis.db-wal", "portcullis.db-shm",
		"ca/root.key", "decisions.jsonl", "outbox.jsonl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", name, got)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("ca/: %v, want mode 0700", err)
	}
}

// The decision log is created 0600 whatever the umask.
func TestDecisionLogIsPrivate(t *testing.T) {
	withUmask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "decisions.jsonl")
	_, dlog, err := newPolicyEngine(t.Context(), config.Policies{DecisionLog: path}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	dlog.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("decision log: %v %v, want mode 0600", fi.Mode().Perm(), err)
	}
}

// testConfig writes a configuration under dir whose data_dir is dir/data
// and loads it.
func testConfig(t *testing.T, dir, extra string) (path string, cfg *config.File) {
	t.Helper()
	path = filepath.Join(dir, "portcullis.yaml")
	yaml := "data_dir: data\ngeoip: {allow_missing: true}\npassword: {memory_kib: 8192, iterations: 1}\n" +
		"routes:\n  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}\n" + extra
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// Start-up refuses a store or key file open to group or others, naming the
// file, its mode and the fix; store.allow_insecure_permissions turns the
// refusal into a warning.
func TestStartupChecksSecretFilePermissions(t *testing.T) {
	tests := []struct {
		name    string
		file    string // under data_dir
		mode    os.FileMode
		allow   bool
		wantErr bool
	}{
		{"private store", "portcullis.db", 0o600, false, false},
		{"world-readable store", "portcullis.db", 0o644, false, true},
		{"group-writable store", "portcullis.db", 0o620, false, true},
		{"world-readable wal", "portcullis.db-wal", 0o644, false, true},
		{"group-readable CA key", "ca/root.key", 0o640, false, true},
		{"world-readable store allowed", "portcullis.db", 0o644, true, false},
		{"group-readable CA key allowed", "ca/root.key", 0o640, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.allow {
				extra = "store: {allow_insecure_permissions: true}\n"
			}
			_, cfg := testConfig(t, t.TempDir(), extra)
			path := filepath.Join(cfg.DataDir, tc.file)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, nil, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			err := checkSecretFiles(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.wantErr {
				if err == nil {
					t.Fatal("start-up check passed")
				}
				for _, want := range []string{path, "0" + octal(tc.mode), "chmod 600 " + path, "store.allow_insecure_permissions"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q: %v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("start-up check: %v", err)
			}
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), path)
			if want := tc.mode&0o077 != 0; warned != want {
				t.Errorf("warning logged = %v, want %v:\n%s", warned, want, logs.String())
			}
		})
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

// The admin commands go through the same check: a world-readable store is
// refused before it is opened.
func TestAdminRefusesWorldReadableStore(t *testing.T) {
	cfgPath, cfg := testConfig(t, t.TempDir(), "")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(t.Context(), cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(cfg.StorePath(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	err = run(t.Context(), []string{"admin", "user", "list", "--config", cfgPath}, nil, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+cfg.StorePath()) {
		t.Fatalf("admin user list on a 0644 store: %v", err)
	}
}

// `admin user add` works before the first serve: it creates data_dir 0700
// and the store 0600.
func TestAdminBeforeFirstServe(t *testing.T) {
	withUmask(t, 0o022)
	cfgPath, cfg := testConfig(t, t.TempDir(), "")
	var out, errs bytes.Buffer
	err := run(t.Context(), []string{"admin", "user", "add", "--username", "erin", "--config", cfgPath},
		strings.NewReader("a-long-enough-password\n"), &out, &errs)
	if err != nil || !strings.Contains(out.String(), "added erin") {
		t.Fatalf("admin user add before serve: %q %v\n%s", out.String(), err, errs.String())
	}
	for path, want := range map[string]os.FileMode{cfg.DataDir: 0o700, cfg.StorePath(): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want mode %04o", path, err, want)
		}
	}
}

// pingStore is a store whose Ping answers err.
type pingStore struct {
	store.Upkeep
	err error
}

func (s pingStore) Ping(context.Context) error { return s.err }

func readyz(t *testing.T, db store.Upkeep) int {
	t.Helper()
	rec := httptest.NewRecorder()
	adminHandler(prometheus.NewRegistry(), db, false).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code
}

func TestReadyzFollowsPing(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"store answers", nil, http.StatusOK},
		{"store fails", errors.New("attempt to write a readonly database"), http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readyz(t, pingStore{err: tc.err}); got != tc.want {
				t.Errorf("/readyz = %d, want %d", got, tc.want)
			}
		})
	}
}

// While another process holds the database's write lock, reads still work
// (WAL) but no sign-in can be written: /readyz answers 503, and 200 again
// once the lock is released.
func TestReadyzFailsWhileStoreCannotBeWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := readyz(t, db); got != http.StatusOK {
		t.Fatalf("/readyz on a writable store = %d", got)
	}

	other, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=100")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UserByName(t.Context(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read while locked: %v", err)
	}
	if got := readyz(t, db); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the store cannot be written = %d, want 503", got)
	}
	if _, err := conn.ExecContext(t.Context(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if got := readyz(t, db); got != http.StatusOK {
		t.Errorf("/readyz after the lock is released = %d, want 200", got)
	}
}
