package policies

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// watchRetries returns the retry_in of each "policy watch failed" line.
func watchRetries(t *testing.T, logs *logBuffer) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(logs.String()) {
		var rec struct {
			Msg     string `json:"msg"`
			RetryIn string `json:"retry_in"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == "policy watch failed" {
			out = append(out, rec.RetryIn)
		}
	}
	return out
}

// TestWatchBacksOffWhileTheDirectoryIsMissing: a missing policy directory
// is retried after 1s, 2s, 4s, ... up to a minute, not every second, so ten
// minutes cost 14 log lines instead of 600; the first good read restores the
// one-second interval.
func TestWatchBacksOffWhileTheDirectoryIsMissing(t *testing.T) {
	dir := policyDir(t)
	moved := dir + ".moved"
	t.Cleanup(func() { os.RemoveAll(moved) })
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		e := newEngine(t, Config{Dir: dir, Logger: testLogger(&logs)})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			e.Watch(ctx, time.Second)
			close(done)
		}()

		if err := os.Rename(dir, moved); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		got := watchRetries(t, &logs)
		want := []string{"2s", "4s", "8s", "16s", "32s", "1m0s", "1m0s", "1m0s", "1m0s", "1m0s", "1m0s", "1m0s", "1m0s", "1m0s"}
		if !slices.Equal(got, want) {
			t.Fatalf("over ten minutes the watch logged retries %v, want %v", got, want)
		}

		// The directory comes back: picked up at the next try, with one
		// recovery line, and an edit after it is seen within a second.
		if err := os.Rename(moved, dir); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := strings.Count(logs.String(), `"msg":"policy watch recovered"`); n != 1 {
			t.Fatalf("%d recoveries logged, want 1:\n%s", n, logs.String())
		}
		editFile(t, dir, "data.json", `"max_ip_failures": 20`, `"max_ip_failures": 3`)
		time.Sleep(time.Second)
		synctest.Wait()
		in := cleanLogin()
		in.Client.RecentFailures = 3
		if d := e.Decide(ctx, in); d.Reason != "ip_throttled" {
			t.Fatalf("an edit a second after recovery was not loaded: %+v", d)
		}

		// A second outage starts again from one second.
		if err := os.Rename(dir, moved); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := watchRetries(t, &logs); len(got) != len(want)+1 || got[len(got)-1] != "2s" {
			t.Fatalf("after recovery the backoff did not reset: %v", got)
		}
		if err := os.Rename(moved, dir); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-done
	})
}
