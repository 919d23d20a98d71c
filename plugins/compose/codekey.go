package compose

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/portcullis/portcullis/gateway/credential"
)

// loadCodeKey reads the key security codes are sealed under, creating the
// file (0600, whatever the umask) with 32 random bytes when it is missing.
// The file's mode is checked with the other secret files before this runs.
func loadCodeKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("code key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("code key: %w", err)
		}
		if err := f.Chmod(0o600); err == nil {
			_, err = f.Write(key)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("code key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("code key: %w", err)
	}
	if len(key) < credential.MinCodeKeyLen {
		return nil, fmt.Errorf("code key: %s holds %d bytes; it needs at least %d random bytes (remove it to have one made)", path, len(key), credential.MinCodeKeyLen)
	}
	return key, nil
}
