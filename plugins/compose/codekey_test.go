package compose

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/portcullis/portcullis/plugins/compose/composetest"
)

func TestCodeKeyIsCreatedPrivateAndKept(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "codes.key")
	key, err := loadCodeKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 || len(key) != 32 {
		t.Fatalf("new code key: mode %04o, %d bytes; want 0600 and 32", mode, len(key))
	}
	again, err := loadCodeKey(path)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second start read another key (%v)", err)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCodeKey(path); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("a 5-byte key: %v, want a refusal", err)
	}
}

func TestCodeKeyIsASecretFile(t *testing.T) {
	_, cfg := composetest.Config(t, t.TempDir(), "")
	for _, f := range SecretFiles(cfg) {
		if f == cfg.CodeKeyPath() {
			return
		}
	}
	t.Fatalf("the code key %s is not among the secret files whose mode is checked", cfg.CodeKeyPath())
}
