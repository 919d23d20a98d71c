package certs

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// Under a umask of 022 and in a data directory that already exists with
// mode 0755, the local CA's key and every key certmagic stores are 0600 and
// the directories made for them 0700.
func TestInternalKeysArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	newInternalManager(t, dir)

	want := map[string]os.FileMode{
		filepath.Join(dir, "ca"):             0o700,
		filepath.Join(dir, "ca", "root.key"): 0o600,
		filepath.Join(dir, "certmagic"):      0o700,
	}
	var leafKeys int
	err := filepath.WalkDir(filepath.Join(dir, "certmagic"), func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			want[p] = 0o700
		case strings.HasSuffix(p, ".key"):
			want[p] = 0o600
			leafKeys++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if leafKeys == 0 {
		t.Fatal("certmagic stored no certificate key")
	}
	for p, mode := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %v, want %v", p, got, mode)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"internal", Config{Mode: ModeInternal, DataDir: "/d"}, []string{filepath.Join("/d", "ca", "root.key")}},
		{"files", Config{Mode: ModeFiles, Files: FilesConfig{Cert: "/c.pem", Key: "/k.pem"}}, []string{"/k.pem"}},
		{"acme", Config{Mode: ModeACME, DataDir: "/d"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeyFiles(tc.cfg); !slices.Equal(got, tc.want) {
				t.Errorf("KeyFiles = %v, want %v", got, tc.want)
			}
		})
	}
}
