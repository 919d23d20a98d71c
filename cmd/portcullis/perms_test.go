package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/plugins/compose/composetest"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// Every file the running gateway writes that holds secrets is 0600 under a
// umask of 022, in a data directory that already exists with mode 0755.
func TestDemoSecretFilesArePrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo")
	}
	composetest.Umask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ctx, stop := context.WithCancel(ctx)
	var out, errs composetest.LogBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--data", dir, "--addr", composetest.FreeAddr(t), "--admin", composetest.FreeAddr(t)}, nil, &out, &errs)
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

// The admin commands go through the same check: a world-readable store is
// refused before it is opened.
func TestAdminRefusesWorldReadableStore(t *testing.T) {
	cfgPath, cfg := composetest.Config(t, t.TempDir(), "")
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
	composetest.Umask(t, 0o022)
	cfgPath, cfg := composetest.Config(t, t.TempDir(), "")
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
