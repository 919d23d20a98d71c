package certs

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestZapLoggerWritesToSlog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	zl := zapLogger(logger).Named("obtain").With(zap.String("identifier", "bank.localhost"))

	zl.Debug("below the level")
	zl.Warn("renewing certificate", zap.Error(errors.New("boom")), zap.Int("attempt", 2))
	zl.Error("giving up")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d records, want 2 (debug filtered):\n%s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"level":      "WARN",
		"msg":        "renewing certificate",
		"logger":     "certmagic.obtain",
		"identifier": "bank.localhost",
		"error":      "boom",
		"attempt":    float64(2),
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %s)", k, rec[k], v, lines[0])
		}
	}
	if !strings.Contains(lines[1], `"level":"ERROR"`) {
		t.Errorf("second record %s is not at ERROR", lines[1])
	}
}

// certmagic's routine info (locks, maintenance, each obtain step) goes to
// debug with its raw pointers dropped; a certificate obtained stays at info.
func TestZapLoggerQuietsRoutineInfo(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	zl := zapLogger(logger).Named("obtain")
	type cache struct{ n int }
	zl.Info("started background certificate maintenance", zap.Any("cache", &cache{}))
	zl.Info("acquiring lock", zap.String("identifier", "bank.localhost"))
	zl.Info("certificate obtained successfully", zap.String("identifier", "bank.localhost"), zap.Any("cache", &cache{}))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "certificate obtained successfully") {
		t.Fatalf("at info, got:\n%s\nwant only the obtained certificate", buf.String())
	}
	if strings.Contains(lines[0], "cache") || strings.Contains(lines[0], "0x") {
		t.Errorf("a raw pointer was logged: %s", lines[0])
	}

	buf.Reset()
	debug := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	zapLogger(debug).Info("acquiring lock")
	if !strings.Contains(buf.String(), `"level":"DEBUG"`) {
		t.Errorf("routine info at debug level: %s", buf.String())
	}
}
