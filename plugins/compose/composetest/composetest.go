// Package composetest holds what the tests of a gateway built from its
// configuration file share: a small configuration written to disk, and a
// umask for checking the modes of the files the gateway creates.
package composetest

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/portcullis/portcullis/config"
)

// Config writes a configuration under dir whose data_dir is dir/data, with
// one route, no GeoIP databases and cheap password hashing, followed by
// extra (more YAML), and loads it.
func Config(t testing.TB, dir, extra string) (path string, cfg *config.File) {
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

// Umask sets the process's umask for the rest of the test. It is process
// wide: a test that calls it must not run in parallel with one that creates
// files.
func Umask(t testing.TB, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// LogBuffer is a bytes.Buffer that the gateway's goroutines may write to,
// as a logger's output, while the test reads it.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr is a loopback address with a port free a moment ago, for a
// listener the code under test opens itself.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
