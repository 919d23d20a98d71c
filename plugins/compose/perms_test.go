package compose

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
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/store"
	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// The decision log is created 0600 whatever the umask.
func TestDecisionLogIsPrivate(t *testing.T) {
	composetest.Umask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "decisions.jsonl")
	_, dlog, err := NewPolicyEngine(t.Context(), config.Policies{DecisionLog: path}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	dlog.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("decision log: %v %v, want mode 0600", fi.Mode().Perm(), err)
	}
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
			_, cfg := composetest.Config(t, t.TempDir(), extra)
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

// The token file is a secret file: serve refuses to start when others can
// read it.
func TestAdminTokenFileIsASecretFile(t *testing.T) {
	cfg, err := config.Parse([]byte("geoip: {allow_missing: true}\nroutes:\n  - {name: a, host: a.example, upstream: 'http://127.0.0.1:1'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.Tokens = []config.AdminToken{{Name: "alice", File: "/etc/portcullis/alice.token"}}
	found := false
	for _, f := range SecretFiles(cfg) {
		found = found || f == "/etc/portcullis/alice.token"
	}
	if !found {
		t.Errorf("SecretFiles %v lacks the admin token", SecretFiles(cfg))
	}
}
