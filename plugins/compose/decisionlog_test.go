package compose

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/plugins/compose/composetest"
)

func TestBufferedDecisionLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	b, err := openDecisionLog(path, 0, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
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
	deadline := time.Now().Add(10 * DecisionLogFlush)
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

// Past its maximum size the log rotates to NAME.1, NAME.2, ..., keeping
// max_files old files, each a run of whole lines no bigger than the
// maximum, and every new file is 0600 whatever the umask.
func TestDecisionLogRotates(t *testing.T) {
	composetest.Umask(t, 0o022)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	b, err := openDecisionLog(path, 100, 3, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// 30-byte lines: three fit in 100 bytes, the fourth rotates.
	for i := range 20 {
		fmt.Fprintf(b, "{\"line\":%03d,\"pad\":\"%s\"}\n", i, strings.Repeat("x", 9))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// 20 lines, 3 to a file: 7 files written, the newest 4 kept (the
	// current one and 3 rotated), lines 9..19.
	want := map[string][]int{"": {18, 19}, ".1": {15, 16, 17}, ".2": {12, 13, 14}, ".3": {9, 10, 11}}
	for suffix, lines := range want {
		raw, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
			var n int
			if _, err := fmt.Sscanf(l, "{\"line\":%03d,", &n); err != nil {
				t.Fatalf("%s: line %q: %v", path+suffix, l, err)
			}
			got = append(got, n)
		}
		if fmt.Sprint(got) != fmt.Sprint(lines) {
			t.Errorf("%s holds lines %v, want %v", suffix, got, lines)
		}
		if len(raw) > 100 {
			t.Errorf("%s is %d bytes, over the 100-byte maximum", suffix, len(raw))
		}
		if fi, err := os.Stat(path + suffix); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", suffix, fi.Mode().Perm(), err)
		}
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Error("a fourth rotated file was kept with max_files 3")
	}
	if _, err := fmt.Fprintln(b, "{}"); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// Many writers across many rotations lose and split no line: every line
// written is in exactly one file, whole.
func TestDecisionLogRotatesConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	const writers, perWriter = 16, 400
	b, err := openDecisionLog(path, 4<<10, writers*perWriter, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				fmt.Fprintf(b, "{\"writer\":%d,\"line\":%d,\"pad\":%q}\n", w, i, strings.Repeat("y", i%50))
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("%d files: the log did not rotate as often as its size asks", len(files))
	}
	seen := map[[2]int]bool{}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > 4<<10 {
			t.Errorf("%s is %d bytes, over the maximum", name, len(raw))
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
			var w, i int
			var pad string
			if _, err := fmt.Sscanf(l, "{\"writer\":%d,\"line\":%d,\"pad\":%q}", &w, &i, &pad); err != nil || pad != strings.Repeat("y", i%50) {
				t.Fatalf("%s: torn line %q (%v)", name, l, err)
			}
			if seen[[2]int{w, i}] {
				t.Fatalf("line %d of writer %d written twice", i, w)
			}
			seen[[2]int{w, i}] = true
		}
	}
	if len(seen) != writers*perWriter {
		t.Fatalf("%d lines found, want %d", len(seen), writers*perWriter)
	}
}

// A decision never waits for the disk: with the writer stalled, writes
// return at once, and past the bounded queue whole batches are dropped,
// counted and warned about. Every line is either in the file or counted.
func TestDecisionLogDropsWhenTheDiskStalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	var logs composetest.LogBuffer
	b := newDecisionLog(path, 0, 1, slog.New(slog.NewTextHandler(&logs, nil)))
	stalled, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.beforeWrite = func() {
		once.Do(func() { close(stalled) })
		<-release
	}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	line := []byte("{\"pad\":\"" + strings.Repeat("z", 1000) + "\"}\n")
	// Enough lines to fill the batch the writer holds, the queue behind
	// it and some more.
	total := (decisionLogQueue + 8) * (decisionLogBatch/len(line) + 1)
	wrote := make(chan error, 1)
	go func() {
		for range total {
			if _, err := b.Write(line); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("writes blocked behind a stalled disk")
	}
	<-stalled
	if b.Dropped() == 0 {
		t.Fatal("no line dropped with the writer stalled and the queue full")
	}
	close(release)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := uint64(lines(t, path)) + b.Dropped(); got != uint64(total) {
		t.Fatalf("%d lines on disk + %d dropped = %d, want %d", lines(t, path), b.Dropped(), got, total)
	}
	if got := dropCounter(t, b); got != float64(b.Dropped()) {
		t.Errorf("portcullis_decision_log_dropped_total = %v, want %d", got, b.Dropped())
	}
	if got := dropCounter(t, nil); got != 0 {
		t.Errorf("without a decision log the drop counter is %v", got)
	}
	if !strings.Contains(logs.String(), "decision log lines dropped") || !strings.Contains(logs.String(), fmt.Sprintf("dropped_total=%d", b.Dropped())) {
		t.Errorf("no warning with the dropped count:\n%s", logs.String())
	}
}

func dropCounter(t *testing.T, b *DecisionLog) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(decisionLogDrops(b))
	return gatherCounters(t, reg)["portcullis_decision_log_dropped_total{}"]
}
