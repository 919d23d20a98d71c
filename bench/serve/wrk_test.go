package main

import (
	"testing"
	"time"
)

const wrkReport = `Running 8s test @ https://localhost:41231/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.40ms    3.10ms  61.22ms   78.12%
    Req/Sec     4.35k   320.11     5.01k    71.00%
  Latency Distribution
     50%    7.03ms
     75%    8.90ms
     90%   11.02ms
     99%   19.68ms
  69241 requests in 8.01s, 82.11MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   8644.32
Transfer/sec:     10.25MB
`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 69241, Elapsed: 8010 * time.Millisecond, RPS: 8644.32,
		P50: 7030 * time.Microsecond, P90: 11020 * time.Microsecond, P99: 19680 * time.Microsecond, Errors: 7}
	if got != want {
		t.Errorf("parseWrk = %+v, want %+v", got, want)
	}
}

func TestParseWrkRefusesAnIncompleteReport(t *testing.T) {
	for _, out := range []string{"", "unable to connect to localhost:1 Connection refused\n",
		"  Latency Distribution\n     50%    7.03ms\n     99%   19.68ms\n"} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("parseWrk(%q) = nil error", out)
		}
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"812.00us": 812 * time.Microsecond, "1.50ms": 1500 * time.Microsecond,
		"2.00s": 2 * time.Second, "1.00m": time.Minute} {
		if got, err := parseWrkDuration(in); err != nil || got != want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseWrkDuration("fast"); err == nil {
		t.Error("parseWrkDuration(fast) = nil error")
	}
}
