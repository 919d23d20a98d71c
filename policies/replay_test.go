package policies

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// replayLog decides each input with the shipped policies, through the
// decision log, and returns the log.
func replayLog(t testing.TB, ins ...Input) []byte {
	t.Helper()
	var out logBuffer
	e := newEngine(t, Config{DecisionLog: &out})
	for _, in := range ins {
		e.Decide(t.Context(), in)
	}
	return []byte(out.String())
}

func replayEngines(t testing.TB, now time.Time) ReplayConfig {
	t.Helper()
	clock := func() time.Time { return now }
	return ReplayConfig{
		Candidate: newEngine(t, Config{Now: clock}),
		Baseline:  newEngine(t, Config{Now: clock}),
	}
}

func TestReplayCountsEveryKindOfLine(t *testing.T) {
	wrong := cleanLogin()
	wrong.Point = PointLoginPassword
	wrong.Attempt = PasswordAttempt(false)
	lines := bytes.Split(bytes.TrimSuffix(replayLog(t, cleanLogin(), vpnLogin(), wrong), []byte("\n")), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d lines logged", len(lines))
	}
	// The VPN refusal logged as an approval: the baseline does not agree.
	tampered := bytes.Replace(lines[1], []byte(`"result":{"allow":false,"reason":"ip_anonymous_vpn"`), []byte(`"result":{"allow":true,"reason":"ok"`), 1)
	if bytes.Equal(tampered, lines[1]) {
		t.Fatalf("line not tampered: %s", lines[1])
	}
	oldFormat := bytes.Replace(lines[0], []byte(`"format":1`), []byte(`"format":0`), 1)
	long := `{"pad":"` + strings.Repeat("x", 2000) + `"}`
	log := strings.Join([]string{
		string(lines[0]), "", string(tampered), "  ", "{not json", string(lines[2]), long,
		string(oldFormat), `{"portcullis":{"format":1,"point":"login"},"result":{"allow":true,"reason":"ok"},"timestamp":"2026-01-01T00:00:00Z"}`,
		string(lines[2]) + "\r", // a last line without a newline, CRLF-ended
	}, "\n")
	cfg := replayEngines(t, testNow)
	cfg.MaxLineSize = 1500
	r, err := Replay(t.Context(), cfg, ReplaySource{Name: "a.jsonl", R: strings.NewReader(log)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Read != 8 || r.Unchanged != 3 || r.Changed != 0 || r.BaselineMismatches != 1 || r.Unparseable != 4 {
		t.Fatalf("totals %+v", r)
	}
	wantProblems := []string{"a.jsonl:5: not JSON", "a.jsonl:7: line longer than 1500 bytes", "a.jsonl:8: portcullis.format is 0", "a.jsonl:9: no input"}
	if len(r.Problems) != len(wantProblems) {
		t.Fatalf("problems %q", r.Problems)
	}
	for i, want := range wantProblems {
		if !strings.HasPrefix(r.Problems[i], want) {
			t.Errorf("problem %d is %q, want %q...", i, r.Problems[i], want)
		}
	}
	if len(r.Mismatches) != 1 || len(r.Changes) != 0 {
		t.Fatalf("mismatches %+v, changes %+v", r.Mismatches, r.Changes)
	}
	if m := r.Mismatches[0]; m.Point != PointLogin || m.OldReason != "ok" || m.NewReason != "ip_anonymous_vpn" || m.Count != 1 || len(m.Examples) != 1 {
		t.Errorf("mismatch %+v", m)
	}
}

// A line is decided at the time it records, not the clock's: a device
// registered a day before the decision is still recognised a year later,
// and an input logged without now takes the line's timestamp.
func TestReplayDecidesAtTheLoggedTime(t *testing.T) {
	in := cleanLogin()
	in.Point = PointLoginPassword
	in.Attempt = PasswordAttempt(true)
	log := replayLog(t, in)
	if !bytes.Contains(log, []byte(`"reason":"ok"`)) {
		t.Fatalf("logged %s", log)
	}
	withoutNow := bytes.Replace(log, fmt.Appendf(nil, `"now":%d`, testNow.Unix()), []byte(`"now":0`), 1)
	if bytes.Equal(withoutNow, log) {
		t.Fatal("now not removed")
	}
	cfg := replayEngines(t, testNow.AddDate(1, 0, 0))
	for _, l := range [][]byte{log, withoutNow} {
		r, err := Replay(t.Context(), cfg, ReplaySource{Name: "d.jsonl", R: bytes.NewReader(l)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Read != 1 || r.Unchanged != 1 {
			t.Fatalf("%s\nreport %+v %+v", l, r, r.Mismatches)
		}
	}
}

type failingReader struct{ after []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.after) == 0 {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, f.after)
	f.after = f.after[n:]
	return n, nil
}

func TestReplayReadErrorNamesTheLine(t *testing.T) {
	log := replayLog(t, cleanLogin(), cleanLogin())
	_, err := Replay(t.Context(), replayEngines(t, testNow), ReplaySource{Name: "ok.jsonl", R: bytes.NewReader(log)},
		ReplaySource{Name: "bad.jsonl", R: &failingReader{after: log}})
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:3: disk on fire") {
		t.Fatalf("error %v, want one naming bad.jsonl:3", err)
	}
}

func TestReplayNeedsBothPolicies(t *testing.T) {
	_, err := Replay(t.Context(), ReplayConfig{Candidate: newEngine(t, Config{})})
	if err == nil {
		t.Fatal("replay without a baseline ran")
	}
}

var replayMB = flag.Int("replay.mb", 4, "size in MiB of the decision log BenchmarkReplay generates")

// replayTemplates are decision log lines of varied decisions, repeated to
// make a log of any size.
func replayTemplates(b *testing.B) [][]byte {
	var ins []Input
	for i := range 64 {
		in := cleanLogin()
		in.Client.RecentFailures = i % 7
		switch i % 8 {
		case 0:
			in = vpnLogin()
		case 1:
			in.Client.Facts = IPFacts{Checked: true, HostingProvider: true}
		case 2, 3, 4:
			in.Point = PointLoginPassword
			in.Attempt = PasswordAttempt(i%3 == 0)
			in.Account.ConsecutiveFailures = i % 5
			in.Device.Recognised = i%2 == 0
		case 5, 6:
			in.Point = PointAccess
			in.Request = Request{Route: "savings", Host: "savings.example.com", Path: fmt.Sprintf("/transfers/%d", i), Method: "GET"}
			in.Session = &Session{Methods: []string{"password", "sms"}, AuthTime: testNow.Unix() - 300, StepUpAt: testNow.Unix() - int64(i*30), LastSeen: testNow.Unix() - 5, Created: testNow.Unix() - 300}
		}
		ins = append(ins, in)
	}
	lines := bytes.SplitAfter(replayLog(b, ins...), []byte("\n"))
	return lines[:len(lines)-1] // after the last newline: nothing
}

// repeatReader yields the template lines over and over until size bytes
// (rounded up to a whole line) have been read: a log of any size in
// constant memory.
type repeatReader struct {
	lines [][]byte
	size  int64
	i     int
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && (r.size > 0 || r.off > 0) {
		l := r.lines[r.i]
		c := copy(p[n:], l[r.off:])
		n += c
		r.off += c
		r.size -= int64(c)
		if r.off == len(l) {
			r.i, r.off = (r.i+1)%len(r.lines), 0
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// BenchmarkReplay replays a generated log of -replay.mb MiB (4 by
// default) on GOMAXPROCS workers and reports lines and decisions (two per
// line: baseline and candidate) per second per core, lines per second of
// the process's CPU time, and the peak heap,
// which must stay bounded whatever the log's size. docs/performance.md
// says how to run it over 1 GiB.
func BenchmarkReplay(b *testing.B) {
	templates := replayTemplates(b)
	cfg := replayEngines(b, testNow)
	size := int64(*replayMB) << 20
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	})
	// The collector's target a replaying process runs with (policy replay
	// sets it); the heap check below holds with it.
	defer debug.SetGCPercent(debug.SetGCPercent(ReplayGCPercent))
	var lines int64
	cpuBefore := processCPU()
	start := time.Now()
	for b.Loop() {
		r, err := Replay(b.Context(), cfg, ReplaySource{Name: "generated", R: &repeatReader{lines: templates, size: size}})
		if err != nil {
			b.Fatal(err)
		}
		if r.Unparseable != 0 || r.Changed != 0 || r.BaselineMismatches != 0 {
			b.Fatalf("report %+v %q", r, r.Problems)
		}
		lines += r.Read
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpuBefore
	close(stop)
	wg.Wait()
	cores := float64(runtime.GOMAXPROCS(0))
	b.ReportMetric(float64(lines)/elapsed.Seconds()/cores, "lines/s/core")
	b.ReportMetric(2*float64(lines)/elapsed.Seconds()/cores, "decisions/s/core")
	if cpu > 0 {
		// On a machine shared with other work the wall clock says more
		// about the neighbours than about the replay; CPU time does not.
		b.ReportMetric(float64(lines)/cpu, "lines/cpu-s")
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(size)/(1<<20), "log-MiB")
	// The replay holds a few batches of lines per worker, not the log: its
	// heap must not grow with the log's size.
	const bound = 64 << 20
	if peak > before.HeapInuse+bound {
		b.Fatalf("peak heap %d MiB, over %d MiB above the %d MiB before the replay", peak>>20, bound>>20, before.HeapInuse>>20)
	}
}

// The two policies of a replay share a line's input document only while
// they complete it alike: a candidate that allow-lists the address sees
// the address allow-listed, and its decision changes, however the
// baseline saw it.
func TestReplayCompletesTheInputForEachPolicy(t *testing.T) {
	log := replayLog(t, vpnLogin(), cleanLogin())
	dir := policyDir(t)
	editFile(t, dir, "data.json", `"allow_listed_networks": []`, `"allow_listed_networks": ["203.0.113.0/24"]`)
	clock := func() time.Time { return testNow }
	for _, workers := range []int{1, 2} {
		cfg := ReplayConfig{
			Candidate: newEngine(t, Config{Dir: dir, Now: clock}),
			Baseline:  newEngine(t, Config{Now: clock}),
			Workers:   workers,
		}
		r, err := Replay(t.Context(), cfg, ReplaySource{Name: "a.jsonl", R: bytes.NewReader(log)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Read != 2 || r.Changed != 1 || r.Unchanged != 1 || len(r.Changes) != 1 {
			t.Fatalf("workers %d: report %+v", workers, r)
		}
		if c := r.Changes[0]; c.OldReason != "ip_anonymous_vpn" || c.NewReason != "ok" {
			t.Errorf("workers %d: change %+v", workers, c)
		}
	}
}
