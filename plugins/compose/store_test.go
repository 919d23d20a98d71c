package compose

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/config"
)

// The files of the PostgreSQL DSN and the Redis URL are secrets: start-up
// refuses them open to group or others, before connecting anywhere, and
// with driver postgres there is no SQLite file to check.
func TestStoreSecretFilesAreChecked(t *testing.T) {
	dir := t.TempDir()
	dsn := filepath.Join(dir, "postgres.dsn")
	redisURL := filepath.Join(dir, "redis.url")
	if err := os.WriteFile(dsn, []byte("postgres://u:p@127.0.0.1:1/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(redisURL, []byte("redis://:p@127.0.0.1:1/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(deliveryRoutes + "data_dir: '" + filepath.Join(dir, "data") + "'\n" +
		"store:\n  driver: postgres\n  postgres: {dsn_file: '" + dsn + "'}\n  redis: {url_file: '" + redisURL + "'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	files := SecretFiles(cfg)
	for _, want := range []string{dsn, redisURL} {
		if !slices.Contains(files, want) {
			t.Errorf("SecretFiles = %v, want %s among them", files, want)
		}
	}
	if slices.Contains(files, cfg.StorePath()) {
		t.Errorf("SecretFiles = %v holds the SQLite file with driver postgres", files)
	}
	for _, f := range []string{dsn, redisURL} {
		if err := os.Chmod(f, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.DiscardHandler)
	_, err = OpenStore(t.Context(), cfg, logger)
	for _, want := range []string{dsn + " has mode 0640", redisURL + " has mode 0640", "chmod 600 " + dsn} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenStore with open secret files: error = %v, want it to say %q", err, want)
		}
	}
}
