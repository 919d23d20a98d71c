package policies

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	shipped "github.com/portcullis/portcullis/rego"
)

// policyDir copies the shipped policies and data, without their tests, to
// a temporary directory.
func policyDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(shipped.FS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(name, "_test.rego") {
			return err
		}
		b, err := fs.ReadFile(shipped.FS, name)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// editFile replaces old with new in dir/name, failing if old is absent.
func editFile(t testing.TB, dir, name, old, new string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	writeFile(t, dir, name, strings.Replace(string(b), old, new, 1))
}

// logBuffer is a concurrency-safe buffer for a test logger.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var testNow = time.Unix(1767225600, 0)

func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	e, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func cleanLogin() Input {
	return Input{
		Point: PointLogin,
		Now:   testNow.Unix(),
		Client: Client{
			IP:    "198.51.100.7",
			Facts: IPFacts{Checked: true, Country: "US"},
		},
		Device: Device{Recognised: true, RegisteredAt: testNow.Unix() - 86400},
		Account: Account{
			Exists:        true,
			SecondFactors: []string{"sms", "voice", "totp"},
			SecurityPhone: &PhoneFacts{Valid: true, Region: "US", LineType: "fixed_line_or_mobile", Source: "prefix", Masked: "********67"},
			EmailOnFile:   true,
			Products:      []string{"savings"},
		},
		Request: Request{Host: "login.example.com", Path: "/.portcullis/login", Method: "POST"},
	}
}

func vpnLogin() Input {
	in := cleanLogin()
	in.Client.IP = "203.0.113.9"
	in.Client.Facts = IPFacts{Checked: true, Anonymous: true, AnonymousVPN: true}
	return in
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// concurrently runs f over and over in n goroutines until f returns false
// or the returned stop is called; stop waits for them to return.
func concurrently(n int, f func() bool) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if !f() {
					return
				}
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
