//go:build unix

package outbox_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/portcullis/portcullis/plugins/delivery/outbox"
)

// The umask is process-wide, so these tests do not run in parallel.
func TestCreatesFilePrivateWhateverTheUmask(t *testing.T) {
	for _, mask := range []int{0, 0o022, 0o277} {
		t.Run(fmt.Sprintf("umask_%04o", mask), func(t *testing.T) {
			// The directory is made before the umask changes: under 0277
			// it would not be writable.
			path := filepath.Join(t.TempDir(), "outbox.jsonl")
			old := syscall.Umask(mask)
			defer syscall.Umask(old)
			if _, err := outbox.New(outbox.Config{Path: path}); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("umask %04o: mode %04o, want 0600", mask, got)
			}
		})
	}
}
