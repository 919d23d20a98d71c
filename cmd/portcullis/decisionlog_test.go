package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBufferedDecisionLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	b := newBufferedLog(f, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 500 {
				fmt.Fprintf(b, "{\"writer\":%d,\"line\":%d,\"pad\":%q}\n", i, j, strings.Repeat("x", 40))
			}
		})
	}
	wg.Wait()
	// Without a Close, the lines reach the file within the flush interval.
	deadline := time.Now().Add(10 * decisionLogFlush)
	for lines(t, path) < 4000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := lines(t, path); n != 4000 {
		t.Fatalf("%d lines on disk after the flush interval, want 4000", n)
	}
	fmt.Fprintln(b, `{"last":true}`)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if !strings.HasPrefix(line, "{") || !strings.HasSuffix(line, "}") {
			t.Fatalf("line %d is torn: %q", i, line)
		}
	}
	if !strings.HasSuffix(string(raw), "{\"last\":true}\n") {
		t.Error("Close did not write the buffered line")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func lines(t *testing.T, path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(raw), "\n")
}
